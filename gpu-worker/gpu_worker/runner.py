"""One job from raw input to protocol output, shared by the RunPod handler and the pod server.

`run_job` never raises for a job failure: it returns `{"video": {...}}` or `{"error": {"code", "message"}}`.
It lets asyncio.CancelledError through, so the caller (RunPod SDK, pod server) sees its own cancellation;
ComfyUI is interrupted on the way out.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import traceback
from pathlib import Path
from typing import Callable

import aiohttp

from . import comfy_process, preview
from .comfy import ComfyClient, find_video_output
from .comfy_progress import SamplingProgress
from .config import COMFY_MODELS, SETTINGS, Settings
from .errors import WorkerError, error_body, error_from_exception
from .job import JobInput, Workflow, parse_job_input, resolve_frames
from .log import log_event
from .loras import fetch_loras
from .model_fetch import fetch_model_file
from .models import check_models, describe, file_problems, needed_file_problems
from .transfer import download_input, new_job_dir, upload_output
from .workflow import build_workflow, load_template

ProgressCallback = Callable[[dict], None]  # receives {"stage", "percent", "message"}
EventCallback = Callable[[dict], None]  # receives what the job's history should keep, e.g. how a cancel stopped ComfyUI

# Overall percent span of each stage, so `percent` only grows through the job.
STAGES = {
    "preview": {"downloading": (0, 10), "loading": (10, 15), "encoding": (15, 90), "uploading": (90, 100)},
    "comfy": {"downloading": (0, 5), "loading": (5, 10), "sampling": (10, 85), "encoding": (85, 92),
              "uploading": (92, 100)},
}
EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "audio/mpeg": ".mp3",
              "audio/mp3": ".mp3", "audio/flac": ".flac", "audio/x-flac": ".flac", "audio/ogg": ".ogg",
              "audio/opus": ".ogg"}


class Progress:
    def __init__(self, callback: ProgressCallback | None, kind: str):
        self.callback = callback
        self.spans = STAGES[kind]
        self.last = -1

    def __call__(self, stage: str, fraction: float = 0.0, message: str | None = None) -> None:
        lo, hi = self.spans[stage]
        percent = max(self.last, int(lo + (hi - lo) * min(max(fraction, 0.0), 1.0)))
        self.last = percent
        update = {"stage": stage, "percent": percent}
        if message:
            update["message"] = message
        if self.callback:
            try:
                self.callback(update)
            except Exception as exc:  # a broken progress sink must not fail the job
                log_event("progress_callback_failed", reason=repr(exc))


async def run_job(job_id: str, raw_input, progress_cb: ProgressCallback | None = None,
                  cancel_event: asyncio.Event | None = None, *, settings: Settings = SETTINGS,
                  on_event: EventCallback | None = None) -> dict:
    task = asyncio.create_task(_run_with_timeout(job_id, raw_input, progress_cb, settings, on_event))
    if cancel_event is None:
        return await task
    waiter = asyncio.create_task(cancel_event.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        waiter.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    waiter.cancel()
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return error_body("canceled", "job canceled")


async def _run_with_timeout(job_id: str, raw_input, progress_cb, settings: Settings, on_event) -> dict:
    try:
        async with asyncio.timeout(settings.job_timeout_s):
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=30,
                                                                           sock_read=120)) as session:
                return await _run(job_id, raw_input, progress_cb, settings, session, on_event)
    except TimeoutError:
        return error_body("timeout", f"job exceeded {settings.job_timeout_s:.0f} s")
    except WorkerError as exc:
        log_event("job_failed", job_id=job_id, code=exc.code, message=exc.message)
        return exc.body()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log_event("job_crashed", job_id=job_id, error=repr(exc), traceback=traceback.format_exc())
        return error_from_exception(exc)


async def _run(job_id, raw_input, progress_cb, settings: Settings, session, on_event) -> dict:
    job = parse_job_input(raw_input)
    if job.health_check:
        return await _health(settings, session)
    if job.workflow is not None:
        # A model registered after this worker was deployed runs when its files and nodes are here.
        await _check_workflow_needs(job.workflow, settings, session)
    elif job.model not in settings.enabled_models:
        raise WorkerError("invalid_input", f"model {job.model} is not enabled on this worker")
    is_comfy = job.workflow is not None or job.model in COMFY_MODELS
    if is_comfy and job.workflow is None:
        check_models([job.model], settings.models_root)  # before downloading anything
    progress = Progress(progress_cb, "comfy" if is_comfy else "preview")
    log_event("job_started", job_id=job_id, model=job.model)
    with new_job_dir(settings.work_dir, job_id) as work:
        workdir = Path(work)
        image, audio = await _download_inputs(job, workdir, session, settings, progress)
        out_path = workdir / "output.mp4"
        if is_comfy:
            info = await _run_comfy(job_id, job, image, audio, out_path, session, settings, progress, on_event)
        else:
            info = await _run_preview(job, image, audio, out_path, progress)
        progress("uploading", 0.0)
        result = await upload_output(
            session, out_path, job.output, attempts=settings.http_attempts, backoff_s=settings.http_backoff_s,
            progress=lambda done, total: progress("uploading", done / max(total, 1)))
    video = {"content_type": job.output.content_type, "size": result.size, "sha256": result.sha256,
             "duration_s": info.duration_s, "width": info.width, "height": info.height, "fps": info.fps}
    if result.parts is not None:
        video["parts"] = result.parts
    log_event("job_completed", job_id=job_id, model=job.model, size=result.size)
    gpu = await _gpu_name(settings, session) if is_comfy else None
    return {"video": video, **({"gpu": gpu} if gpu else {})}


_gpu_seen: dict[str, str] = {}


async def _gpu_name(settings: Settings, session) -> str | None:
    """The GPU ComfyUI runs on, for the job's cost (asked once: a worker's GPU does not change); None if unknown."""
    if settings.comfy_url not in _gpu_seen:
        try:
            devices = (await ComfyClient(settings.comfy_url, session).system_stats()).get("devices") or []
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return None
        name = devices[0].get("name") if devices and isinstance(devices[0], dict) else None
        if not isinstance(name, str) or not name:
            return None
        _gpu_seen[settings.comfy_url] = name[:100]
    return _gpu_seen[settings.comfy_url]


async def _check_workflow_needs(workflow: Workflow, settings: Settings, session) -> None:
    """Fails with `models_missing` naming every weight file and custom node class the workflow needs and this
    machine lacks, before anything is downloaded."""
    if not settings.comfy_url:
        raise WorkerError("invalid_input", f"{workflow.model} runs on ComfyUI, which this worker does not run")
    problems = needed_file_problems(workflow.files, settings.models_root)
    # A file absent here that the job says where to fetch is fetched now (R2 copy, then public source).
    for need in workflow.files:
        if problems.get(need.path) == "missing" and (need.url or need.source):
            await fetch_model_file(session, need, settings.models_root)
            problems = needed_file_problems(workflow.files, settings.models_root)
    try:
        installed = await comfy_client(settings, session).object_info()
    except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
        log_event("comfy_unreachable", url=settings.comfy_url, reason=str(exc) or type(exc).__name__)
        raise WorkerError("inference_failed", f"ComfyUI did not answer ({type(exc).__name__})") from None
    repos = {n.class_type: f"{n.repository}@{n.commit[:12]}" for n in workflow.custom_nodes}
    classes = sorted({node["class_type"] for node in workflow.graph.values()} - set(installed))
    nodes = [f"{c} (from {repos[c]})" if c in repos else c for c in classes]
    if problems or nodes:
        parts = []
        if problems:
            parts.append(f"model files will not load: {describe(problems)}")
        if nodes:
            parts.append(f"node classes not installed: {', '.join(nodes)}")
        raise WorkerError("models_missing", "; ".join(parts))


def _bind_inputs(workflow: Workflow, names: dict[str, str | None]) -> dict:
    """The carried graph with each input file's name, as ComfyUI stored it, written where the manifest binds it."""
    graph = copy.deepcopy(workflow.graph)
    for kind, pairs in workflow.inputs.items():
        name = names.get(kind)
        if name is None:
            continue
        for node, input_name in pairs:
            graph[node]["inputs"][input_name] = name
    return graph


