"""Workflow templates: parameters injected at their node/input paths; model file checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_worker.errors import WorkerError
from gpu_worker.models import check_models, missing_files, required_files
from gpu_worker.workflow import TemplateError, build_workflow, load_template

from .conftest import write_safetensors


@pytest.mark.parametrize("model", ["wan2.2-i2v", "wan2.2-s2v"])
def test_templates_are_valid(model):
    template = load_template(model)
    assert template["model"] == model
    classes = {node["class_type"] for node in template["workflow"].values()}
    assert {"UNETLoader", "CLIPLoader", "VAELoader", "LoadImage", "VAEDecode", "CreateVideo", "SaveVideo"} <= classes
    for name in ("prompt", "negative_prompt", "image", "width", "height", "frames", "seed", "steps", "fps"):
        assert name in template["parameters"]


def test_i2v_injects_every_path_without_touching_the_template():
    template = load_template("wan2.2-i2v")
    prompt = 'quote " brace } {"x": 1}'
    workflow = build_workflow(template, {"prompt": prompt, "seed": 7, "steps": 6, "split_step": 3, "width": 832})
    assert workflow["8"]["inputs"]["text"] == prompt
    assert workflow["13"]["inputs"]["noise_seed"] == workflow["14"]["inputs"]["noise_seed"] == 7
    assert (workflow["13"]["inputs"]["end_at_step"], workflow["14"]["inputs"]["start_at_step"]) == (3, 3)
    assert workflow["12"]["inputs"]["width"] == 832
    assert template["workflow"]["8"]["inputs"]["text"] == ""  # deep copy
    i2v = template["workflow"]
    assert i2v["7"]["inputs"]["type"] == "wan" and i2v["13"]["inputs"]["cfg"] == 1.0
    assert (i2v["13"]["inputs"]["sampler_name"], i2v["13"]["inputs"]["scheduler"]) == ("euler", "simple")


def test_s2v_muxes_audio_into_the_video():
    workflow = build_workflow(load_template("wan2.2-s2v"), {"audio": "a.wav"})
    assert workflow["10"]["inputs"]["audio"] == "a.wav"
    assert workflow["16"]["inputs"]["audio"] == ["10", 0]
    assert workflow["11"]["class_type"] == "AudioEncoderEncode"


def test_unknown_parameter_is_rejected():
    with pytest.raises(TemplateError, match="unknown workflow parameters"):
        build_workflow(load_template("wan2.2-i2v"), {"promt": "typo"})


def test_missing_models_are_all_named(tmp_path: Path):
    files = required_files("wan2.2-i2v")
    assert "vae/wan_2.1_vae.safetensors" in files and len(files) == 6
    write_safetensors(tmp_path / "vae" / "wan_2.1_vae.safetensors")
    missing = missing_files(["wan2.2-i2v", "wan2.2-s2v"], str(tmp_path))
    assert "vae/wan_2.1_vae.safetensors" not in missing
    assert "audio_encoders/wav2vec2_large_english_fp16.safetensors" in missing
    assert missing.count("text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors") == 1
    with pytest.raises(WorkerError) as info:
        check_models(["wan2.2-i2v"], str(tmp_path))
    assert info.value.code == "models_missing"
    assert "diffusion_models/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors" in info.value.message
    assert required_files("preview") == []
