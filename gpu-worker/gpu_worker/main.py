"""Entry point: start ComfyUI (COMFY_DIR) or wait for one started elsewhere, when a wan model is enabled, then serve
RunPod jobs or the pod HTTP API.

Arguments are left to the runpod SDK (`--test_input`, `--rp_serve_api`, ...): we read none ourselves.
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp

from . import comfy_process
from .comfy import ComfyClient
from .comfy_process import ComfyProcess, comfy_command
from .config import SETTINGS, Settings
from .errors import WorkerError
from .log import log_event
from .models import file_problems


async def wait_for_comfy(settings: Settings) -> dict:
    """Starts the ComfyUI this worker owns (and may restart), or waits for the one at COMFY_URL."""
    if settings.comfy_dir:
        process = ComfyProcess(comfy_command(settings), settings.comfy_url,
                               start_timeout_s=settings.comfy_start_timeout_s, cwd=settings.comfy_dir)
        comfy_process.adopt(process)
        return await process.start()
    async with aiohttp.ClientSession() as session:
        client = ComfyClient(settings.comfy_url, session)
        return await client.wait_ready(settings.comfy_start_timeout_s, pid=settings.comfy_pid)


def main(settings: Settings = SETTINGS) -> None:
    log_event("starting", mode=settings.deployment_mode, models=list(settings.enabled_models))
    if settings.comfy_models_enabled:
        if not settings.comfy_url:
            log_event("fatal", message=f"COMFY_URL is empty but {list(settings.comfy_models_enabled)} need ComfyUI")
            sys.exit(1)
        problems = file_problems(settings.comfy_models_enabled, settings.models_root)
        if problems:
            # Not fatal: jobs for the affected model fail with models_missing naming the files.
            log_event("models_missing", models_root=settings.models_root, files=problems)
        try:
            stats = asyncio.run(wait_for_comfy(settings))
        except WorkerError as exc:
            log_event("fatal", message=exc.message)
            _stop_comfy()
            sys.exit(1)
        devices = [d.get("name") for d in stats.get("devices") or []]
        log_event("comfy_ready", url=settings.comfy_url, devices=devices)
    try:
        if settings.deployment_mode == "pod":
            from .server import serve

            serve(settings)
            return
        from .handler import start_serverless

        start_serverless()
    finally:
        _stop_comfy()


def _stop_comfy() -> None:
    """ComfyUI is our child: it goes when we go, never left holding the GPU."""
    process = comfy_process.current()
    if process:
        process.stop()
