"""Model files: the list (model-files.json) and the load check that health, startup and jobs use: size and
safetensors header, read without torch."""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import pytest

from gpu_worker import models
from gpu_worker.models import file_problems, model_files, required_files, safetensors_problem
from gpu_worker.runner import run_job

from .conftest import fill_models, write_safetensors


def test_every_required_file_is_listed_with_its_source():
    listed = model_files()
    for model in ("wan2.2-i2v", "wan2.2-s2v"):
        for rel in required_files(model):
            entry = listed[rel]
            assert entry.source.startswith("https://huggingface.co/Comfy-Org/") and entry.source.endswith(f"/{rel}")
            assert entry.size is None or entry.size > 0
            assert entry.sha256 is None or len(entry.sha256) == 64


def test_a_whole_file_passes(tmp_path: Path):
    path = write_safetensors(tmp_path / "m.safetensors", {"a": ("F8_E4M3", [16, 8]), "b": ("BF16", [3])})
    assert safetensors_problem(path) is None
    assert safetensors_problem(path, expected_size=path.stat().st_size) is None


@pytest.mark.parametrize("damage,expected", [
    (lambda raw: b"", "is 0 bytes"),
    (lambda raw: b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 10\n", "is not safetensors"),
    (lambda raw: b"<!DOCTYPE html><html>Repository not found</html>", "is not safetensors"),
    (lambda raw: raw[:-1], "truncated"),
    (lambda raw: raw + b"\0", "truncated or padded"),
    (lambda raw: struct.pack("<Q", 2) + b"[]", "header is not an object"),
])
def test_a_file_that_would_not_load_is_named(tmp_path: Path, damage, expected):
    path = write_safetensors(tmp_path / "m.safetensors")
    path.write_bytes(damage(path.read_bytes()))
    assert expected in safetensors_problem(path)


def test_a_tensor_whose_bytes_do_not_fit_its_shape(tmp_path: Path):
    header = json.dumps({"w": {"dtype": "F16", "shape": [4], "data_offsets": [0, 6]}}).encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(6))
    assert "spans 6 bytes" in safetensors_problem(path)


def test_a_pinned_size_is_checked(tmp_path: Path, monkeypatch):
    fill_models(tmp_path, ("wan2.2-i2v",))
    rel = "vae/wan_2.1_vae.safetensors"
    pinned = {**model_files(), rel: dataclasses.replace(model_files()[rel], size=253_815_318)}
    monkeypatch.setattr(models, "model_files", lambda: pinned)
    assert file_problems(["wan2.2-i2v"], str(tmp_path)) == {
        rel: f"is {(tmp_path / rel).stat().st_size} bytes, expected 253815318"}


async def test_health_and_jobs_name_a_broken_file(wan_settings, file_host):
    broken = Path(wan_settings.models_root) / "text_encoders" / "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
    broken.write_bytes(b"")
    health = (await run_job("h", {"health_check": True}, None, settings=wan_settings))["health_check"]
    assert health["ok"] is False
    assert health["broken_files"] == {"text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors": "is 0 bytes: no "
                                      "safetensors header"}
    from .conftest import job_input

    result = await run_job("j", job_input(file_host, "wan2.2-i2v"), None, settings=wan_settings)
    assert result["error"]["code"] == "models_missing"
    assert "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors is 0 bytes" in result["error"]["message"]
    assert wan_settings.models_root not in result["error"]["message"]  # no path of the worker's machine
    assert file_host.requests == []  # checked before any download
