"""Pod mode: an aiohttp server with RunPod's queue API, so the Worker, the `runpod` SDK or any other RunPod client
drives a rented pod exactly like a RunPod endpoint. Jobs run through runner.run_job.

Routes follow RunPod's layout, `/v2/{endpoint_id}/run` and so on (https://docs.runpod.io/serverless/endpoints/
operation-reference), with any endpoint id or the one POD_ENDPOINT_ID names; the same routes at the root (`/run`)
serve the Worker's `pod` backend as before.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import signal
import time
import uuid
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import aiohttp
from aiohttp import web

from .config import SETTINGS, Settings
from .errors import error_body, error_text, is_error
from .log import forget_job_lines, job_lines, log_event, strip_query
from .comfy import ComfyClient
from .models import inventory
from .runner import run_job

# How long the node classes read from ComfyUI's /object_info serve the health answer: it is a few MB to build.
NODE_CLASSES_TTL_S = 300.0

RunFn = Callable[..., Awaitable[dict]]  # run_job's signature
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")
RUNSYNC_DEFAULT_WAIT_MS = 90_000
RUNSYNC_MAX_WAIT_MS = 300_000
WEBHOOK_ATTEMPTS = 3  # one try and 2 retries, like RunPod


@dataclass
class Job:
    id: str
    input: dict
    webhook: str | None
    execution_timeout_s: float | None = None
    created: float = field(default_factory=time.monotonic)
    status: str = "IN_QUEUE"
    started: float | None = None
    finished: float | None = None
    output: dict | None = None
    error: dict | None = None
    task: asyncio.Task | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    # Stream chunks (`/stream`): each progress update once, then the output; `streamed` counts those already read.
    chunks: list[dict] = field(default_factory=list)
    streamed: int = 0
    # What the job's history should keep beyond its status, e.g. how a cancel stopped ComfyUI.
    history: list[dict] = field(default_factory=list)

    def view(self) -> dict:
        body: dict = {"id": self.id, "status": self.status}
        if self.started is not None:
            body["delayTime"] = int((self.started - self.created) * 1000)
        if self.finished is not None and self.started is not None:
            body["executionTime"] = int((self.finished - self.started) * 1000)
        if self.output is not None:
            body["output"] = self.output
        if self.error is not None:
            body["error"] = error_text(self.error)  # RunPod's form: a string
        if self.history:
            body["history"] = self.history
        lines = job_lines(self.id)
        if lines:
            body["logs"] = lines
        return body

    def take_stream(self) -> dict:
        """RunPod's `/stream/{id}`: the chunks not read before, so a client polling it sees each once."""
        fresh = self.chunks[self.streamed:]
        self.streamed = len(self.chunks)
        return {"id": self.id, "status": self.status, "stream": [{"output": chunk} for chunk in fresh]}


