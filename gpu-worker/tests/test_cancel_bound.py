"""Cancel frees the GPU: the pod server cancels a wan job running in a ComfyUI this worker owns (the ComfyUI
emulator, a test double, started as a process by gpu_worker.comfy_process). A prompt that honours the interrupt
stops at once; one whose node never checks for interruption (fault `ignore_interrupt`) gets ComfyUI restarted
once the bound has passed, and the job's history says which happened."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gpu_worker import comfy_process
from gpu_worker.comfy_process import ComfyProcess
from gpu_worker.server import create_app

from .conftest import REPO_ROOT, job_input

EMULATOR = REPO_ROOT / "test" / "emulators" / "comfyui" / "server.py"
BOUND_S = 1.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def owned_comfy():
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = ComfyProcess([sys.executable, str(EMULATOR), "--port", str(port)], url, start_timeout_s=30)
    await process.start()
    comfy_process.adopt(process)
    yield process
    comfy_process.adopt(None)
    await asyncio.to_thread(process.stop)


async def set_faults(url: str, **faults) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/emulator/faults", json=faults) as resp:
            assert resp.status == 200


async def queue_of(url: str) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/queue") as resp:
            return await resp.json()


async def start_and_cancel(owned_comfy, wan_settings, file_host):
    async with asyncio.timeout(60):  # without a bounded cleanup the history never comes
        return await _start_and_cancel(owned_comfy, wan_settings, file_host)


async def _start_and_cancel(owned_comfy, wan_settings, file_host):
    settings = dataclasses.replace(wan_settings, comfy_url=owned_comfy.url, comfy_cancel_bound_s=BOUND_S)
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    params = {"width": 128, "height": 128, "frames": 9, "fps": 16, "steps": 4, "seed": 1}
    job = await (await client.post("/run", json={"input": job_input(file_host, "wan2.2-i2v", params=params)})).json()
    while True:
        body = await (await client.get(f"/status/{job['id']}")).json()
        if (body.get("output") or {}).get("progress", {}).get("stage") == "sampling":
            break
        await asyncio.sleep(0.02)
    canceled_at = time.monotonic()
    answer = await (await client.post(f"/cancel/{job['id']}")).json()
    assert answer == {"id": job["id"], "status": "CANCELLED"}
    while True:  # the cleanup goes on after the answer; the job's history says when it is over
        body = await (await client.get(f"/status/{job['id']}")).json()
        if body.get("history"):
            return client, body, time.monotonic() - canceled_at
        await asyncio.sleep(0.02)


async def test_a_prompt_that_honours_the_interrupt_stops_without_a_restart(owned_comfy, wan_settings, file_host):
    await set_faults(owned_comfy.url, step_delay_s=0.5)
    pid = owned_comfy.pid
    client, body, _ = await start_and_cancel(owned_comfy, wan_settings, file_host)
    try:
        assert body["status"] == "CANCELLED"
        (event,) = body["history"]
        assert event["event"] == "comfy_prompt_stopped" and event["stopped_by"] == "interrupt"
        assert event["interrupted"] is True and event["seconds"] < BOUND_S
        assert owned_comfy.pid == pid and owned_comfy.restarts == 0
    finally:
        await client.close()


async def test_a_prompt_that_ignores_the_interrupt_gets_comfy_restarted_past_the_bound(
        owned_comfy, wan_settings, file_host):
    await set_faults(owned_comfy.url, step_delay_s=5.0, ignore_interrupt=True)  # 4 steps: 20 s of "GPU"
    pid = owned_comfy.pid
    client, body, waited = await start_and_cancel(owned_comfy, wan_settings, file_host)
    try:
        (event,) = body["history"]
        assert event["stopped_by"] == "restart" and event["interrupted"] is True
        assert BOUND_S <= event["seconds"] < BOUND_S + 10  # the bound, then the restart; not the prompt's 20 s
        assert owned_comfy.restarts == 1 and owned_comfy.pid != pid
        assert await queue_of(owned_comfy.url) == {"queue_running": [], "queue_pending": []}  # the GPU is free
        # The worker goes on serving: the next job runs on the restarted ComfyUI.
        params = {"width": 128, "height": 128, "frames": 5, "fps": 16}
        after = await (await client.post("/runsync", json={"input": job_input(file_host, "wan2.2-i2v",
                                                                              params=params)})).json()
        assert after["status"] == "COMPLETED", after
        assert waited < 20
    finally:
        await client.close()
