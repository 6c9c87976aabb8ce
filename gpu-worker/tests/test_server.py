"""Pod mode: RunPod's queue API served by aiohttp (auth, queue, cancel, TTL, health, runsync, webhook)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gpu_worker.server import create_app

from .conftest import job_input, write_safetensors

TOKEN = "pod-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class FakeRun:
    """Stands in for run_job: `block` waits for release, `fail` returns an error."""

    def __init__(self):
        self.release = asyncio.Event()
        self.started: list[str] = []
        self.cancelled: list[str] = []

    async def __call__(self, job_id, raw, progress_cb, cancel_event=None, *, settings, on_event=None):
        self.started.append(job_id)
        progress_cb({"stage": "sampling", "percent": 42, "message": "step 3/4"})
        try:
            if raw.get("block"):
                await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.append(job_id)
            raise
        if raw.get("fail"):
            return {"error": {"code": "inference_failed", "message": "boom"}}
        return {"video": {"size": 1, "echo": raw.get("n"), "timeout": settings.job_timeout_s}}


@pytest.fixture
def fake_run():
    return FakeRun()


@pytest.fixture
async def make_client(settings):
    clients = []

    async def make(run_fn=None, **overrides) -> TestClient:
        s = dataclasses.replace(settings, **{"pod_api_token": TOKEN, **overrides})
        app = create_app(s, run_fn) if run_fn else create_app(s)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def wait_status(client, job_id, wanted, timeout=20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        resp = await client.get(f"/status/{job_id}", headers=AUTH)
        body = await resp.json()
        if body.get("status") in wanted or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(0.02)


async def wait_forgotten(client, job_id, timeout=5.0):
    """Polls `/status` until the server forgets the job (404) or the timeout passes; returns the last status code."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        resp = await client.get(f"/status/{job_id}", headers=AUTH)
        if resp.status == 404 or asyncio.get_running_loop().time() > deadline:
            return resp.status
        await asyncio.sleep(0.02)


async def test_auth_required_on_every_route(make_client, fake_run):
    client = await make_client(fake_run)
    for method, path in (("POST", "/run"), ("GET", "/status/x"), ("GET", "/health"), ("POST", "/cancel/x")):
        assert (await client.request(method, path)).status == 401
        assert (await client.request(method, path, headers={"Authorization": "Bearer nope"})).status == 401
    assert (await client.get("/health", headers=AUTH)).status == 200


async def test_no_token_means_open(make_client, fake_run):
    client = await make_client(fake_run, pod_api_token="")
    resp = await client.get("/health")
    assert resp.status == 200


async def test_real_preview_job_run_then_status(make_client, file_host):
    client = await make_client()
    resp = await client.post("/run", json={"input": job_input(file_host)}, headers=AUTH)
    submitted = await resp.json()
    assert submitted["status"] == "IN_QUEUE" and submitted["id"]
    body = await wait_status(client, submitted["id"], ("COMPLETED", "FAILED"))
    assert body["status"] == "COMPLETED", body
    assert body["output"]["video"]["size"] == len(file_host.puts["out.mp4"]["body"])
    assert isinstance(body["delayTime"], int) and isinstance(body["executionTime"], int)


async def test_progress_failure_and_unknown_job(make_client, fake_run):
    client = await make_client(fake_run)
    job = await (await client.post("/run", json={"input": {"block": True}}, headers=AUTH)).json()
    body = await wait_status(client, job["id"], ("IN_PROGRESS",))
    assert body["output"] == {"progress": {"stage": "sampling", "percent": 42, "message": "step 3/4"}}
    fake_run.release.set()
    await wait_status(client, job["id"], ("COMPLETED",))
    failed = await (await client.post("/run", json={"input": {"fail": True}}, headers=AUTH)).json()
    body = await wait_status(client, failed["id"], ("FAILED",))
    # RunPod declares `error` a string: the code and message travel as JSON text.
    assert json.loads(body["error"]) == {"code": "inference_failed", "message": "boom"} and "output" not in body
    missing = await client.get("/status/nope", headers=AUTH)
    assert missing.status == 404 and await missing.json() == {"error": "job not found"}
    assert (await client.post("/run", json={"nope": 1}, headers=AUTH)).status == 400


async def test_queue_limit_cancel_queued_and_running(make_client, fake_run):
    client = await make_client(fake_run, pod_concurrency=1, pod_queue_limit=1)
    running = await (await client.post("/run", json={"input": {"block": True}}, headers=AUTH)).json()
    await wait_status(client, running["id"], ("IN_PROGRESS",))
    queued = await (await client.post("/run", json={"input": {"n": 2}}, headers=AUTH)).json()
    full = await client.post("/run", json={"input": {"n": 3}}, headers=AUTH)
    assert full.status == 429 and full.headers["Retry-After"]

    health = await (await client.get("/health", headers=AUTH)).json()
    assert health["jobs"]["inQueue"] == 1 and health["jobs"]["inProgress"] == 1
    assert health["workers"] == {"idle": 0, "running": 1}

    cancel = await (await client.post(f"/cancel/{queued['id']}", headers=AUTH)).json()
    assert cancel == {"id": queued["id"], "status": "CANCELLED"}
    cancel = await (await client.post(f"/cancel/{running['id']}", headers=AUTH)).json()
    assert cancel == {"id": running["id"], "status": "CANCELLED"}
    for _ in range(100):
        if fake_run.cancelled:
            break
        await asyncio.sleep(0.01)
    assert fake_run.cancelled == [running["id"]]
    after = await client.post("/run", json={"input": {"n": 4}}, headers=AUTH)
    body = await wait_status(client, (await after.json())["id"], ("COMPLETED",))
    assert body["output"]["video"]["echo"] == 4
    assert queued["id"] not in fake_run.started  # cancelled while queued: never ran
    health = await (await client.get("/health", headers=AUTH)).json()
    assert health["jobs"]["completed"] == 1 and health["jobs"]["inQueue"] == 0


