"""Log-mel settings and transform, checked against MMAudio's published numbers and a numpy/scipy STFT."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch
import torchaudio

from agomni.errors import UsageError
from agomni.model.codec.mel import MEL_16K, MEL_44K, LogMel, MelSettings, mel_settings, slaney_mel_filterbank

RATES = [MEL_16K, MEL_44K]


def test_settings_are_mmaudio_numbers() -> None:
    # mmaudio/ext/mel_converter.py, get_mel_converter('16k') and ('44k'), typed from the source.
    assert (MEL_16K.sample_rate, MEL_16K.n_fft, MEL_16K.hop, MEL_16K.win, MEL_16K.n_mels) == (
        16000,
        1024,
        256,
        1024,
        80,
    )
    assert (MEL_16K.fmin, MEL_16K.fmax, MEL_16K.log_base) == (0.0, 8000.0, "10")
    assert (MEL_44K.sample_rate, MEL_44K.n_fft, MEL_44K.hop, MEL_44K.win, MEL_44K.n_mels) == (
        44100,
        2048,
        512,
        2048,
        128,
    )
    assert (MEL_44K.fmin, MEL_44K.fmax, MEL_44K.log_base) == (0.0, 22050.0, "e")


def test_latent_grid_for_8_seconds() -> None:
    # mmaudio/model/sequence_config.py asserts 250 / 345 latents and 128000 / 353280 samples for 8 s.
    assert MEL_16K.latent_frame_rate == 16000 / 256 / 2 == 31.25
    assert MEL_44K.latent_frame_rate == pytest.approx(43.06640625)
    assert (MEL_16K.latent_length(8.0), MEL_16K.num_samples(8.0)) == (250, 128000)
    assert (MEL_44K.latent_length(8.0), MEL_44K.num_samples(8.0)) == (345, 353280)
    with pytest.raises(UsageError):
        MEL_16K.latent_length(0.0)


def test_lookup_by_name_or_rate() -> None:
    assert mel_settings("16k") is MEL_16K and mel_settings(44100) is MEL_44K
    with pytest.raises(UsageError, match="22050"):
        mel_settings(22050)


def torchaudio_fbank(s: MelSettings) -> torch.Tensor:
    """[n_mels, bins] Slaney-scale, Slaney-normalised filters from torchaudio, built in float64."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torchaudio builds its filterbank in the default dtype
    try:
        return torchaudio.functional.melscale_fbanks(
            s.n_fft // 2 + 1, s.fmin, s.fmax, s.n_mels, s.sample_rate, norm="slaney", mel_scale="slaney"
        ).T
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize("s", RATES, ids=lambda s: s.name)
def test_filterbank_matches_torchaudio_slaney(s: MelSettings) -> None:
    ours = slaney_mel_filterbank(s.sample_rate, s.n_fft, s.n_mels, s.fmin, s.fmax)
    ref = torchaudio_fbank(s)
    assert ours.shape == (s.n_mels, s.n_fft // 2 + 1) and ours.dtype == ref.dtype == torch.float64
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)


def numpy_log_mel(wave: np.ndarray, s: MelSettings) -> np.ndarray:
    """Independent float64 reference of MMAudio's MelConverter: clip, reflect pad, framed rFFT, mel, log."""
    pad = (s.n_fft - s.hop) // 2
    x = np.pad(np.clip(wave, -1.0, 1.0).astype(np.float64), ((0, 0), (pad, pad)), mode="reflect")
    n_frames = (x.shape[-1] - s.n_fft) // s.hop + 1
    idx = np.arange(s.n_fft)[None, :] + s.hop * np.arange(n_frames)[:, None]
    window = scipy.signal.get_window("hann", s.win, fftbins=True)
    spec = np.fft.rfft(x[:, idx] * window, axis=-1)  # [B, frames, bins]
    mag = np.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
    mel = np.maximum(mag @ torchaudio_fbank(s).numpy().T, 1e-5).transpose(0, 2, 1)  # [B, mels, frames]
    return np.log10(mel) if s.log_base == "10" else np.log(mel)


@pytest.mark.parametrize("s", RATES, ids=lambda s: s.name)
def test_log_mel_matches_numpy_reference(s: MelSettings) -> None:
    rng = np.random.default_rng(0)
    n = 7 * s.hop + 123  # not a multiple of the hop
    t = np.arange(n) / s.sample_rate
    wave = np.stack([0.5 * rng.standard_normal(n), 1.5 * np.sin(2 * np.pi * 440.0 * t)])  # 2nd clips
    ref = numpy_log_mel(wave, s)
    ours64 = LogMel(s, dtype=torch.float64)(torch.from_numpy(wave)).numpy()
    assert ours64.shape == ref.shape == (2, s.n_mels, n // s.hop) and s.mel_frames(n) == n // s.hop
    np.testing.assert_allclose(ours64, ref, atol=1e-6, rtol=0)
    # float32 (the default): within 1e-4 where every band has energy (noise); a pure tone's empty
    # bands sit near float32's resolution relative to the peak and are only checked in float64.
    ours32 = LogMel(s)(torch.from_numpy(wave[:1]).float()).double().numpy()
    np.testing.assert_allclose(ours32, ref[:1], atol=1e-4, rtol=0)


def test_log_mel_rejects_bad_shapes() -> None:
    with pytest.raises(UsageError, match="batch, samples"):
        LogMel(MEL_16K)(torch.zeros(100))
    with pytest.raises(UsageError, match="too short"):
        LogMel(MEL_16K)(torch.zeros(1, 300))
