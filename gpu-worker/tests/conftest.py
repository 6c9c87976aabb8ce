"""Shared fixtures: media made on the fly, a local HTTP server standing in for R2 signed URLs, settings."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import math
import struct
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from PIL import Image

from gpu_worker.config import KNOWN_MODELS, SETTINGS

REPO_ROOT = Path(__file__).resolve().parents[2]
SIGNATURE = "X-Amz-Signature=supersecret"  # must never show up in logs or error messages


def load_emulator_module():
    path = REPO_ROOT / "test" / "emulators" / "comfyui" / "server.py"
    spec = importlib.util.spec_from_file_location("comfyui_emulator", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["comfyui_emulator"] = module
    spec.loader.exec_module(module)
    return module


def make_png(width: int = 320, height: int = 200) -> bytes:
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def make_wav(seconds: float = 1.5, rate: int = 22050) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        samples = (int(9000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate)))
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return buf.getvalue()


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]] | None = None) -> Path:
    """A small, whole safetensors file (zeros), so the worker's load check passes; `tensors` maps name to
    (dtype, shape). Written by hand from the format (8-byte little-endian header length, JSON header, data)."""
    import json

    widths = {"F16": 2, "BF16": 2, "F32": 4, "F8_E4M3": 1, "U8": 1}
    header, offset = {}, 0
    for name, (dtype, shape) in (tensors or {"weight": ("F16", [4, 4])}).items():
        size = math.prod(shape) * widths[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))
    return path


class FileHost:
    """Serves GET /files/<name> and accepts PUT /put/<name>, like signed R2 URLs. `fail[path] = [503, ...]`
    makes the next requests to that path answer those statuses first; `fail_after_store[path]` stores the body
    first, then answers so (the answer lost on its way back). A PUT with `If-None-Match: *` over a stored object
    gets 412, as from R2. POST /parts plays the Worker's parts request."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.puts: dict[str, dict] = {}
        self.fail: dict[str, list[int]] = {}
        self.fail_after_store: dict[str, list[int]] = {}
        self.requests: list[tuple[str, str]] = []
        self.webhooks: list[dict] = []
        self.parts_asked: list[dict] = []
        self.part_size = 100_000
        self.base = ""

    def url(self, path: str) -> str:
        return f"{self.base}{path}?{SIGNATURE}&X-Amz-Expires=600"

    def _fault(self, request: web.Request) -> web.Response | None:
        self.requests.append((request.method, request.path))
        queue = self.fail.get(request.path)
        if queue:
            return web.Response(status=queue.pop(0), text="injected failure")
        return None

    async def get_file(self, request: web.Request) -> web.StreamResponse:
        if (fault := self._fault(request)) is not None:
            return fault
        if request.query.get("X-Amz-Signature") != "supersecret":
            return web.Response(status=403)
        data = self.files.get(request.match_info["name"])
        return web.Response(body=data) if data is not None else web.Response(status=404)

    async def put_file(self, request: web.Request) -> web.Response:
        if (fault := self._fault(request)) is not None:
            await request.read()
            return fault
        body = await request.read()
        name = request.match_info["name"]
        if request.headers.get("If-None-Match") == "*" and name in self.puts:
            return web.Response(status=412, text="PreconditionFailed")
        self.puts[name] = {"body": body, "headers": dict(request.headers)}
        if queue := self.fail_after_store.get(request.path):
            return web.Response(status=queue.pop(0), text="injected failure after storing")
        return web.Response(status=200, headers={"ETag": f'"{hashlib.md5(body).hexdigest()}"'})

    async def parts(self, request: web.Request) -> web.Response:
        """The Worker's parts request (`output.parts_url`): `{size}` in, URLs of `part_size`-byte parts out."""
        if (fault := self._fault(request)) is not None:
            return fault
        asked = await request.json()
        self.parts_asked.append(asked)
        count = max(1, -(-asked["size"] // self.part_size))
        parts = [{"part_number": n, "url": self.url(f"/put/part{n}"), "headers": {}} for n in range(1, count + 1)]
        return web.json_response({"part_size": self.part_size, "parts": parts})

    async def webhook(self, request: web.Request) -> web.Response:
        if (fault := self._fault(request)) is not None:
            return fault
        self.webhooks.append(await request.json())
        return web.Response(status=200)


@pytest.fixture
async def file_host():
    host = FileHost()
    app = web.Application(client_max_size=512 * 1024 * 1024)
    app.router.add_get("/files/{name}", host.get_file)
    app.router.add_put("/put/{name}", host.put_file)
    app.router.add_post("/webhook", host.webhook)
    app.router.add_post("/parts", host.parts)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    host.files["image.png"] = make_png()
    host.files["audio.wav"] = make_wav()
    yield host
    await runner.cleanup()


@pytest.fixture
def settings(tmp_path):
    models_root = tmp_path / "models"
    models_root.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    return dataclasses.replace(SETTINGS, enabled_models=KNOWN_MODELS, models_root=str(models_root),
                               work_dir=str(work), http_backoff_s=0.01, http_attempts=3, job_timeout_s=60)


def job_input(host: FileHost, model: str = "preview", *, audio: bool = False, params: dict | None = None,
              output: dict | None = None) -> dict:
    inputs = {"image": {"url": host.url("/files/image.png"), "content_type": "image/png"}}
    if audio:
        inputs["audio"] = {"url": host.url("/files/audio.wav"), "content_type": "audio/wav"}
    return {
        "model": model,
        "inputs": inputs,
        "params": params or {"prompt": "a cat", "width": 160, "height": 128, "fps": 8, "frames": 9, "seed": 1},
        "output": output or {"content_type": "video/mp4",
                             "put": {"url": host.url("/put/out.mp4"), "headers": {"content-type": "video/mp4"}}},
    }


_EMULATOR = None


def emulator_module():
    global _EMULATOR
    if _EMULATOR is None:
        _EMULATOR = load_emulator_module()
    return _EMULATOR


@pytest.fixture
async def comfy():
    """A running ComfyUI emulator (test double); set `comfy.faults.*` to inject failures."""
    emulator = emulator_module().ComfyEmulator()
    emulator.url = await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
def wan_settings(settings, comfy):
    """Settings pointing at the emulator, with a MODELS_ROOT of small whole safetensors files so the check passes."""
    fill_models(Path(settings.models_root))
    return dataclasses.replace(settings, comfy_url=comfy.url)


def fill_models(root: Path, models=("wan2.2-i2v", "wan2.2-s2v")) -> None:
    from gpu_worker.models import required_files

    for model in models:
        for rel in required_files(model):
            write_safetensors(root / rel)
