"""The weight-free Griffin-Lim vocoder and its AudioCodec hook, checked against numpy/scipy computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agomni.errors import UsageError
from agomni.model.codec import AudioCodec, codec_config
from agomni.model.codec.griffin_lim import GriffinLimVocoder
from agomni.model.codec.mel import MEL_16K, LogMel, slaney_mel_filterbank


def _tone(freq_hz: float, seconds: float = 0.5, sr: int = 16000) -> torch.Tensor:
    t = np.arange(int(seconds * sr)) / sr
    return torch.from_numpy(0.5 * np.sin(2 * np.pi * freq_hz * t)).float()[None]


def test_linear_magnitude_is_the_numpy_pseudo_inverse():
    vocoder = GriffinLimVocoder(MEL_16K, n_iter=2)
    log_mel = torch.randn(1, 80, 5) - 2.0
    basis = slaney_mel_filterbank(16000, 1024, 80, 0.0, 8000.0).numpy()
    expected = np.maximum(np.linalg.pinv(basis) @ (10.0 ** log_mel[0].double().numpy()), 0.0)
    np.testing.assert_allclose(vocoder.linear_magnitude(log_mel)[0].numpy(), expected, rtol=1e-4, atol=1e-6)


def test_deterministic_length_and_pitch():
    vocoder = GriffinLimVocoder(MEL_16K, n_iter=16)
    mel = LogMel(MEL_16K)(_tone(440.0))
    wave = vocoder(mel)
    assert wave.shape == (1, mel.shape[-1] * 256)
    assert torch.equal(wave, vocoder(mel))  # zero initial phase: no randomness
    spectrum = np.abs(np.fft.rfft(wave[0, 1024:-1024].numpy() * np.hanning(wave.shape[1] - 2048)))
    peak_hz = np.argmax(spectrum) * 16000 / (wave.shape[1] - 2048)
    # A log-mel frame cannot place a tone more finely than its mel band: the peak must lie between the
    # centres of the neighbours of the band that responds most to 440 Hz (about 406 and 484 Hz here).
    # The exact bin inside that band depends on the CPU's FFT/BLAS rounding over the iterations.
    basis = slaney_mel_filterbank(16000, 1024, 80, 0.0, 8000.0).numpy()
    centres = np.argmax(basis, axis=1) * 16000 / 1024
    band = int(np.argmax(basis[:, round(440.0 * 1024 / 16000)]))
    assert centres[band - 1] < peak_hz < centres[band + 1]
    assert abs(peak_hz - 440.0) < 40.0


def test_onsets_stay_on_the_codec_time_grid():
    """A click at sample n comes back within a few ms of n (the hop / 2 alignment of the module docstring)."""
    wave = torch.zeros(1, 16384)
    for c in (4000, 10000):
        wave[0, c : c + 64] = 0.8 * torch.sin(torch.arange(64) * 0.9)
    out = GriffinLimVocoder(MEL_16K, n_iter=32)(LogMel(MEL_16K)(wave))[0].numpy()
    envelope = np.convolve(np.abs(out), np.ones(64) / 64, mode="same")
    for c in (4000, 10000):
        found = c - 600 + int(np.argmax(envelope[c - 600 : c + 600]))
        assert abs(found - (c + 32)) < 64  # within 4 ms of the click's centre


def test_plugs_into_audio_codec():
    cfg = codec_config("16k", tiny=True)
    codec = AudioCodec.load(cfg, vae=None, vocoder=GriffinLimVocoder(cfg.mel, n_iter=4))
    assert isinstance(codec.vocoder, GriffinLimVocoder)
    assert codec.provenance["vocoder"].startswith("Griffin-Lim (4 iterations")
    assert codec.random_weights  # the VAE is still random
    latent = torch.randn(1, 10, cfg.vae.latent_channels)
    assert codec.decode_to_wave(latent).shape == (1, 10 * 512)


def test_bad_input_is_refused():
    vocoder = GriffinLimVocoder(MEL_16K, n_iter=1)
    with pytest.raises(UsageError, match="expects mel"):
        vocoder(torch.zeros(1, 64, 4))
    with pytest.raises(UsageError, match="NaN"):
        vocoder(torch.full((1, 80, 4), float("nan")))
    with pytest.raises(UsageError, match="at least 1 iteration"):
        GriffinLimVocoder(MEL_16K, n_iter=0)
