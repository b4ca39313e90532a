"""`load_audio`: decode, check, downmix and resample one audio file (or a video's audio track).

Order of operations: file checks -> decode (see `agomni.io.audio_decode`) -> empty / non-finite /
all-zero checks on the decoded samples -> downmix (`agomni.io.downmix`) -> resample
(`agomni.io.resample`) -> minimum-duration check on the output -> `AudioRecord`.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from agomni.errors import EmptyMediaError, NonFiniteAudioError, SilentAudioError, TooShortError, UsageError
from agomni.io.audio_decode import decode_audio
from agomni.io.container import check_file, file_sha256
from agomni.io.downmix import DOWNMIX_POLICIES
from agomni.io.downmix import downmix as apply_downmix
from agomni.io.records import AudioRecord
from agomni.io.resample import RESAMPLE_POLICIES, TORCHAUDIO_SINC, resample, resample_parameters


def _check_arguments(
    sample_rate: int | None, downmix: str, resampler: str, min_duration: float | None
) -> None:
    if sample_rate is not None and (
        isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0
    ):
        raise UsageError(f"sample_rate must be a positive integer number of Hz or None, got {sample_rate!r}")
    if downmix not in DOWNMIX_POLICIES:
        raise UsageError(f"unknown downmix policy {downmix!r}; choose one of {', '.join(DOWNMIX_POLICIES)}")
    if resampler not in RESAMPLE_POLICIES:
        raise UsageError(
            f"unknown resampling policy {resampler!r}; choose one of {', '.join(RESAMPLE_POLICIES)}"
        )
    if min_duration is not None and not min_duration >= 0:
        raise UsageError(
            f"min_duration must be a non-negative number of seconds or None, got {min_duration!r}"
        )


def load_audio(
    path: str | os.PathLike[str],
    *,
    sample_rate: int | None = None,
    downmix: str = "mean",
    resampler: str = TORCHAUDIO_SINC,
    min_duration: float | None = None,
    allow_silence: bool = False,
) -> tuple[torch.Tensor, AudioRecord]:
    """Load audio as float32 ``[channels, samples]`` plus an `AudioRecord` of what was done.

    Args:
        path: an audio file (wav, flac, mp3, ogg/vorbis, opus, m4a/aac) or a video container
            (mp4, mkv, webm) whose first audio stream is used.
        sample_rate: output rate in Hz; None keeps the file's rate (no resampling).
        downmix: "mean" (average channels, -> 1 channel), "first" (channel 0) or "keep".
        resampler: a policy of `agomni.io.resample` ("torchaudio-sinc" = av-benchmark's resampler,
            "torchaudio-sinc-functional", "soxr-hq", "soxr-vhq").
        min_duration: minimum output duration in seconds; shorter audio raises `TooShortError`.
        allow_silence: if False (default) audio whose every sample is exactly 0 raises `SilentAudioError`.

    Samples are in [-1, 1) for integer PCM sources (float sources are returned as stored, unclipped).

    Raises (all name the file): `UnreadableMediaError` (missing, not media, corrupt, truncated),
    `EmptyMediaError` (0-byte file or no samples), `UnsupportedCodecError` (no audio stream or no
    decoder), `NonFiniteAudioError` (NaN/inf samples), `SilentAudioError`, `TooShortError`;
    `UsageError` for bad arguments.
    """
    _check_arguments(sample_rate, downmix, resampler, min_duration)
    file_path, file_bytes = check_file(path)
    decoded = decode_audio(file_path)
    source = decoded.samples
    source_channels, source_samples = source.shape
    if source_samples == 0:
        raise EmptyMediaError(file_path, "the audio stream decodes to no samples")
    finite = np.isfinite(source)
    if not finite.all():
        bad = int((~finite).sum())
        first = int(np.argwhere(~finite)[0][1])
        raise NonFiniteAudioError(
            file_path, f"{bad} of {source.size} decoded samples are NaN or infinite (first at sample {first})"
        )
    if not allow_silence and not source.any():
        raise SilentAudioError(
            file_path, "every decoded sample is exactly 0 (pass allow_silence=True to accept silent audio)"
        )
    waveform = apply_downmix(torch.from_numpy(source), downmix)
    out_rate = sample_rate or decoded.sample_rate
    resample_applied = out_rate != decoded.sample_rate
    if resample_applied:
        waveform = resample(waveform, decoded.sample_rate, out_rate, resampler)
    duration = waveform.shape[1] / out_rate
    if min_duration is not None and duration < min_duration:
        raise TooShortError(
            file_path, f"duration {duration:.3f} s is shorter than the required minimum {min_duration:.3f} s"
        )
    params = resample_parameters(resampler, decoded.sample_rate, out_rate) if resample_applied else {}
    record = AudioRecord(
        path=str(file_path),
        file_bytes=file_bytes,
        file_sha256=file_sha256(file_path),
        container=decoded.container,
        codec=decoded.codec,
        decoder=decoded.decoder,
        stream_index=decoded.stream_index,
        source_sample_rate=decoded.sample_rate,
        source_channels=source_channels,
        source_samples=source_samples,
        source_duration_s=source_samples / decoded.sample_rate,
        declared_duration_s=decoded.declared_duration_s,
        integrity_check=decoded.integrity_check,
        downmix=downmix,
        resampler=resampler,
        resample_applied=resample_applied,
        resample_params=tuple(params.items()),
        sample_rate=out_rate,
        channels=waveform.shape[0],
        samples=waveform.shape[1],
        duration_s=duration,
        peak_abs=float(waveform.abs().max()) if waveform.numel() else 0.0,
    )
    return waveform.contiguous(), record
