"""A minimal Reelgate API client using only the Python standard library.

Upload files, start a job, wait for it (polling), download the video, and verify webhook deliveries
(Standard Webhooks). Python 3.9+.

    client = ReelgateClient("http://127.0.0.1:8787", os.environ["REELGATE_API_KEY"])
    image = client.upload_file("in.png")
    job = client.create_job({"model": "preview", "input": {"image": image["id"]}})
    job = client.wait_for_job(job["id"])
    client.download_video(job["id"], "out.mp4")
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import mimetypes
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Mapping, Optional, Union

TERMINAL_STATUSES = ("succeeded", "failed", "canceled")
# Status codes a later identical request may get past.
RETRYABLE_STATUSES = (429, 500, 502, 503, 504)
DOWNLOAD_CHUNK = 1 << 20

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


class ReelgateError(Exception):
    """A failed API call, carrying the RFC 9457 problem the server sent."""

    def __init__(self, status: int, problem: Mapping[str, Any]):
        self.status = status
        self.problem = dict(problem)
        self.code = str(problem.get("code", "internal"))
        self.detail = str(problem.get("detail", f"HTTP {status}"))
        super().__init__(f"{status} {self.code}: {self.detail}")


class WebhookVerificationError(Exception):
    """A webhook delivery whose signature, timestamp or headers do not check out."""


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
    """`Retry-After` as delta-seconds or an HTTP date, in seconds from now; None when absent or unreadable."""
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


def _problem_of(err: urllib.error.HTTPError) -> dict:
    raw = err.read().decode("utf-8", "replace")
    try:
        problem = json.loads(raw)
        if isinstance(problem, dict) and "detail" in problem:
            return problem
    except ValueError:
        pass
    return {"status": err.code, "code": "internal" if err.code >= 500 else "invalid_request", "detail": raw[:300] or err.reason}


class ReelgateClient:
    def __init__(self, base_url: str, api_key: str, timeout: float = 60.0, max_retries: int = 4):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries

    def _open(self, make_request: Callable[[], urllib.request.Request]):
        """Sends a request, retrying network errors, 5xx and 429 (honouring Retry-After) with backoff."""
        for attempt in range(self.max_retries + 1):
            try:
                return urllib.request.urlopen(make_request(), timeout=self.timeout)
            except urllib.error.HTTPError as err:
                if err.code not in RETRYABLE_STATUSES or attempt == self.max_retries:
                    raise ReelgateError(err.code, _problem_of(err)) from None
                wait = retry_after_seconds(err.headers.get("Retry-After"))
                err.close()
            except urllib.error.URLError:
                if attempt == self.max_retries:
                    raise
                wait = None
            time.sleep(min(30.0, wait if wait is not None else 0.5 * 2**attempt))
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, body: Optional[Any] = None, headers: Optional[Mapping[str, str]] = None) -> Any:
        """One API call; returns the decoded JSON, raises ReelgateError with the problem otherwise."""
        with self._open(lambda: build_request(self.base_url, self.api_key, method, path, body, headers)) as res:
            return json.loads(res.read().decode("utf-8"))

    def upload_file(self, path: str, content_type: Optional[str] = None, filename: Optional[str] = None) -> dict:
        """Uploads a file and returns the upload once the server has verified it (`status: ready`)."""
        with open(path, "rb") as f:
            data = f.read()
        ext = os.path.splitext(path)[1].lower()
        content_type = content_type or CONTENT_TYPES.get(ext) or mimetypes.guess_type(path)[0]
        if not content_type:
            raise ValueError(f"{path}: unknown content type; pass content_type=")
        created = self.request(
            "POST",
            "/v1/uploads",
            {
                "filename": filename or os.path.basename(path),
                "content_type": content_type,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            },
        )
        if created["status"] == "ready":
            # This account already stored these bytes (same SHA-256): nothing to send.
            return created
        multipart = created.get("multipart")
        if multipart and multipart.get("parts"):
            # Large files: part n holds bytes [(n-1)*part_size, n*part_size), each PUT to its own URL.
            for part in multipart["parts"]:
                start = (part["part_number"] - 1) * multipart["part_size"]
                self._put(part["url"], part.get("headers"), data[start : start + part["size"]])
        else:
            self._put(created["upload"]["url"], created["upload"].get("headers"), data)
        return self.request("POST", f"/v1/uploads/{created['id']}/complete")

    def _put(self, url: str, headers: Optional[Mapping[str, str]], data: bytes) -> None:
        put_headers = dict(headers or {})
        put_headers["Content-Length"] = str(len(data))
        self._open(lambda: urllib.request.Request(url, data=data, headers=put_headers, method="PUT")).close()

    def create_job(self, body: Mapping[str, Any], idempotency_key: Optional[str] = None) -> dict:
        """Starts a job. An Idempotency-Key is always sent, so a retried request never starts a second job."""
        key = idempotency_key or str(uuid.uuid4())
        return self.request("POST", "/v1/jobs", dict(body), {"Idempotency-Key": key})

    def get_job(self, job_id: str) -> dict:
        return self.request("GET", f"/v1/jobs/{job_id}")

    def list_jobs(self, limit: int = 20, status: Optional[str] = None, cursor: Optional[str] = None) -> dict:
        query = urllib.parse.urlencode({k: v for k, v in (("limit", limit), ("status", status), ("cursor", cursor)) if v})
        return self.request("GET", f"/v1/jobs?{query}")

    def cancel_job(self, job_id: str) -> dict:
        return self.request("POST", f"/v1/jobs/{job_id}/cancel")

    def wait_for_job(
        self,
        job_id: str,
        timeout: float = 3600.0,
        poll_interval: float = 1.5,
        on_update: Optional[Callable[[dict], None]] = None,
    ) -> dict:
        """Polls until the job is terminal and returns it (check `status`); TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if on_update:
                on_update(job)
            if job["status"] in TERMINAL_STATUSES:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job['status']} after {timeout} s")
            time.sleep(poll_interval)

    def download_video(self, job_id: str, dest: str) -> int:
        """Streams the finished video to `dest`; returns the byte count."""
        written = 0
        request = lambda: build_request(self.base_url, self.api_key, "GET", f"/v1/jobs/{job_id}/video")  # noqa: E731
        with self._open(request) as res, open(dest, "wb") as out:
            while chunk := res.read(DOWNLOAD_CHUNK):
                out.write(chunk)
                written += len(chunk)
        return written


