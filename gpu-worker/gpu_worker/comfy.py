"""ComfyUI client over aiohttp: upload inputs, queue a prompt, follow it on the websocket, fetch the video.

Order matters: the websocket is opened before `POST /prompt` with the same client_id, because ComfyUI sends
execution events only to the socket whose id matches the prompt's client_id. If the socket drops we reconnect
and also read `/history/{id}` (empty `{}` until the prompt ends), so a finish we missed is still seen.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Awaitable, Callable

import aiohttp

from .errors import WorkerError
from .log import log_event

ProgressFn = Callable[[str, int, int], None]  # (node id, value, max) from `progress` events
NodeFn = Callable[[str], None]  # node id from `executing` events
StoppedFn = Callable[[dict], None]  # what stopping a canceled or timed-out prompt took (ComfyClient.stop)
StuckFn = Callable[[str], Awaitable[bool]]  # frees the GPU when a prompt ignores its interrupt; True on success
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov")


def _short(text: str, limit: int = 300) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_prompt_error(body: dict) -> str:
    """One readable line from a 400 `/prompt` answer: the error plus every node's first errors."""
    error = body.get("error") or {}
    message = error.get("message") or error.get("type") or "invalid prompt"
    if error.get("details"):
        message += f": {_short(error['details'])}"
    for node_id, node in (body.get("node_errors") or {}).items():
        for err in (node.get("errors") or [])[:3]:
            detail = err.get("details") or ""
            message += f"; node {node_id} ({node.get('class_type', '?')}): {err.get('message', err.get('type'))}"
            message += f": {_short(detail)}" if detail else ""
    return f"ComfyUI rejected the workflow: {message}"


# The workflow nodes that read the job's inputs: an error there is about that input, and says so.
_INPUT_NODES = {"LoadImage": "inputs.image", "LoadAudio": "inputs.audio"}


def describe_execution_error(data: dict) -> str:
    """The job's error for a failed node: the input it concerns when a loader failed, never a file of the worker
    (ComfyUI quotes its input directory's paths; `public_message` drops them)."""
    field = _INPUT_NODES.get(str(data.get("node_type")))
    prefix = f"{field} could not be read: " if field else ""
    return (f"{prefix}ComfyUI failed in node {data.get('node_id')} ({data.get('node_type')}): "
            f"{data.get('exception_type', 'error')}: {_short(data.get('exception_message', ''), 600)}")


def find_video_output(entry: dict) -> dict:
    """The video file reference in a history entry: SaveVideo puts it under `images` with `animated`,
    VHS_VideoCombine under `gifs`. Temp previews are skipped."""
    for node_output in (entry.get("outputs") or {}).values():
        animated = any(node_output.get("animated") or [])
        candidates = list(node_output.get("gifs") or [])
        candidates += [img for img in node_output.get("images") or []
                       if animated or str(img.get("filename", "")).lower().endswith(VIDEO_SUFFIXES)]
        for ref in candidates:
            if ref.get("type", "output") != "temp" and ref.get("filename"):
                return ref
    raise WorkerError("inference_failed", "ComfyUI finished without a video output")


