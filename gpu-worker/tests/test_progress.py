"""Sampling progress from ComfyUI v0.8.0's websocket messages (fixtures written from its code: tests/fixtures/): the
percent rises through both Wan experts' steps, and an s2v graph's sampling chunks count as one job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpu_worker.comfy_progress import SamplingProgress
from gpu_worker.runner import Progress, run_job

from .conftest import job_input

FIXTURES = Path(__file__).resolve().parent / "fixtures"
I2V = FIXTURES / "comfyui-0.8.0-wan2.2-i2v.json"
S2V_TWO_CHUNKS = FIXTURES / "comfyui-0.8.0-wan2.2-s2v-two-chunks.json"


def replay(fixture: Path) -> list[dict]:
    """What the runner reports for the fixture's `progress` events, through the same code run_job uses."""
    recorded = json.loads(fixture.read_text())
    sampling, updates = SamplingProgress(recorded["workflow"]), []
    report = Progress(updates.append, "comfy")
    for message in recorded["messages"]:
        if message["type"] == "progress":
            data = message["data"]
            counted = sampling.update(str(data["node"]), data["value"], data["max"])
            if counted:
                report("sampling", counted[0] / counted[1], f"step {counted[0]}/{counted[1]}")
    return updates


@pytest.mark.parametrize("fixture,samplers,steps", [(I2V, ["13", "14"], 4), (S2V_TWO_CHUNKS, ["14", "19"], 8)])
def test_every_sampler_step_moves_one_percent_for_the_whole_job(fixture, samplers, steps):
    recorded = json.loads(fixture.read_text())
    events = [m["data"] for m in recorded["messages"] if m["type"] == "progress"]
    assert sorted({e["node"] for e in events}) == samplers  # each expert or chunk counts its own steps from 1
    assert all(e["value"] <= e["max"] < steps for e in events)
    updates = replay(fixture)
    assert [u["message"] for u in updates] == [f"step {k}/{steps}" for k in range(1, steps + 1)]
    percents = [u["percent"] for u in updates]
    assert percents == sorted(set(percents))  # strictly rising: no stall between experts or chunks
    assert percents[-1] == 85  # the end of the sampling span, reached once, at the very last step


def test_progress_of_other_nodes_is_not_sampling():
    sampling = SamplingProgress(json.loads(I2V.read_text())["workflow"])
    assert sampling.update("15", 3, 8) is None  # a tiled VAE decode reports progress too
    assert sampling.update("13", 1, 2) == (1, 4)


async def test_a_job_follows_real_comfyui_messages_end_to_end(file_host, wan_settings, comfy):
    """The emulator (a test double) sends the i2v fixture's messages over its websocket to the worker's client."""
    comfy.faults.replay = str(I2V)
    updates = []
    params = {"width": 128, "height": 128, "frames": 9, "fps": 16, "steps": 4, "seed": 2}
    result = await run_job("job-replay", job_input(file_host, "wan2.2-i2v", params=params), updates.append,
                           settings=wan_settings)
    assert "video" in result, result
    sampling = [u for u in updates if u["stage"] == "sampling"]
    assert [u["message"] for u in sampling] == ["step 1/4", "step 2/4", "step 3/4", "step 4/4"]
    percents = [u["percent"] for u in updates]
    assert percents == sorted(percents) and percents[-1] == 100
