"""The ComfyUI client against the emulator (a test double speaking ComfyUI's HTTP + websocket protocol)."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from gpu_worker.comfy import ComfyClient, describe_execution_error, find_video_output
from gpu_worker.errors import WorkerError
from gpu_worker.workflow import build_workflow, load_template

from .conftest import emulator_module, make_png
from .videocheck import check_mp4


@pytest.fixture
async def client(comfy, tmp_path):
    async with aiohttp.ClientSession() as session:
        c = ComfyClient(comfy.url, session, reconnect_attempts=3, reconnect_delay_s=0.05, history_poll_s=0.05)
        image = tmp_path / "in.png"
        image.write_bytes(make_png())
        c.image_name = await c.upload(image, "job-image.png")
        yield c


def i2v(client, **extra):
    params = {"image": client.image_name, "width": 128, "height": 96, "frames": 9, "fps": 8, "steps": 4,
              "split_step": 2, "seed": 3, **extra}
    return build_workflow(load_template("wan2.2-i2v"), params)


async def test_runs_a_prompt_with_progress_and_fetches_the_video(client, comfy, tmp_path):
    progress, nodes = [], []
    entry = await client.run(i2v(client), on_progress=lambda n, v, m: progress.append((n, v, m)),
                             on_node=nodes.append, timeout_s=30)
    assert progress == [("13", 1, 2), ("13", 2, 2), ("14", 1, 2), ("14", 2, 2)]
    assert nodes[0] == "1" and "17" in nodes
    ref = find_video_output(entry)
    assert ref["subfolder"] == "video" and ref["filename"].endswith(".mp4")
    out = await client.download(ref, tmp_path / "out.mp4")
    check_mp4(out, width=128, height=96, fps=8, frames=9, audio=False)
    assert comfy.prompts_seen[0]["8"]["class_type"] == "CLIPTextEncode"


async def test_upload_overwrites_the_same_name(client, comfy, tmp_path):
    other = tmp_path / "b.png"
    other.write_bytes(make_png(64, 64))
    assert await client.upload(other, "job-image.png") == "job-image.png"
    assert (comfy.input_dir / "job-image.png").read_bytes() == other.read_bytes()


async def test_node_errors_become_inference_failed(client, comfy):
    comfy.faults.reject_node = "7"
    with pytest.raises(WorkerError) as info:
        await client.run(i2v(client), timeout_s=10)
    assert info.value.code == "inference_failed"
    assert "node 7 (CLIPLoader): Value not in list" in info.value.message


async def test_unknown_node_type_is_reported(client):
    workflow = i2v(client)
    workflow["99"] = {"class_type": "VHS_VideoCombine", "inputs": {}}
    with pytest.raises(WorkerError, match="VHS_VideoCombine"):
        await client.run(workflow, timeout_s=10)


async def test_execution_error_mid_run(client, comfy):
    comfy.faults.error_at_step = 3
    with pytest.raises(WorkerError) as info:
        await client.run(i2v(client), timeout_s=10)
    assert info.value.code == "inference_failed"
    assert "node 14 (KSamplerAdvanced)" in info.value.message and "emulated OOM" in info.value.message


async def test_dropped_websocket_is_recovered(client, comfy):
    comfy.faults.drop_ws_at_step = 2
    comfy.faults.step_delay_s = 0.05
    entry = await client.run(i2v(client), timeout_s=30)
    assert find_video_output(entry)["filename"].endswith(".mp4")


async def test_timeout_interrupts_comfy(client, comfy):
    comfy.faults.step_delay_s = 1.0
    with pytest.raises(WorkerError) as info:
        await client.run(i2v(client), timeout_s=0.5)
    assert info.value.code == "timeout"
    assert comfy.interrupts == 1


async def test_cancel_interrupts_and_dequeues(client, comfy):
    comfy.faults.step_delay_s = 0.2
    task = asyncio.create_task(client.run(i2v(client), timeout_s=30))
    while not comfy.running:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert comfy.interrupts == 1
    for _ in range(100):
        if comfy.running is None:
            break
        await asyncio.sleep(0.02)
    (entry,) = comfy.history.values()
    assert entry["status"]["status_str"] == "error"
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_wait_ready_waits_for_a_slow_start():
    module = emulator_module()
    emulator = module.ComfyEmulator(faults=module.Faults(start_delay_s=0.4))
    port = _free_port()
    starting = asyncio.create_task(emulator.start(port=port))
    try:
        async with aiohttp.ClientSession() as session:
            stats = await ComfyClient(f"http://127.0.0.1:{port}", session).wait_ready(10, interval_s=0.05)
        assert stats["devices"][0]["name"].startswith("Emulated")
    finally:
        await starting
        await emulator.stop()


async def test_wait_ready_gives_up_at_the_deadline():
    async with aiohttp.ClientSession() as session:
        with pytest.raises(WorkerError) as info:
            await ComfyClient(f"http://127.0.0.1:{_free_port()}", session).wait_ready(0.3, interval_s=0.05)
    assert info.value.code == "timeout"


async def test_wait_ready_fails_fast_when_the_process_died():
    proc = await asyncio.create_subprocess_exec("true")
    await proc.wait()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(WorkerError, match="exited"):
            await ComfyClient(f"http://127.0.0.1:{_free_port()}", session).wait_ready(30, pid=proc.pid)


def test_find_video_output_reads_gifs_and_skips_temp():
    entry = {"outputs": {"3": {"images": [{"filename": "p.png", "type": "temp"}]},
                         "9": {"gifs": [{"filename": "v.mp4", "subfolder": "", "type": "output"}]}}}
    assert find_video_output(entry)["filename"] == "v.mp4"
    with pytest.raises(WorkerError):
        find_video_output({"outputs": {"3": {"images": [{"filename": "still.png", "type": "output"}]}}})


def test_an_execution_error_carries_no_path_of_the_worker():
    data = {"node_id": "11", "node_type": "LoadImage", "exception_type": "PIL.UnidentifiedImageError",
            "exception_message": "cannot identify image file '/comfyui/input/reelgate-j-image.png'"}
    error = WorkerError("inference_failed", describe_execution_error(data))
    assert error.message.startswith("inputs.image could not be read: ")
    assert "/comfyui" not in error.message and "reelgate-j-image.png" not in error.message
    assert error.message.endswith("PIL.UnidentifiedImageError: cannot identify image file")
