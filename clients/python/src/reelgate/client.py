"""The Reelgate API client, on the standard library alone (urllib): uploads, jobs, live updates over the event
stream (with a fallback to polling), downloads, and ``run()``, which does all of it in one call."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from email.utils import parsedate_to_datetime
from typing import IO, Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from .errors import JobFailedError, ReelgateConnectionError, ReelgateError
from .local_stack import ApiTarget, resolve_api_url, unreachable_message
from .model_check import check_input
from .sse import SseParser

TERMINAL_STATUSES = ("succeeded", "failed", "canceled")
# Status codes a later identical request may get past.
RETRYABLE_STATUSES = (429, 500, 502, 503, 504)
CHUNK = 1 << 20
# Files up to this size go in one request (POST /v1/uploads/inline, the server's own cap); larger ones by signed URLs.
INLINE_UPLOAD_MAX_BYTES = 8 * 1024 * 1024
# A broken event stream is resumed (Last-Event-ID) this many times before the client polls instead.
STREAM_RESUMES = 3

# mimetypes does not know every type the API accepts, and differs between platforms.
CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
}

Job = Dict[str, Any]
#: A file for ``run``: a path, an upload id (``upl_…``), an http(s) URL the API fetches, or ``(filename, bytes)``.
RunFile = Union[str, "os.PathLike[str]", Tuple[str, bytes]]
ProgressCallback = Callable[[Dict[str, Any]], None]


def build_request(
    base_url: str,
    api_key: str,
    method: str,
    path: str,
    body: Optional[Any] = None,
    headers: Optional[Mapping[str, str]] = None,
) -> urllib.request.Request:
    """The urllib request for an API call: bearer auth, JSON body. Pure, so it can be tested offline."""
    all_headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    return urllib.request.Request(base_url.rstrip("/") + path, data=data, headers=all_headers, method=method)


def retry_after_seconds(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """``Retry-After`` as delta-seconds or an HTTP date, in seconds from now; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def content_type_of(name: str) -> Optional[str]:
    return CONTENT_TYPES.get(os.path.splitext(name)[1].lower()) or mimetypes.guess_type(name)[0]


def _problem_of(err: urllib.error.HTTPError) -> Dict[str, Any]:
    raw = err.read().decode("utf-8", "replace")
    try:
        problem = json.loads(raw)
        if isinstance(problem, dict) and "detail" in problem:
            return problem
    except ValueError:
        pass
    return {"status": err.code, "code": "internal" if err.code >= 500 else "invalid_request", "detail": raw[:300] or err.reason}


def _refusal(issues: List[Dict[str, str]]) -> ReelgateError:
    """Issues found before sending, as the 400 problem the API would answer with."""
    return ReelgateError(
        400,
        {
            "type": "https://reelgate.dev/problems/invalid-request",
            "title": "Invalid request",
            "status": 400,
            "code": "invalid_request",
            "detail": "; ".join(f"{i['field']}: {i['message']}" for i in issues) + ".",
            "errors": [{"path": f"json.{i['field']}", "message": i["message"]} for i in issues],
        },
    )


class _FileSlice:
    """Bytes [start, start+size) of a file, read as they are sent (never whole), reporting each block."""

    def __init__(self, path: str, start: int, size: int, on_read: Callable[[int], None]):
        self._file: IO[bytes] = open(path, "rb")
        self._file.seek(start)
        self._left = size
        self._on_read = on_read

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        if n <= 0:
            self._file.close()
            return b""
        block = self._file.read(n)
        self._left -= len(block)
        self._on_read(len(block))
        return block


class FinishedJob(dict):  # type: ignore[type-arg]
    """A succeeded job (the API's JSON, as a dict) with its video one call away."""

    def __init__(self, job: Mapping[str, Any], client: "Client"):
        super().__init__(job)
        self._client = client

    def download(self, dest: str) -> int:
        """Streams the video to the file ``dest``; returns the byte count."""
        return self._client.download_video(self["id"], dest)


