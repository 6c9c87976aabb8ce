"""The ComfyUI process this worker starts and owns: start it, wait until it answers, and restart it when a canceled
prompt will not stop (the GPU is what costs money; killing the process is the one sure way to free it).

A plain `subprocess.Popen`, not an asyncio subprocess: the startup wait runs in one event loop and the RunPod SDK
or the pod server in another, and the restart must work from either.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import aiohttp

from .config import Settings
from .errors import WorkerError
from .log import log_event

STOP_GRACE_S = 10.0  # SIGTERM first, so ComfyUI can release the device cleanly; then SIGKILL


def comfy_command(settings: Settings) -> list[str]:
    """ComfyUI's main.py on COMFY_URL's host and port, with the model-path YAML given exactly once."""
    url = urlsplit(settings.comfy_url)
    command = [sys.executable, os.path.join(settings.comfy_dir, "main.py"), "--listen", url.hostname or "127.0.0.1",
               "--port", str(url.port or 8188), "--disable-auto-launch", "--disable-metadata"]
    if settings.comfy_model_paths:
        command += ["--extra-model-paths-config", settings.comfy_model_paths]
    return command + list(settings.comfy_args)


class ComfyProcess:
    def __init__(self, command: list[str], url: str, *, start_timeout_s: float, cwd: str | None = None):
        self.command = command
        self.url = url.rstrip("/")
        self.start_timeout_s = start_timeout_s
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._restarting: asyncio.Lock | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def start(self) -> dict:
        """Spawns ComfyUI and waits for `/system_stats`; fails at once if the process dies first."""
        self.proc = subprocess.Popen(self.command, cwd=self.cwd)
        log_event("comfy_started", pid=self.proc.pid)
        deadline = time.monotonic() + self.start_timeout_s
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(f"{self.url}/system_stats", timeout=aiohttp.ClientTimeout(total=5)) as resp:
                        if resp.status == 200:
                            return await resp.json()
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                if not self.alive():
                    raise WorkerError("internal", f"ComfyUI exited during startup (exit code {self.proc.returncode})")
                if time.monotonic() >= deadline:
                    raise WorkerError("timeout", f"ComfyUI not ready after {self.start_timeout_s:.0f} s")
                await asyncio.sleep(0.25)

    def stop(self) -> None:
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    async def restart(self, reason: str) -> bool:
        """Kills ComfyUI (with whatever it was running) and starts it again; True once it answers again."""
        self._restarting = self._restarting or asyncio.Lock()
        async with self._restarting:
            log_event("comfy_restarting", pid=self.pid, reason=reason)
            await asyncio.to_thread(self.stop)
            self.restarts += 1
            try:
                await self.start()
            except WorkerError as exc:
                log_event("comfy_restart_failed", message=exc.message)
                return False
            log_event("comfy_restarted", pid=self.pid)
            return True


_current: ComfyProcess | None = None


def current() -> ComfyProcess | None:
    """The ComfyUI process this worker owns, if it started one."""
    return _current


def adopt(process: ComfyProcess | None) -> None:
    global _current
    _current = process
