"""Checks that an MP4 is what the protocol promises: PyAV always, ffprobe when it is installed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import av


def top_level_atoms(path: Path) -> list[str]:
    atoms, data = [], Path(path).read_bytes()
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset:offset + 4], "big")
        kind = data[offset + 4:offset + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[offset + 8:offset + 16], "big")
        atoms.append(kind)
        if size < 8:
            break
        offset += size
    return atoms


def check_mp4(path: Path, *, width: int, height: int, fps: int, frames: int, audio: bool) -> None:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert (video.codec_context.width, video.codec_context.height) == (width, height)
        assert round(float(video.average_rate)) == fps
        decoded = sum(1 for _ in container.decode(video))
        assert decoded == frames
        assert abs(float(video.duration * video.time_base) - frames / fps) < 0.01
        assert bool(container.streams.audio) == audio
        if audio:
            assert container.streams.audio[0].codec_context.name == "aac"
    atoms = top_level_atoms(path)
    assert atoms.index("moov") < atoms.index("mdat"), f"not faststart: {atoms}"


def ffprobe(path: Path) -> dict | None:
    """ffprobe's view of the file, or None when ffprobe is absent (those assertions are skipped)."""
    if shutil.which("ffprobe") is None:
        return None
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format",
                          str(path)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)
