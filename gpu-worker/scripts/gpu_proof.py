"""The GPU proof (scripts/gpu-proof): the whole wan path on a real GPU without downloading a single weight.

Sampling time does not depend on the weights' values, so this builds random-weight checkpoints with the file names
the workflows load and, for each, the tensor names, shapes and dtypes of ComfyUI's own model classes (instantiated
on torch's meta device: nothing is allocated), so ComfyUI's loader detects them as the real models. Then it starts
the GPU worker in pod mode, which starts ComfyUI, runs an i2v job (640x640, 81 frames, 4 steps) and an s2v job
through the pod API with inputs and output on a local file server, and prints load time, seconds per step, total
time and peak VRAM. The video is noise; the timings and the path (load, both experts, decode, encode, upload,
progress) are real.

Layouts, from ComfyUI v0.8.0's loaders: the fp8_scaled files keep every Linear weight of the transformer blocks as
float8_e4m3fn with a float32 `<layer>.scale_weight` and a `scaled_fp8` marker (comfy/utils.py convert_old_quants),
everything else bf16; the LoRAs put `lora_down`/`lora_up` pairs (rank 64) on the blocks' Linear layers under
`diffusion_model.`; the VAE is bf16, the audio encoder fp16. The real files may differ in the dtype of small
non-quantized tensors; that does not move the timings.

Needs torch and a ComfyUI checkout whose requirements are installed for --python (the Docker image has both).
`--scale tiny` builds small models with the same names and layout (for a CPU check of the builder and ComfyUI's
detection); `--check` stops after the worker's health check.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import math
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path

WORKER_ROOT = Path(__file__).resolve().parents[1]
I2V_HIGH = "diffusion_models/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"
I2V_LOW = "diffusion_models/wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors"
S2V = "diffusion_models/wan2.2_s2v_14B_fp8_scaled.safetensors"
# What each file of the workflows is built as: (model, layout).
FILES = {
    I2V_HIGH: ("wan_i2v", "fp8_scaled"),
    I2V_LOW: ("wan_i2v", "fp8_scaled"),
    S2V: ("wan_s2v", "fp8_scaled"),
    "loras/wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors": ("lora_i2v", "lora"),
    "loras/wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors": ("lora_i2v", "lora"),
    "loras/wan2.2_t2v_lightx2v_4steps_lora_v1.1_high_noise.safetensors": ("lora_s2v", "lora"),
    "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors": ("umt5_xxl", "fp8_scaled"),
    "vae/wan_2.1_vae.safetensors": ("wan21_vae", "bf16"),
    "audio_encoders/wav2vec2_large_english_fp16.safetensors": ("wav2vec2_large", "fp16"),
}
# Wan 2.2 A14B (Wan-AI's config: dim 5120, 40 heads, 40 layers, ffn 13824); `tiny` keeps the names, not the size.
SCALES = {
    "full": {"dim": 5120, "ffn_dim": 13824, "num_heads": 40, "num_layers": 40},
    "tiny": {"dim": 256, "ffn_dim": 512, "num_heads": 2, "num_layers": 2},
}
LORA_RANK = 64
I2V_PARAMS = {"width": 640, "height": 640, "frames": 81, "fps": 16, "steps": 4, "seed": 7, "prompt": "a lighthouse"}
S2V_PARAMS = {"width": 640, "height": 640, "frames": 81, "fps": 16, "steps": 4, "seed": 7, "prompt": "a singer"}
SAFETENSORS_DTYPES = {"float8_e4m3fn": "F8_E4M3", "bfloat16": "BF16", "float16": "F16", "float32": "F32"}


@dataclass
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # torch dtype name: float8_e4m3fn, bfloat16, float16, float32

    @property
    def nbytes(self) -> int:
        width = {"float8_e4m3fn": 1, "bfloat16": 2, "float16": 2, "float32": 4}[self.dtype]
        return math.prod(self.shape) * width


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpu-proof", description="Wan 2.2 on a GPU with random weights: timings.")
    parser.add_argument("--comfy-dir", required=True, type=Path, help="ComfyUI checkout (the image's: /comfyui)")
    parser.add_argument("--python", default=sys.executable, help="python with torch and ComfyUI's requirements")
    parser.add_argument("--models", type=Path, default=Path("gpu-proof-models"),
                        help="where the random-weight checkpoints go (about 45 GB at full scale)")
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--cpu", action="store_true", help="run ComfyUI with --cpu (a check, not a measurement)")
    parser.add_argument("--skip-build", action="store_true", help="reuse the checkpoints already in --models")
    parser.add_argument("--check", action="store_true", help="stop after the worker's health check")
    parser.add_argument("--detect", action="store_true",
                        help="after building, load the files with ComfyUI's loaders and say what they detect")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds each job may take")
    parser.add_argument("--report", type=Path, help="also write the figures as JSON here")
    return parser.parse_args(argv)


# ---- checkpoints --------------------------------------------------------------------------------------------


def _import_comfy(comfy_dir: Path):
    """ComfyUI's modules, importable from its folder; on a machine without CUDA its device probe is told `--cpu`."""
    sys.path.insert(0, str(comfy_dir))
    import torch

    import comfy.cli_args

    if not torch.cuda.is_available():
        comfy.cli_args.args.cpu = True
    import comfy.ops  # noqa: F401


