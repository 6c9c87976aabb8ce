"""parse_job_input: good inputs and bad ones, each with its error code."""

from __future__ import annotations

import copy

import pytest

from gpu_worker.errors import JobInputError
from gpu_worker.job import parse_job_input, resolve_frames

BASE = {
    "model": "wan2.2-i2v",
    "inputs": {"image": {"url": "https://r2.example/in.png?sig=1", "content_type": "image/png"}},
    "params": {"prompt": "a cat", "width": 640, "height": 640, "fps": 16, "seed": 42, "steps": 4},
    "output": {"put": {"url": "https://r2.example/out.mp4?sig=2", "headers": {"content-type": "video/mp4"}}},
}


def variant(path: str, value, base=BASE):
    """BASE with the dotted `path` set to value (DELETE removes it)."""
    raw = copy.deepcopy(base)
    node = raw
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return raw


DELETE = object()
MULTIPART = {"part_size": 5 * 1024 * 1024,
             "parts": [{"part_number": 1, "url": "https://r2.example/p1?s"}, {"part_number": 2, "url": "https://r2.example/p2?s"}]}

GOOD = [
    ("defaults", BASE, lambda j: (j.params.width, j.params.fps, j.params.frames) == (640, 16, None)),
    ("preview with audio", variant("inputs.audio", {"url": "http://host/a.mp3", "content_type": "audio/mpeg"},
                                   variant("model", "preview")), lambda j: j.audio.content_type == "audio/mpeg"),
    ("s2v", variant("inputs.audio", {"url": "https://h/a.wav"}, variant("model", "wan2.2-s2v")),
     lambda j: j.audio is not None),
    ("frames 81", variant("params.frames", 81), lambda j: j.params.frames == 81),
    ("multipart only", variant("output", {"multipart": MULTIPART}), lambda j: len(j.output.multipart.parts) == 2),
    ("put and multipart", variant("output.multipart", MULTIPART), lambda j: j.output.put and j.output.multipart),
    ("put bound and parts_url", variant("output.parts_url", {"url": "https://w/v1/storage/k?method=POST&sig=s"},
                                        variant("output.put.max_size", 67108864)),
     lambda j: j.output.put.max_size == 67108864 and j.output.parts_url.url.startswith("https://w/")),
    ("health check needs nothing", {"health_check": True}, lambda j: j.health_check),
    ("seed absent is random", variant("params.seed", DELETE), lambda j: isinstance(j.params.seed, int)),
    ("float seed that is integral", variant("params.seed", 7.0), lambda j: j.params.seed == 7),
    ("content type with charset", variant("inputs.image.content_type", "image/PNG; x=y"),
     lambda j: j.image.content_type == "image/png"),
    ("extra fields ignored", variant("future_field", 1), lambda j: j.model == "wan2.2-i2v"),
    ("verified sha256", variant("inputs.image.sha256", "ab" * 32), lambda j: j.image.sha256 == "ab" * 32),
    ("no sha256 (older API)", BASE, lambda j: j.image.sha256 is None),
]

BAD = [
    ("not an object", "hello", "input must be an object"),
    ("sha256 not hex", variant("inputs.image.sha256", "xyz"), "inputs.image.sha256 must be 64 lowercase hex digits"),
    ("unknown model", variant("model", "sora"), "model must be one of"),
    ("missing image", variant("inputs.image", DELETE), "inputs.image is required"),
    ("s2v without audio", variant("model", "wan2.2-s2v"), "inputs.audio is required"),
    ("ftp url", variant("inputs.image.url", "ftp://x/y.png"), "http(s) URL"),
    ("url not a string", variant("inputs.image.url", 3), "string URL"),
    ("image content type", variant("inputs.image.content_type", "image/gif"), "content_type must be one of"),
    ("audio content type", variant("inputs.audio", {"url": "https://h/a", "content_type": "video/mp4"}),
     "inputs.audio.content_type"),
    ("width not multiple of 16", variant("params.width", 650), "multiple of 16"),
    ("width too big", variant("params.width", 4096), "between"),
    ("height too small", variant("params.height", 16), "between"),
    ("width string", variant("params.width", "640"), "must be an integer"),
    ("fps zero", variant("params.fps", 0), "params.fps"),
    ("fps 61", variant("params.fps", 61), "params.fps"),
    ("frames not 4k+1 for wan", variant("params.frames", 80), "4k+1"),
    ("frames too many", variant("params.frames", 1001), "params.frames"),
    ("duration negative", variant("params.duration_s", -1), "positive number"),
    ("duration too long", variant("params.duration_s", 60), "too long"),
    ("seed bool", variant("params.seed", True), "must be an integer"),
    ("seed negative", variant("params.seed", -1), "params.seed"),
    ("seed fractional", variant("params.seed", 1.5), "must be an integer"),
    ("steps 0", variant("params.steps", 0), "params.steps"),
    ("steps 1 for wan", variant("params.steps", 1), "at least 2"),
    ("prompt not string", variant("params.prompt", ["a"]), "params.prompt"),
    ("prompt too long", variant("params.prompt", "x" * 5000), "params.prompt"),
    ("no output", variant("output", DELETE), "output must be an object"),
    ("output without targets", variant("output", {"content_type": "video/mp4"}), "output needs `put`, `parts_url` or `multipart`"),
    ("output content type", variant("output.content_type", "video/webm"), "output.content_type"),
    ("put headers not strings", variant("output.put.headers", {"x": 1}), "headers"),
    ("multipart parts empty", variant("output", {"multipart": {"part_size": 100, "parts": []}}), "non-empty"),
    ("multipart parts out of order", variant("output", {"multipart": {"part_size": 100, "parts": [
        {"part_number": 2, "url": "https://h/p"}]}}), "part_number must be 1"),
    ("multipart part size zero", variant("output", {"multipart": {**MULTIPART, "part_size": 0}}), "part_size"),
    ("health_check not bool", variant("health_check", "yes"), "health_check must be a boolean"),
]


@pytest.mark.parametrize("name,raw,check", GOOD, ids=[g[0] for g in GOOD])
def test_good_inputs(name, raw, check):
    assert check(parse_job_input(raw))


@pytest.mark.parametrize("name,raw,fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_inputs(name, raw, fragment):
    with pytest.raises(JobInputError) as info:
        parse_job_input(raw)
    assert info.value.code == "invalid_input"
    assert fragment in info.value.message
    assert info.value.body() == {"error": {"code": "invalid_input", "message": info.value.message}}


@pytest.mark.parametrize("params,audio_s,expected", [
    ({"frames": 33, "duration_s": 10}, 3.0, 33),  # frames wins
    ({"duration_s": 5}, 3.0, 81),  # duration_s next, snapped to 4k+1 at 16 fps
    ({}, 3.0, 49),  # then the audio's duration
    ({}, None, 81),  # else 5 s
])
def test_duration_rule_for_wan(params, audio_s, expected):
    job = parse_job_input(variant("params", {"fps": 16, **params}))
    assert resolve_frames(job.model, job.params, audio_s) == expected


def test_duration_rule_for_preview_is_exact():
    job = parse_job_input(variant("params", {"fps": 10, "duration_s": 2.5}, variant("model", "preview")))
    assert resolve_frames("preview", job.params) == 25
