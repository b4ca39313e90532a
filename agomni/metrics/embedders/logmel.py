"""The torchlibrosa log-mel front end (``Spectrogram`` + ``LogmelFilterBank``), shared by PANNs CNN14,
LAION-CLAP's and MS-CLAP's HTSAT; its mel filterbank also serves OpenL3.

Reflect-pad n_fft/2 samples at both ends; STFT as two Conv1d (cos and -sin DFT rows times a periodic
Hann window, stride hop); power spectrum; times librosa's mel filterbank (Slaney mel scale, Slaney area
normalisation: ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)``, reimplemented here in numpy);
``10 log10(max(x, 1e-10))`` (torchlibrosa ``power_to_db`` with ref 1.0, amin 1e-10, no top_db), float32.
Module and parameter names follow torchlibrosa (``spectrogram_extractor.stft.conv_{real,imag}.weight``,
``logmel_extractor.melW``), so the published checkpoints that store these matrices load unchanged; the
matrices are computed at construction, exact for the settings, and never trained.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

AMIN = 1e-10


def hz_to_slaney_mel(hz: np.ndarray) -> np.ndarray:
    """librosa's default (Slaney) mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(
        hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-300) / min_log_hz) / logstep, hz / f_sp
    )


def slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of `hz_to_slaney_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def librosa_mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """[n_fft // 2 + 1, n_mels] float32: ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels,
    fmin=fmin, fmax=fmax).T`` (Slaney scale and area normalisation; rows computed in float64, stored in
    float32, then scaled, as librosa does)."""
    fft_hz = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    mel_hz = slaney_mel_to_hz(np.linspace(hz_to_slaney_mel(fmin), hz_to_slaney_mel(fmax), n_mels + 2))
    widths = np.diff(mel_hz)
    ramps = np.subtract.outer(mel_hz, fft_hz)
    weights = np.zeros((n_mels, fft_hz.size), dtype=np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0.0, np.minimum(-ramps[i] / widths[i], ramps[i + 2] / widths[i + 1]))
    weights *= (2.0 / (mel_hz[2 : n_mels + 2] - mel_hz[:n_mels]))[:, None]
    return np.ascontiguousarray(weights.T)


def stft_kernels(n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Conv1d weights [n_fft // 2 + 1, 1, n_fft] (float32) of the real and imaginary DFT parts times a
    periodic Hann window: ``w[n] cos(2 pi k n / N)`` and ``-w[n] sin(2 pi k n / N)``."""
    n = np.arange(n_fft)
    k = np.arange(n_fft // 2 + 1)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)
    phase = 2.0 * np.pi * ((k[:, None] * n[None, :]) % n_fft) / n_fft
    real = (np.cos(phase) * window).astype(np.float32)[:, None, :]
    imag = (-np.sin(phase) * window).astype(np.float32)[:, None, :]
    return real, imag


class _Stft(nn.Module):
    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        bins = n_fft // 2 + 1
        self.n_fft, self.hop = n_fft, hop
        self.conv_real = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
        self.conv_imag = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
        real, imag = stft_kernels(n_fft)
        with torch.no_grad():
            self.conv_real.weight.copy_(torch.from_numpy(real))
            self.conv_imag.weight.copy_(torch.from_numpy(imag))
        self.requires_grad_(False)


class Spectrogram(nn.Module):
    """[B, samples] -> power spectrogram [B, 1, frames, n_fft // 2 + 1] (reflect-padded, centred)."""

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        self.stft = _Stft(n_fft, hop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.stft.n_fft // 2
        x = F.pad(x[:, None, :], (half, half), mode="reflect")
        real = self.stft.conv_real(x)[:, None].transpose(2, 3)
        imag = self.stft.conv_imag(x)[:, None].transpose(2, 3)
        return real**2 + imag**2


class LogmelFilterBank(nn.Module):
    """Power spectrogram -> ``10 log10(max(spec @ melW, 1e-10))`` [B, 1, frames, n_mels]."""

    def __init__(self, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> None:
        super().__init__()
        melw = librosa_mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
        self.register_buffer("melW", torch.from_numpy(melw))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10(torch.clamp(spec @ self.melW, min=AMIN))


__all__ = [
    "AMIN",
    "LogmelFilterBank",
    "Spectrogram",
    "hz_to_slaney_mel",
    "librosa_mel_filterbank",
    "slaney_mel_to_hz",
    "stft_kernels",
]