def _linear_layers(module, prefix: str = "") -> list[str]:
    import torch

    return [f"{prefix}{name}" for name, m in module.named_modules() if isinstance(m, torch.nn.Linear)]


def _build_module(model: str, scale: str):
    """ComfyUI's own class for the file, on the meta device."""
    import torch

    import comfy.ops

    ops, size = comfy.ops.disable_weight_init, SCALES[scale]
    with torch.device("meta"):
        if model in ("wan_i2v", "lora_i2v"):
            from comfy.ldm.wan.model import WanModel

            # Wan 2.2 I2V A14B: no CLIP image embedding; the image latent comes in as 20 more channels (36).
            return WanModel(model_type="t2v", in_dim=36, out_dim=16, text_dim=4096, operations=ops,
                            dtype=torch.bfloat16, **size)
        if model in ("wan_s2v", "lora_s2v"):
            from comfy.ldm.wan.model import WanModel_S2V

            # The class's default audio injectors (12) at every scale: ComfyUI's loader builds that many.
            return WanModel_S2V(in_dim=16, out_dim=16, text_dim=4096, operations=ops, dtype=torch.bfloat16, **size)
        if model == "umt5_xxl":
            from comfy.text_encoders.t5 import T5

            config = json.loads((Path(comfy.ops.__file__).parent / "text_encoders" / "umt5_config_xxl.json")
                                .read_text())
            if scale == "tiny":
                config.update(num_layers=2)
            return T5(config, torch.bfloat16, None, ops)
        if model == "wan21_vae":
            from comfy.ldm.wan.vae import WanVAE

            dim = 96 if scale == "full" else 16
            return WanVAE(dim=dim, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                          temperal_downsample=[False, True, True], image_channels=3, dropout=0.0)
        if model == "wav2vec2_large":
            from comfy.audio_encoders.wav2vec2 import Wav2Vec2Model

            layers = 24 if scale == "full" else 2
            return Wav2Vec2Model(embed_dim=1024, num_heads=16, num_layers=layers, conv_norm=True, conv_bias=True,
                                 do_normalize=True, do_stable_layer_norm=True, dtype=torch.float16, operations=ops)
    raise ValueError(f"unknown model {model}")


def checkpoint_specs(model: str, layout: str, scale: str) -> list[TensorSpec]:
    """Tensor names, shapes and dtypes of one file, from ComfyUI's class (nothing allocated)."""
    module = _build_module(model, scale)
    if layout == "lora":
        specs = []
        for layer in _linear_layers(module):
            if not layer.startswith("blocks."):
                continue
            weight = module.get_submodule(layer).weight
            out_features, in_features = weight.shape
            specs.append(TensorSpec(f"diffusion_model.{layer}.lora_down.weight", (LORA_RANK, in_features), "bfloat16"))
            specs.append(TensorSpec(f"diffusion_model.{layer}.lora_up.weight", (out_features, LORA_RANK), "bfloat16"))
        return specs
    state = {name: tuple(t.shape) for name, t in module.state_dict().items()}
    if layout in ("bf16", "fp16"):
        dtype = "bfloat16" if layout == "bf16" else "float16"
        return [TensorSpec(name, shape, dtype) for name, shape in state.items()]
    quantized = {f"{layer}.weight" for layer in _linear_layers(module)
                 if layer.startswith(("blocks.", "encoder.block."))}
    specs = [TensorSpec("scaled_fp8", (), "float8_e4m3fn")]
    for name, shape in state.items():
        if name in quantized:
            specs.append(TensorSpec(name, shape, "float8_e4m3fn"))
            specs.append(TensorSpec(f"{name[:-len('.weight')]}.scale_weight", (), "float32"))
        else:
            specs.append(TensorSpec(name, shape, "bfloat16"))
    return specs


