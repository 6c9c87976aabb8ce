"""entrypoint.sh on the CPU: model check, ComfyUI death, and a full start with the ComfyUI emulator standing in
for ComfyUI (a fake `main.py` in COMFY_DIR launches it), then a wan2.2-i2v job through the pod server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from .conftest import REPO_ROOT, fill_models, job_input

WORKER_ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = WORKER_ROOT / "entrypoint.sh"
pytestmark = pytest.mark.skipif(not (shutil.which("bash") and shutil.which("curl")), reason="needs bash and curl")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "POD_", "COMFY_", "MODELS_"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1",
               MODELS_ROOT=str(tmp_path / "models"), COMFY_DIR=str(tmp_path / "comfy"),
               COMFY_PORT=str(_free_port()), COMFY_START_TIMEOUT_S="30", WORK_DIR=str(tmp_path), **extra)
    return env


def _fill_models(tmp_path: Path) -> None:
    fill_models(tmp_path / "models", ("wan2.2-i2v",))


def _fake_comfy(tmp_path: Path, body: str) -> None:
    (tmp_path / "comfy").mkdir(exist_ok=True)
    (tmp_path / "comfy" / "main.py").write_text(body)


async def _run(env: dict, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec("bash", str(ENTRYPOINT), *args, env=env, cwd=str(WORKER_ROOT),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                start_new_session=True)


async def test_missing_models_are_named(tmp_path):
    proc = await _run(_env(tmp_path, ENABLED_MODELS="preview, wan2.2-i2v"))
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    text = out.decode()
    assert "will not load" in text and "loras/wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors missing" in text


async def test_a_truncated_model_file_is_named_before_any_job(tmp_path):
    _fill_models(tmp_path)
    vae = tmp_path / "models" / "vae" / "wan_2.1_vae.safetensors"
    vae.write_bytes(vae.read_bytes()[:-10])  # an interrupted download
    proc = await _run(_env(tmp_path, ENABLED_MODELS="wan2.2-i2v"))
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert "vae/wan_2.1_vae.safetensors is" in out.decode() and "truncated" in out.decode()


async def test_comfy_dying_fails_fast(tmp_path):
    _fill_models(tmp_path)
    _fake_comfy(tmp_path, "import sys\nsys.exit(3)\n")
    proc = await _run(_env(tmp_path, ENABLED_MODELS="wan2.2-i2v"))
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1 and "exited during startup" in out.decode()


async def test_full_start_with_emulated_comfy_runs_an_i2v_job(tmp_path, file_host):
    _fill_models(tmp_path)
    emulator = REPO_ROOT / "test" / "emulators" / "comfyui" / "server.py"
    _fake_comfy(tmp_path, (
        "import runpy, sys\n"
        "port = sys.argv[sys.argv.index('--port') + 1]\n"
        f"sys.argv = [{str(emulator)!r}, '--port', port]\n"
        f"runpy.run_path({str(emulator)!r}, run_name='__main__')\n"))
    pod_port = _free_port()
    proc = await _run(_env(tmp_path, ENABLED_MODELS="preview,wan2.2-i2v", DEPLOYMENT_MODE="pod",
                           POD_HOST="127.0.0.1", POD_PORT=str(pod_port)))
    lines = []
    try:
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, b"".join(lines).decode()
            lines.append(line)
            if b'"listening"' in line and b'test_double' not in line:
                break
        text = b"".join(lines).decode()
        assert "\"comfy_started\"" in text and "\"comfy_ready\"" in text
        url = json.loads(line)["url"]
        raw = job_input(file_host, "wan2.2-i2v", params={"width": 128, "height": 128, "frames": 5, "fps": 16})
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/runsync", json={"input": raw}) as resp:
                body = await resp.json()
        assert body["status"] == "COMPLETED", body
        assert body["output"]["video"]["width"] == 128 and file_host.puts["out.mp4"]["body"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the entrypoint's session: worker and (emulated) ComfyUI
        await asyncio.wait_for(proc.wait(), 10)
