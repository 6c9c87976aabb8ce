"""scripts/gpu-proof's parts that need no GPU, torch or ComfyUI: arguments, the checkpoint writer (its files pass
the worker's own load check), the figures taken from a job's progress, and the report."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

from gpu_worker.models import required_files, safetensors_problem

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
spec = importlib.util.spec_from_file_location("gpu_proof", SCRIPTS / "gpu_proof.py")
gpu_proof = importlib.util.module_from_spec(spec)
sys.modules["gpu_proof"] = gpu_proof
spec.loader.exec_module(gpu_proof)


def test_arguments():
    args = gpu_proof.parse_args(["--comfy-dir", "/comfyui"])
    assert args.comfy_dir == Path("/comfyui") and args.scale == "full" and not args.cpu and not args.check
    args = gpu_proof.parse_args(["--comfy-dir", "c", "--scale", "tiny", "--cpu", "--check", "--report", "r.json"])
    assert (args.scale, args.cpu, args.check, args.report) == ("tiny", True, True, Path("r.json"))


def test_it_builds_every_file_the_workflows_load():
    wanted = {rel for model in ("wan2.2-i2v", "wan2.2-s2v") for rel in required_files(model)}
    assert set(gpu_proof.FILES) == wanted


def test_written_checkpoints_pass_the_workers_load_check(tmp_path):
    specs = [gpu_proof.TensorSpec("scaled_fp8", (), "float8_e4m3fn"),
             gpu_proof.TensorSpec("blocks.0.ffn.0.weight", (8, 4), "float8_e4m3fn"),
             gpu_proof.TensorSpec("blocks.0.ffn.0.scale_weight", (), "float32"),
             gpu_proof.TensorSpec("head.modulation", (1, 2, 4), "bfloat16")]
    path = tmp_path / "m.safetensors"
    size = gpu_proof.write_checkpoint(path, specs, lambda s: bytes(s.nbytes))
    assert size == path.stat().st_size and safetensors_problem(path) is None
    (header_len,) = struct.unpack("<Q", path.read_bytes()[:8])
    assert header_len % 8 == 0  # data 8-byte aligned


def test_figures_from_the_progress_a_job_showed():
    timeline = [(0.1, {"stage": "downloading", "percent": 0}), (0.5, {"stage": "loading", "percent": 5}),
                (40.5, {"stage": "sampling", "percent": 28, "message": "step 1/4"}),
                (52.5, {"stage": "sampling", "percent": 47, "message": "step 2/4"}),
                (64.5, {"stage": "sampling", "percent": 66, "message": "step 3/4"}),
                (76.5, {"stage": "sampling", "percent": 85, "message": "step 4/4"}),
                (90.0, {"stage": "encoding", "percent": 86}), (95.0, {"stage": "uploading", "percent": 92})]
    figures = gpu_proof.figures_from_timeline("wan2.2-i2v", "COMPLETED", 96.0, timeline)
    assert (figures.load_s, figures.s_per_step, figures.steps, figures.total_s) == (40.0, 12.0, 4, 96.0)
    assert list(figures.stages) == ["downloading", "loading", "sampling", "encoding", "uploading"]
    figures.peak_vram_gib, figures.video_bytes, figures.video_sha256_ok = 31.5, 123, True
    report = gpu_proof.render_report([figures], "NVIDIA H200")
    assert "| wan2.2-i2v | COMPLETED | 40.0 | 12.0 | 4 | 96.0 | 31.5 | 123 | ok |" in report
    assert report.startswith("GPU proof on NVIDIA H200")