def write_checkpoint(path: Path, specs: list[TensorSpec], fill) -> int:
    """Writes a safetensors file tensor by tensor (never the whole model in memory); `fill(spec)` gives the bytes."""
    header, offset = {}, 0
    for spec in specs:
        header[spec.name] = {"dtype": SAFETENSORS_DTYPES[spec.dtype], "shape": list(spec.shape),
                             "data_offsets": [offset, offset + spec.nbytes]}
        offset += spec.nbytes
    header["__metadata__"] = {"format": "pt", "reelgate": "gpu-proof random weights"}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned, as safetensors writes it
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(raw)) + raw)
        for spec in specs:
            data = fill(spec)
            assert len(data) == spec.nbytes, spec
            out.write(data)
    return path.stat().st_size


def random_bytes(spec: TensorSpec) -> bytes:
    """Small random values (N(0, 0.02)); fp8 scales of 1, so no layer overflows into inf or NaN."""
    import torch

    dtype = getattr(torch, spec.dtype)
    if spec.name.endswith("scale_weight") or spec.name == "scaled_fp8":
        tensor = torch.ones(spec.shape, dtype=torch.float32).to(dtype)
    else:
        tensor = (torch.randn(spec.shape, dtype=torch.float32) * 0.02).to(dtype)
    return tensor.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()  # 1-d: a scalar views as bytes too


def detect(root: Path) -> dict[str, str]:
    """What ComfyUI's own loaders make of the files (loads them: use at `--scale tiny`, or with RAM to spare)."""
    import comfy.sd
    import comfy.utils
    from comfy.audio_encoders.audio_encoders import load_audio_encoder_from_sd

    found = {}
    for rel in (I2V_HIGH, S2V):
        model = comfy.sd.load_diffusion_model_state_dict(comfy.utils.load_torch_file(str(root / rel)))
        config = model.model.model_config
        found[rel] = f"{type(config).__name__} {config.unet_config.get('model_type')} in_dim={config.unet_config.get('in_dim')}"
    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(root / "vae/wan_2.1_vae.safetensors")))
    found["vae/wan_2.1_vae.safetensors"] = type(vae.first_stage_model).__module__
    audio = load_audio_encoder_from_sd(comfy.utils.load_torch_file(
        str(root / "audio_encoders/wav2vec2_large_english_fp16.safetensors")))
    found["audio_encoders/wav2vec2_large_english_fp16.safetensors"] = type(audio.model).__name__
    return found


def build_checkpoints(root: Path, scale: str, log=print) -> dict[str, int]:
    sizes = {}
    for rel, (model, layout) in FILES.items():
        started = time.monotonic()
        specs = checkpoint_specs(model, layout, scale)
        sizes[rel] = write_checkpoint(root / rel, specs, random_bytes)
        log(json.dumps({"event": "checkpoint", "file": rel, "tensors": len(specs), "bytes": sizes[rel],
                        "seconds": round(time.monotonic() - started, 1)}))
    return sizes


# ---- jobs through the pod API ---------------------------------------------------------------------------------


@dataclass
class JobFigures:
    model: str
    status: str
    total_s: float
    load_s: float | None = None  # from the job's start to its first sampling step
    s_per_step: float | None = None
    steps: int = 0
    peak_vram_gib: float | None = None
    video_bytes: int = 0
    video_sha256_ok: bool = False
    stages: dict[str, float] = field(default_factory=dict)  # stage -> seconds after submit when first seen
    error: str | None = None