class JobQueue:
    def __init__(self, settings: Settings, run_fn: RunFn):
        self.settings = settings
        self.run_fn = run_fn
        self.jobs: dict[str, Job] = {}
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.running = 0
        self.counts = {"completed": 0, "failed": 0, "retried": 0}
        self.workers: list[asyncio.Task] = []
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        self.workers = [asyncio.create_task(self._worker()) for _ in range(self.settings.pod_concurrency)]
        self.workers.append(asyncio.create_task(self._sweeper()))

    async def stop(self) -> None:
        for job in self.jobs.values():
            if job.task and not job.task.done():
                job.task.cancel()
        for task in self.workers:
            task.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)
        if self.http:
            await self.http.close()

    def queued(self) -> int:
        return sum(1 for job in self.jobs.values() if job.status == "IN_QUEUE")

    def submit(self, body: dict, prefix: str = "") -> Job | None:
        """None when the queue is full."""
        if self.queued() >= self.settings.pod_queue_limit + max(0, self.settings.pod_concurrency - self.running):
            return None
        timeout_ms = (body.get("policy") or {}).get("executionTimeout")
        timeout_s = timeout_ms / 1000 if isinstance(timeout_ms, (int, float)) and timeout_ms > 0 else None
        job = Job(id=f"{prefix}{uuid.uuid4()}", input=body["input"], webhook=body.get("webhook"),
                  execution_timeout_s=timeout_s)
        self.jobs[job.id] = job
        self.queue.put_nowait(job)
        return job

    def get(self, job_id: str) -> Job | None:
        self._expire()
        return self.jobs.get(job_id)

    def cancel(self, job: Job) -> None:
        """CANCELLED at once, as RunPod answers; a running job's cleanup (stopping ComfyUI within its bound, see
        ComfyClient.stop) goes on in the background and holds the job's slot until the GPU is free."""
        if job.status == "IN_QUEUE":
            self._finish(job, "CANCELLED")  # the worker skips it when it comes out of the queue
        elif job.status == "IN_PROGRESS" and job.task:
            self._finish(job, "CANCELLED")
            job.task.cancel()

    def retry(self, job: Job) -> bool:
        """RunPod's `/retry/{id}`: a FAILED or TIMED_OUT job runs again under the same id, its error dropped."""
        if job.status not in ("FAILED", "TIMED_OUT"):
            return False
        job.status, job.output, job.error, job.started, job.finished = "IN_QUEUE", None, None, None, None
        job.chunks, job.streamed, job.done = [], 0, asyncio.Event()
        self.counts["retried"] += 1
        self.queue.put_nowait(job)
        return True

    def purge(self) -> int:
        """RunPod's `/purge-queue`: every queued job is dropped (CANCELLED, so a client polling it sees an end)."""
        queued = [job for job in self.jobs.values() if job.status == "IN_QUEUE"]
        for job in queued:
            self._finish(job, "CANCELLED")
        return len(queued)

    async def _worker(self) -> None:
        while True:
            job = await self.queue.get()
            if job.status != "IN_QUEUE":
                continue
            job.status, job.started = "IN_PROGRESS", time.monotonic()
            self.running += 1

            def on_progress(progress: dict, job=job) -> None:
                if job.status == "IN_PROGRESS":
                    job.output = {"progress": progress}
                    job.chunks.append({"progress": progress})

            run = self.run_fn(job.id, job.input, on_progress, settings=self._settings_for(job),
                              on_event=job.history.append)
            job.task = asyncio.create_task(run)
            try:
                result = await asyncio.shield(job.task)
            except asyncio.CancelledError:
                if not job.task.cancelled():  # the server is stopping, not this job
                    raise
                if job.status == "IN_PROGRESS":
                    self._finish(job, "CANCELLED")
            except Exception as exc:  # run_job returns errors; this is a bug, keep serving
                self._finish(job, "FAILED", error=error_body("internal", repr(exc))["error"])
            else:
                if job.status != "IN_PROGRESS":
                    pass  # canceled meanwhile: the cancel's answer stands
                elif is_error(result):
                    self._finish(job, "FAILED", error=result["error"])
                else:
                    self._finish(job, "COMPLETED", output=result)
                    job.chunks.append(result)
            finally:
                self.running -= 1

    def _settings_for(self, job: Job) -> Settings:
        """RunPod's `policy.executionTimeout` (ms) can shorten this job's timeout, never lengthen it."""
        if job.execution_timeout_s is None:
            return self.settings
        return dataclasses.replace(self.settings,
                                   job_timeout_s=min(self.settings.job_timeout_s, job.execution_timeout_s))

    def _finish(self, job: Job, status: str, output: dict | None = None, error: dict | None = None) -> None:
        job.status, job.finished, job.output, job.error = status, time.monotonic(), output, error
        if status == "COMPLETED":
            self.counts["completed"] += 1
        elif status == "FAILED":
            self.counts["failed"] += 1
        job.done.set()
        log_event("job_finished", job_id=job.id, status=status, code=(error or {}).get("code"))
        if job.webhook and self.http:
            asyncio.create_task(self._post_webhook(job))

    async def _post_webhook(self, job: Job) -> None:
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            try:
                async with self.http.post(job.webhook, json=job.view()) as resp:
                    if resp.status < 300:
                        return
                    reason = f"HTTP {resp.status}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                reason = str(exc) or type(exc).__name__
            log_event("webhook_failed", job_id=job.id, url=strip_query(job.webhook), attempt=attempt, reason=reason)
            if attempt < WEBHOOK_ATTEMPTS:
                await asyncio.sleep(min(10.0, self.settings.http_backoff_s * 4 * attempt))

    def _expire(self) -> None:
        ttl = self.settings.pod_result_ttl_s
        now = time.monotonic()
        for job_id in [j.id for j in self.jobs.values() if j.finished is not None and now - j.finished > ttl]:
            del self.jobs[job_id]
            forget_job_lines(job_id)

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, min(60.0, self.settings.pod_result_ttl_s / 2)))
            self._expire()


QUEUE_KEY = web.AppKey("queue", JobQueue)


