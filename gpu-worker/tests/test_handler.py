"""The handler's progress forwarding on the platform (RUNPOD_WEBHOOK_GET_JOB set), without the platform."""

from __future__ import annotations

import json

import runpod

from gpu_worker import handler as handler_module


def test_progress_goes_to_progress_update_throttled(monkeypatch):
    sent = []
    monkeypatch.setenv("RUNPOD_WEBHOOK_GET_JOB", "https://api.runpod.ai/v2/x/job-take/$ID")
    monkeypatch.setattr(runpod.serverless, "progress_update", lambda job, payload: sent.append((job["id"], payload)))
    send = handler_module._progress_sender({"id": "j1", "input": {}})
    send({"stage": "downloading", "percent": 0})
    send({"stage": "downloading", "percent": 5})  # same stage within a second: dropped
    send({"stage": "sampling", "percent": 42, "message": "step 3/4"})
    assert sent == [("j1", {"progress": {"stage": "downloading", "percent": 0}}),
                    ("j1", {"progress": {"stage": "sampling", "percent": 42, "message": "step 3/4"}})]


async def test_handler_returns_the_error_shape(monkeypatch):
    monkeypatch.delenv("RUNPOD_WEBHOOK_GET_JOB", raising=False)
    result = await handler_module.handler({"id": "j2", "input": {"model": "nope"}})
    assert isinstance(result["error"], str)  # a dict in `error` would come back from RunPod as COMPLETED
    assert json.loads(result["error"])["code"] == "invalid_input"


def test_progress_updates_carry_the_jobs_log_lines(monkeypatch):
    sent = []
    monkeypatch.setenv("RUNPOD_WEBHOOK_GET_JOB", "https://api.runpod.ai/v2/x/job-take/$ID")
    monkeypatch.setattr(runpod.serverless, "progress_update", lambda job, payload: sent.append(payload))
    handler_module.log_event("job_started", job_id="j3", model="preview")
    handler_module._progress_sender({"id": "j3", "input": {}})({"stage": "sampling", "percent": 10})
    [payload] = sent
    assert [json.loads(line)["event"] for line in payload["logs"]] == ["job_started"]
