"""Offline embedders: fixed spectral transforms that need no downloaded weights.

They let the whole metric pipeline run (tests, CI, air-gapped machines) and give a rough, reproducible
distribution distance, but their numbers are NOT comparable with any published FAD / FD table
(``comparable_with_published = False`` in every output).

Settings (16 kHz mono, float32, torchaudio):
- STFT: n_fft 400 (25 ms), Hann window of 400 samples, hop 160 (10 ms), centred with reflect padding,
  power spectrogram;
- mel: 64 bands, HTK mel scale, 50 - 8000 Hz, no area normalisation; log-mel = ln(mel + 1e-6);
- MFCC: the first 20 coefficients of an orthonormal DCT-II of the log-mel frames (computed per clip,
  so, unlike ``torchaudio.transforms.MFCC`` with its batch-wide ``top_db`` clamp, results do not depend
  on what else is in the batch).
Frame level: [B, frames, F] with frames = 1 + samples // 160 and F = 64 (mel) or 20 (mfcc).
Clip level: per-feature mean and population std over frames, concatenated: [B, 2F].
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torchaudio

from agomni.errors import MetricInputError, UsageError
from agomni.metrics.embedders import Embedder

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
N_MELS = 64
F_MIN = 50.0
F_MAX = 8000.0
LOG_FLOOR = 1e-6
N_MFCC = 20
VERSION = "1"

Features = Literal["mel", "mfcc"]
Level = Literal["clip", "frames"]


class SpectralStatsEmbedder(Embedder):
    """Log-mel or MFCC features, per frame or summarised per clip (mean and std over frames).

    Names: ``"mel-stats"`` / ``"mfcc-stats"`` (clip level), ``"mel-frames"`` / ``"mfcc-frames"``.
    """

    sample_rate = SAMPLE_RATE
    min_samples = N_FFT
    version = VERSION
    comparable_with_published = False

    def __init__(self, features: Features = "mel", level: Level = "clip"):
        if features not in ("mel", "mfcc"):
            raise MetricInputError(f"offline embedder: features must be 'mel' or 'mfcc', got {features!r}")
        if level not in ("clip", "frames"):
            raise MetricInputError(f"offline embedder: level must be 'clip' or 'frames', got {level!r}")
        self.features = features
        self.output = level
        self.name = f"{features}-{'stats' if level == 'clip' else 'frames'}"
        self._mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE,
            n_fft=N_FFT,
            win_length=N_FFT,
            hop_length=HOP_LENGTH,
            f_min=F_MIN,
            f_max=F_MAX,
            n_mels=N_MELS,
            window_fn=torch.hann_window,
            power=2.0,
            center=True,
            pad_mode="reflect",
            norm=None,
            mel_scale="htk",
        )
        self._dct = torchaudio.functional.create_dct(N_MFCC, N_MELS, norm="ortho")

    @property
    def dim(self) -> int:
        """Size of the last axis of ``embed``'s output."""
        per_frame = N_MELS if self.features == "mel" else N_MFCC
        return per_frame * (2 if self.output == "clip" else 1)

    def config(self) -> dict[str, Any]:
        return {
            "features": self.features,
            "level": self.output,
            "n_fft": N_FFT,
            "win_length": N_FFT,
            "hop_length": HOP_LENGTH,
            "window": "hann",
            "center": True,
            "pad_mode": "reflect",
            "n_mels": N_MELS,
            "f_min": F_MIN,
            "f_max": F_MAX,
            "mel_scale": "htk",
            "log": f"ln(mel + {LOG_FLOOR})",
            "n_mfcc": N_MFCC if self.features == "mfcc" else None,
            "clip_summary": "mean and population std over frames" if self.output == "clip" else None,
        }

    @torch.no_grad()
    def embed(self, waveform: torch.Tensor) -> torch.Tensor:
        """[B, samples] float32 at 16 kHz (at least 400 samples) -> [B, 2F] (clip) or [B, frames, F]."""
        x = self.check_waveform(waveform, min_samples=N_FFT)
        frames = torch.log(self._mel(x) + LOG_FLOOR).transpose(1, 2)  # [B, frames, n_mels]
        if self.features == "mfcc":
            frames = frames @ self._dct  # [B, frames, n_mfcc]
        if self.output == "frames":
            return frames.contiguous()
        return torch.cat([frames.mean(dim=1), frames.std(dim=1, correction=0)], dim=1)


def offline_embedder(name: str) -> SpectralStatsEmbedder:
    """The offline embedder called ``name``: mel-stats, mfcc-stats, mel-frames or mfcc-frames."""
    table = {
        f"{features}-{suffix}": (features, level)
        for features in ("mel", "mfcc")
        for suffix, level in (("stats", "clip"), ("frames", "frames"))
    }
    if name not in table:
        raise UsageError(f"unknown offline embedder {name!r}; choose one of {sorted(table)}")
    features, level = table[name]
    return SpectralStatsEmbedder(features, level)
