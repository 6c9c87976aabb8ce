"""`python -m gpu_worker` startup: pod mode prints its listening line and serves; a missing ComfyUI fails fast."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import aiohttp

WORKER_ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "POD_", "COMFY_"))}
    env.update(PYTHONPATH=str(WORKER_ROOT), PYTHONUNBUFFERED="1", **extra)
    return env


async def test_pod_mode_listens_and_answers_health(tmp_path):
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gpu_worker", cwd=str(tmp_path), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=_env(DEPLOYMENT_MODE="pod", POD_HOST="127.0.0.1", POD_PORT=str(port), POD_API_TOKEN="t0ken"))
    try:
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, "exited before listening"
            if b'"listening"' in line:
                break
        assert "t0ken" not in line.decode()
        url = json.loads(line)["url"]
        assert url == f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/health", headers={"Authorization": "Bearer t0ken"}) as resp:
                assert resp.status == 200
                assert (await resp.json())["workers"] == {"idle": 1, "running": 0}
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
    assert proc.returncode == 0


async def test_wan_enabled_without_comfy_fails_fast(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gpu_worker", cwd=str(tmp_path), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=_env(ENABLED_MODELS="preview,wan2.2-i2v", COMFY_URL=f"http://127.0.0.1:{_free_port()}",
                 COMFY_START_TIMEOUT_S="0.5", MODELS_ROOT=str(tmp_path)))
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    text = out.decode()
    assert "models_missing" in text and "not ready after" in text
