"""The CPU `preview` model: a slow zoom (Ken Burns) over the still, H.264 yuv420p MP4 with faststart, plus AAC
audio when an audio input is given. No ComfyUI, no GPU: it lets the whole pipeline run anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import WorkerError

ZOOM_END = 1.12  # the last frame shows 1/1.12 of the first frame's area per side: a gentle push-in
AUDIO_RATE = 48000
VIDEO_CODEC = "libx264"

EncodeProgress = Callable[[int, int], None]  # (frames done, frames total)


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: int
    frames: int
    duration_s: float
    has_audio: bool


def require_h264() -> None:
    """PyAV wheels bundle an ffmpeg; a build without libx264 cannot make the MP4s browsers play."""
    if VIDEO_CODEC not in av.codecs_available:
        raise WorkerError("internal", "PyAV's bundled ffmpeg has no libx264 encoder; install a PyAV build with it")


def probe_audio_duration(path: Path) -> float:
    """Duration of an audio file in seconds (wav, mp3, flac, ogg...), decoding when the header does not say."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise WorkerError("invalid_input", "inputs.audio has no audio stream")
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            if container.duration is not None:
                return container.duration / av.time_base
            samples = sum(frame.samples for frame in container.decode(stream))
            return samples / (stream.rate or AUDIO_RATE)
    except av.FFmpegError as exc:
        raise WorkerError("invalid_input", f"inputs.audio could not be decoded: {exc}") from None


def _cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scales and center-crops the still to the target aspect, with ZOOM_END headroom for the push-in."""
    return ImageOps.fit(image, (round(width * ZOOM_END), round(height * ZOOM_END)), Image.Resampling.LANCZOS)


def _frame_at(base: Image.Image, width: int, height: int, t: float) -> Image.Image:
    """The crop at progress t in [0, 1]: from the full base (zoom 1) to the center 1/ZOOM_END of it."""
    eased = t * t * (3 - 2 * t)  # smoothstep: starts and ends gently
    scale = 1 + (ZOOM_END - 1) * eased
    crop_w, crop_h = base.width / scale, base.height / scale
    left, top = (base.width - crop_w) / 2, (base.height - crop_h) / 2
    return base.resize((width, height), Image.Resampling.BILINEAR, box=(left, top, left + crop_w, top + crop_h))


def _encode_audio(audio_path: Path, stream, max_seconds: float) -> list:
    """Decodes any audio PyAV reads, resamples to stereo fltp 48 kHz, encodes AAC; trimmed to the video length."""
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
    max_samples = int(max_seconds * AUDIO_RATE)
    written = 0
    packets = []
    try:
        with av.open(str(audio_path)) as source:
            if not source.streams.audio:
                raise WorkerError("invalid_input", "inputs.audio has no audio stream")
            for frame in source.decode(source.streams.audio[0]):
                frame.pts = None
                for out in resampler.resample(frame):
                    if written >= max_samples:
                        break
                    out.pts = written
                    out.time_base = Fraction(1, AUDIO_RATE)
                    written += out.samples
                    packets.extend(stream.encode(out))
            packets.extend(stream.encode(None))
    except av.FFmpegError as exc:
        raise WorkerError("invalid_input", f"inputs.audio could not be decoded: {exc}") from None
    return packets


def check_image(path: Path) -> None:
    """Fails with `invalid_input` naming inputs.image when the file is not an image we and ComfyUI can read, so
    the job's error says so instead of a ComfyUI traceback about a file on this machine."""
    try:
        with Image.open(path) as img:
            img.verify()
    except UnidentifiedImageError:
        raise WorkerError("invalid_input", "inputs.image is not a PNG, JPEG or WebP image") from None
    except (OSError, ValueError, SyntaxError) as exc:  # PIL reports some corrupt files as SyntaxError
        raise WorkerError("invalid_input", f"inputs.image could not be decoded: {exc}") from None


def render_preview(
    image_path: Path, out_path: Path, *, width: int, height: int, fps: int, frames: int,
    audio_path: Path | None = None, progress: EncodeProgress | None = None,
) -> VideoInfo:
    """Renders `frames` frames at `fps` to an MP4 at `out_path`. CPU-bound: call it from a thread."""
    require_h264()
    try:
        with Image.open(image_path) as img:
            still = ImageOps.exif_transpose(img).convert("RGB")
    except UnidentifiedImageError:
        raise WorkerError("invalid_input", "inputs.image is not a PNG, JPEG or WebP image") from None
    except (OSError, ValueError) as exc:
        raise WorkerError("invalid_input", f"inputs.image could not be decoded: {exc}") from None
    base = _cover(still, width, height)
    duration_s = frames / fps
    # faststart moves the index (moov) before the media data so playback starts before the download ends.
    with av.open(str(out_path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        video = container.add_stream(VIDEO_CODEC, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "23"}
        audio_packets = []
        if audio_path is not None:
            audio = container.add_stream("aac", rate=AUDIO_RATE)
            audio.layout = "stereo"
            audio_packets = _encode_audio(audio_path, audio, duration_s)
        step = max(1, frames // 20)
        for index in range(frames):
            t = index / (frames - 1) if frames > 1 else 0.0
            frame = av.VideoFrame.from_image(_frame_at(base, width, height, t))
            frame.pts = index
            container.mux(video.encode(frame))
            # Interleave audio up to the current video time so the muxer does not buffer it all.
            now = (index + 1) / fps
            while audio_packets and audio_packets[0].pts is not None and \
                    audio_packets[0].pts / AUDIO_RATE <= now:
                container.mux(audio_packets.pop(0))
            if progress and (index % step == step - 1 or index == frames - 1):
                progress(index + 1, frames)
        container.mux(video.encode(None))
        if audio_packets:
            container.mux(audio_packets)
    return VideoInfo(width, height, fps, frames, round(duration_s, 3), audio_path is not None)


def probe_video(path: Path) -> VideoInfo:
    """Reads width/height/fps/duration from a finished MP4 (the ComfyUI outputs)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise WorkerError("inference_failed", "the model's output has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = (container.duration or 0) / av.time_base
            frames = stream.frames or round(duration * fps)
            return VideoInfo(stream.codec_context.width, stream.codec_context.height, round(fps), frames,
                             round(duration, 3), bool(container.streams.audio))
    except av.FFmpegError as exc:
        raise WorkerError("inference_failed", f"the model's output is not a readable video: {exc}") from None
