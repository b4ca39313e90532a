"""Shared fixtures of the VGGish and PANNs embedder tests (names start with ``panns_vggish_``).

``panns_vggish_stereo_wav(seconds)`` writes a 44.1 kHz stereo 16-bit wav whose channels differ and carry
a DC offset, so downmix, DC removal and resampling all matter. ``panns_vggish_reference_input`` prepares
such a file the way the reference toolkits do, written from their code with soundfile and torchaudio
(independent of agomni.io): av-benchmark ``AudioDataset.read_from_file`` and audioldm_eval
``WaveDataset.read_from_file``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

SOURCE_RATE = 44100


@pytest.fixture(scope="session")
def panns_vggish_stereo_wav(tmp_path_factory: pytest.TempPathFactory) -> Callable[[float], Path]:
    folder = tmp_path_factory.mktemp("panns_vggish_audio")

    def write(seconds: float) -> Path:
        path = folder / f"stereo_{seconds:.3f}s.wav"
        if not path.exists():
            rng = np.random.default_rng(round(seconds * 1000))
            t = np.arange(round(SOURCE_RATE * seconds)) / SOURCE_RATE
            left = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size) + 0.03
            right = 0.3 * np.sin(2 * np.pi * 1250 * t * (1 + 0.2 * t)) + 0.1 * rng.standard_normal(t.size)
            sf.write(path, np.stack([left, right], axis=1), SOURCE_RATE, subtype="PCM_16")
        return path

    return write


def _reference_input(
    path: Path, recipe: str, target_rate: int, max_seconds: float | None = None
) -> torch.Tensor:
    data, rate = sf.read(path, dtype="float32", always_2d=True)  # what torchaudio.load returns, transposed
    audio = torch.from_numpy(np.ascontiguousarray(data.T))
    if recipe == "av-benchmark":
        waveform = audio.mean(dim=0)
        waveform = waveform - waveform.mean()
        if rate != target_rate:
            waveform = torchaudio.transforms.Resample(rate, target_rate)(waveform)
        if max_seconds is not None:
            waveform = waveform[: int(target_rate * max_seconds)]
        return waveform
    if recipe == "audioldm-eval":
        audio = audio[0:1, ...]
        audio = audio - audio.mean()
        if rate != target_rate:
            audio = torchaudio.functional.resample(audio, orig_freq=rate, new_freq=target_rate)
        if audio.size(-1) < 32000:
            audio = torch.nn.functional.pad(audio, (0, 32000 - audio.size(-1)), mode="constant", value=0.0)
        return audio[0]
    raise ValueError(recipe)


@pytest.fixture(scope="session")
def panns_vggish_reference_input() -> Callable[..., torch.Tensor]:
    return _reference_input


def relative_error(ours: torch.Tensor | np.ndarray, reference: torch.Tensor | np.ndarray) -> float:
    """max |ours - reference| / max |reference| (float64)."""
    a = torch.as_tensor(ours, dtype=torch.float64)
    b = torch.as_tensor(reference, dtype=torch.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(scope="session")
def panns_vggish_relative_error() -> Callable[..., float]:
    return relative_error
