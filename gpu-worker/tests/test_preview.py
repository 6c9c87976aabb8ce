"""The CPU preview renderer: H.264 yuv420p MP4, faststart, exact size/fps/duration, AAC when audio is given."""

from __future__ import annotations

import time

import pytest

from gpu_worker.errors import WorkerError
from gpu_worker.preview import probe_audio_duration, probe_video, render_preview

from .conftest import make_png, make_wav
from .videocheck import check_mp4, ffprobe


@pytest.fixture
def media(tmp_path):
    image = tmp_path / "in.png"
    image.write_bytes(make_png(400, 300))
    audio = tmp_path / "in.wav"
    audio.write_bytes(make_wav(1.0))
    return image, audio


def test_renders_video_only(media, tmp_path):
    image, _ = media
    out = tmp_path / "out.mp4"
    seen = []
    started = time.monotonic()
    info = render_preview(image, out, width=256, height=144, fps=12, frames=24,
                          progress=lambda done, total: seen.append((done, total)))
    assert time.monotonic() - started < 5
    assert (info.width, info.height, info.fps, info.frames, info.duration_s) == (256, 144, 12, 24, 2.0)
    check_mp4(out, width=256, height=144, fps=12, frames=24, audio=False)
    assert seen[-1] == (24, 24) and len(seen) > 1
    assert probe_video(out).duration_s == pytest.approx(2.0, abs=0.01)


def test_renders_with_aac_audio_trimmed_to_video(media, tmp_path):
    image, audio = media
    out = tmp_path / "out.mp4"
    render_preview(image, out, width=160, height=160, fps=8, frames=4, audio_path=audio)  # 0.5 s < 1 s of audio
    check_mp4(out, width=160, height=160, fps=8, frames=4, audio=True)
    probe = ffprobe(out)
    if probe is None:
        pytest.skip("ffprobe not installed: PyAV checks ran, ffprobe checks skipped")
    streams = {s["codec_type"]: s for s in probe["streams"]}
    assert streams["video"]["codec_name"] == "h264" and streams["video"]["pix_fmt"] == "yuv420p"
    assert streams["video"]["r_frame_rate"] == "8/1"
    assert streams["audio"]["codec_name"] == "aac"
    assert float(streams["audio"]["duration"]) <= 0.6


@pytest.mark.parametrize("size", [(640, 368), (128, 512)])
def test_cover_crops_any_aspect(media, tmp_path, size):
    image, _ = media
    out = tmp_path / "out.mp4"
    render_preview(image, out, width=size[0], height=size[1], fps=30, frames=3)
    check_mp4(out, width=size[0], height=size[1], fps=30, frames=3, audio=False)


def test_audio_duration_probe(media):
    _, audio = media
    assert probe_audio_duration(audio) == pytest.approx(1.0, abs=0.01)


def test_undecodable_image_is_invalid_input(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(WorkerError) as info:
        render_preview(bad, tmp_path / "o.mp4", width=64, height=64, fps=8, frames=2)
    assert info.value.code == "invalid_input"
    assert info.value.message.startswith("inputs.image ")
    assert str(tmp_path) not in info.value.message and "bad.png" not in info.value.message


@pytest.mark.parametrize(("raw", "public"), [
    ("cannot identify image file '/tmp/reelgate-k2/image.png'", "cannot identify image file"),
    ('inputs.audio could not be decoded: [Errno 1094995529] Invalid data: "/tmp/reelgate-k2/audio.wav"',
     "inputs.audio could not be decoded: [Errno 1094995529] Invalid data:"),
    ("No such file or directory: /var/lib/worker/x/y.bin, retrying", "No such file or directory: , retrying"),
    ("see https://r2.example/k?X-Amz-Signature=abc", "see https://r2.example/k"),
])
def test_public_messages_carry_no_path_of_the_worker(raw, public):
    assert WorkerError("invalid_input", raw).message == public


def test_undecodable_audio_is_invalid_input(media, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....garbage")
    with pytest.raises(WorkerError) as info:
        probe_audio_duration(bad)
    assert info.value.code == "invalid_input"
