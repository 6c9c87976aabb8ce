"""Weight files a carried workflow needs and this machine lacks, fetched before the job runs: from the signed GET
of the operator's R2 copy the job brings (`url`), else from the public `source`. Each is streamed to a temporary
name, checked against the size and sha256 the manifest pins, and renamed into MODELS_ROOT only when whole, so a
half-written file never looks present. What cannot be fetched fails the job with `models_missing`, naming the file
and why, never a URL (a signed one is a credential)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import aiohttp

from .errors import WorkerError
from .job import ModelFileNeed
from .log import log_event, strip_query
from .transfer import CHUNK


class _Refused(Exception):
    """This source did not give the file (its reason goes into the job's error)."""


async def _get(session: aiohttp.ClientSession, url: str, need: ModelFileNeed, part: Path) -> None:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=None, sock_read=120)) as resp:
            if resp.status != 200:
                raise _Refused(f"HTTP {resp.status}")
            hasher, size = hashlib.sha256(), 0
            with open(part, "wb") as out:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if need.size is not None and size > need.size:
                        raise _Refused(f"larger than the {need.size} bytes pinned")
                    hasher.update(chunk)
                    out.write(chunk)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _Refused(type(exc).__name__) from None
    if need.size is not None and size != need.size:
        raise _Refused(f"{size} bytes, {need.size} pinned")
    if need.sha256 and hasher.hexdigest() != need.sha256:
        raise _Refused(f"sha256 {hasher.hexdigest()}, {need.sha256} pinned")


async def fetch_model_file(session: aiohttp.ClientSession, need: ModelFileNeed, models_root: str) -> None:
    dest = Path(models_root) / need.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    reasons = []
    for label, url in (("R2 copy", need.url), ("public source", need.source)):
        if not url:
            continue
        try:
            await _get(session, url, need, part)
            os.replace(part, dest)
            log_event("model_file_fetched", path=need.path, via=label, url=strip_query(url))
            return
        except _Refused as exc:
            reasons.append(f"{label}: {exc}")
            log_event("model_file_fetch_failed", path=need.path, via=label, url=strip_query(url), reason=str(exc))
        finally:
            part.unlink(missing_ok=True)
    why = "; ".join(reasons) if reasons else "no source to fetch it from"
    raise WorkerError("models_missing", f"{need.path} is missing and could not be fetched ({why})")
