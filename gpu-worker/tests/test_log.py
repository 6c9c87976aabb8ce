"""The job log lines kept for the Worker: per job, newest kept, each one JSON object within its length."""

from __future__ import annotations

import json

from gpu_worker import log


def test_lines_are_kept_per_job_capped_and_cleaned(capsys):
    log.forget_job_lines("job-a")
    log.forget_job_lines("job-b")
    signed = "https://r2.example/in.png?X-Amz-Signature=abc"
    log.log_event("input_failed", job_id="job-a", url=signed, path="/tmp/w/x/in.png")
    log.log_event("other", job_id="job-b")
    log.log_event("listening", url="http://0.0.0.0:8000")
    [line] = [json.loads(x) for x in log.job_lines("job-a")]
    assert line["url"] == "https://r2.example/in.png" and line["path"] == "in.png"
    assert len(log.job_lines("job-b")) == 1
    for i in range(log.JOB_LINES_KEPT + 5):
        log.log_event("step", job_id="job-a", n=i, message="x" * 2000)
    lines = log.job_lines("job-a")
    assert len(lines) == log.JOB_LINES_KEPT
    assert all(len(x) <= log.JOB_LINE_CHARS for x in lines)
    assert json.loads(lines[-1])["n"] == log.JOB_LINES_KEPT + 4
    log.forget_job_lines("job-a")
    assert log.job_lines("job-a") == []
    capsys.readouterr()