async def test_results_expire_after_ttl(make_client, fake_run):
    client = await make_client(fake_run, pod_result_ttl_s=0.2)
    job = await (await client.post("/run", json={"input": {}}, headers=AUTH)).json()
    assert (await wait_status(client, job["id"], ("COMPLETED",)))["status"] == "COMPLETED"
    assert await wait_forgotten(client, job["id"]) == 404
    assert (await client.post(f"/status/{job['id']}", headers=AUTH)).status == 404


async def test_runsync_and_webhook_with_retry(make_client, fake_run, file_host):
    client = await make_client(fake_run)
    file_host.fail["/webhook"] = [500]
    resp = await client.post("/runsync", json={"input": {"n": 7}, "webhook": f"{file_host.base}/webhook"},
                             headers=AUTH)
    body = await resp.json()
    assert body["status"] == "COMPLETED" and body["output"]["video"]["echo"] == 7 and body["id"].startswith("sync-")
    for _ in range(100):
        if file_host.webhooks:
            break
        await asyncio.sleep(0.02)
    assert len(file_host.webhooks) == 1
    assert file_host.webhooks[0]["id"] == body["id"] and file_host.webhooks[0]["status"] == "COMPLETED"
    assert file_host.requests.count(("POST", "/webhook")) == 2


async def test_policy_execution_timeout_shortens_the_job_timeout(make_client, fake_run):
    client = await make_client(fake_run, job_timeout_s=60)
    body = {"input": {}, "policy": {"executionTimeout": 5000}}
    result = await (await client.post("/runsync", json=body, headers=AUTH)).json()
    assert result["output"]["video"]["timeout"] == 5
    result = await (await client.post("/runsync", json={"input": {}, "policy": {"executionTimeout": 10**9}},
                                      headers=AUTH)).json()
    assert result["output"]["video"]["timeout"] == 60


async def test_health_advertises_the_model_files_and_node_classes_it_has(make_client, fake_run, settings, comfy):
    root = Path(settings.models_root)
    write_safetensors(root / "vae" / "wan_2.1_vae.safetensors")
    write_safetensors(root / "loras" / "reelgate-cache" / "abc.safetensors")  # a job's LoRA: not a model file
    (root / "unet").mkdir()
    (root / "unet" / "Wan2.2-I2V-A14B-HighNoise-Q4_K_M.gguf").write_bytes(b"GGUF")
    client = await make_client(fake_run, comfy_url=comfy.url, enabled_models=("preview", "wan2.2-i2v"))
    stock = (await (await client.get("/health", headers=AUTH)).json())["inventory"]
    assert stock["builtin"] == ["preview"]
    assert stock["files"] == ["unet/Wan2.2-I2V-A14B-HighNoise-Q4_K_M.gguf", "vae/wan_2.1_vae.safetensors"]
    assert "WanImageToVideo" in stock["node_classes"] and "UnetLoaderGGUF" not in stock["node_classes"]
    # Without a ComfyUI answering, the node classes are left out rather than guessed.
    down = await make_client(fake_run, comfy_url="http://127.0.0.1:9")
    assert "node_classes" not in (await (await down.get("/health", headers=AUTH)).json())["inventory"]


async def test_a_registered_model_runs_through_the_pod_api(make_client, file_host, comfy):
    """A weight-free ComfyUI workflow the Worker filled from a manifest registered through its admin API, sent to
    a pod that enables only the preview: it runs, as the pod's RunPod-style API reports."""
    from .test_carried_workflow import still_job

    client = await make_client(comfy_url=comfy.url, enabled_models=("preview",))
    resp = await client.post("/run", json={"input": still_job(file_host)}, headers=AUTH)
    submitted = await resp.json()
    body = await wait_status(client, submitted["id"], ("COMPLETED", "FAILED"))
    assert body["status"] == "COMPLETED", body
    video = body["output"]["video"]
    assert (video["width"], video["height"], video["fps"]) == (160, 128, 8)
    assert video["size"] == len(file_host.puts["out.mp4"]["body"])
    assert comfy.prompts_seen[0]["3"]["inputs"]["amount"] == 9


async def test_status_carries_the_jobs_own_log_lines(make_client, file_host):
    client = await make_client()
    job = await (await client.post("/run", json={"input": job_input(file_host)}, headers=AUTH)).json()
    body = await wait_status(client, job["id"], ("COMPLETED", "FAILED"))
    lines = [json.loads(line) for line in body["logs"]]
    events = [line["event"] for line in lines]
    assert "job_started" in events and "job_completed" in events, events
    assert all(line["job_id"] == job["id"] for line in lines)
    # No signed URL's query string (its signature) leaves the worker in a line.
    assert "?" not in json.dumps(body["logs"])
