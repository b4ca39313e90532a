"""Generate small test media files (audio in every supported codec, video with solid-colour frames).

Writers: soundfile for wav/flac/ogg-vorbis (exact PCM, and FFmpeg's native vorbis encoder is
experimental), PyAV (FFmpeg) for mp3, opus, aac and video containers. All signals are generated here
with numpy, so tests can compare decoded output against what was written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
import soundfile as sf

#: codec name -> (container format for PyAV or soundfile, file extension)
AUDIO_CODECS: dict[str, tuple[str, str]] = {
    "pcm_s16": ("WAV", ".wav"),
    "pcm_f32": ("WAV", ".wav"),
    "flac": ("FLAC", ".flac"),
    "vorbis": ("OGG", ".ogg"),
    "vorbis-oga": ("OGG", ".oga"),
    "mp3": ("mp3", ".mp3"),
    "opus": ("ogg", ".opus"),
    "aac": ("ipod", ".m4a"),
}
_PYAV_ENCODERS = {"mp3": "libmp3lame", "opus": "libopus", "aac": "aac"}
#: container extension -> (PyAV format, video encoder, encoder options, audio encoder)
VIDEO_CONTAINERS: dict[str, tuple[str, str, dict[str, str], str]] = {
    ".mp4": ("mp4", "libx264", {"qp": "0", "preset": "ultrafast"}, "aac"),
    ".mkv": ("matroska", "libx264", {"qp": "0", "preset": "ultrafast"}, "libopus"),
    ".webm": ("webm", "libvpx-vp9", {"lossless": "1", "deadline": "realtime", "cpu-used": "8"}, "libopus"),
}


def sine(
    frequencies: float | Sequence[float], sample_rate: int, duration: float, amplitude: float = 0.5
) -> np.ndarray:
    """Sine tones as float64 ``[channels, samples]``: one channel per frequency (Hz), phase 0 at t = 0."""
    freqs = [frequencies] if isinstance(frequencies, int | float) else list(frequencies)
    t = np.arange(round(sample_rate * duration)) / sample_rate
    return np.stack([amplitude * np.sin(2 * np.pi * f * t) for f in freqs])


def write_pcm_file(path: Path, samples: np.ndarray, sample_rate: int, subtype: str) -> Path:
    """Write ``[channels, samples]`` with soundfile (WAV for PCM_*/FLOAT/DOUBLE subtypes, FLAC by suffix).

    Integer arrays are written as is (int16 -> PCM_16; int32 -> PCM_24 keeps the top 24 bits); float
    arrays are written unscaled (FLOAT / DOUBLE keep NaN and inf).
    """
    sf.write(str(path), np.ascontiguousarray(samples.T), sample_rate, subtype=subtype)
    return path


def _add_audio_stream(
    container: av.container.OutputContainer, encoder: str, channels: int, sample_rate: int
) -> av.audio.stream.AudioStream:
    return container.add_stream(encoder, rate=sample_rate, layout="mono" if channels == 1 else "stereo")


def _encode_audio(
    container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, signal: np.ndarray
) -> None:
    layout = "mono" if signal.shape[0] == 1 else "stereo"
    block = 1024
    data = signal.astype(np.float32)
    for start in range(0, data.shape[1], block):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(data[:, start : start + block]), format="fltp", layout=layout
        )
        frame.sample_rate = stream.rate
        frame.pts = start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


class ToneFile(NamedTuple):
    """A written tone: where it is and the float64 ``[channels, samples]`` signal that was encoded."""

    path: Path
    signal: np.ndarray


def make_tone_file(
    path: Path,
    codec: str,
    *,
    sample_rate: int = 48000,
    frequencies: float | Sequence[float] = 440.0,
    duration: float = 1.0,
    amplitude: float = 0.5,
    muxer_options: dict[str, str] | None = None,
) -> ToneFile:
    """Write a sine tone (one channel per frequency) encoded with `codec`; return its path and signal.

    `codec` is a key of `AUDIO_CODECS`; the codec's extension is appended unless `path` already has it.
    PCM codecs store the signal quantised (pcm_s16, flac: 16-bit) or exactly (pcm_f32).
    `muxer_options` go to FFmpeg's muxer for PyAV-written codecs, e.g. ``{"write_xing": "0"}`` for an
    mp3 without a Xing/Info header or ``{"movflags": "faststart"}`` for an m4a with its index first.
    """
    container_format, suffix = AUDIO_CODECS[codec]
    path = path if path.suffix == suffix else path.with_name(path.name + suffix)
    signal = sine(frequencies, sample_rate, duration, amplitude)
    if codec in ("pcm_s16", "flac"):
        write_pcm_file(path, np.round(signal * 32767).astype(np.int16), sample_rate, "PCM_16")
    elif codec == "pcm_f32":
        write_pcm_file(path, signal.astype(np.float32), sample_rate, "FLOAT")
    elif codec in ("vorbis", "vorbis-oga"):
        sf.write(str(path), signal.T, sample_rate, format="OGG", subtype="VORBIS")
    else:
        with av.open(str(path), "w", format=container_format, options=muxer_options or {}) as container:
            stream = _add_audio_stream(container, _PYAV_ENCODERS[codec], signal.shape[0], sample_rate)
            _encode_audio(container, stream, signal)
    return ToneFile(path, signal)


def make_video_file(
    path: Path,
    colours: Sequence[tuple[int, int, int]],
    *,
    fps: int = 10,
    size: tuple[int, int] = (48, 64),
    audio: np.ndarray | None = None,
    audio_rate: int = 48000,
) -> Path:
    """Write one solid-colour frame per RGB triple in `colours` at `fps`, `size` = (height, width).

    The container comes from the suffix (.mp4: H.264 lossless + AAC; .mkv: H.264 lossless + Opus;
    .webm: VP9 lossless + Opus). If `audio` (float ``[channels, samples]`` at `audio_rate`) is given it
    becomes the audio track. Colours survive up to the RGB <-> YUV 4:2:0 rounding (a few levels).
    """
    container_format, video_encoder, options, audio_encoder = VIDEO_CONTAINERS[path.suffix]
    height, width = size
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(video_encoder, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        audio_stream = (
            _add_audio_stream(container, audio_encoder, audio.shape[0], audio_rate)
            if audio is not None
            else None
        )
        for index, colour in enumerate(colours):
            image = np.empty((height, width, 3), np.uint8)
            image[...] = colour
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        if audio_stream is not None:
            _encode_audio(container, audio_stream, audio)
    return path


def make_truncated_copy(source: Path, destination: Path, fraction: float) -> Path:
    """Copy the first `fraction` of `source`'s bytes to `destination` (a user's cut-short download)."""
    data = source.read_bytes()
    destination.write_bytes(data[: int(len(data) * fraction)])
    return destination


def make_text_file(path: Path, text: str = "this is not audio\n") -> Path:
    """Write plain text to `path` (e.g. a text file renamed to .wav)."""
    path.write_text(text)
    return path