class ComfyClient:
    def __init__(self, base_url: str, session: aiohttp.ClientSession, *, reconnect_attempts: int = 5,
                 reconnect_delay_s: float = 1.0, history_poll_s: float = 1.0, cancel_bound_s: float = 30.0,
                 on_stuck: StuckFn | None = None, stop_poll_s: float = 0.2):
        self.base_url = base_url.rstrip("/")
        self.cancel_bound_s = cancel_bound_s
        self.on_stuck = on_stuck
        self.stop_poll_s = stop_poll_s
        self.session = session
        self.client_id = str(uuid.uuid4())
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_delay_s = reconnect_delay_s
        self.history_poll_s = history_poll_s

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def system_stats(self) -> dict:
        async with self.session.get(self._url("/system_stats"), timeout=aiohttp.ClientTimeout(total=5)) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def object_info(self) -> dict:
        """The node classes ComfyUI has installed (a few MB: it describes every input of every node)."""
        async with self.session.get(self._url("/object_info"), timeout=aiohttp.ClientTimeout(total=60)) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def wait_ready(self, deadline_s: float, *, pid: int = 0, interval_s: float = 0.5) -> dict:
        """Polls /system_stats until it answers; fails fast if the ComfyUI process (pid) has exited."""
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                return await self.system_stats()
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            if pid and not _pid_alive(pid):
                raise WorkerError("internal", f"ComfyUI (pid {pid}) exited before it became ready")
            if time.monotonic() >= deadline:
                raise WorkerError("timeout", f"ComfyUI not ready after {deadline_s:.0f} s")
            await asyncio.sleep(interval_s)

    async def upload(self, path: Path, name: str) -> str:
        """`POST /upload/image` (any file type; overwrite so a retried job reuses its name)."""
        form = aiohttp.FormData()
        form.add_field("overwrite", "true")
        form.add_field("type", "input")
        with open(path, "rb") as src:
            form.add_field("image", src, filename=name, content_type="application/octet-stream")
            async with self.session.post(self._url("/upload/image"), data=form) as resp:
                if resp.status != 200:
                    raise WorkerError("inference_failed", f"ComfyUI refused the upload of {name}: HTTP {resp.status}")
                body = await resp.json()
        sub = body.get("subfolder") or ""
        return f"{sub}/{body['name']}" if sub else body["name"]

    async def history(self, prompt_id: str) -> dict | None:
        async with self.session.get(self._url(f"/history/{prompt_id}")) as resp:
            if resp.status != 200:
                return None
            return (await resp.json()).get(prompt_id)

    async def _post_quietly(self, path: str, body: dict) -> bool:
        try:
            async with self.session.post(self._url(path), json=body, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                await resp.read()
                return resp.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log_event("comfy_cancel_failed", path=path, reason=str(exc) or type(exc).__name__)
            return False

    async def prompt_state(self, prompt_id: str) -> str | None:
        """`running`, `pending` or `gone` from `GET /queue`; None when ComfyUI does not answer."""
        try:
            async with self.session.get(self._url("/queue"), timeout=aiohttp.ClientTimeout(total=5)) as resp:
                queue = await resp.json() if resp.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return None
        if not isinstance(queue, dict):
            return None
        for state, key in (("running", "queue_running"), ("pending", "queue_pending")):
            if any(isinstance(item, list) and len(item) > 1 and item[1] == prompt_id for item in queue.get(key) or []):
                return state
        return "gone"

    async def stop(self, prompt_id: str) -> dict:
        """Interrupts the prompt, deletes it from the queue, and waits up to `cancel_bound_s` for ComfyUI to let go
        of it. ComfyUI stops only where a node checks for interruption, so past the bound `on_stuck` (a restart of
        the process) frees the GPU. Returns what happened, for the job's history."""
        started = time.monotonic()
        report = {"interrupted": await self._post_quietly("/interrupt", {"prompt_id": prompt_id}),
                  "dequeued": await self._post_quietly("/queue", {"delete": [prompt_id]})}
        while time.monotonic() - started < self.cancel_bound_s:
            if await self.prompt_state(prompt_id) == "gone":
                report["stopped_by"] = "interrupt"
                break
            await asyncio.sleep(self.stop_poll_s)
        else:
            reason = f"prompt still running {self.cancel_bound_s:.0f} s after the interrupt"
            restarted = await self.on_stuck(reason) if self.on_stuck else False
            report["stopped_by"] = "restart" if restarted else "nothing"
        report["seconds"] = round(time.monotonic() - started, 2)
        log_event("comfy_prompt_stopped", prompt_id=prompt_id, **report)
        return report

    async def download(self, ref: dict, dest: Path) -> Path:
        params = {"filename": ref["filename"], "subfolder": ref.get("subfolder", ""), "type": ref.get("type", "output")}
        async with self.session.get(self._url("/view"), params=params) as resp:
            if resp.status != 200:
                raise WorkerError("inference_failed",
                                  f"ComfyUI /view answered HTTP {resp.status} for {ref['filename']}")
            with open(dest, "wb") as out:
                async for chunk in resp.content.iter_chunked(1024 * 1024):
                    out.write(chunk)
        return dest

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        ws_url = self.base_url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        return await self.session.ws_connect(ws_url, heartbeat=30, max_msg_size=0)

    async def _submit(self, workflow: dict, prompt_id: str) -> None:
        body = {"prompt": workflow, "client_id": self.client_id, "prompt_id": prompt_id}
        async with self.session.post(self._url("/prompt"), json=body) as resp:
            text = await resp.text()
            if resp.status == 200:
                return
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = {"error": {"message": _short(text)}}
            raise WorkerError("inference_failed", describe_prompt_error(parsed if isinstance(parsed, dict) else {}))

    async def run(self, workflow: dict, *, on_progress: ProgressFn | None = None, on_node: NodeFn | None = None,
                  timeout_s: float | None = None, on_stopped: StoppedFn | None = None) -> dict:
        """Queues the workflow and waits for its history entry. Cancelled or timed out: the prompt is stopped
        (`stop`), and `on_stopped` hears how."""
        prompt_id = str(uuid.uuid4())
        ws = await self._connect()
        submitted = False

        async def stop() -> None:
            report = await asyncio.shield(self.stop(prompt_id))
            if on_stopped:
                on_stopped(report)

        try:
            async with asyncio.timeout(timeout_s):
                await self._submit(workflow, prompt_id)
                submitted = True
                log_event("comfy_prompt_queued", prompt_id=prompt_id)
                return await self._follow(ws, prompt_id, on_progress, on_node)
        except TimeoutError:
            await stop()
            raise WorkerError("timeout", f"ComfyUI did not finish within {timeout_s:.0f} s") from None
        except asyncio.CancelledError:
            if submitted:
                await stop()
            raise
        finally:
            await ws.close()

    async def _follow(self, ws, prompt_id: str, on_progress, on_node) -> dict:
        while True:
            if ws is None or ws.closed:
                ws = await self._reconnect(prompt_id)
                entry = await self.history(prompt_id)
                if entry:
                    return self._finished(entry)
                if ws is None:
                    await asyncio.sleep(self.history_poll_s)  # socket unavailable: history polling only
                    continue
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.BINARY:
                continue  # preview images: 4-byte event type + image; not ours to use
            if msg.type != aiohttp.WSMsgType.TEXT:
                log_event("comfy_ws_closed", prompt_id=prompt_id, type=msg.type.name)
                await ws.close()
                continue
            event = json.loads(msg.data)
            kind, data = event.get("type"), event.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if kind == "progress" and on_progress:
                on_progress(str(data.get("node")), int(data.get("value", 0)), int(data.get("max", 0)))
            elif kind == "executing" and data.get("prompt_id") == prompt_id:
                if data.get("node") is None:
                    return self._finished(await self._history_after_end(prompt_id))
                if on_node:
                    on_node(str(data["node"]))
            elif kind == "execution_success":
                return self._finished(await self._history_after_end(prompt_id))
            elif kind == "execution_error":
                raise WorkerError("inference_failed", describe_execution_error(data))
            elif kind == "execution_interrupted":
                raise WorkerError("canceled", "ComfyUI interrupted the prompt")

    async def _reconnect(self, prompt_id: str):
        for attempt in range(1, self.reconnect_attempts + 1):
            try:
                ws = await self._connect()
                log_event("comfy_ws_reconnected", prompt_id=prompt_id, attempt=attempt)
                return ws
            except (aiohttp.ClientError, asyncio.TimeoutError):
                await asyncio.sleep(self.reconnect_delay_s)
        log_event("comfy_ws_unavailable", prompt_id=prompt_id)
        return None

    async def _history_after_end(self, prompt_id: str) -> dict:
        # The end event and the history write race in some ComfyUI versions: give the history a moment.
        for _ in range(50):
            entry = await self.history(prompt_id)
            if entry:
                return entry
            await asyncio.sleep(0.1)
        raise WorkerError("inference_failed", "ComfyUI reported the end but has no history for the prompt")

    @staticmethod
    def _finished(entry: dict) -> dict:
        status = entry.get("status") or {}
        if status.get("status_str") == "error":
            for name, data in status.get("messages") or []:
                if name == "execution_error":
                    raise WorkerError("inference_failed", describe_execution_error(data))
                if name == "execution_interrupted":
                    raise WorkerError("canceled", "ComfyUI interrupted the prompt")
            raise WorkerError("inference_failed", "ComfyUI reported an error without details")
        return entry


def _pid_alive(pid: int) -> bool:
    # entrypoint.sh execs us, so ComfyUI is our child: reap it first, or a dead one lingers as a zombie.
    try:
        done_pid, _ = os.waitpid(pid, os.WNOHANG)
        if done_pid == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
