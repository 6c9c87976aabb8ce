"""Validation of a job's `input` (docs/gpu-job-protocol.md). Pure: no I/O, raises JobInputError on bad input."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .config import KNOWN_MODELS
from .errors import JobInputError

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
AUDIO_TYPES = (
    "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/mpeg", "audio/mp3",
    "audio/flac", "audio/x-flac", "audio/ogg", "audio/opus",
)
OUTPUT_TYPES = ("video/mp4",)
DEFAULT_DURATION_S = 5.0
MAX_PROMPT_CHARS = 4000
MAX_SEED = 2**64 - 1  # ComfyUI's seed widget range


@dataclass(frozen=True)
class ModelLimits:
    min_side: int
    max_side: int
    max_frames: int
    default_fps: int
    default_steps: int
    # Wan's latent packs 4 frames per step after the first, so its frame counts are 4k+1 (81, 77+4, ...).
    frames_4k_plus_1: bool


LIMITS = {
    "preview": ModelLimits(64, 1920, 1800, 16, 4, False),
    "wan2.2-i2v": ModelLimits(128, 1280, 161, 16, 4, True),
    "wan2.2-s2v": ModelLimits(128, 1280, 161, 16, 4, True),
}


@dataclass(frozen=True)
class InputFile:
    url: str
    content_type: str | None = None
    # The SHA-256 the API verified at upload: the downloaded bytes must have it (`input_changed` otherwise).
    sha256: str | None = None


@dataclass(frozen=True)
class Params:
    prompt: str = ""
    negative_prompt: str = ""
    width: int = 640
    height: int = 640
    fps: int = 16
    frames: int | None = None  # explicit frame count; wins over duration_s
    duration_s: float | None = None
    seed: int = 0
    steps: int = 4


@dataclass(frozen=True)
class PutTarget:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    # The most bytes this one PUT may carry; None: no bound announced (a larger video uses `multipart` if offered).
    max_size: int | None = None


@dataclass(frozen=True)
class PartsRequest:
    """A signed POST answering part URLs for a video larger than `put.max_size`: `{size}` in, `{part_size, parts}` out."""
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PartTarget:
    part_number: int
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MultipartTarget:
    part_size: int
    parts: tuple[PartTarget, ...]


@dataclass(frozen=True)
class OutputTarget:
    content_type: str = "video/mp4"
    put: PutTarget | None = None
    multipart: MultipartTarget | None = None
    parts_url: PartsRequest | None = None


MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
FILE_PATH = re.compile(r"^[a-z_]+/[^\\]+$")


@dataclass(frozen=True)
class ModelFileNeed:
    path: str  # `folder/name` under MODELS_ROOT
    size: int | None = None
    sha256: str | None = None
    url: str | None = None  # a signed GET of the operator's R2 copy, tried first
    source: str | None = None  # the public source


@dataclass(frozen=True)
class CustomNodeNeed:
    class_type: str
    repository: str
    commit: str


@dataclass(frozen=True)
class LoraNeed:
    url: str
    sha256: str | None
    max_bytes: int
    binds: tuple[tuple[str, str], ...]  # the (node, input) pairs its file name goes to


@dataclass(frozen=True)
class Workflow:
    """A ComfyUI graph the Worker filled from a model manifest (docs/gpu-job-protocol.md, `workflow`)."""

    model: str
    graph: dict
    inputs: dict[str, tuple[tuple[str, str], ...]]  # input file -> the (node, input) pairs its name goes to
    output_node: str
    files: tuple[ModelFileNeed, ...] = ()
    custom_nodes: tuple[CustomNodeNeed, ...] = ()
    loras: tuple[LoraNeed, ...] = ()


@dataclass(frozen=True)
class JobInput:
    model: str | None
    image: InputFile | None = None
    audio: InputFile | None = None
    params: Params = field(default_factory=Params)
    output: OutputTarget | None = None
    health_check: bool = False
    workflow: Workflow | None = None


def _fail(message: str) -> JobInputError:
    return JobInputError(message)


def _obj(value: Any, where: str, required: bool = True) -> dict | None:
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise _fail(f"{where} must be an object")
    return value


def _int(value: Any, where: str, lo: int, hi: int) -> int:
    # bool is an int in Python; JSON `true` is not a number.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise _fail(f"{where} must be an integer")
    value = int(value)
    if not lo <= value <= hi:
        raise _fail(f"{where} must be between {lo} and {hi}, got {value}")
    return value


def _url(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(f"{where} must be a string URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _fail(f"{where} must be an http(s) URL")
    return value


def _headers(value: Any, where: str) -> dict[str, str]:
    value = _obj(value, where, required=False) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _fail(f"{where} must map header names to string values")
    return dict(value)


def _input_file(raw: Any, where: str, allowed: tuple[str, ...]) -> InputFile:
    raw = _obj(raw, where)
    content_type = raw.get("content_type")
    if content_type is not None:
        if not isinstance(content_type, str) or content_type.split(";")[0].strip().lower() not in allowed:
            raise _fail(f"{where}.content_type must be one of {', '.join(allowed)}")
        content_type = content_type.split(";")[0].strip().lower()
    sha256 = raw.get("sha256")
    if sha256 is not None and not (isinstance(sha256, str) and re.fullmatch(r"[0-9a-f]{64}", sha256)):
        raise _fail(f"{where}.sha256 must be 64 lowercase hex digits")
    return InputFile(url=_url(raw.get("url"), f"{where}.url"), content_type=content_type, sha256=sha256)


def _params(raw: Any, model: str) -> Params:
    raw = _obj(raw, "params", required=False) or {}
    lim = LIMITS[model]
    text = {}
    for name in ("prompt", "negative_prompt"):
        value = raw.get(name, "")
        if not isinstance(value, str) or len(value) > MAX_PROMPT_CHARS:
            raise _fail(f"params.{name} must be a string of at most {MAX_PROMPT_CHARS} characters")
        text[name] = value
    size = {}
    for name in ("width", "height"):
        value = _int(raw.get(name, 640), f"params.{name}", lim.min_side, lim.max_side)
        if value % 16:
            raise _fail(f"params.{name} must be a multiple of 16, got {value}")
        size[name] = value
    fps = _int(raw.get("fps", lim.default_fps), "params.fps", 1, 60)
    frames = None
    if raw.get("frames") is not None:
        frames = _int(raw["frames"], "params.frames", 1, lim.max_frames)
        if lim.frames_4k_plus_1 and frames % 4 != 1:
            raise _fail(f"params.frames must be 4k+1 for {model} (e.g. 81), got {frames}")
    duration_s = None
    if raw.get("duration_s") is not None:
        value = raw["duration_s"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise _fail("params.duration_s must be a positive number")
        duration_s = float(value)
        if frames is None and frame_count(model, fps, duration_s) > lim.max_frames:
            raise _fail(f"params.duration_s is too long for {model}: at most {lim.max_frames} frames")
    seed = raw.get("seed")
    seed = random.randint(0, 2**53 - 1) if seed is None else _int(seed, "params.seed", 0, MAX_SEED)
    steps = _int(raw.get("steps", lim.default_steps), "params.steps", 1, 50)
    if model.startswith("wan") and steps < 2:
        raise _fail("params.steps must be at least 2 for wan models (split over two passes)")
    return Params(fps=fps, frames=frames, duration_s=duration_s, seed=seed, steps=steps, **text, **size)


def _output(raw: Any) -> OutputTarget:
    raw = _obj(raw, "output")
    content_type = raw.get("content_type", "video/mp4")
    if content_type not in OUTPUT_TYPES:
        raise _fail(f"output.content_type must be one of {', '.join(OUTPUT_TYPES)}")
    put = None
    if raw.get("put") is not None:
        put_raw = _obj(raw["put"], "output.put")
        max_size = None
        if put_raw.get("max_size") is not None:
            max_size = _int(put_raw.get("max_size"), "output.put.max_size", 1, 5 * 1024**4)
        put = PutTarget(url=_url(put_raw.get("url"), "output.put.url"),
                        headers=_headers(put_raw.get("headers"), "output.put.headers"), max_size=max_size)
    multipart = None
    if raw.get("multipart") is not None:
        multipart = parse_multipart(raw["multipart"], "output.multipart")
    parts_url = None
    if raw.get("parts_url") is not None:
        pu = _obj(raw["parts_url"], "output.parts_url")
        parts_url = PartsRequest(url=_url(pu.get("url"), "output.parts_url.url"),
                                 headers=_headers(pu.get("headers"), "output.parts_url.headers"))
    if put is None and multipart is None and parts_url is None:
        raise _fail("output needs `put`, `parts_url` or `multipart`")
    return OutputTarget(content_type=content_type, put=put, multipart=multipart, parts_url=parts_url)


def parse_multipart(raw: Any, where_base: str) -> MultipartTarget:
    """`{part_size, parts: [{part_number, url, headers}]}`: in a job's `output.multipart`, or `parts_url`'s answer."""
    mp = _obj(raw, where_base)
    part_size = _int(mp.get("part_size"), f"{where_base}.part_size", 1, 5 * 1024**3)
    parts_raw = mp.get("parts")
    if not isinstance(parts_raw, list) or not parts_raw:
        raise _fail(f"{where_base}.parts must be a non-empty list")
    parts = []
    for index, part in enumerate(parts_raw):
        where = f"{where_base}.parts[{index}]"
        part = _obj(part, where)
        number = _int(part.get("part_number"), f"{where}.part_number", 1, 10000)
        if number != index + 1:
            raise _fail(f"{where}.part_number must be {index + 1} (parts in order, from 1)")
        parts.append(PartTarget(number, _url(part.get("url"), f"{where}.url"),
                                _headers(part.get("headers"), f"{where}.headers")))
    return MultipartTarget(part_size=part_size, parts=tuple(parts))


def frame_count(model: str, fps: int, duration_s: float) -> int:
    """Frames for a duration; Wan needs 4k+1 frames, so round to the nearest such count."""
    frames = max(1, round(duration_s * fps))
    if LIMITS[model].frames_4k_plus_1:
        frames = max(1, round((frames - 1) / 4)) * 4 + 1
    return frames


def resolve_frames(model: str, params: Params, audio_duration_s: float | None = None) -> int:
    """Duration rule of the protocol: `frames` wins; else `duration_s`; else the audio's duration; else 5 s."""
    if params.frames is not None:
        return params.frames
    for duration in (params.duration_s, audio_duration_s, DEFAULT_DURATION_S):
        if duration:
            return min(frame_count(model, params.fps, duration), LIMITS[model].max_frames)
    raise AssertionError("unreachable")


