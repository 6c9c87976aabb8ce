"""Input downloads (signed GET) and output uploads (signed PUT or multipart parts), streamed from/to disk.

Retries with exponential backoff on 5xx and connection errors only: a 4xx (expired or wrong signature) will not
get better by retrying. A signed URL is logged without its query string.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Callable

import aiohttp

from .errors import JobInputError, WorkerError
from .job import InputFile, MultipartTarget, OutputTarget, PartsRequest, parse_multipart
from .log import log_event, strip_query

CHUNK = 1024 * 1024
# Headers we set ourselves; a job's header map must not override them.
_RESERVED_HEADERS = {"content-length", "host", "transfer-encoding"}
# How a create-only URL refuses a second write: R2's S3 API (If-None-Match: *) and the Worker's storage route.
_ALREADY_STORED = {409, 412}

ProgressFn = Callable[[int, int], None]  # (bytes done, bytes total)


@dataclass(frozen=True)
class UploadResult:
    size: int
    sha256: str
    parts: list[dict] | None  # [{"part_number", "etag"}] when multipart was used


class _Retryable(Exception):
    """A failure worth another attempt (5xx, connection error, timeout)."""


async def _with_retries(what: str, url: str, attempts: int, backoff_s: float, fail_code: str, attempt_fn):
    """`what` names the job's field (`inputs.image GET`), which is what the job's error names; the URL is logged."""
    delay = backoff_s
    for attempt in range(1, attempts + 1):
        try:
            return await attempt_fn()
        except (_Retryable, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as exc:
            reason = str(exc) if isinstance(exc, _Retryable) else type(exc).__name__
            if attempt == attempts:
                log_event("http_failed", what=what, url=strip_query(url), reason=str(exc) or reason)
                raise WorkerError(fail_code, f"{what} failed after {attempts} attempts: {reason}") from None
            log_event("http_retry", what=what, url=strip_query(url), attempt=attempt, reason=reason)
            await asyncio.sleep(delay)
            delay *= 2


async def stream_to_file(resp: aiohttp.ClientResponse, path: Path, max_bytes: int,
                         too_large: WorkerError) -> tuple[str, int]:
    """Writes a GET's body to `path` chunk by chunk, never whole in memory; its hex sha256 and byte count. Past
    `max_bytes` it raises `too_large`, before reading anything when Content-Length already says so."""
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise too_large
    hasher, size = hashlib.sha256(), 0
    with open(path, "wb") as out:
        async for chunk in resp.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise too_large
            hasher.update(chunk)
            out.write(chunk)
    return hasher.hexdigest(), size


async def download_input(
    session: aiohttp.ClientSession, source: InputFile, dest_dir: str, name: str, *,
    max_bytes: int, attempts: int = 4, backoff_s: float = 0.5,
) -> Path:
    """Streams a signed GET to `dest_dir/name`; the file never sits whole in memory."""
    dest = Path(dest_dir) / name
    field = f"inputs.{Path(name).stem}"

    async def attempt() -> Path:
        async with session.get(source.url) as resp:
            if resp.status >= 500:
                raise _Retryable(f"HTTP {resp.status}")
            if resp.status != 200:
                raise WorkerError("input_download_failed", f"{field}: the signed GET answered HTTP {resp.status}")
            too_large = WorkerError("input_download_failed", f"{field} is larger than {max_bytes} bytes")
            digest, size = await stream_to_file(resp, dest, max_bytes, too_large)
            if size == 0:
                raise WorkerError("input_download_failed", f"{field} is empty")
            # The job runs on the bytes the API verified at upload, or not at all: not retried, they would not change.
            if source.sha256 is not None and digest != source.sha256:
                raise WorkerError("input_changed",
                                  f"{field}: the downloaded bytes are not the ones verified at upload "
                                  f"(sha256 {digest}, expected {source.sha256})")
            return dest

    return await _with_retries(f"{field} GET", source.url, attempts, backoff_s, "input_download_failed", attempt)


async def _file_slice(path: Path, offset: int, length: int, hasher) -> AsyncIterator[bytes]:
    """Reads `length` bytes from `offset` chunk by chunk, feeding the running sha256 as it goes."""
    with open(path, "rb") as src:
        src.seek(offset)
        left = length
        while left > 0:
            chunk = src.read(min(CHUNK, left))
            if not chunk:
                raise OSError(f"{path} shrank while uploading")
            hasher.update(chunk)
            left -= len(chunk)
            yield chunk


async def _hash_slice(path: Path, offset: int, length: int, hasher):
    async for _ in _file_slice(path, offset, length, hasher):
        pass
    return hasher


async def _put_slice(session, field, url, headers, path, offset, length, hasher, attempts, backoff_s,
                     already_stored_ok: bool = False) -> tuple[str, object]:
    """PUTs one byte range with an exact Content-Length (signed PUTs reject chunked encoding).

    The sha256 is advanced on a copy per attempt, so a retried part is hashed once in the final digest.
    `already_stored_ok`: the URL is create-only (the whole video's PUT), so a refusal on a retry is success.
    """
    send_headers = {k: v for k, v in headers.items() if k.lower() not in _RESERVED_HEADERS}
    send_headers["Content-Length"] = str(length)
    attempts_made = 0

    async def attempt():
        nonlocal attempts_made
        attempts_made += 1
        attempt_hasher = hasher.copy()
        async with session.put(url, data=_file_slice(path, offset, length, attempt_hasher),
                               headers=send_headers) as resp:
            await resp.read()
            if resp.status >= 500 or resp.status == 429:
                raise _Retryable(f"HTTP {resp.status}")
            if already_stored_ok and resp.status in _ALREADY_STORED and attempts_made > 1:
                # A create-only video URL refuses a second write. On a retry that means an earlier attempt did
                # store the bytes (its answer was lost): the Worker verifies size and sha256, so report them.
                return "", await _hash_slice(path, offset, length, hasher.copy())
            if not 200 <= resp.status < 300:
                raise WorkerError("output_upload_failed", f"{field}: the signed PUT answered HTTP {resp.status}")
            return resp.headers.get("ETag", ""), attempt_hasher

    return await _with_retries(f"{field} PUT", url, attempts, backoff_s, "output_upload_failed", attempt)


async def request_parts(session: aiohttp.ClientSession, target: PartsRequest, size: int, *,
                        attempts: int = 4, backoff_s: float = 0.5) -> MultipartTarget:
    """POSTs `{size}` to `output.parts_url`: the Worker opens the multipart upload and answers one URL per part."""
    field = "output.parts_url"
    headers = {"Content-Type": "application/json", **target.headers}

    async def attempt() -> MultipartTarget:
        async with session.post(target.url, json={"size": size}, headers=headers) as resp:
            body = await resp.read()
            if resp.status >= 500 or resp.status == 429:
                raise _Retryable(f"HTTP {resp.status}")
            if resp.status == 413:
                raise WorkerError("output_too_large", f"video is {size} bytes: {field} refused it as too large")
            if resp.status != 200:
                raise WorkerError("output_upload_failed", f"{field}: the signed POST answered HTTP {resp.status}")
            try:
                return parse_multipart(json.loads(body), field)
            except (ValueError, JobInputError) as exc:
                raise WorkerError("output_upload_failed", f"{field}: the answer is not part URLs: {exc}") from None

    return await _with_retries(f"{field} POST", target.url, attempts, backoff_s, "output_upload_failed", attempt)


def _fits_put(target: OutputTarget, size: int) -> bool:
    """Whether the single PUT takes `size` bytes: up to its `max_size`, or, without one, up to a part's size."""
    if target.put is None:
        return False
    if target.put.max_size is not None:
        return size <= target.put.max_size
    return target.multipart is None or size <= target.multipart.part_size


async def upload_output(
    session: aiohttp.ClientSession, path: Path, target: OutputTarget, *,
    attempts: int = 4, backoff_s: float = 0.5, progress: ProgressFn | None = None,
) -> UploadResult:
    """Uploads the video: `put` when it fits; else the part URLs `parts_url` answers for its size (or `multipart`)."""
    size = os.path.getsize(path)
    hasher = hashlib.sha256()
    if _fits_put(target, size):
        assert target.put is not None
        headers = {"Content-Type": target.content_type, **target.put.headers}
        _, hasher = await _put_slice(session, "output.put", target.put.url, headers, path, 0, size, hasher, attempts, backoff_s,
                                     already_stored_ok=True)
        if progress:
            progress(size, size)
        log_event("uploaded", url=strip_query(target.put.url), size=size)
        return UploadResult(size=size, sha256=hasher.hexdigest(), parts=None)
    if target.parts_url is not None:
        mp = await request_parts(session, target.parts_url, size, attempts=attempts, backoff_s=backoff_s)
        where = "output.parts_url"
    elif target.multipart is not None:
        mp, where = target.multipart, "output.multipart"
    elif target.put is not None:
        raise WorkerError("output_too_large", f"video is {size} bytes: output.put takes at most {target.put.max_size}")
    else:
        raise WorkerError("output_upload_failed", "no upload target offered")
    needed = max(1, -(-size // mp.part_size))
    if needed > len(mp.parts):
        raise WorkerError("output_too_large",
                          f"video is {size} bytes: needs {needed} parts of {mp.part_size}, {len(mp.parts)} offered")
    parts = []
    for part in mp.parts[:needed]:
        offset = (part.part_number - 1) * mp.part_size
        length = min(mp.part_size, size - offset)
        field = f"{where}.parts[{part.part_number - 1}]"
        etag, hasher = await _put_slice(session, field, part.url, part.headers, path, offset, length, hasher,
                                        attempts, backoff_s)
        if not etag:
            raise WorkerError("output_upload_failed", f"{field}: the signed PUT answered no ETag")
        parts.append({"part_number": part.part_number, "etag": etag})
        if progress:
            progress(offset + length, size)
    log_event("uploaded", url=strip_query(mp.parts[0].url), size=size, parts=len(parts))
    return UploadResult(size=size, sha256=hasher.hexdigest(), parts=parts)


def new_job_dir(work_dir: str, job_id: str) -> tempfile.TemporaryDirectory:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in job_id)[:64]
    return tempfile.TemporaryDirectory(prefix=f"reelgate-{safe}-", dir=work_dir or None)