def figures_from_timeline(model: str, status: str, total_s: float, timeline: list[tuple[float, dict]]) -> JobFigures:
    """Load time and seconds per step from the progress seen at /status: (seconds after submit, progress)."""
    figures = JobFigures(model=model, status=status, total_s=round(total_s, 2))
    steps: dict[int, float] = {}
    for at, progress in timeline:
        figures.stages.setdefault(progress.get("stage", "?"), round(at, 2))
        message = progress.get("message") or ""
        if progress.get("stage") == "sampling" and message.startswith("step "):
            done = int(message.split()[1].split("/")[0])
            steps.setdefault(done, at)
    if steps:
        first, last = min(steps), max(steps)
        figures.steps = last
        started = figures.stages.get("loading", 0.0)
        figures.load_s = round(steps[first] - started, 2)
        if last > first:
            figures.s_per_step = round((steps[last] - steps[first]) / (last - first), 2)
    return figures


def render_report(jobs: list[JobFigures], gpu: str) -> str:
    lines = [f"GPU proof on {gpu}: random weights, real path", "",
             "| job | status | load s | s/step | steps | total s | peak VRAM GiB | video bytes | sha256 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for j in jobs:
        cells = [j.model, j.status, j.load_s, j.s_per_step, j.steps, j.total_s, j.peak_vram_gib, j.video_bytes,
                 "ok" if j.video_sha256_ok else "MISMATCH"]
        lines.append("| " + " | ".join("n/a" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sine_wav(seconds: float, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 220 * i / rate)))
                               for i in range(int(seconds * rate))))
    return buf.getvalue()


def _png(size: int = 640) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.radial_gradient("L").resize((size, size)).convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


class VramSampler:
    """Peak GPU memory in use, sampled from nvidia-smi every half second (ComfyUI's own peak is not exposed)."""

    def __init__(self):
        self.peak_mib: float | None = None
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                used = max(float(v) for v in out.split())
                self.peak_mib = max(self.peak_mib or 0.0, used)
            except (OSError, ValueError, subprocess.SubprocessError):
                return  # no NVIDIA GPU here: the figure stays n/a
            await asyncio.sleep(0.5)

    def start(self) -> None:
        self.peak_mib = None
        self._task = asyncio.create_task(self._run())

    def stop(self) -> float | None:
        if self._task:
            self._task.cancel()
        return round(self.peak_mib / 1024, 2) if self.peak_mib else None


async def _serve_files(files: dict[str, bytes], puts: dict[str, bytes]):
    from aiohttp import web

    async def get(request):
        data = files.get(request.match_info["name"])
        return web.Response(body=data) if data is not None else web.Response(status=404)

    async def put(request):
        puts[request.match_info["name"]] = await request.read()
        return web.Response(status=200, headers={"ETag": '"proof"'})

    app = web.Application(client_max_size=4 * 1024**3)
    app.router.add_get("/files/{name}", get)
    app.router.add_put("/put/{name}", put)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def _model_paths_yaml(models: Path, work: Path) -> Path:
    text = (WORKER_ROOT / "extra_model_paths.yaml").read_text()
    path = work / "model_paths.yaml"
    path.write_text("\n".join(f"  base_path: {models.resolve()}" if line.strip().startswith("base_path:") else line
                              for line in text.splitlines()) + "\n")
    return path


def worker_env(args: argparse.Namespace, work: Path, comfy_port: int, pod_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "POD_", "COMFY_"))}
    env.update(DEPLOYMENT_MODE="pod", POD_HOST="127.0.0.1", POD_PORT=str(pod_port), PYTHONUNBUFFERED="1",
               ENABLED_MODELS="wan2.2-i2v,wan2.2-s2v", MODELS_ROOT=str(args.models.resolve()),
               COMFY_DIR=str(args.comfy_dir.resolve()), COMFY_URL=f"http://127.0.0.1:{comfy_port}",
               COMFY_MODEL_PATHS=str(_model_paths_yaml(args.models, work)), COMFY_START_TIMEOUT_S="1800",
               COMFY_ARGS="--cpu" if args.cpu else "", JOB_TIMEOUT_S=str(int(args.timeout)), WORK_DIR=str(work),
               PYTHONPATH=str(WORKER_ROOT))
    return env


