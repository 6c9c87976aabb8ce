"""The RunPod Serverless handler: a thin wrapper over runner.run_job.

`python -m gpu_worker.handler --test_input '{"input": {...}}'` runs one job locally (the SDK's local mode).
"""

from __future__ import annotations

import os
import time

import runpod  # gpu_worker/__init__.py has set its log level to INFO: it logs inputs (signed URLs) at DEBUG

from .errors import to_wire
from .log import job_lines, log_event
from .runner import run_job

PROGRESS_INTERVAL_S = 1.0  # each update is an HTTP POST from a new thread in the SDK: keep them sparse


def _progress_sender(job: dict):
    on_platform = bool(os.environ.get("RUNPOD_WEBHOOK_GET_JOB"))  # unset in the SDK's local test mode
    state = {"stage": None, "at": 0.0}

    def send(progress: dict) -> None:
        now = time.monotonic()
        if progress["stage"] == state["stage"] and now - state["at"] < PROGRESS_INTERVAL_S:
            return
        state.update(stage=progress["stage"], at=now)
        if on_platform:
            # The job's log lines ride along: RunPod's /status shows the last update as `output`.
            lines = job_lines(str(job.get("id")))
            runpod.serverless.progress_update(job, {"progress": progress, **({"logs": lines} if lines else {})})
        else:
            log_event("progress", job_id=job.get("id"), **progress)

    return send


async def handler(job: dict) -> dict:
    """Returns the protocol output, or `{"error": "<JSON text of {code, message}>"}`, which the SDK turns into
    FAILED with that string as the job's `error`."""
    return to_wire(await run_job(str(job.get("id", "local")), job.get("input"), _progress_sender(job)))


def start_serverless() -> None:
    runpod.serverless.start({"handler": handler})


if __name__ == "__main__":
    from .main import main

    main()
