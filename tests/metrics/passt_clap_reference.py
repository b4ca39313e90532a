"""Shared helpers of the PaSST and CLAP equality tests: test signals, the av-benchmark loader transcribed,
agomni's equivalent loader path, and the relative-difference measure of the acceptance criterion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from agomni.io import load_audio, resample


def rel_diff(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """max |ours - reference| / max |reference| (the 1e-4 acceptance measure)."""
    return float((ours - reference).abs().max() / reference.abs().max())


def write_tone(path: Path, rate: int, seconds: float, channels: int, seed: int) -> None:
    """PCM16 WAV: one sine per channel (220, 330, ... Hz at 0.3) plus white noise (std 0.05)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    sig = [
        0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) + 0.05 * rng.standard_normal(t.size)
        for c in range(channels)
    ]
    sf.write(str(path), np.stack(sig, axis=1), rate, subtype="PCM_16")


def av_benchmark_wave(path: Path, sample_rate: int, audio_length: float = 10.0) -> torch.Tensor:
    """av-benchmark ``AudioDataset.read_from_file`` transcribed: read, mean downmix, subtract the mean,
    ``torchaudio.transforms.Resample``, keep the first ``audio_length`` s -> [1, samples].
    (av-benchmark reads with ``torchaudio.load``, which needs torchcodec on torchaudio >= 2.9; soundfile
    gives the same float32 samples for PCM16 WAV.)"""
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    waveform = torch.from_numpy(data.T).mean(dim=0)
    waveform = waveform - waveform.mean()
    if rate != sample_rate:
        waveform = torchaudio.transforms.Resample(rate, sample_rate)(waveform)
    return waveform[: int(sample_rate * audio_length)].unsqueeze(0)


def agomni_av_benchmark_path(path: Path, sample_rate: int) -> torch.Tensor:
    """The same steps from agomni.io: decode, mean downmix, subtract the mean, "torchaudio-sinc" resampling.

    The mean subtraction matters: without it a DC offset of 1.2e-5 alone moved a random-weights PaSST
    embedding by 5.6e-5 relative; with it the two sides agree to about 4e-7."""
    wav, record = load_audio(path, sample_rate=None, downmix="mean")
    return resample(wav - wav.mean(), record.sample_rate, sample_rate, "torchaudio-sinc")
