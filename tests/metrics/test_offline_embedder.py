"""Offline (weight-free) embedders: documented settings, shapes, determinism, batch independence."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch
import torchaudio

from agomni.errors import MetricInputError, UsageError
from agomni.metrics import SpectralStatsEmbedder, offline_embedder


def waveforms(batch: int = 3, seconds: float = 1.0) -> torch.Tensor:
    rng = np.random.default_rng(0)
    t = np.arange(int(16000 * seconds)) / 16000
    rows = [
        0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.05 * rng.normal(size=t.size) for i in range(batch)
    ]
    return torch.tensor(np.stack(rows), dtype=torch.float32)


def reference_log_mel(x: torch.Tensor) -> np.ndarray:
    """Log-mel frames [B, frames, 64] from torch.stft and torchaudio's HTK filterbank, in float64."""
    spec = (
        torch.stft(
            x.double(),
            n_fft=400,
            hop_length=160,
            win_length=400,
            window=torch.hann_window(400, dtype=torch.float64),
            center=True,
            pad_mode="reflect",
            return_complex=True,
        ).abs()
        ** 2
    )  # [B, 201, frames]
    fbank = torchaudio.functional.melscale_fbanks(201, 50.0, 8000.0, 64, 16000, norm=None, mel_scale="htk")
    mel = torch.einsum("bft,fm->btm", spec, fbank.double())
    return torch.log(mel + 1e-6).numpy()


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("mel-stats", (3, 128)),
        ("mfcc-stats", (3, 40)),
        ("mel-frames", (3, 101, 64)),
        ("mfcc-frames", (3, 101, 20)),
    ],
)
def test_shapes_finite_deterministic_and_labelled(name: str, shape: tuple[int, ...]) -> None:
    embedder = offline_embedder(name)
    x = waveforms()
    out = embedder.embed(x)
    assert tuple(out.shape) == shape and out.dtype == torch.float32
    assert embedder.dim == shape[-1]
    assert torch.isfinite(out).all()
    assert torch.equal(out, offline_embedder(name).embed(x.clone()))
    meta = embedder.metadata()
    assert meta["name"] == name and meta["sample_rate"] == 16000
    assert meta["comparable_with_published"] is False
    assert len(embedder.cache_key()) == 64


def test_cache_keys_differ_between_settings() -> None:
    keys = {offline_embedder(n).cache_key() for n in ("mel-stats", "mfcc-stats", "mel-frames", "mfcc-frames")}
    assert len(keys) == 4


def test_log_mel_frames_match_independent_stft_and_filterbank() -> None:
    x = waveforms()
    ours = SpectralStatsEmbedder("mel", "frames").embed(x).double().numpy()
    np.testing.assert_allclose(ours, reference_log_mel(x), atol=2e-4)


def test_mfcc_is_orthonormal_dct_of_log_mel_and_clip_stats_are_mean_std() -> None:
    x = waveforms()
    mfcc = scipy.fft.dct(reference_log_mel(x), type=2, norm="ortho", axis=-1)[..., :20]
    np.testing.assert_allclose(SpectralStatsEmbedder("mfcc", "frames").embed(x).numpy(), mfcc, atol=2e-4)
    stats = SpectralStatsEmbedder("mfcc", "clip").embed(x).numpy()
    np.testing.assert_allclose(
        stats, np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)], axis=1), atol=2e-4
    )


def test_rows_do_not_depend_on_the_rest_of_the_batch() -> None:
    x = waveforms()
    embedder = SpectralStatsEmbedder("mfcc", "clip")
    torch.testing.assert_close(embedder.embed(x)[1:2], embedder.embed(x[1:2] * 1.0), rtol=1e-5, atol=1e-5)
    quiet = x.clone()
    quiet[0] *= 1e-3  # a quieter neighbour must not change row 1 (no batch-wide dB clamp)
    torch.testing.assert_close(embedder.embed(quiet)[1], embedder.embed(x)[1], rtol=1e-5, atol=1e-5)


def test_bad_waveforms_and_names_are_errors() -> None:
    embedder = offline_embedder("mel-stats")
    with pytest.raises(MetricInputError, match="at least 400"):
        embedder.embed(torch.zeros(1, 100))
    with pytest.raises(MetricInputError, match="row 1"):
        embedder.embed(torch.stack([torch.zeros(800), torch.full((800,), float("nan"))]))
    with pytest.raises(MetricInputError, match="B, samples"):
        embedder.embed(torch.zeros(800))
    with pytest.raises(UsageError, match="unknown offline embedder"):
        offline_embedder("vggish")