async def _download_inputs(job: JobInput, workdir: Path, session, settings: Settings, progress):
    progress("downloading", 0.0)
    sources = [("image", job.image), ("audio", job.audio)]
    sources = [(name, src) for name, src in sources if src is not None]
    paths: dict[str, Path] = {}
    for index, (name, source) in enumerate(sources):
        suffix = EXTENSIONS.get(source.content_type or "", ".png" if name == "image" else ".wav")
        paths[name] = await download_input(session, source, str(workdir), f"{name}{suffix}",
                                           max_bytes=settings.max_input_bytes, attempts=settings.http_attempts,
                                           backoff_s=settings.http_backoff_s)
        progress("downloading", (index + 1) / len(sources), f"{name} downloaded")
    return paths["image"], paths.get("audio")


async def _run_preview(job: JobInput, image: Path, audio: Path | None, out_path: Path, progress):
    progress("loading", 0.0, "reading inputs")
    audio_s = await asyncio.to_thread(preview.probe_audio_duration, audio) if audio else None
    frames = resolve_frames(job.model, job.params, audio_s)
    loop = asyncio.get_running_loop()
    stop = threading.Event()  # a thread cannot be cancelled: the encoder checks this between frames

    def on_frames(done: int, total: int) -> None:
        if stop.is_set():
            raise WorkerError("canceled", "job canceled")
        loop.call_soon_threadsafe(progress, "encoding", done / total, f"frame {done}/{total}")

    p = job.params
    try:
        return await asyncio.to_thread(preview.render_preview, image, out_path, width=p.width, height=p.height,
                                       fps=p.fps, frames=frames, audio_path=audio, progress=on_frames)
    except asyncio.CancelledError:
        stop.set()
        raise


