"""Which model files each model needs (from its workflow template), and whether MODELS_ROOT has them."""

from __future__ import annotations

from pathlib import Path

from .config import COMFY_MODELS
from .errors import WorkerError
from .workflow import load_template


def required_files(model: str) -> list[str]:
    """Paths relative to MODELS_ROOT, e.g. `vae/wan_2.1_vae.safetensors`; none for the CPU preview."""
    if model not in COMFY_MODELS:
        return []
    folders = load_template(model).get("required_files", {})
    return [f"{folder}/{name}" for folder, names in sorted(folders.items()) for name in names]


def missing_files(models: list[str] | tuple[str, ...], models_root: str) -> list[str]:
    """Every required file absent (or empty-named) under models_root, deduplicated, in a stable order."""
    root = Path(models_root)
    missing: list[str] = []
    for model in models:
        for rel in required_files(model):
            if not (root / rel).is_file() and rel not in missing:
                missing.append(rel)
    return missing


def check_models(models: list[str] | tuple[str, ...], models_root: str) -> None:
    missing = missing_files(models, models_root)
    if missing:
        raise WorkerError("models_missing", f"missing model files under {models_root}: {', '.join(missing)}")
