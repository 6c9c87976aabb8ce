"""TEST DOUBLE: a ComfyUI emulator for CPU tests. It is not ComfyUI and runs no model.

It speaks ComfyUI's HTTP and websocket protocol (as in ComfyUI v0.8.0's server.py, execution.py and main.py)
closely enough for gpu_worker/comfy.py: `/prompt` (validation, 400 node_errors), `/history/{id}`, `/view`, `/upload/image`,
`/interrupt`, `/queue`, `/system_stats`, `/ws` (status, execution_start, execution_cached, executing, progress,
binary previews, executed, execution_success / execution_error / execution_interrupted, executing node=null).
The "video" it saves is a real small MP4 made by gpu_worker.preview from the uploaded image.

Faults (constructor `Faults` or `POST /emulator/faults` with the same JSON fields):
  reject_node: node id answered with a 400 value_not_in_list; error_at_step: execution_error after that
  sampler step; drop_ws_at_step: closes the client's socket after that step (once); step_delay_s: time per
  sampler step; start_delay_s: the port opens only after this delay (standalone `--start-delay`);
  ignore_interrupt: the samplers never check for interruption, like a slow custom node, so an interrupted prompt
  runs to its end; replay: a fixture file (gpu-worker/tests/fixtures/comfyui-*.json) whose recorded message
  sequence is sent instead of the emulator's own, with its prompt id replaced and the saved video's reference put
  into its `executed` message (step_delay_s paces its `progress` messages).

Standalone: python test/emulators/comfyui/server.py --port 8188 [--root DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from aiohttp import WSMsgType, web

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "gpu-worker"))
from gpu_worker.preview import render_preview  # noqa: E402

# ComfyUI v0.8.0's node classes as recorded (test/data/comfyui-object-info.json, no models installed): what
# `GET /object_info` answers and which classes `POST /prompt` knows.
OBJECT_INFO = json.loads((Path(__file__).resolve().parents[2] / "data" / "comfyui-object-info.json")
                         .read_text(encoding="utf-8"))["nodes"]
KNOWN_NODES = set(OBJECT_INFO)
OUTPUT_NODES = {"SaveVideo"}
WORKER_KEY = web.AppKey("worker", asyncio.Task)
PREVIEW_JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16 + b"\xff\xd9"  # enough bytes to look like a preview frame


@dataclass
class Faults:
    reject_node: str | None = None
    error_at_step: int | None = None
    drop_ws_at_step: int | None = None
    step_delay_s: float = 0.01
    start_delay_s: float = 0.0
    ignore_interrupt: bool = False
    replay: str | None = None


class ComfyEmulator:
    def __init__(self, root: str | None = None, faults: Faults | None = None):
        self._tmp = None if root else tempfile.TemporaryDirectory(prefix="comfy-emulator-")
        self.root = Path(root or self._tmp.name)
        self.input_dir, self.output_dir = self.root / "input", self.root / "output"
        self.input_dir.mkdir(parents=True, exist_ok=True)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.faults = faults or Faults()
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.history: dict[str, dict] = {}
        self.pending: list[tuple[int, str, dict, dict]] = []  # (number, prompt_id, graph, extra)
        self.running: tuple[int, str, dict, dict] | None = None
        self.interrupted: set[str] = set()
        self.prompts_seen: list[dict] = []
        self.interrupts = 0
        self.counter = 0
        self.wake = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle -------------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=200 * 1024 * 1024)
        for prefix in ("", "/api"):
            app.router.add_post(prefix + "/prompt", self.post_prompt)
            app.router.add_get(prefix + "/prompt", self.get_prompt)
            app.router.add_get(prefix + "/history/{id}", self.get_history)
            app.router.add_get(prefix + "/view", self.view)
            app.router.add_post(prefix + "/upload/image", self.upload)
            app.router.add_post(prefix + "/interrupt", self.interrupt)
            app.router.add_get(prefix + "/queue", self.get_queue)
            app.router.add_post(prefix + "/queue", self.post_queue)
            app.router.add_get(prefix + "/system_stats", self.system_stats)
            app.router.add_get(prefix + "/object_info", self.object_info)
        app.router.add_get("/ws", self.ws)
        app.router.add_post("/emulator/faults", self.set_faults)
        app.on_startup.append(self._start_worker)
        app.on_cleanup.append(self._stop_worker)
        return app

    async def _start_worker(self, app: web.Application) -> None:
        app[WORKER_KEY] = asyncio.create_task(self._worker())

    async def _stop_worker(self, app: web.Application) -> None:
        app[WORKER_KEY].cancel()
        await asyncio.gather(app[WORKER_KEY], return_exceptions=True)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.runner = web.AppRunner(self.app(), access_log=None)
        await self.runner.setup()
        if self.faults.start_delay_s:
            await asyncio.sleep(self.faults.start_delay_s)
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        for ws in list(self.sockets.values()):
            await ws.close()
        if self.runner:
            await self.runner.cleanup()
        if self._tmp:
            self._tmp.cleanup()

    # ---- websocket ---------------------------------------------------------------------------------------
    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        self.sockets[sid] = ws
        await ws.send_json({"type": "status", "data": {"status": self._queue_info(), "sid": sid}})
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
        if self.sockets.get(sid) is ws:
            del self.sockets[sid]
        return ws

    async def _send(self, client_id: str | None, kind: str, data: dict) -> None:
        targets = [self.sockets.get(client_id)] if client_id else list(self.sockets.values())
        for ws in targets:
            if ws is not None and not ws.closed:
                try:
                    await ws.send_json({"type": kind, "data": data})
                except ConnectionError:
                    pass

    def _queue_info(self) -> dict:
        return {"exec_info": {"queue_remaining": len(self.pending) + (1 if self.running else 0)}}

    # ---- HTTP routes ---------------------------------------------------------------------------------------
    async def post_prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        graph = body.get("prompt")
        if not isinstance(graph, dict):
            return web.json_response({"error": {"type": "no_prompt", "message": "No prompt provided",
                                                "details": "No prompt provided", "extra_info": {}},
                                      "node_errors": {}}, status=400)
        for node_id, node in graph.items():
            if node.get("class_type") not in KNOWN_NODES:
                return web.json_response({"error": {
                    "type": "missing_node_type", "message": f"Node '{node.get('class_type')}' not found",
                    "details": f"Node ID '#{node_id}'",
                    "extra_info": {"node_id": node_id, "class_type": node.get("class_type")}},
                    "node_errors": {}}, status=400)
        outputs = [nid for nid, node in graph.items() if node["class_type"] in OUTPUT_NODES]
        if not outputs:
            return web.json_response({"error": {"type": "prompt_no_outputs", "message": "Prompt has no outputs",
                                                "details": "", "extra_info": {}}, "node_errors": {}}, status=400)
        node_errors = self._validate(graph, outputs)
        if node_errors:
            return web.json_response({"error": {"type": "prompt_outputs_failed_validation",
                                                "message": "Prompt outputs failed validation", "details": "",
                                                "extra_info": {}}, "node_errors": node_errors}, status=400)
        prompt_id = body.get("prompt_id") or str(uuid.uuid4())
        self.counter += 1
        extra = {"client_id": body.get("client_id")}
        self.pending.append((self.counter, prompt_id, graph, extra))
        self.prompts_seen.append(graph)
        self.wake.set()
        return web.json_response({"prompt_id": prompt_id, "number": self.counter, "node_errors": {}})

    def _validate(self, graph: dict, outputs: list[str]) -> dict:
        errors = {}
        for node_id, node in graph.items():
            problems = []
            for name, value in node.get("inputs", {}).items():
                if isinstance(value, list) and len(value) == 2 and str(value[0]) not in graph:
                    problems.append({"type": "bad_linked_input", "message": "Bad linked input",
                                     "details": f"{name} links to missing node {value[0]}",
                                     "extra_info": {"input_name": name}})
            if node["class_type"] == "LoadImage" and not (self.input_dir / node["inputs"].get("image", "")).is_file():
                problems.append({"type": "custom_validation_failed", "message": "Custom validation failed",
                                 "details": f"Invalid image file: {node['inputs'].get('image')}",
                                 "extra_info": {"input_name": "image"}})
            if node_id == self.faults.reject_node:
                name = next(iter(node["inputs"]), "value")
                problems.append({"type": "value_not_in_list", "message": "Value not in list",
                                 "details": f"{name}: '{node['inputs'].get(name)}' not in []",
                                 "extra_info": {"input_name": name, "received_value": node["inputs"].get(name)}})
            if problems:
                errors[node_id] = {"errors": problems, "dependent_outputs": outputs,
                                   "class_type": node["class_type"]}
        return errors

    async def get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response(self._queue_info())

    async def get_history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def view(self, request: web.Request) -> web.StreamResponse:
        kind = request.query.get("type", "output")
        base = {"output": self.output_dir, "input": self.input_dir}.get(kind)
        name, sub = request.query.get("filename", ""), request.query.get("subfolder", "")
        if base is None or not name or "/" in name or ".." in name:
            return web.Response(status=400)
        path = (base / sub / name).resolve()
        if not str(path).startswith(str(base.resolve())):
            return web.Response(status=403)
        if not path.is_file():
            return web.Response(status=404)
        return web.FileResponse(path)

    async def upload(self, request: web.Request) -> web.Response:
        post = await request.post()
        image = post.get("image")
        if image is None or not hasattr(image, "file"):
            return web.Response(status=400)
        sub = str(post.get("subfolder", ""))
        folder = self.input_dir / sub
        folder.mkdir(parents=True, exist_ok=True)
        name = Path(image.filename).name
        overwrite = str(post.get("overwrite", "")).lower() in ("true", "1")
        target = folder / name
        index = 1
        while target.exists() and not overwrite:
            target = folder / f"{Path(name).stem} ({index}){Path(name).suffix}"
            index += 1
        target.write_bytes(image.file.read())
        return web.json_response({"name": target.name, "subfolder": sub, "type": "input"})

    async def interrupt(self, request: web.Request) -> web.Response:
        self.interrupts += 1
        body = await request.json() if request.can_read_body else {}
        target = (body or {}).get("prompt_id")
        if self.running and (target is None or target == self.running[1]):
            self.interrupted.add(self.running[1])
        return web.Response(status=200)

    async def get_queue(self, request: web.Request) -> web.Response:
        as_list = lambda item: [item[0], item[1], item[2], item[3], []]  # noqa: E731
        return web.json_response({"queue_running": [as_list(self.running)] if self.running else [],
                                  "queue_pending": [as_list(item) for item in self.pending]})

    async def post_queue(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            self.pending.clear()
        delete = set(body.get("delete") or [])
        self.pending = [item for item in self.pending if item[1] not in delete]
        return web.Response(status=200)

    async def object_info(self, request: web.Request) -> web.Response:
        return web.json_response(OBJECT_INFO)

    async def system_stats(self, request: web.Request) -> web.Response:
        return web.json_response({
            "system": {"os": "posix", "ram_total": 0, "ram_free": 0, "comfyui_version": "emulator",
                       "python_version": sys.version, "pytorch_version": "none", "embedded_python": False,
                       "argv": ["emulator"]},
            "devices": [{"name": "Emulated GPU (test double)", "type": "cpu", "index": 0, "vram_total": 0,
                         "vram_free": 0, "torch_vram_total": 0, "torch_vram_free": 0}]})

    async def set_faults(self, request: web.Request) -> web.Response:
        body = await request.json()
        allowed = {f.name for f in fields(Faults)}
        for key, value in body.items():
            if key in allowed:
                setattr(self.faults, key, value)
        return web.json_response(asdict(self.faults))

    # ---- execution -----------------------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            if not self.pending:
                self.wake.clear()
                await self.wake.wait()
                continue
            self.running = self.pending.pop(0)
            number, prompt_id, graph, extra = self.running
            try:
                await self._execute(prompt_id, graph, extra.get("client_id"))
            except Exception as exc:  # the emulator's own bug: report it like ComfyUI would
                await self._fail(prompt_id, extra.get("client_id"), "?", "?", repr(exc))
            self.running = None
            await self._send(None, "status", {"status": self._queue_info()})

    async def _replay(self, prompt_id: str, graph: dict, client_id: str | None) -> None:
        fixture = json.loads(Path(self.faults.replay).read_text(encoding="utf-8"))
        recorded_id = fixture["prompt_id"]
        messages, outputs = [], {}
        for message in fixture["messages"]:
            kind = message["type"]
            data = json.loads(json.dumps(message["data"]).replace(recorded_id, prompt_id))
            if kind == "executed":
                ref = await self._save_video(graph, graph[data["node"]])
                data["output"] = outputs[data["node"]] = {"images": [ref], "animated": [True]}
            if kind in ("execution_start", "execution_cached", "execution_success"):
                messages.append([kind, data])
            if kind == "executing" and data["node"] is None:
                self._record(prompt_id, graph, "success", messages, outputs, client_id)
            if kind == "progress":
                await asyncio.sleep(self.faults.step_delay_s)
            await self._send(None if kind == "status" else client_id, kind, data)

    async def _execute(self, prompt_id: str, graph: dict, client_id: str | None) -> None:
        if self.faults.replay:
            return await self._replay(prompt_id, graph, client_id)
        messages = []

        async def emit(kind: str, data: dict) -> None:
            data = {**data, "prompt_id": prompt_id}
            if kind in ("execution_start", "execution_cached", "execution_success", "execution_error",
                        "execution_interrupted"):
                messages.append([kind, {**data, "timestamp": int(time.time() * 1000)}])
            await self._send(client_id, kind, data)

        await emit("execution_start", {})
        await emit("execution_cached", {"nodes": []})
        outputs, step_total, dropped = {}, 0, False
        for node_id, node in graph.items():
            await emit("executing", {"node": node_id, "display_node": node_id})
            if "KSampler" in node["class_type"]:
                for value, maximum in self._sampler_steps(node):
                    await asyncio.sleep(self.faults.step_delay_s)
                    if prompt_id in self.interrupted and not self.faults.ignore_interrupt:
                        await emit("execution_interrupted", {"node_id": node_id, "node_type": node["class_type"],
                                                             "executed": []})
                        self._record(prompt_id, graph, "error", messages, {}, client_id)
                        return await self._send(client_id, "executing", {"node": None, "prompt_id": prompt_id})
                    step_total += 1
                    await emit("progress", {"value": value, "max": maximum, "node": node_id})
                    await self._send_preview(client_id)
                    if self.faults.error_at_step == step_total:
                        return await self._fail(prompt_id, client_id, node_id, node["class_type"],
                                                "Allocation on device failed (emulated OOM)", messages, graph)
                    if self.faults.drop_ws_at_step == step_total and not dropped and client_id in self.sockets:
                        dropped = True
                        await self.sockets[client_id].close()
            if node["class_type"] == "SaveVideo":
                ref = await self._save_video(graph, node)
                outputs[node_id] = {"images": [ref], "animated": [True]}
                await emit("executed", {"node": node_id, "display_node": node_id, "output": outputs[node_id]})
        await emit("execution_success", {})
        self._record(prompt_id, graph, "success", messages, outputs, client_id)
        await self._send(client_id, "executing", {"node": None, "prompt_id": prompt_id})

    @staticmethod
    def _sampler_steps(node: dict) -> list[tuple[int, int]]:
        inputs = node["inputs"]
        steps = int(inputs.get("steps", 1))
        if node["class_type"] == "KSamplerAdvanced":
            start = int(inputs.get("start_at_step", 0))
            end = min(int(inputs.get("end_at_step", steps)), steps)
            steps = max(0, end - start)
        return [(k, steps) for k in range(1, steps + 1)]

    async def _send_preview(self, client_id: str | None) -> None:
        ws = self.sockets.get(client_id or "")
        if ws is not None and not ws.closed:
            try:
                await ws.send_bytes(struct.pack(">II", 1, 1) + PREVIEW_JPEG)  # event 1 = PREVIEW_IMAGE, JPEG
            except ConnectionError:
                pass

    async def _save_video(self, graph: dict, save_node: dict) -> dict:
        by_class = {}
        for node in graph.values():
            by_class.setdefault(node["class_type"], node)
        # Wan's latent node sizes the video; a graph without one (frames repeated from a scaled image) is sized by
        # its ImageScale and RepeatImageBatch.
        latent = by_class.get("WanImageToVideo") or by_class.get("WanSoundImageToVideo")
        if latent is None:
            scale = by_class.get("ImageScale", {"inputs": {}})["inputs"]
            repeat = by_class.get("RepeatImageBatch", {"inputs": {}})["inputs"]
            latent = {"inputs": {"width": scale.get("width", 640), "height": scale.get("height", 640),
                                 "length": repeat.get("amount", 81)}}
        image_node = by_class.get("LoadImage")
        audio_node = by_class.get("LoadAudio")
        fps = int(by_class.get("CreateVideo", {"inputs": {}})["inputs"].get("fps", 16))
        prefix = save_node["inputs"].get("filename_prefix", "video/ComfyUI")
        sub, _, stem = prefix.rpartition("/")
        folder = self.output_dir / sub
        folder.mkdir(parents=True, exist_ok=True)
        index = len(list(folder.glob(f"{stem}_*.mp4"))) + 1
        name = f"{stem}_{index:05d}_.mp4"
        audio = self.input_dir / audio_node["inputs"]["audio"] if audio_node else None
        await asyncio.to_thread(
            render_preview, self.input_dir / image_node["inputs"]["image"], folder / name,
            width=int(latent["inputs"].get("width", 640)), height=int(latent["inputs"].get("height", 640)),
            fps=fps, frames=int(latent["inputs"].get("length", 81)), audio_path=audio)
        return {"filename": name, "subfolder": sub, "type": "output"}

    async def _fail(self, prompt_id, client_id, node_id, node_type, message, messages=None, graph=None):
        data = {"prompt_id": prompt_id, "node_id": node_id, "node_type": node_type, "executed": [],
                "exception_message": message, "exception_type": "torch.OutOfMemoryError", "traceback": [],
                "current_inputs": {}, "current_outputs": {}, "timestamp": int(time.time() * 1000)}
        messages = (messages or []) + [["execution_error", data]]
        await self._send(client_id, "execution_error", data)
        self._record(prompt_id, graph or {}, "error", messages, {}, client_id)
        await self._send(client_id, "executing", {"node": None, "prompt_id": prompt_id})

    def _record(self, prompt_id, graph, status, messages, outputs, client_id) -> None:
        self.history[prompt_id] = {
            "prompt": [self.counter, prompt_id, graph, {"client_id": client_id}, list(outputs)],
            "outputs": outputs,
            "status": {"status_str": status, "completed": status == "success", "messages": messages},
            "meta": {nid: {"node_id": nid, "display_node": nid, "parent_node": None, "real_node_id": nid}
                     for nid in outputs},
        }


async def _main(args) -> None:
    emulator = ComfyEmulator(root=args.root, faults=Faults(start_delay_s=args.start_delay))
    url = await emulator.start(args.host, args.port)
    print(json.dumps({"event": "listening", "url": url, "test_double": "comfyui-emulator"}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="ComfyUI emulator (test double)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--root", default=None, help="folder for input/ and output/ (default: a temp dir)")
    parser.add_argument("--start-delay", type=float, default=0.0, help="seconds before the port opens")
    try:
        asyncio.run(_main(parser.parse_args()))
    except KeyboardInterrupt:
        pass
