"""MFCC audio features for SyncNet, as syncnet_python computes them.

Recipe (joonson/syncnet_python ``SyncNetInstance.evaluate``): 16 kHz mono PCM read as int16 values
(no scaling to [-1, 1]) and ``python_speech_features.mfcc`` with its defaults: pre-emphasis 0.97; 25 ms
frames (400 samples) every 10 ms (160), the last frame zero-padded; rectangular window; power spectrum
|rfft_512|^2 / 512; 26 triangular mel filters over 0..8000 Hz on FFT bins floor(513 * mel2hz(m) / 16000);
log (zeros replaced by float64 eps); orthonormal DCT-II, first 13 coefficients; sinusoidal lifter 22;
coefficient 0 replaced by the log of the frame's total power. Output (13, frames): 100 frames per second,
4 per 25 fps video frame.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dct

SAMPLE_RATE = 16000
FRAME_LENGTH = 400  # 25 ms at 16 kHz
FRAME_STEP = 160  # 10 ms
NFFT = 512
FILTERS = 26
CEPSTRA = 13
LIFTER = 22
PREEMPHASIS = 0.97
INT16_SCALE = 32768.0


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(filters: int = FILTERS, nfft: int = NFFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(filters, nfft // 2 + 1) triangular filters on integer FFT bins, 0 Hz to sample_rate / 2."""
    mels = np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), filters + 2)
    bins = np.floor((nfft + 1) * _mel_to_hz(mels) / sample_rate)
    bank = np.zeros((filters, nfft // 2 + 1))
    index = np.arange(nfft // 2 + 1)
    for j in range(filters):
        left, centre, right = bins[j], bins[j + 1], bins[j + 2]
        rising = (index >= left) & (index < centre)
        falling = (index >= centre) & (index < right)
        bank[j, rising] = (index[rising] - left) / (centre - left)
        bank[j, falling] = (right - index[falling]) / (right - centre)
    return bank


def frame_count(samples: int) -> int:
    """Number of MFCC frames for `samples` samples (at least one; the last frame is zero-padded)."""
    if samples <= FRAME_LENGTH:
        return 1
    return 1 + -(-(samples - FRAME_LENGTH) // FRAME_STEP)


def syncnet_mfcc(pcm: np.ndarray) -> np.ndarray:
    """MFCC (13, frames) float64 of 16 kHz mono samples given as int16 values (see the module docstring).

    `pcm`: 1-D array of int16 sample values (any numeric dtype; float audio in [-1, 1] must first be
    quantised with `to_int16_values`).
    """
    signal = np.asarray(pcm, dtype=np.float64)
    if signal.ndim != 1 or signal.size == 0:
        raise ValueError(f"expected a non-empty 1-D signal, got shape {signal.shape}")
    emphasised = np.concatenate([signal[:1], signal[1:] - PREEMPHASIS * signal[:-1]])
    count = frame_count(signal.size)
    padded = np.zeros((count - 1) * FRAME_STEP + FRAME_LENGTH)
    padded[: signal.size] = emphasised
    index = np.arange(FRAME_LENGTH)[None, :] + FRAME_STEP * np.arange(count)[:, None]
    power = np.abs(np.fft.rfft(padded[index], NFFT)) ** 2 / NFFT
    eps = np.finfo(float).eps
    energy = power.sum(axis=1)
    energy = np.where(energy == 0, eps, energy)
    bands = power @ mel_filterbank().T
    bands = np.where(bands == 0, eps, bands)
    cepstra = dct(np.log(bands), type=2, axis=1, norm="ortho")[:, :CEPSTRA]
    cepstra = cepstra * (1.0 + (LIFTER / 2.0) * np.sin(np.pi * np.arange(CEPSTRA) / LIFTER))
    cepstra[:, 0] = np.log(energy)
    return cepstra.T


def to_int16_values(waveform: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> the int16 values a 16-bit PCM WAV holds (FFmpeg's pcm_s16le
    conversion: round(x * 32768), clipped to [-32768, 32767])."""
    return np.clip(np.round(np.asarray(waveform, dtype=np.float64) * INT16_SCALE), -32768, 32767).astype(
        np.int16
    )
