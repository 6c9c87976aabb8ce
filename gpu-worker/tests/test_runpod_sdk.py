"""The pod server driven by the official `runpod` SDK (PyPI, pinned in requirements.txt) as any RunPod client would:
`runpod.Endpoint` with `endpoint_url_base` pointed at the server's `/v2`, real preview jobs, real signed URLs served
by the test file host, the video checked by size and sha256. The SDK is synchronous (requests), so its calls run in
threads while the server runs in the test's event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json

import pytest
import requests
import runpod
from aiohttp.test_utils import TestServer

from gpu_worker.server import create_app

from .conftest import job_input

TOKEN = "pod-sdk-secret"
ENDPOINT = "abc123xyz"
SLOW = {"width": 640, "height": 640, "fps": 30, "frames": 1800, "seed": 1}  # long enough to cancel mid-run


@pytest.fixture
async def pod(settings, monkeypatch):
    """The pod server on a real port; yields a function making an SDK Endpoint (an API key of choice)."""
    s = dataclasses.replace(settings, pod_api_token=TOKEN, pod_endpoint_id=ENDPOINT, pod_concurrency=1)
    server = TestServer(create_app(s), host="127.0.0.1")
    await server.start_server()
    monkeypatch.setattr(runpod, "endpoint_url_base", f"http://127.0.0.1:{server.port}/v2")

    def endpoint(api_key: str = TOKEN, endpoint_id: str = ENDPOINT) -> runpod.Endpoint:
        return runpod.Endpoint(endpoint_id, api_key=api_key)

    yield endpoint
    await server.close()


def call(fn, *args, **kwargs):
    return asyncio.to_thread(fn, *args, **kwargs)


def video_matches(output: dict, file_host) -> None:
    body = file_host.puts["out.mp4"]["body"]
    assert output["video"]["size"] == len(body) > 0
    assert output["video"]["sha256"] == hashlib.sha256(body).hexdigest()


async def test_run_status_and_output(pod, file_host):
    job = await call(pod().run, {"input": job_input(file_host, audio=True)})
    assert await call(job.status) in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
    output = await call(job.output, timeout=60)
    video_matches(output, file_host)
    assert await call(job.status) == "COMPLETED"


async def test_run_sync(pod, file_host):
    output = await call(pod().run_sync, {"input": job_input(file_host)}, timeout=60)
    video_matches(output, file_host)


async def test_stream_yields_each_progress_update_then_the_output(pod, file_host):
    job = await call(pod().run, {"input": job_input(file_host)})
    chunks = await call(lambda: list(job.stream()))
    progress = [c["progress"] for c in chunks if "progress" in c]
    assert progress and [p["percent"] for p in progress] == sorted(p["percent"] for p in progress)
    assert {p["stage"] for p in progress} >= {"downloading", "encoding"}
    video_matches(chunks[-1], file_host)
    assert len([c for c in chunks if "video" in c]) == 1  # each chunk is read once


async def test_cancel_a_running_job(pod, file_host):
    endpoint = pod()
    job = await call(endpoint.run, {"input": job_input(file_host, params=SLOW)})
    while (await call(job.rp_client.get, f"{ENDPOINT}/status/{job.job_id}"))["status"] != "IN_PROGRESS":
        await asyncio.sleep(0.05)
    assert await call(job.cancel) == {"id": job.job_id, "status": "CANCELLED"}
    assert await call(job.status) == "CANCELLED"
    assert "out.mp4" not in file_host.puts


async def test_purge_queue_drops_only_queued_jobs(pod, file_host):
    endpoint = pod()
    running = await call(endpoint.run, {"input": job_input(file_host, params=SLOW)})
    queued = [await call(endpoint.run, {"input": job_input(file_host)}) for _ in range(2)]
    health = await call(endpoint.health)
    assert health["jobs"]["inQueue"] == 2 and set(health["workers"]) >= {"idle", "running"}
    assert await call(endpoint.purge_queue) == {"removed": 2, "status": "completed"}
    assert [await call(job.status) for job in queued] == ["CANCELLED", "CANCELLED"]
    assert (await call(endpoint.health))["jobs"]["inQueue"] == 0
    await call(running.cancel)


async def test_a_failure_reads_as_runpod_declares_it(pod):
    endpoint = pod()
    job = await call(endpoint.run, {"input": {"model": "nope"}})
    assert await call(job.output, timeout=30) is None
    body = await call(job.rp_client.get, f"{ENDPOINT}/status/{job.job_id}")
    assert body["status"] == "FAILED" and isinstance(body["error"], str)
    assert json.loads(body["error"])["code"] == "invalid_input"


async def test_retry_runs_a_failed_job_again_under_its_id(pod, file_host):
    endpoint = pod()
    file_host.fail["/files/image.png"] = [403]  # the first attempt's signed GET is refused
    job = await call(endpoint.run, {"input": job_input(file_host)})
    assert await call(job.output, timeout=30) is None
    again = await call(job.rp_client.post, f"{ENDPOINT}/retry/{job.job_id}", None)
    assert again == {"id": job.job_id, "status": "IN_QUEUE"}
    retried = runpod.endpoint.runner.Job(ENDPOINT, job.job_id, job.rp_client)
    video_matches(await call(retried.output, timeout=60), file_host)
    assert (await call(endpoint.health))["jobs"]["retried"] == 1
    with pytest.raises(requests.HTTPError) as refused:  # only FAILED or TIMED_OUT jobs can be retried
        await call(job.rp_client.post, f"{ENDPOINT}/retry/{job.job_id}", None)
    assert refused.value.response.status_code == 400


async def test_refusals(pod, file_host):
    with pytest.raises(RuntimeError, match="401 Unauthorized"):
        await call(pod(api_key="wrong").run, {"input": job_input(file_host)})
    with pytest.raises(requests.HTTPError) as unknown_endpoint:
        await call(pod(endpoint_id="someone-else").health)
    assert unknown_endpoint.value.response.status_code == 404
    endpoint = pod()
    with pytest.raises(requests.HTTPError) as unknown_job:
        await call(endpoint.rp_client.get, f"{ENDPOINT}/status/no-such-job")
    assert unknown_job.value.response.status_code == 404
    assert unknown_job.value.response.json() == {"error": "job not found"}
