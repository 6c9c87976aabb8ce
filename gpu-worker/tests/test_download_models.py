"""scripts/download_models.sh against a local server standing in for Hugging Face: resume, size, sha256, header."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from aiohttp import web

from gpu_worker.models import required_files

from .conftest import write_safetensors

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "download_models.sh"
pytestmark = pytest.mark.skipif(not (shutil.which("bash") and shutil.which("curl")), reason="needs bash and curl")


@pytest.fixture
async def hub(tmp_path):
    """Serves every wan2.2-i2v file (small whole safetensors) with Range support; records the Range headers."""
    source = tmp_path / "hub"
    for index, rel in enumerate(required_files("wan2.2-i2v")):
        write_safetensors(source / rel, {"w": ("F16", [64, 8 + index])})
    ranges: list[str] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        if "Range" in request.headers:
            ranges.append(request.headers["Range"])
        return web.FileResponse(source / request.match_info["rel"])

    app = web.Application()
    app.router.add_get("/files/{rel:.+}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/files"
    yield source, base, ranges
    await runner.cleanup()


def write_list(tmp_path: Path, source: Path, base: str, **override) -> Path:
    files = []
    for rel in required_files("wan2.2-i2v"):
        folder, name = rel.split("/", 1)
        data = (source / rel).read_bytes()
        entry = {"folder": folder, "name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                 "source": f"{base}/{rel}"}
        files.append({**entry, **override.get(rel, {})})
    path = tmp_path / "model-files.json"
    path.write_text(json.dumps({"files": files}))
    return path


async def run_script(list_path: Path, root: Path, *args: str) -> tuple[int, str]:
    env = {**os.environ, "MODEL_FILES": str(list_path), "PYTHON": sys.executable}
    proc = await asyncio.create_subprocess_exec("bash", str(SCRIPT), "--root", str(root), *args, "wan2.2-i2v",
                                                env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode()


async def test_fetches_resumes_and_verifies(hub, tmp_path):
    source, base, ranges = hub
    root = tmp_path / "models"
    vae = "vae/wan_2.1_vae.safetensors"
    (root / vae).parent.mkdir(parents=True)
    (root / vae).write_bytes((source / vae).read_bytes()[:100])  # an interrupted download
    code, out = await run_script(write_list(tmp_path, source, base), root)
    assert code == 0, out
    assert ranges == ["bytes=100-"]  # only the partial file was resumed, from where it stopped
    for rel in required_files("wan2.2-i2v"):
        assert (root / rel).read_bytes() == (source / rel).read_bytes()
        assert f"ok       {rel}" in out
    code, out = await run_script(write_list(tmp_path, source, base), root)
    assert code == 0 and out.count("present  ") == 6  # a second run fetches nothing


async def test_a_wrong_sha256_or_a_file_that_will_not_load_fails(hub, tmp_path):
    source, base, _ = hub
    lora = "loras/wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors"
    vae = "vae/wan_2.1_vae.safetensors"
    (source / vae).write_bytes(b"<html>rate limited</html>")
    listed = write_list(tmp_path, source, base, **{lora: {"sha256": "0" * 64}, vae: {"sha256": None}})
    code, out = await run_script(listed, tmp_path / "models")
    assert code == 1
    assert f"SHA256 MISMATCH {lora}" in out and f"WILL NOT LOAD {vae}: is not safetensors" in out


async def test_print_pins(hub, tmp_path):
    source, base, _ = hub
    listed = write_list(tmp_path, source, base)
    await run_script(listed, tmp_path / "models")
    code, out = await run_script(listed, tmp_path / "models", "--print-pins")
    vae = "vae/wan_2.1_vae.safetensors"
    data = (source / vae).read_bytes()
    assert code == 0 and f"{vae}\t{len(data)}\t{hashlib.sha256(data).hexdigest()}" in out
