"""A job that carries its workflow (a model registered after this worker was deployed): run through the ComfyUI
emulator with the input file's name bound, refused with models_missing naming what this machine lacks."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from gpu_worker.errors import JobInputError
from gpu_worker.job import parse_job_input
from gpu_worker.runner import run_job

from .conftest import job_input, write_safetensors
from .videocheck import check_mp4

MANIFEST = json.loads((Path(__file__).resolve().parents[2] / "test" / "data" / "still-video-manifest.json")
                      .read_text(encoding="utf-8"))


def carried(width=160, height=128, frames=9, fps=8, files=(), custom_nodes=()) -> dict:
    """What the Worker sends for the still-video manifest (src/models/fill.ts): parameters written in."""
    graph = copy.deepcopy(MANIFEST["workflow"]["graph"])
    graph["2"]["inputs"].update(width=width, height=height)
    graph["3"]["inputs"]["amount"] = frames
    graph["4"]["inputs"]["fps"] = fps
    graph["5"]["inputs"]["filename_prefix"] = "video/job_still"
    return {"model": "still-video@1", "graph": graph, "inputs": {"image": [{"node": "1", "input": "image"}]},
            "output_node": "5", "files": list(files), "custom_nodes": list(custom_nodes)}


def still_job(file_host, **workflow) -> dict:
    raw = job_input(file_host, "still-video", params={})
    raw["workflow"] = carried(**workflow)
    return raw


async def test_a_registered_model_runs_on_a_worker_that_never_heard_of_it(file_host, settings, comfy, tmp_path):
    # The worker enables only the preview, and has no template for still-video: the job brings its graph.
    settings = dataclasses.replace(settings, enabled_models=("preview",), comfy_url=comfy.url)
    result = await run_job("job-still", still_job(file_host), None, settings=settings)
    assert "error" not in result, result
    assert (result["video"]["width"], result["video"]["height"], result["video"]["fps"]) == (160, 128, 8)
    out = tmp_path / "got.mp4"
    out.write_bytes(file_host.puts["out.mp4"]["body"])
    check_mp4(out, width=160, height=128, fps=8, frames=9, audio=False)
    graph = comfy.prompts_seen[0]
    assert graph["1"]["inputs"]["image"] == "reelgate-job-still-image.png"
    assert graph["5"]["inputs"]["filename_prefix"] == "video/job_still"


async def test_models_missing_names_files_and_nodes_and_downloads_nothing(file_host, settings, comfy):
    settings = dataclasses.replace(settings, comfy_url=comfy.url)
    write_safetensors(Path(settings.models_root) / "loras" / "present.safetensors")
    raw = still_job(file_host, files=[{"path": "loras/present.safetensors"},
                                      {"path": "unet/absent.gguf", "size": 1000}])
    raw["workflow"]["graph"]["3"]["class_type"] = "RepeatFrames"
    raw["workflow"]["custom_nodes"] = [{"class_type": "RepeatFrames", "repository": "https://github.com/example/f",
                                        "commit": "0123456789abcdef0123456789abcdef01234567"}]
    result = await run_job("job-m", raw, None, settings=settings)
    assert result["error"] == {
        "code": "models_missing",
        "message": "model files will not load: unet/absent.gguf missing; "
                   "node classes not installed: RepeatFrames (from https://github.com/example/f@0123456789ab)",
    }
    assert file_host.requests == [] and comfy.prompts_seen == []


def test_a_carried_workflow_is_checked_before_anything_runs(file_host):
    raw = still_job(file_host)
    raw["workflow"]["inputs"]["image"] = [{"node": "99", "input": "image"}]
    with pytest.raises(JobInputError, match="workflow.inputs.image names an input the graph lacks"):
        parse_job_input(raw)
    with pytest.raises(JobInputError, match="inside the models folder"):
        parse_job_input(still_job(file_host, files=[{"path": "vae/../../etc/passwd"}]))


def test_a_model_unknown_to_the_worker_without_a_workflow_is_refused(file_host):
    with pytest.raises(JobInputError, match="or the job carries its workflow"):
        parse_job_input(job_input(file_host, "still-video", params={}))


async def test_a_missing_file_is_fetched_from_r2_then_the_public_source(file_host, settings, comfy, tmp_path):
    settings = dataclasses.replace(settings, comfy_url=comfy.url)
    body = write_safetensors(tmp_path / "extra.safetensors").read_bytes()
    file_host.files["public.safetensors"] = body
    need = {"path": "vae/extra.safetensors", "size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
            # The R2 copy is not there (404): the public source serves it.
            "url": file_host.url("/files/r2-copy.safetensors?X-Amz-Signature=s3cr3t"),
            "source": file_host.url("/files/public.safetensors")}
    result = await run_job("job-fetch", still_job(file_host, files=[need]), None, settings=settings)
    assert "error" not in result, result
    assert (Path(settings.models_root) / "vae" / "extra.safetensors").read_bytes() == body
    # Present now: the next job fetches nothing.
    before = len(file_host.requests)
    assert "error" not in await run_job("job-again", still_job(file_host, files=[need]), None, settings=settings)
    assert not [r for r in file_host.requests[before:] if "safetensors" in r[1]]


async def test_a_fetched_file_that_is_not_the_pinned_one_is_kept_out(file_host, settings, comfy, tmp_path):
    settings = dataclasses.replace(settings, comfy_url=comfy.url)
    body = write_safetensors(tmp_path / "extra.safetensors").read_bytes()
    file_host.files["public.safetensors"] = body
    need = {"path": "vae/extra.safetensors", "sha256": "0" * 64, "source": file_host.url("/files/public.safetensors")}
    result = await run_job("job-bad", still_job(file_host, files=[need]), None, settings=settings)
    assert result["error"]["code"] == "models_missing"
    assert result["error"]["message"].startswith("vae/extra.safetensors is missing and could not be fetched "
                                                 "(public source: sha256 ")
    assert "127.0.0.1" not in result["error"]["message"]
    assert not (Path(settings.models_root) / "vae").exists() or not list((Path(settings.models_root) / "vae").iterdir())
    assert comfy.prompts_seen == []