def _workflow_params(job_id: str, job: JobInput, image_name: str, audio_name: str | None, frames: int) -> dict:
    p = job.params
    safe_id = "".join(c if c.isalnum() or c in "-_" else "_" for c in job_id)[:64]
    params = {"prompt": p.prompt, "negative_prompt": p.negative_prompt, "image": image_name, "width": p.width,
              "height": p.height, "frames": frames, "seed": p.seed, "steps": p.steps, "fps": p.fps,
              "filename_prefix": f"video/reelgate_{safe_id}"}
    if job.model == "wan2.2-i2v":
        params["split_step"] = p.steps // 2  # high-noise expert first half, low-noise expert second half
    if job.model == "wan2.2-s2v":
        params["audio"] = audio_name
    return params


async def _run_comfy(job_id, job: JobInput, image: Path, audio: Path | None, out_path: Path, session,
                     settings: Settings, progress, on_event):
    try:
        return await _run_comfy_steps(job_id, job, image, audio, out_path, session, settings, progress, on_event)
    except (aiohttp.ClientError, ConnectionError) as exc:
        # The exception's text names this machine's ComfyUI address: the job's error says what failed, the log where.
        log_event("comfy_unreachable", url=settings.comfy_url, reason=str(exc) or type(exc).__name__)
        raise WorkerError("inference_failed", f"ComfyUI did not answer ({type(exc).__name__})") from None


def comfy_client(settings: Settings, session) -> ComfyClient:
    """A client whose canceled prompts are bounded: past `comfy_cancel_bound_s` the ComfyUI this worker owns is
    restarted (when it owns none, nothing more can be done than to say so)."""
    process = comfy_process.current()
    return ComfyClient(settings.comfy_url, session, cancel_bound_s=settings.comfy_cancel_bound_s,
                       on_stuck=process.restart if process else None)


async def _run_comfy_steps(job_id, job: JobInput, image: Path, audio: Path | None, out_path: Path, session,
                           settings: Settings, progress, on_event):
    await asyncio.to_thread(preview.check_image, image)
    progress("loading", 0.0, "uploading inputs to ComfyUI")
    client = comfy_client(settings, session)
    prefix = "".join(c if c.isalnum() or c in "-_" else "_" for c in job_id)[:64]
    image_name = await client.upload(image, f"reelgate-{prefix}-image{image.suffix}")
    audio_name = await client.upload(audio, f"reelgate-{prefix}-audio{audio.suffix}") if audio else None
    if job.workflow is not None:
        workflow = _bind_inputs(job.workflow, {"image": image_name, "audio": audio_name})
        if job.workflow.loras:
            progress("loading", 0.25, "fetching LoRAs")
            names = await fetch_loras(session, job.workflow.loras, settings.models_root, settings.lora_cache_bytes,
                                      attempts=settings.http_attempts, backoff_s=settings.http_backoff_s)
            for need, name in zip(job.workflow.loras, names):
                for node, input_name in need.binds:
                    workflow[node]["inputs"][input_name] = name
    else:
        audio_s = await asyncio.to_thread(preview.probe_audio_duration, audio) if audio else None
        frames = resolve_frames(job.model, job.params, audio_s)
        template = load_template(job.model)
        workflow = build_workflow(template, _workflow_params(job_id, job, image_name, audio_name, frames))
    decoders = {nid for nid, node in workflow.items() if node["class_type"] in ("VAEDecode", "CreateVideo")}
    sampling = SamplingProgress(workflow)
    progress("loading", 0.5, "loading models")

    def on_progress(node: str, value: int, maximum: int) -> None:
        counted = sampling.update(node, value, maximum)
        if counted:
            done, total = counted
            progress("sampling", done / max(total, 1), f"step {done}/{total}")

    def on_node(node: str) -> None:
        if node in decoders:
            progress("encoding", 0.0, "decoding and saving video")

    def on_stopped(report: dict) -> None:
        if on_event:
            on_event({"event": "comfy_prompt_stopped", **report})

    entry = await client.run(workflow, on_progress=on_progress, on_node=on_node, timeout_s=settings.job_timeout_s,
                             on_stopped=on_stopped)
    video_path = await client.download(find_video_output(entry), out_path)
    progress("encoding", 1.0, "video ready")
    return await asyncio.to_thread(preview.probe_video, video_path)


async def _health(settings: Settings, session) -> dict:
    """Ready when every enabled model has its files and ComfyUI answers (if a wan model is enabled)."""
    problems = file_problems(settings.enabled_models, settings.models_root)
    missing = [rel for rel, reason in problems.items() if reason == "missing"]
    broken = {rel: reason for rel, reason in problems.items() if reason != "missing"}
    gpu, comfy_ok = "cpu", True
    if settings.comfy_models_enabled:
        try:
            stats = await ComfyClient(settings.comfy_url, session).system_stats()
            devices = stats.get("devices") or []
            gpu = devices[0].get("name", "unknown") if devices else "unknown"
        except (aiohttp.ClientError, asyncio.TimeoutError):
            comfy_ok = False
    health = {"ok": comfy_ok and not problems, "models": list(settings.enabled_models), "gpu": gpu}
    if missing:
        health["missing_files"] = missing
    if broken:
        health["broken_files"] = broken
    if not comfy_ok:
        health["comfy"] = "unreachable"
    return {"health_check": health}
