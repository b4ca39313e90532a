"""Decode one audio stream to float32 ``[channels, samples]`` with its provenance.

Backend choice (decided by content, not by file name):
* WAV and FLAC (as identified by libsndfile) are read with **soundfile**: exact PCM-to-float scaling
  (int16 / 2**15, int24 / 2**23, int32 / 2**31, float as stored) and exact sample counts from the header.
* Everything else (mp3, ogg/vorbis, opus, m4a/aac, and the audio track of mp4/mkv/webm) is decoded with
  **PyAV** (FFmpeg), first audio stream of the container, with FFmpeg's ``flags2=+skip_manual``: the
  decoder reports the samples to skip at the start (mp3 LAME delay, opus pre-skip, vorbis first block,
  mp4 edit lists) and to discard at the end as frame side data instead of applying them, and agomni
  applies them. The start skip is applied as reported. The end: where the container declares the
  stream's exact length in samples (Ogg: the final granule position, a duration in 1/rate units, less
  Opus pre-skip), the decode is cut to exactly that length, as libsndfile does; FFmpeg's own end trimming of Ogg Vorbis is
  off by one short block (it drops 128 real samples, or keeps up to 223 extra). Elsewhere FFmpeg's end
  discard is applied as reported, and the tail is otherwise not trimmed (an AAC file may decode up to
  about one codec frame plus encoder padding, ~1000 samples, longer than it declares). Integer sample
  formats are scaled as above.

Truncation (a file cut short, e.g. the first N % of its bytes) raises `UnreadableMediaError`:
* WAV: the ``data`` chunk's declared byte count must be present (`agomni.io.truncation.check_wav`;
  libsndfile itself silently returns the shorter audio).
* FLAC: libsndfile fails on a cut frame; the decoded sample count must also equal STREAMINFO's total.
* Ogg (vorbis/opus), MP3, MP4/M4A and Matroska/WebM: byte-level checks in `agomni.io.truncation`
  (whole Ogg pages ending in an end-of-stream page; the Xing byte count and whole MPEG frames; whole
  top-level MP4 boxes; the Matroska segment size), run right after the container opens. These catch a
  cut of any size.
* PyAV, every container: FFmpeg errors while opening/decoding (a cut mp4/m4a loses its ``moov``), and
  the decoded duration must not fall short of the declared stream duration by more than
  ``0.02 s + max(codec frame, 1024 samples) / rate`` (covers opus pre-skip, vorbis first-block and mp3
  gapless trimming on valid files, which stay well inside it). A cut that removes less than that
  tolerance, or a file that declares no duration, cannot be detected this way; the record's
  ``integrity_check`` says which case applied.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from agomni.errors import UnreadableMediaError
from agomni.io.container import (
    check_not_truncated,
    declared_duration_s,
    first_stream,
    media_errors,
    open_container,
    pyav_decoder_name,
)
from agomni.io.truncation import check_wav

SOUNDFILE_FORMATS = ("WAV", "WAVEX", "FLAC")
_INT_SCALE = {np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31, np.dtype(np.int64): 2.0**63}


@dataclasses.dataclass(frozen=True)
class DecodedAudio:
    """Decoded samples (float32, ``[channels, samples]``) and what the file said about itself."""

    samples: np.ndarray
    sample_rate: int
    container: str
    codec: str
    decoder: str
    stream_index: int | None
    declared_duration_s: float | None
    integrity_check: str


def decode_audio(path: Path) -> DecodedAudio:
    """Decode `path` (an existing, non-empty file) with the backend chosen as in the module docstring."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError):
        info = None
    if info is not None and info.format in SOUNDFILE_FORMATS:
        return _decode_soundfile(path, info)
    return _decode_pyav(path)


def _decode_soundfile(path: Path, info: sf._SoundFileInfo) -> DecodedAudio:
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise UnreadableMediaError(path, f"corrupt or truncated {info.format} file ({err})") from err
    decoded = data.shape[0]
    declared: float | None = None
    if info.format == "FLAC":
        if info.frames > 0:
            declared = info.frames / rate
            if decoded != info.frames:
                raise UnreadableMediaError(
                    path,
                    f"truncated or corrupt: decoded {decoded} samples, STREAMINFO declares {info.frames}",
                )
            integrity = f"flac STREAMINFO declares {info.frames} samples; all decoded"
        else:
            integrity = "not checked: flac STREAMINFO does not declare the total sample count"
    else:
        integrity, declared_frames = check_wav(path)
        if declared_frames is not None:
            declared = declared_frames / rate
    return DecodedAudio(
        samples=np.ascontiguousarray(data.T),
        sample_rate=int(rate),
        container=info.format.lower(),
        codec=info.subtype,
        decoder=f"soundfile {sf.__version__} (libsndfile {sf.__libsndfile_version__})",
        stream_index=None,
        declared_duration_s=declared,
        integrity_check=integrity,
    )


