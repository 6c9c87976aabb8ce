"""LoRAs by URL: fetched once into a cache keyed by sha256 (checked when given), size-capped, bound into the
carried workflow, and evicted least recently used first past the disk budget. Served by a local file host."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import aiohttp

from gpu_worker.job import LoraNeed
from gpu_worker.loras import CACHE_DIR, evict, fetch_loras
from gpu_worker.runner import run_job

from .conftest import write_safetensors
from .test_carried_workflow import still_job


def lora_bytes(tmp_path: Path, name: str, shape=(4, 4)) -> bytes:
    return write_safetensors(tmp_path / name, {"w": ("F16", list(shape))}).read_bytes()


def with_lora(raw: dict, url: str, sha256: str | None = None, max_bytes: int = 10_000) -> dict:
    """The still-video graph with one LoRA loader in front of nothing that needs a model: what matters is the bind."""
    graph = raw["workflow"]["graph"]
    graph["lora_0_0"] = {"class_type": "LoraLoaderModelOnly",
                         "inputs": {"model": ["1", 0], "lora_name": "", "strength_model": 1}}
    entry = {"url": url, "max_bytes": max_bytes, "bind": [{"node": "lora_0_0", "input": "lora_name"}]}
    if sha256:
        entry["sha256"] = sha256
    raw["workflow"]["loras"] = [entry]
    return raw


def lora_gets(file_host) -> int:
    return sum(1 for method, path in file_host.requests if method == "GET" and path == "/files/style.safetensors")


async def test_downloaded_once_then_served_from_the_cache(file_host, settings, comfy, tmp_path):
    settings = dataclasses.replace(settings, comfy_url=comfy.url)
    body = lora_bytes(tmp_path, "style.safetensors")
    file_host.files["style.safetensors"] = body
    digest = hashlib.sha256(body).hexdigest()
    for job_id in ("job-a", "job-b"):
        raw = with_lora(still_job(file_host), file_host.url("/files/style.safetensors"), digest)
        result = await run_job(job_id, raw, None, settings=settings)
        assert "error" not in result, result
    assert lora_gets(file_host) == 1
    cached = Path(settings.models_root) / "loras" / CACHE_DIR / f"{digest}.safetensors"
    assert cached.read_bytes() == body
    assert [g["lora_0_0"]["inputs"]["lora_name"] for g in comfy.prompts_seen] == [f"{CACHE_DIR}/{digest}.safetensors"] * 2


async def test_a_sha256_mismatch_fails_the_job_and_caches_nothing(file_host, settings, comfy, tmp_path):
    settings = dataclasses.replace(settings, comfy_url=comfy.url)
    file_host.files["style.safetensors"] = lora_bytes(tmp_path, "style.safetensors")
    raw = with_lora(still_job(file_host), file_host.url("/files/style.safetensors"), "0" * 64)
    result = await run_job("job-x", raw, None, settings=settings)
    assert result["error"]["code"] == "invalid_input"
    assert result["error"]["message"].startswith("inputs.loras[0]: its sha256 is ")
    assert "127.0.0.1" not in result["error"]["message"]
    assert list((Path(settings.models_root) / "loras" / CACHE_DIR).iterdir()) == []
    assert comfy.prompts_seen == []


async def test_a_lora_over_the_size_cap_is_refused(file_host, settings, comfy, tmp_path):
    settings = dataclasses.replace(settings, comfy_url=comfy.url)
    body = lora_bytes(tmp_path, "style.safetensors", shape=(64, 64))
    file_host.files["style.safetensors"] = body
    raw = with_lora(still_job(file_host), file_host.url("/files/style.safetensors"), max_bytes=len(body) - 1)
    result = await run_job("job-big", raw, None, settings=settings)
    assert result["error"] == {"code": "invalid_input", "message": f"inputs.loras[0] is larger than {len(body) - 1} bytes"}


async def test_a_file_that_is_not_safetensors_is_refused(file_host, settings, comfy):
    settings = dataclasses.replace(settings, comfy_url=comfy.url)
    file_host.files["style.safetensors"] = b"<html>not found</html>"
    raw = with_lora(still_job(file_host), file_host.url("/files/style.safetensors"))
    result = await run_job("job-html", raw, None, settings=settings)
    assert result["error"]["code"] == "invalid_input"
    assert result["error"]["message"].startswith("inputs.loras[0] is not a loadable safetensors file")


async def test_past_the_budget_the_least_recently_used_go(file_host, tmp_path):
    folder = tmp_path / "loras" / CACHE_DIR
    folder.mkdir(parents=True)
    for age, name in enumerate(["old", "mid", "new"]):
        path = folder / f"{name}.safetensors"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1000 + age, 1000 + age))
    assert evict(folder, 250, keep={"old.safetensors"}) == ["mid.safetensors"]
    assert sorted(p.name for p in folder.iterdir()) == ["new.safetensors", "old.safetensors"]
    # A fetch marks its file recently used: what the cache holds for this job stays, older files go.
    body = lora_bytes(tmp_path, "style.safetensors")
    file_host.files["style.safetensors"] = body
    need = LoraNeed(url=file_host.url("/files/style.safetensors"), sha256=None, max_bytes=10_000, binds=())
    async with aiohttp.ClientSession() as session:
        names = await fetch_loras(session, [need], str(tmp_path), budget_bytes=len(body) + 100)
    assert len(names) == 1 and names[0].startswith(f"{CACHE_DIR}/")
    assert sorted(p.name for p in folder.iterdir()) == sorted(["new.safetensors", Path(names[0]).name])
