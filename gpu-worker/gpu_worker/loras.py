"""LoRAs a job names by URL (docs/gpu-job-protocol.md, `workflow.loras`), kept in a cache under the `loras` model
folder so ComfyUI's LoraLoaderModelOnly finds them as `reelgate-cache/<key>.safetensors`.

A file is keyed by its sha256 when the job gives one (and the download is checked against it), else by the sha256
of its URL (the same URL is fetched once). Each is downloaded once, streamed to a temporary name and renamed only
when whole, within the manifest's size cap, and checked to be a loadable safetensors file. Using a file marks it
recently used; past LORA_CACHE_BYTES the least recently used files of other jobs are deleted.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import aiohttp

from .errors import WorkerError
from .job import LoraNeed
from .log import log_event
from .models import safetensors_problem
from .transfer import _Retryable, _with_retries, stream_to_file

CACHE_DIR = "reelgate-cache"


def cache_key(need: LoraNeed) -> str:
    return need.sha256 or hashlib.sha256(need.url.encode()).hexdigest()


async def _download(session: aiohttp.ClientSession, need: LoraNeed, dest: Path, field: str, attempts: int,
                    backoff_s: float) -> None:
    part = dest.with_suffix(".part")

    async def attempt() -> None:
        async with session.get(need.url) as resp:
            if resp.status >= 500:
                raise _Retryable(f"HTTP {resp.status}")
            if resp.status != 200:
                raise WorkerError("input_download_failed", f"{field}: the GET answered HTTP {resp.status}")
            too_large = WorkerError("invalid_input", f"{field} is larger than {need.max_bytes} bytes")
            digest, _size = await stream_to_file(resp, part, need.max_bytes, too_large)
        if need.sha256 and digest != need.sha256:
            raise WorkerError("invalid_input", f"{field}: its sha256 is {digest}, the job gave {need.sha256}")
        problem = safetensors_problem(part)
        if problem:
            raise WorkerError("invalid_input", f"{field} is not a loadable safetensors file: it {problem}")

    try:
        await _with_retries(f"{field} GET", need.url, attempts, backoff_s, "input_download_failed", attempt)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def evict(folder: Path, budget_bytes: int, keep: set[str]) -> list[str]:
    """Deletes the least recently used files not in `keep` until the folder fits the budget; returns their names."""
    files = [p for p in folder.glob("*.safetensors") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    removed = []
    for path in sorted(files, key=lambda p: p.stat().st_mtime):
        if total <= budget_bytes:
            break
        if path.name in keep:
            continue
        total -= path.stat().st_size
        path.unlink(missing_ok=True)
        removed.append(path.name)
    return removed


async def fetch_loras(session: aiohttp.ClientSession, needs, models_root: str, budget_bytes: int, *,
                      attempts: int = 4, backoff_s: float = 0.5) -> list[str]:
    """Each LoRA's name as ComfyUI's `loras` folder lists it, downloading what the cache lacks."""
    folder = Path(models_root) / "loras" / CACHE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    names, keep = [], set()
    for index, need in enumerate(needs):
        path = folder / f"{cache_key(need)}.safetensors"
        if path.is_file():
            os.utime(path)  # recently used: the last to be evicted
            log_event("lora_cache_hit", index=index, key=path.stem)
        else:
            await _download(session, need, path, f"inputs.loras[{index}]", attempts, backoff_s)
            log_event("lora_downloaded", index=index, key=path.stem, size=path.stat().st_size)
        keep.add(path.name)
        names.append(f"{CACHE_DIR}/{path.name}")
    removed = evict(folder, budget_bytes, keep)
    if removed:
        log_event("lora_cache_evicted", files=removed)
    return names
