"""run_job end to end: preview on the CPU, wan2.2 through the ComfyUI emulator, and the failure shapes."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import tempfile

import pytest

from gpu_worker.runner import run_job

from .conftest import SIGNATURE, job_input
from .videocheck import check_mp4


def _stages(updates):
    return [u["stage"] for i, u in enumerate(updates) if i == 0 or updates[i - 1]["stage"] != u["stage"]]


async def test_preview_job_with_audio(file_host, settings, tmp_path):
    updates = []
    raw = job_input(file_host, audio=True, params={"width": 192, "height": 112, "fps": 10, "seed": 1})
    result = await run_job("job-1", raw, updates.append, settings=settings)
    body = file_host.puts["out.mp4"]["body"]
    video = result["video"]
    # No frames/duration_s: the 1.5 s audio sets the duration.
    assert video == {"content_type": "video/mp4", "size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                     "duration_s": 1.5, "width": 192, "height": 112, "fps": 10}
    out = tmp_path / "got.mp4"
    out.write_bytes(body)
    check_mp4(out, width=192, height=112, fps=10, frames=15, audio=True)
    assert _stages(updates) == ["downloading", "loading", "encoding", "uploading"]
    percents = [u["percent"] for u in updates]
    assert percents == sorted(percents) and percents[-1] == 100


async def test_i2v_through_comfy(file_host, wan_settings, comfy, tmp_path):
    updates = []
    raw = job_input(file_host, "wan2.2-i2v", params={"prompt": "a cat surfing", "width": 176, "height": 128,
                                                     "fps": 16, "frames": 17, "seed": 5, "steps": 4})
    result = await run_job("job-i2v", raw, updates.append, settings=wan_settings)
    assert "error" not in result, result
    video = result["video"]
    assert (video["width"], video["height"], video["fps"]) == (176, 128, 16)
    assert video["duration_s"] == pytest.approx(17 / 16, abs=0.01)
    out = tmp_path / "got.mp4"
    out.write_bytes(file_host.puts["out.mp4"]["body"])
    check_mp4(out, width=176, height=128, fps=16, frames=17, audio=False)
    assert _stages(updates) == ["downloading", "loading", "sampling", "encoding", "uploading"]
    assert [u["message"] for u in updates if u["stage"] == "sampling"] == [f"step {k}/4" for k in (1, 2, 3, 4)]
    graph = comfy.prompts_seen[0]
    assert graph["8"]["inputs"]["text"] == "a cat surfing"
    assert graph["13"]["inputs"]["noise_seed"] == 5 and graph["12"]["inputs"]["length"] == 17
    assert graph["11"]["inputs"]["image"] == "reelgate-job-i2v-image.png"
    # The GPU it ran on, as ComfyUI names it, for the job's cost.
    assert result["gpu"] == "Emulated GPU (test double)"


async def test_s2v_through_comfy_muxes_audio(file_host, wan_settings, comfy, tmp_path):
    raw = job_input(file_host, "wan2.2-s2v", audio=True, params={"width": 128, "height": 128, "fps": 16})
    result = await run_job("job-s2v", raw, None, settings=wan_settings)
    assert "error" not in result, result
    out = tmp_path / "got.mp4"
    out.write_bytes(file_host.puts["out.mp4"]["body"])
    check_mp4(out, width=128, height=128, fps=16, frames=25, audio=True)  # 1.5 s audio -> 4k+1 frames


async def test_models_missing_names_files_and_downloads_nothing(file_host, settings, comfy):
    settings = dataclasses.replace(settings, comfy_url=comfy.url)
    result = await run_job("job-m", job_input(file_host, "wan2.2-i2v"), None, settings=settings)
    assert result["error"]["code"] == "models_missing"
    assert "loras/wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors" in result["error"]["message"]
    assert file_host.requests == [] and comfy.prompts_seen == []


async def test_comfy_execution_error_is_inference_failed(file_host, wan_settings, comfy):
    comfy.faults.error_at_step = 1
    result = await run_job("job-e", job_input(file_host, "wan2.2-i2v"), None, settings=wan_settings)
    assert result["error"]["code"] == "inference_failed"
    assert "out.mp4" not in file_host.puts


@pytest.mark.parametrize("raw,code", [
    ({"model": "nope"}, "invalid_input"),
    (None, "invalid_input"),
])
async def test_invalid_input(raw, code, settings):
    assert (await run_job("j", raw, None, settings=settings))["error"]["code"] == code


async def test_model_not_enabled(file_host, settings):
    settings = dataclasses.replace(settings, enabled_models=("preview",))
    result = await run_job("j", job_input(file_host, "wan2.2-i2v"), None, settings=settings)
    assert result["error"] == {"code": "invalid_input", "message": "model wan2.2-i2v is not enabled on this worker"}


async def test_download_failure_hides_signed_url(file_host, settings, capsys):
    file_host.files.pop("image.png")
    result = await run_job("j", job_input(file_host), None, settings=settings)
    assert result["error"]["code"] == "input_download_failed"
    assert result["error"]["message"] == "inputs.image: the signed GET answered HTTP 404"
    assert SIGNATURE not in result["error"]["message"] and "supersecret" not in capsys.readouterr().out


@pytest.mark.parametrize("model", ["preview", "wan2.2-i2v"])
async def test_errors_name_the_input_never_a_path_of_the_worker(file_host, wan_settings, model):
    file_host.files["image.png"] = b"not an image at all"
    result = await run_job("j", job_input(file_host, model), None, settings=wan_settings)
    assert result["error"] == {"code": "invalid_input", "message": "inputs.image is not a PNG, JPEG or WebP image"}


async def test_cancel_event_stops_the_job(file_host, settings):
    cancel = asyncio.Event()
    raw = job_input(file_host, params={"width": 640, "height": 640, "fps": 30, "frames": 900})
    task = asyncio.create_task(run_job("j", raw, lambda u: cancel.set() if u["stage"] == "encoding" else None,
                                       cancel, settings=settings))
    result = await asyncio.wait_for(task, 20)
    assert result["error"]["code"] == "canceled"
    assert "out.mp4" not in file_host.puts


async def test_job_timeout(file_host, wan_settings, comfy):
    comfy.faults.step_delay_s = 2
    settings = dataclasses.replace(wan_settings, job_timeout_s=0.5)
    result = await run_job("j", job_input(file_host, "wan2.2-i2v"), None, settings=settings)
    assert result["error"]["code"] == "timeout"
    assert comfy.interrupts == 1


async def test_health_check(wan_settings, settings):
    result = await run_job("h", {"health_check": True}, None, settings=wan_settings)
    assert result["health_check"]["ok"] is True and result["health_check"]["gpu"].startswith("Emulated")
    missing = await run_job("h", {"health_check": True}, None, settings=dataclasses.replace(
        wan_settings, models_root=tempfile.gettempdir() + "/nothing-here"))
    assert missing["health_check"]["ok"] is False and missing["health_check"]["missing_files"]


async def test_comfy_unreachable_is_inference_failed(file_host, wan_settings):
    settings = dataclasses.replace(wan_settings, comfy_url="http://127.0.0.1:9")
    result = await run_job("j", job_input(file_host, "wan2.2-i2v"), None, settings=settings)
    assert result["error"]["code"] == "inference_failed" and "ComfyUI" in result["error"]["message"]
