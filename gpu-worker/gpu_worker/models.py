"""Which model files each model needs (from its workflow template), what each file should be (model-files.json:
folder, name, size, sha256 and source URL, the fields of the model manifests' `files`; what
scripts/download_models.sh reads too), and whether MODELS_ROOT holds files that will load.

"Will load" is judged without torch and without reading the weights: the file's safetensors header (its first few
KB) must parse, its tensors' byte ranges must fit their dtypes and shapes, and the file must end exactly where the
header says the data ends, so a zero-byte, placeholder, truncated or HTML-error-page file is named before a job is
taken, not inside ComfyUI. Where the list pins a size, the file must have it. The sha256 (minutes for 14 GB) is
the download script's to check.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .config import COMFY_MODELS, SETTINGS
from .errors import WorkerError
from .workflow import load_template

MODEL_FILES = Path(__file__).resolve().parent.parent / "model-files.json"
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the format's own limit (safetensors/README.md, "Format")
# Bytes per element of each safetensors dtype (https://github.com/huggingface/safetensors, "Format").
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2, "F16": 2,
               "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


@dataclass(frozen=True)
class ModelFile:
    folder: str
    name: str
    size: int | None  # bytes; None until pinned
    sha256: str | None
    source: str  # download URL


@lru_cache(maxsize=None)
def model_files(source: str = SETTINGS.model_files) -> dict[str, ModelFile]:
    """model-files.json (or MODEL_FILES) by `folder/filename`."""
    entries = json.loads(Path(source or MODEL_FILES).read_text(encoding="utf-8"))["files"]
    return {f"{e['folder']}/{e['name']}": ModelFile(**e) for e in entries}


def required_files(model: str) -> list[str]:
    """Paths relative to MODELS_ROOT, e.g. `vae/wan_2.1_vae.safetensors`; none for the CPU preview."""
    if model not in COMFY_MODELS:
        return []
    folders = load_template(model).get("required_files", {})
    return [f"{folder}/{name}" for folder, names in sorted(folders.items()) for name in names]


def safetensors_problem(path: Path, expected_size: int | None = None) -> str | None:
    """Why the file would not load as safetensors (or has the wrong size); None when it looks whole."""
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        return f"is {size} bytes, expected {expected_size}"
    if size < 8:
        return f"is {size} bytes: no safetensors header"
    with open(path, "rb") as src:
        (header_len,) = struct.unpack("<Q", src.read(8))
        if header_len > MAX_HEADER_BYTES or 8 + header_len > size:
            return f"is not safetensors (header length {header_len} for a {size}-byte file)"
        try:
            header = json.loads(src.read(header_len))
        except (UnicodeDecodeError, ValueError):
            return "is not safetensors (its header is not JSON)"
    if not isinstance(header, dict):
        return "is not safetensors (its header is not an object)"
    data_end = 0
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, end = tensor["data_offsets"]
            elements = math.prod(tensor["shape"])
            width = DTYPE_BYTES[tensor["dtype"]]
        except (KeyError, TypeError, ValueError):
            return f"has a malformed safetensors entry for tensor {name!r}"
        if end - begin != elements * width:
            return f"tensor {name!r} spans {end - begin} bytes, its shape and dtype need {elements * width}"
        data_end = max(data_end, end)
    if 8 + header_len + data_end != size:
        return f"is {size} bytes, its safetensors header says {8 + header_len + data_end} (truncated or padded)"
    return None


def file_problems(models: list[str] | tuple[str, ...], models_root: str) -> dict[str, str]:
    """Every required file that is absent or would not load, `folder/file` -> reason, in a stable order."""
    root = Path(models_root)
    problems: dict[str, str] = {}
    for model in models:
        for rel in required_files(model):
            if rel in problems:
                continue
            path = root / rel
            if not path.is_file():
                problems[rel] = "missing"
                continue
            known = model_files().get(rel)
            reason = safetensors_problem(path, known.size if known else None)
            if reason:
                problems[rel] = reason
    return problems


def missing_files(models: list[str] | tuple[str, ...], models_root: str) -> list[str]:
    return [rel for rel, reason in file_problems(models, models_root).items() if reason == "missing"]


def describe(problems: dict[str, str]) -> str:
    return "; ".join(f"{rel} {reason}" for rel, reason in problems.items())


def check_models(models: list[str] | tuple[str, ...], models_root: str) -> None:
    problems = file_problems(models, models_root)
    if problems:
        raise WorkerError("models_missing", f"model files will not load: {describe(problems)}")


def needed_file_problems(files, models_root: str) -> dict[str, str]:
    """The files a carried workflow loads (job.ModelFileNeed) that are absent or would not load, path -> reason."""
    root = Path(models_root)
    problems: dict[str, str] = {}
    for need in files:
        path = root / need.path
        if not path.is_file():
            problems[need.path] = "missing"
        elif path.suffix == ".safetensors":
            reason = safetensors_problem(path, need.size)
            if reason:
                problems[need.path] = reason
        elif need.size is not None and path.stat().st_size != need.size:
            problems[need.path] = f"is {path.stat().st_size} bytes, expected {need.size}"
    return problems


MODEL_SUFFIXES = (".safetensors", ".gguf", ".pt", ".pth", ".ckpt", ".bin", ".sft")


def inventory(models_root: str, limit: int = 4000) -> list[str]:
    """Every model file under MODELS_ROOT as `folder/name` (what a manifest's `files` name), sorted; at most
    `limit`. What a backend's health answer advertises, so the Worker routes each model where its files are."""
    root = Path(models_root)
    if not root.is_dir():
        return []
    found = []
    for path in root.rglob("*"):
        if path.suffix in MODEL_SUFFIXES and path.is_file() and "reelgate-cache" not in path.parts:
            found.append(path.relative_to(root).as_posix())
    return sorted(found)[:limit]
