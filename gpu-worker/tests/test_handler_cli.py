"""The RunPod handler through the SDK's local mode: `python -m gpu_worker --test_input '{"input": ...}'`."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from .conftest import job_input
from .videocheck import check_mp4

WORKER_ROOT = Path(__file__).resolve().parents[1]


async def run_cli(module: str, payload: dict, tmp_path: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}
    env.update(ENABLED_MODELS="preview", WORK_DIR=str(tmp_path), PYTHONPATH=str(WORKER_ROOT), HTTP_BACKOFF_S="0.01")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, "--test_input", json.dumps(payload), cwd=str(tmp_path), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode()


@pytest.mark.parametrize("module", ["gpu_worker", "gpu_worker.handler"])
async def test_test_input_renders_and_uploads(module, file_host, tmp_path):
    code, out = await run_cli(module, {"input": job_input(file_host, audio=True)}, tmp_path)
    assert code == 0, out
    video = tmp_path / "got.mp4"
    video.write_bytes(file_host.puts["out.mp4"]["body"])
    check_mp4(video, width=160, height=128, fps=8, frames=9, audio=True)
    assert "supersecret" not in out  # the SDK logs inputs at DEBUG; we run it at INFO
    assert '"event": "progress"' in out


async def test_test_input_failure_exits_1(file_host, tmp_path):
    code, out = await run_cli("gpu_worker", {"input": {"model": "nope"}}, tmp_path)
    assert code == 1
    assert "invalid_input" in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_rp_serve_api_answers_a_failed_job_as_runpod_declares_it(tmp_path):
    """The SDK's local API server validates the job against RunPod's schema (`error` is a string): a dict there
    was an HTTP 500. Now a failing input answers a valid FAILED status with the code and message as JSON text."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}
    env.update(ENABLED_MODELS="preview", WORK_DIR=str(tmp_path), PYTHONPATH=str(WORKER_ROOT))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gpu_worker", "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port",
        str(port), cwd=str(tmp_path), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.post(f"http://127.0.0.1:{port}/runsync",
                                            json={"input": {"model": "nope"}}) as resp:
                        status, body = resp.status, await resp.json()
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("the SDK's local API server never answered")
    finally:
        proc.terminate()
        await proc.wait()
    assert status == 200, body
    assert body["status"] == "FAILED" and json.loads(body["error"])["code"] == "invalid_input"