async def _run_job(session, pod: str, model: str, raw: dict, timeout: float, puts: dict[str, bytes],
                   vram: VramSampler) -> JobFigures:
    submitted = time.monotonic()
    vram.start()
    async with session.post(f"{pod}/run", json={"input": raw}) as resp:
        job = await resp.json()
    timeline: list[tuple[float, dict]] = []
    while True:
        async with session.get(f"{pod}/status/{job['id']}") as resp:
            body = await resp.json()
        progress = (body.get("output") or {}).get("progress")
        if progress and (not timeline or timeline[-1][1] != progress):
            timeline.append((time.monotonic() - submitted, progress))
        if body["status"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"):
            break
        if time.monotonic() - submitted > timeout:
            async with session.post(f"{pod}/cancel/{job['id']}") as resp:
                await resp.read()
            body = {"status": "TIMED_OUT", "error": "gpu-proof gave up"}
            break
        await asyncio.sleep(0.25)
    figures = figures_from_timeline(model, body["status"], time.monotonic() - submitted, timeline)
    figures.peak_vram_gib = vram.stop()
    if body["status"] == "COMPLETED":
        video = body["output"]["video"]
        stored = puts.get(f"{model}.mp4", b"")
        figures.video_bytes = len(stored)
        figures.video_sha256_ok = hashlib.sha256(stored).hexdigest() == video["sha256"] and len(stored) == video["size"]
    else:
        figures.error = str(body.get("error"))
    return figures


async def run_proof(args: argparse.Namespace, log=print) -> tuple[list[JobFigures], str]:
    import aiohttp

    puts: dict[str, bytes] = {}
    files = {"image.png": _png(), "audio.wav": _sine_wav(5.0)}
    runner, host = await _serve_files(files, puts)
    comfy_port, pod_port = _free_port(), _free_port()
    with tempfile.TemporaryDirectory(prefix="gpu-proof-") as tmp:
        work = Path(tmp)
        proc = subprocess.Popen([args.python, "-m", "gpu_worker"], cwd=str(WORKER_ROOT),
                                env=worker_env(args, work, comfy_port, pod_port))
        pod = f"http://127.0.0.1:{pod_port}"
        try:
            async with aiohttp.ClientSession() as session:
                health = await _wait_healthy(session, pod, proc)
                gpu = health.get("gpu", "?")
                log(json.dumps({"event": "health", **health}))
                if args.check:
                    return [], gpu
                jobs = []
                for model, params, audio in (("wan2.2-i2v", I2V_PARAMS, False), ("wan2.2-s2v", S2V_PARAMS, True)):
                    raw = _job_input(host, model, params, audio)
                    figures = await _run_job(session, pod, model, raw, args.timeout, puts, VramSampler())
                    log(json.dumps({"event": "job", **asdict(figures)}))
                    jobs.append(figures)
                return jobs, gpu
        finally:
            proc.terminate()
            proc.wait(60)
            await runner.cleanup()


def _job_input(host: str, model: str, params: dict, audio: bool) -> dict:
    inputs = {"image": {"url": f"{host}/files/image.png", "content_type": "image/png"}}
    if audio:
        inputs["audio"] = {"url": f"{host}/files/audio.wav", "content_type": "audio/wav"}
    return {"model": model, "inputs": inputs, "params": params,
            "output": {"content_type": "video/mp4", "put": {"url": f"{host}/put/{model}.mp4", "headers": {}}}}


async def _wait_healthy(session, pod: str, proc: subprocess.Popen) -> dict:
    """The worker's health check, once it listens (it starts ComfyUI first, which may take minutes)."""
    import aiohttp

    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the worker exited with code {proc.returncode} before it answered")
        try:
            async with session.post(f"{pod}/runsync", json={"input": {"health_check": True}}) as resp:
                body = await resp.json()
            health = (body.get("output") or {}).get("health_check") or {}
            if not health.get("ok"):
                raise SystemExit(f"the worker is not healthy: {json.dumps(health)}")
            return health
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.skip_build or args.detect:
        _import_comfy(args.comfy_dir)
    if not args.skip_build:
        build_checkpoints(args.models, args.scale)
    if args.detect:
        print(json.dumps({"event": "detected", **detect(args.models)}))
    jobs, gpu = asyncio.run(run_proof(args))
    if args.check:
        return 0
    print(render_report(jobs, gpu))
    if args.report:
        args.report.write_text(json.dumps({"gpu": gpu, "scale": args.scale, "jobs": [asdict(j) for j in jobs]},
                                          indent=2))
    return 0 if all(j.status == "COMPLETED" and j.video_sha256_ok for j in jobs) else 1