def sign_webhook(msg_id: str, timestamp: Union[int, str], body: Union[str, bytes], secret: str) -> str:
    """The `webhook-signature` value (`v1,<base64>`) a sender computes for a delivery."""
    key = base64.b64decode(secret[len("whsec_") :] if secret.startswith("whsec_") else secret)
    payload = body if isinstance(body, bytes) else body.encode("utf-8")
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + payload, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def verify_webhook(
    body: Union[str, bytes],
    headers: Mapping[str, str],
    secret: str,
    tolerance_s: int = 300,
    now: Optional[float] = None,
) -> Any:
    """Verifies a Standard Webhooks delivery against the raw body and returns the parsed payload.

    Raises WebhookVerificationError on missing headers, a timestamp more than `tolerance_s` from now (replays),
    or no matching `v1` signature. Pass the body exactly as received: re-serialised JSON would not match.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, timestamp, signatures = (lower.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not msg_id or not timestamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not timestamp.isdigit():
        raise WebhookVerificationError("the webhook timestamp is not a number")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_s:
        raise WebhookVerificationError("the webhook timestamp is outside the tolerance")
    expected = sign_webhook(msg_id, timestamp, body, secret).split(",", 1)[1]
    # Several signatures may be sent while a secret rotates: any valid v1 one will do.
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return json.loads(body)
    raise WebhookVerificationError("no matching webhook signature")