class Client:
    """A client for one API and key. Left out, ``url`` is REELGATE_URL, else the local stack ``npm start`` recorded
    (``.reelgate/local.json``), else http://127.0.0.1:8787; ``api_key`` is REELGATE_API_KEY."""

    def __init__(self, url: Optional[str] = None, api_key: Optional[str] = None, timeout: float = 60.0, max_retries: int = 4):
        self._target: ApiTarget = resolve_api_url(url)
        self.base_url = self._target.url
        key = api_key or os.environ.get("REELGATE_API_KEY")
        if not key:
            raise ValueError("No API key: pass api_key= or set REELGATE_API_KEY (`npm run keys -- create --name me` makes one).")
        self.api_key = key
        self.timeout = timeout
        self.max_retries = max_retries

    # --- transport -------------------------------------------------------------------------------------------

    def _open(self, make_request: Callable[[], urllib.request.Request], timeout: Optional[float] = None) -> Any:
        """Sends a request, retrying network errors, 5xx and 429 (honouring Retry-After) with backoff."""
        for attempt in range(self.max_retries + 1):
            request = make_request()
            try:
                return urllib.request.urlopen(request, timeout=timeout or self.timeout)
            except urllib.error.HTTPError as err:
                if err.code not in RETRYABLE_STATUSES or attempt == self.max_retries:
                    raise ReelgateError(err.code, _problem_of(err)) from None
                wait = retry_after_seconds(err.headers.get("Retry-After"))
                err.close()
            except (urllib.error.URLError, ConnectionError, socket.timeout) as err:
                if attempt == self.max_retries:
                    raise self._unreachable(request.full_url, err) from None
                wait = None
            time.sleep(min(30.0, wait if wait is not None else 0.5 * 2**attempt))
        raise AssertionError("unreachable")

    def _unreachable(self, url: str, err: Exception) -> ReelgateConnectionError:
        reason = getattr(err, "reason", err)
        why = getattr(reason, "strerror", None) or str(reason)
        if url.startswith(self.base_url):
            return ReelgateConnectionError(unreachable_message(self._target, why), self.base_url)
        # An upload URL: its origin only, the query is a credential.
        parts = urllib.parse.urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        return ReelgateConnectionError(f"Cannot reach the upload storage at {origin} ({why}).", origin)

    def request(self, method: str, path: str, body: Optional[Any] = None, headers: Optional[Mapping[str, str]] = None) -> Any:
        """One API call by method and path; returns the decoded JSON, raises ReelgateError with the problem."""
        with self._open(lambda: build_request(self.base_url, self.api_key, method, path, body, headers)) as res:
            return json.loads(res.read().decode("utf-8"))

    # --- uploads ---------------------------------------------------------------------------------------------

    def upload_file(
        self,
        path: Union[str, "os.PathLike[str]"],
        content_type: Optional[str] = None,
        filename: Optional[str] = None,
        on_progress: Optional[Callable[[int, int], None]] = None,
    ) -> Dict[str, Any]:
        """Uploads a file, read as it is sent, and returns the upload once the server verified it (``ready``)."""
        path = os.fspath(path)
        name = filename or os.path.basename(path)
        content_type = content_type or content_type_of(name)
        if not content_type:
            raise ValueError(f"{path}: unknown content type; pass content_type=")
        size = os.path.getsize(path)
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(CHUNK):
                digest.update(block)
        report = on_progress or (lambda sent, total: None)
        if 0 < size <= INLINE_UPLOAD_MAX_BYTES:
            inline = self._upload_inline(path, name, content_type, size, digest.hexdigest(), report)
            if inline is not None:
                return inline
        created = self.request(
            "POST",
            "/v1/uploads",
            {"filename": name, "content_type": content_type, "size": size, "sha256": digest.hexdigest()},
        )
        if created["status"] == "ready":
            # This account already stored these bytes (same SHA-256): nothing to send.
            report(size, size)
            return created
        sent = [0]

        def counted(n: int) -> None:
            sent[0] += n
            report(sent[0], size)

        multipart = created.get("multipart")
        if multipart and multipart.get("parts"):
            # Large files: part n holds bytes [(n-1)*part_size, n*part_size), each PUT to its own URL.
            for part in multipart["parts"]:
                start = (part["part_number"] - 1) * multipart["part_size"]
                self._put(part["url"], part.get("headers"), path, start, part["size"], sent, counted)
        else:
            report(0, size)
            self._put(created["upload"]["url"], created["upload"].get("headers"), path, 0, size, sent, counted)
        return self.request("POST", f"/v1/uploads/{created['id']}/complete")

    def upload_bytes(self, data: bytes, filename: str, content_type: Optional[str] = None) -> Dict[str, Any]:
        """Uploads bytes held in memory (a small image, say) under ``filename``."""
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, os.path.basename(filename))
            with open(path, "wb") as f:
                f.write(data)
            return self.upload_file(path, content_type=content_type, filename=filename)

    def _upload_inline(
        self, path: str, name: str, content_type: str, size: int, sha256: str, report: Callable[[int, int], None]
    ) -> Optional[Dict[str, Any]]:
        """A small file in one request (``POST /v1/uploads/inline``), answered ready. None when the server has no such
        route or takes less in one request (404, 405, 413): the caller then uses signed URLs."""
        query = urllib.parse.urlencode({"filename": name, "sha256": sha256})
        url = f"{self.base_url.rstrip('/')}/v1/uploads/inline?{query}"
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Accept": "application/json",
            "Content-Type": content_type,
            "Content-Length": str(size),
        }
        sent = [0]

        def counted(n: int) -> None:
            sent[0] += n
            report(sent[0], size)

        def attempt() -> urllib.request.Request:
            sent[0] = 0
            body = _FileSlice(path, 0, size, counted)
            return urllib.request.Request(url, data=body, headers=headers, method="POST")  # type: ignore[arg-type]

        report(0, size)
        try:
            with self._open(attempt) as res:
                return json.loads(res.read().decode("utf-8"))
        except ReelgateError as err:
            if err.status in (404, 405, 413):
                return None
            raise

    def _put(self, url: str, headers: Optional[Mapping[str, str]], path: str, start: int, size: int, sent: List[int], counted: Callable[[int], None]) -> None:
        put_headers = dict(headers or {})
        put_headers["Content-Length"] = str(size)
        before = sent[0]

        def attempt() -> urllib.request.Request:
            # A retry sends the part again from its start: the progress goes back with it.
            sent[0] = before
            body = _FileSlice(path, start, size, counted)
            return urllib.request.Request(url, data=body, headers=put_headers, method="PUT")  # type: ignore[arg-type]

        self._open(attempt).close()

    # --- jobs ------------------------------------------------------------------------------------------------

    def create_job(self, body: Mapping[str, Any], idempotency_key: Optional[str] = None) -> Job:
        """Starts a job. An Idempotency-Key is always sent, so a retried request never starts a second job."""
        key = idempotency_key or str(uuid.uuid4())
        return self.request("POST", "/v1/jobs", dict(body), {"Idempotency-Key": key})

    def get_job(self, job_id: str) -> Job:
        return self.request("GET", f"/v1/jobs/{urllib.parse.quote(job_id)}")

    def list_jobs(self, limit: int = 20, status: Optional[str] = None, cursor: Optional[str] = None) -> Dict[str, Any]:
        query = urllib.parse.urlencode({k: v for k, v in (("limit", limit), ("status", status), ("cursor", cursor)) if v})
        return self.request("GET", f"/v1/jobs?{query}")

    def cancel_job(self, job_id: str) -> Job:
        return self.request("POST", f"/v1/jobs/{urllib.parse.quote(job_id)}/cancel")

    def follow(self, job_id: str, timeout: float = 3600.0, poll_interval: float = 1.5) -> Iterator[Dict[str, Any]]:
        """Yields ``{"type": "status"|"progress", "job": …, "source": "stream"|"poll"}`` until the job is terminal.

        Follows the event stream, resuming it with Last-Event-ID when it breaks; polls instead when the server has
        no stream (404/405) or it keeps breaking. TimeoutError after ``timeout`` seconds (the job goes on).
        """
        deadline = time.monotonic() + timeout
        parser = SseParser()
        for _ in range(STREAM_RESUMES + 1):
            outcome = yield from self._stream(job_id, parser, deadline)
            if outcome == "done":
                return
            if outcome == "unsupported":
                break
            # The stream ended early: the job may have finished meanwhile.
            job = self.get_job(job_id)
            if job["status"] in TERMINAL_STATUSES:
                yield {"type": "status", "job": job, "source": "poll"}
                return
            self._check_deadline(job_id, deadline, job)
            time.sleep((parser.retry_ms or 1000) / 1000)
        yield from self._poll(job_id, deadline, poll_interval)

    def _stream(self, job_id: str, parser: SseParser, deadline: float) -> Iterator[Dict[str, Any]]:
        headers = {"Accept": "text/event-stream"}
        if parser.last_event_id:
            headers["Last-Event-ID"] = parser.last_event_id
        request = build_request(self.base_url, self.api_key, "GET", f"/v1/jobs/{urllib.parse.quote(job_id)}/events", headers=headers)
        try:
            res = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as err:
            if err.code in (404, 405):
                err.close()
                return "unsupported"
            if err.code in RETRYABLE_STATUSES:
                err.close()
                return "broken"
            raise ReelgateError(err.code, _problem_of(err)) from None
        except (urllib.error.URLError, ConnectionError, socket.timeout):
            return "broken"
        with res:
            if "text/event-stream" not in (res.headers.get("Content-Type") or ""):
                return "unsupported"
            try:
                for raw in res:
                    message = parser.line(raw.decode("utf-8").rstrip("\r\n"))
                    if message is None:
                        continue
                    job = json.loads(message.data)
                    yield {"type": message.event, "job": job, "id": message.id, "source": "stream"}
                    if job["status"] in TERMINAL_STATUSES:
                        return "done"
                    self._check_deadline(job_id, deadline, job)
            except (ConnectionError, socket.timeout, OSError):
                pass
        return "broken"

    def _poll(self, job_id: str, deadline: float, interval: float) -> Iterator[Dict[str, Any]]:
        last: Optional[Job] = None
        while True:
            job = self.get_job(job_id)
            if last is None or last["status"] != job["status"]:
                yield {"type": "status", "job": job, "source": "poll"}
            elif last.get("progress") != job.get("progress"):
                yield {"type": "progress", "job": job, "source": "poll"}
            if job["status"] in TERMINAL_STATUSES:
                return
            self._check_deadline(job_id, deadline, job)
            last = job
            time.sleep(interval)

    @staticmethod
    def _check_deadline(job_id: str, deadline: float, job: Job) -> None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} is still {job['status']}; stopped waiting (the job goes on)")

    def wait_for_job(
        self,
        job_id: str,
        timeout: float = 3600.0,
        poll_interval: float = 1.5,
        on_update: Optional[Callable[[Job], None]] = None,
    ) -> Job:
        """Follows the job (events, else polling) until it is terminal and returns it: check ``status``."""
        job: Optional[Job] = None
        for event in self.follow(job_id, timeout=timeout, poll_interval=poll_interval):
            job = event["job"]
            if on_update:
                on_update(job)
        assert job is not None
        return job

    def download_video(self, job_id: str, dest: str) -> int:
        """Streams the finished video to the file ``dest``; returns the byte count."""
        written = 0
        request = lambda: build_request(self.base_url, self.api_key, "GET", f"/v1/jobs/{urllib.parse.quote(job_id)}/video")  # noqa: E731
        with self._open(request) as res, open(dest, "wb") as out:
            while chunk := res.read(CHUNK):
                out.write(chunk)
                written += len(chunk)
        return written

    # --- models ----------------------------------------------------------------------------------------------

    def list_models(self) -> List[Dict[str, Any]]:
        """The models a job can name, with inputs, parameters (JSON Schema), limits and availability."""
        return self.request("GET", "/v1/models")["data"]

    def get_model(self, model_id: str) -> Dict[str, Any]:
        return self.request("GET", f"/v1/models/{urllib.parse.quote(model_id)}")

    def check_runnable(self, model_id: str, job_input: Mapping[str, Any]) -> None:
        """Raises what the API would answer for this model and input without sending the job: an unknown model or an
        input outside the model's schema (400, every field in ``errors``), a model no enabled backend serves (422
        ``model_unavailable``). A model whose backends are only unhealthy passes: the API accepts the job and it waits."""
        try:
            model = self.get_model(model_id)
        except ReelgateError as err:
            if err.status != 404:
                raise
            try:
                known = [m["id"] for m in self.list_models()]
            except ReelgateError:
                return  # A server without a catalog: the job's create checks.
            raise _refusal([{"field": "model", "message": f"there is no model {model_id!r} (there are {', '.join(known)})"}]) from None
        issues = check_input(model, job_input)
        if issues:
            raise _refusal(issues)
        # A server older than ``accepting_jobs`` refused whatever was not ``available``.
        if not model.get("accepting_jobs", model.get("available", True)):
            why = model.get("unavailable_reason") or "no enabled backend serves it"
            raise ReelgateError(
                422,
                {
                    "status": 422,
                    "code": "model_unavailable",
                    "title": "Model unavailable",
                    "detail": f"{model['id']} is not available: {why}",
                    "errors": [{"path": "json.model", "message": why}],
                },
            )

    # --- everything in one call ------------------------------------------------------------------------------

    def run(
        self,
        model: str,
        job_input: Mapping[str, Any],
        on_progress: Optional[ProgressCallback] = None,
        *,
        idempotency_key: Optional[str] = None,
        webhook: Optional[Mapping[str, Any]] = None,
        backend: Optional[str] = None,
        timeout: float = 3600.0,
    ) -> FinishedJob:
        """Checks the input against the model, uploads its files, starts the job (with an idempotency key), follows
        it and returns it once its video is ready: ``run("preview", {"image": "still.png"}).download("out.mp4")``.

        ``image``/``audio`` may be a path, an upload id (``upl_…``), an http(s) URL (the API fetches it), or
        ``(filename, bytes)``. ``on_progress`` gets ``{"stage": "upload", "input", "filename", "sent", "total"}`` and
        ``{"stage": "job", "type", "job"}``. A job that fails or is canceled raises JobFailedError.
        """
        report = on_progress or (lambda progress: None)
        self.check_runnable(model, job_input)
        body_input: Dict[str, Any] = dict(job_input)
        for name in ("image", "audio"):
            value = job_input.get(name)
            if value is None:
                continue
            body_input[name] = self._as_input(name, value, report)
        body: Dict[str, Any] = {"model": model, "input": body_input}
        if webhook:
            body["webhook"] = dict(webhook)
        if backend:
            body["backend"] = backend
        created = self.create_job(body, idempotency_key or str(uuid.uuid4()))
        job: Job = created
        for event in self.follow(created["id"], timeout=timeout):
            job = event["job"]
            report({"stage": "job", "type": event["type"], "job": job})
        if job["status"] != "succeeded":
            raise JobFailedError(job)
        return FinishedJob(job, self)

    def _as_input(self, name: str, value: Any, report: ProgressCallback) -> str:
        """An upload id or URL as is; a path or (filename, bytes) uploaded first."""
        if isinstance(value, str) and (value.startswith("upl_") or value.lower().startswith(("http://", "https://"))):
            return value
        if isinstance(value, tuple):
            filename, data = value
            return self.upload_bytes(data, filename)["id"]
        path = os.fspath(value)
        filename = os.path.basename(path)
        progress = lambda sent, total: report({"stage": "upload", "input": name, "filename": filename, "sent": sent, "total": total})  # noqa: E731
        return self.upload_file(path, on_progress=progress)["id"]