def _str(value: Any, where: str, limit: int = 512) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _fail(f"{where} must be a non-empty string of at most {limit} characters")
    return value


def _workflow(raw: Any) -> Workflow:
    raw = _obj(raw, "workflow")
    graph = _obj(raw.get("graph"), "workflow.graph")
    if not graph:
        raise _fail("workflow.graph must have nodes")
    for node_id, node in graph.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str) \
                or not isinstance(node.get("inputs"), dict):
            raise _fail(f"workflow.graph[{node_id}] needs class_type and inputs")
    inputs = {}
    for kind, binds in (_obj(raw.get("inputs"), "workflow.inputs", required=False) or {}).items():
        if kind not in ("image", "audio") or not isinstance(binds, list):
            raise _fail(f"workflow.inputs.{kind} must be a list of node inputs of image or audio")
        pairs = []
        for bind in binds:
            node = graph.get(bind.get("node")) if isinstance(bind, dict) else None
            if node is None or bind.get("input") not in node["inputs"]:
                raise _fail(f"workflow.inputs.{kind} names an input the graph lacks: {bind!r}"[:300])
            pairs.append((bind["node"], bind["input"]))
        inputs[kind] = tuple(pairs)
    output_node = _str(raw.get("output_node"), "workflow.output_node", 64)
    if output_node not in graph:
        raise _fail("workflow.output_node is not a node of the graph")
    files = []
    for index, entry in enumerate(raw.get("files") or []):
        entry = _obj(entry, f"workflow.files[{index}]")
        path = _str(entry.get("path"), f"workflow.files[{index}].path")
        if not FILE_PATH.match(path) or ".." in path.split("/"):
            raise _fail(f"workflow.files[{index}].path must be folder/name inside the models folder")
        size = entry.get("size")
        sha256 = entry.get("sha256")
        if sha256 is not None and (not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", sha256)):
            raise _fail(f"workflow.files[{index}].sha256 must be 64 lowercase hex digits")
        urls = {k: _url(entry[k], f"workflow.files[{index}].{k}") if entry.get(k) is not None else None
                for k in ("url", "source")}
        files.append(ModelFileNeed(path, _int(size, f"workflow.files[{index}].size", 1, 2**50) if size else None,
                                   sha256, **urls))
    nodes = []
    for index, entry in enumerate(raw.get("custom_nodes") or []):
        entry = _obj(entry, f"workflow.custom_nodes[{index}]")
        nodes.append(CustomNodeNeed(_str(entry.get("class_type"), f"workflow.custom_nodes[{index}].class_type"),
                                    _str(entry.get("repository"), f"workflow.custom_nodes[{index}].repository"),
                                    _str(entry.get("commit"), f"workflow.custom_nodes[{index}].commit", 64)))
    loras = []
    for index, entry in enumerate(raw.get("loras") or []):
        where = f"workflow.loras[{index}]"
        entry = _obj(entry, where)
        sha256 = entry.get("sha256")
        if sha256 is not None and (not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", sha256)):
            raise _fail(f"{where}.sha256 must be 64 lowercase hex digits")
        binds = []
        for bind in entry.get("bind") or []:
            node = graph.get(bind.get("node")) if isinstance(bind, dict) else None
            if node is None or bind.get("input") not in node["inputs"]:
                raise _fail(f"{where}.bind names an input the graph lacks")
            binds.append((bind["node"], bind["input"]))
        loras.append(LoraNeed(url=_url(entry.get("url"), f"{where}.url"), sha256=sha256,
                              max_bytes=_int(entry.get("max_bytes"), f"{where}.max_bytes", 1, 2**40),
                              binds=tuple(binds)))
    model = _str(raw.get("model", "workflow"), "workflow.model", 100)
    return Workflow(model=model, graph=graph, inputs=inputs, output_node=output_node, files=tuple(files),
                    custom_nodes=tuple(nodes), loras=tuple(loras))


def parse_job_input(raw: Any) -> JobInput:
    raw = _obj(raw, "input")
    health_check = raw.get("health_check", False)
    if not isinstance(health_check, bool):
        raise _fail("health_check must be a boolean")
    model = raw.get("model")
    if health_check:
        # A health check renders nothing: it needs neither inputs nor output.
        return JobInput(model=model if model in KNOWN_MODELS else None, health_check=True)
    workflow = _workflow(raw["workflow"]) if raw.get("workflow") is not None else None
    if workflow is None and model not in KNOWN_MODELS:
        raise _fail(f"model must be one of {', '.join(KNOWN_MODELS)}, or the job carries its workflow")
    if workflow is not None and (not isinstance(model, str) or not MODEL_ID.match(model)):
        raise _fail("model must be a model id: lowercase letters, digits, '.', '_', '-'")
    inputs = _obj(raw.get("inputs"), "inputs")
    if inputs.get("image") is None:
        raise _fail("inputs.image is required")
    image = _input_file(inputs["image"], "inputs.image", IMAGE_TYPES)
    audio = None
    if inputs.get("audio") is not None:
        audio = _input_file(inputs["audio"], "inputs.audio", AUDIO_TYPES)
    elif model == "wan2.2-s2v":
        raise _fail("inputs.audio is required for wan2.2-s2v")
    # A carried workflow has its parameters written in; `params` then matters only for the built-in templates.
    params = _params(raw.get("params"), model) if model in LIMITS else Params()
    return JobInput(model=model, image=image, audio=audio, params=params, output=_output(raw.get("output")),
                    health_check=False, workflow=workflow)