def _json(body: dict, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def create_app(settings: Settings = SETTINGS, run_fn: RunFn = run_job) -> web.Application:
    queue = JobQueue(settings, run_fn)
    token = settings.pod_api_token.encode()

    @web.middleware
    async def auth(request: web.Request, handler):
        """Bearer token (RunPod's docs also show the bare key in `Authorization`: both are taken), then the
        endpoint id of RunPod's layout when one is configured."""
        if token:
            given = request.headers.get("Authorization", "").encode()
            if not (hmac.compare_digest(given, b"Bearer " + token) or hmac.compare_digest(given, token)):
                return _json({"error": "unauthorized"}, 401, {"WWW-Authenticate": "Bearer"})
        endpoint = request.match_info.get("endpoint_id")
        if endpoint is not None and settings.pod_endpoint_id and endpoint != settings.pod_endpoint_id:
            return _json({"error": "endpoint not found"}, 404)
        return await handler(request)

    async def read_submission(request: web.Request):
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None, _json({"error": "body must be JSON"}, 400)
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return None, _json({"error": "body needs an `input` object"}, 400)
        webhook = body.get("webhook")
        if webhook is not None and (not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))):
            return None, _json({"error": "webhook must be an http(s) URL"}, 400)
        if body.get("policy") is not None and not isinstance(body["policy"], dict):
            return None, _json({"error": "policy must be an object"}, 400)
        return body, None

    def full() -> web.Response:
        return _json({"error": "queue full"}, 429, {"Retry-After": "5"})

    def not_found() -> web.Response:
        return _json({"error": "job not found"}, 404)

    async def run(request: web.Request) -> web.Response:
        body, bad = await read_submission(request)
        if bad:
            return bad
        job = queue.submit(body)
        return _json({"id": job.id, "status": "IN_QUEUE"}) if job else full()

    async def runsync(request: web.Request) -> web.Response:
        body, bad = await read_submission(request)
        if bad:
            return bad
        job = queue.submit(body, prefix="sync-")
        if job is None:
            return full()
        try:
            wait_ms = min(RUNSYNC_MAX_WAIT_MS, max(1000, int(request.query.get("wait", RUNSYNC_DEFAULT_WAIT_MS))))
        except ValueError:
            wait_ms = RUNSYNC_DEFAULT_WAIT_MS
        try:
            await asyncio.wait_for(job.done.wait(), wait_ms / 1000)
        except asyncio.TimeoutError:
            pass  # like RunPod: answer the current state; the client keeps polling /status
        return _json(job.view())

    async def status(request: web.Request) -> web.Response:
        job = queue.get(request.match_info["id"])
        return _json(job.view()) if job else not_found()

    async def stream(request: web.Request) -> web.Response:
        job = queue.get(request.match_info["id"])
        return _json(job.take_stream()) if job else not_found()

    async def cancel(request: web.Request) -> web.Response:
        job = queue.get(request.match_info["id"])
        if job is None:
            return not_found()
        queue.cancel(job)
        return _json({"id": job.id, "status": job.status})

    async def retry(request: web.Request) -> web.Response:
        job = queue.get(request.match_info["id"])
        if job is None:
            return not_found()
        if not queue.retry(job):
            return _json({"error": f"job is {job.status}: only FAILED or TIMED_OUT jobs can be retried"}, 400)
        return _json({"id": job.id, "status": job.status})

    async def purge_queue(request: web.Request) -> web.Response:
        return _json({"removed": queue.purge(), "status": "completed"})

    node_classes: dict = {"at": 0.0, "classes": None}

    async def installed_node_classes() -> list[str] | None:
        """ComfyUI's node classes, re-read every NODE_CLASSES_TTL_S; None while ComfyUI does not answer."""
        if not settings.comfy_url:
            return None
        if node_classes["classes"] is None or time.monotonic() - node_classes["at"] > NODE_CLASSES_TTL_S:
            try:
                async with aiohttp.ClientSession() as session:
                    info = await ComfyClient(settings.comfy_url, session).object_info()
                node_classes.update(at=time.monotonic(), classes=sorted(info))
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                return None
        return node_classes["classes"]

    async def health(request: web.Request) -> web.Response:
        queue.get("")  # expire old results first
        # What this machine can run: the Worker routes a model here only when its files and node classes are.
        stock = {"builtin": [m for m in settings.enabled_models if m == "preview"],
                 "files": await asyncio.to_thread(inventory, settings.models_root)}
        classes = await installed_node_classes()
        if classes is not None:
            stock["node_classes"] = classes
        return _json({
            "jobs": {**queue.counts, "inProgress": queue.running, "inQueue": queue.queued()},
            "workers": {"idle": max(0, settings.pod_concurrency - queue.running), "running": queue.running},
            "inventory": stock,
        })

    async def on_startup(app: web.Application) -> None:
        await queue.start()

    async def on_cleanup(app: web.Application) -> None:
        await queue.stop()

    app = web.Application(middlewares=[auth], client_max_size=10 * 1024 * 1024)
    app[QUEUE_KEY] = queue
    for prefix in ("", "/v2/{endpoint_id}"):
        app.router.add_post(f"{prefix}/run", run)
        app.router.add_post(f"{prefix}/runsync", runsync)
        for method in ("GET", "POST"):  # RunPod documents GET; its SDK's local server takes POST
            app.router.add_route(method, f"{prefix}/status/{{id}}", status)
            app.router.add_route(method, f"{prefix}/stream/{{id}}", stream)
        app.router.add_post(f"{prefix}/cancel/{{id}}", cancel)
        app.router.add_post(f"{prefix}/retry/{{id}}", retry)
        app.router.add_post(f"{prefix}/purge-queue", purge_queue)
        app.router.add_get(f"{prefix}/health", health)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


async def _serve(settings: Settings) -> None:
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.pod_host, settings.pod_port)
    await site.start()
    host = "127.0.0.1" if settings.pod_host in ("0.0.0.0", "") else settings.pod_host
    log_event("listening", url=f"http://{host}:{settings.pod_port}", auth=bool(settings.pod_api_token))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log_event("stopping")
    await runner.cleanup()


def serve(settings: Settings = SETTINGS) -> None:
    asyncio.run(_serve(settings))