def _frame_to_float(frame: av.AudioFrame) -> np.ndarray:
    """One decoded frame as float32 ``[channels, samples]``, integer formats scaled to [-1, 1).

    The scaling runs in float64 (exact for every integer format: a power-of-two division) and is
    rounded to float32 once, which gives the same values as libsndfile's float reads.
    """
    array = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if not frame.format.is_planar:
        array = array.reshape(-1, channels).T
    if array.dtype == np.uint8:
        return ((array.astype(np.float64) - 128.0) / 128.0).astype(np.float32)
    if array.dtype in _INT_SCALE:
        return (array.astype(np.float64) / _INT_SCALE[array.dtype]).astype(np.float32)
    return array.astype(np.float32)


def _skip_samples(frame: av.AudioFrame) -> tuple[int, int]:
    """(samples to skip at the start, samples to discard at the end) of a frame decoded with
    ``+skip_manual``: FFmpeg's SKIP_SAMPLES side data (two little-endian uint32), else (0, 0)."""
    for data in frame.side_data:
        if data.type == av.sidedata.sidedata.Type.SKIP_SAMPLES:
            start, end = struct.unpack("<II", bytes(data)[:8])
            return start, end
    return 0, 0


def _exact_declared_samples(stream: av.audio.stream.AudioStream, rate: int) -> int | None:
    """The stream's length in samples where the container declares it exactly (a duration counted in
    1/rate units, as Ogg's final granule position, less the codec's initial padding: Opus pre-skip),
    else None."""
    if stream.duration is None or stream.duration <= 0 or stream.time_base is None:
        return None
    if stream.time_base * rate != 1:
        return None
    return int(stream.duration) - int(stream.codec_context.delay or 0)


def _decode_pyav(path: Path) -> DecodedAudio:
    container = open_container(path)
    with container:
        stream, checks = first_stream(container, path, "audio")
        stream.codec_context.options = {"flags2": "+skip_manual"}
        chunks: list[np.ndarray] = []
        rate = channels = None
        end_discard = 0
        with media_errors(path, "decoding audio"):
            for frame in container.decode(stream):
                if rate is None:
                    rate, channels = frame.sample_rate, frame.layout.nb_channels
                elif (frame.sample_rate, frame.layout.nb_channels) != (rate, channels):
                    raise UnreadableMediaError(
                        path,
                        f"sample rate/channels change mid-stream ({rate} Hz x {channels} -> "
                        f"{frame.sample_rate} Hz x {frame.layout.nb_channels}); not supported",
                    )
                start, end_discard = _skip_samples(frame)
                chunks.append(_frame_to_float(frame)[:, start:])
        rate = rate or stream.rate or 0
        channels = channels or stream.codec_context.channels or 1
        samples = np.concatenate(chunks, axis=1) if chunks else np.zeros((channels, 0), np.float32)
        exact = _exact_declared_samples(stream, rate)
        if exact is not None:
            samples = samples[:, :exact]
            checks.append(f"cut to the {exact} samples the container declares")
        elif end_discard:
            samples = samples[:, : max(0, samples.shape[1] - end_discard)]
        declared = declared_duration_s(container, stream)
        codec = stream.codec_context.codec.canonical_name
        tolerance = 0.02 + max(stream.codec_context.frame_size or 0, 1024) / max(rate, 1)
        checks.append(
            check_not_truncated(path, "audio", samples.shape[1] / rate, declared, tolerance)
            if samples.shape[1]
            else "not checked: no samples decoded"
        )
        return DecodedAudio(
            samples=samples,
            sample_rate=int(rate),
            container=container.format.name,
            codec=codec,
            decoder=pyav_decoder_name(),
            stream_index=stream.index,
            declared_duration_s=declared,
            integrity_check="; ".join(checks),
        )
