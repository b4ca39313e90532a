"""The weight-free Griffin-Lim vocoder and its AudioCodec hook, checked against numpy/scipy computations."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torchaudio

from agomni.errors import UsageError
from agomni.model.codec import AudioCodec, codec_config
from agomni.model.codec.griffin_lim import MOMENTUM, GriffinLimVocoder, griffin_lim
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


def _torchaudio(magnitude: torch.Tensor, win: int, n_iter: int, length: int) -> torch.Tensor:
    """torchaudio's own griffinlim (the upstream implementation) with the vocoder's settings."""
    window = torch.hann_window(win, periodic=True, dtype=magnitude.dtype)
    return torchaudio.functional.griffinlim(
        magnitude, window, 1024, 256, win, 1.0, n_iter, MOMENTUM, length, rand_init=False
    )


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _magnitudes() -> torch.Tensor:
    """Linear magnitudes [5, 513, 31] of a tone, a click, noise and two random log-mels."""
    g = torch.Generator().manual_seed(0)
    clicks = torch.zeros(1, 8000)
    clicks[0, 3000:3064] = 0.8
    waves = torch.cat([_tone(440.0), clicks, 0.3 * torch.randn(1, 8000, generator=g)])
    mel = torch.cat([LogMel(MEL_16K)(waves), torch.randn(2, 80, 31, generator=g) - 3.0])
    return GriffinLimVocoder(MEL_16K, n_iter=1).linear_magnitude(mel)


def test_equals_torchaudio_griffinlim_in_float64():
    """Same algorithm as torchaudio's griffinlim: in float64 one iteration agrees to 1e-7 (relative L2 per
    clip; measured <= 2e-9) and 32 iterations to 1e-3 (measured <= 4e-5 on the click). Zero-phase
    Griffin-Lim with momentum 0.99 amplifies rounding differences ~1e9-fold on real signals: torchaudio's
    OWN float32 result differs from its float64 one by 0.74 on the tone, so a float32 comparison of
    real signals measures that chaos, not the implementation."""
    magnitude = _magnitudes().double()
    length = 31 * 256 - 128
    window = torch.hann_window(1024, periodic=True, dtype=torch.float64)
    for n_iter, tol in ((1, 1e-7), (32, 1e-3)):
        ours = griffin_lim(magnitude, window, 1024, 256, n_iter=n_iter, momentum=MOMENTUM, length=length)
        upstream = _torchaudio(magnitude, 1024, n_iter, length)
        assert ours.dtype == torch.float64 and ours.shape == upstream.shape == (5, length)
        assert max(_rel(a, b) for a, b in zip(ours, upstream, strict=True)) < tol


@pytest.mark.parametrize("win", [1024, 800])
def test_vocoder_equals_torchaudio_on_well_conditioned_mels(win):
    """The float32 vocoder on random log-mels (no near-silent bins to amplify rounding), for a window as
    long as n_fft and a shorter one (centred in n_fft samples, as torch.stft pads it), 32 iterations.
    Even here float32 rounding grows over the iterations (torchaudio's own float32 result is up to 2.4e-3
    relative L2 from its float64 one, depending on the CPU's FFT kernels), so each clip is judged against
    torchaudio's float64 result: no further from it than twice torchaudio's own float32 error, and within
    5e-3 of torchaudio's float32 result."""
    vocoder = GriffinLimVocoder(dataclasses.replace(MEL_16K, win=win), n_iter=32)
    mel = torch.randn(3, 80, 40, generator=torch.Generator().manual_seed(1)) - 3.0
    magnitude = vocoder.linear_magnitude(mel)
    upstream32 = _torchaudio(magnitude, win, 32, 40 * 256 - 128).clamp(-1, 1)
    upstream64 = _torchaudio(magnitude.double(), win, 32, 40 * 256 - 128).clamp(-1, 1)
    ours = vocoder(mel)
    assert torch.equal(ours[:, :128], torch.zeros(3, 128))  # the hop / 2 delay
    for clip, exact, single in zip(ours[:, 128:].double(), upstream64, upstream32.double(), strict=True):
        assert _rel(clip, exact) <= max(2 * _rel(single, exact), 1e-4)
        assert _rel(clip, single) < 5e-3


def test_griffin_lim_refuses_gaps_and_bad_momentum():
    window = torch.hann_window(1024, periodic=True)
    with pytest.raises(UsageError, match="gaps"):
        griffin_lim(torch.ones(1, 513, 8), window, 1024, 1024, n_iter=1, momentum=0.5, length=4096)
    with pytest.raises(UsageError, match="momentum"):
        griffin_lim(torch.ones(1, 513, 8), window, 1024, 256, n_iter=1, momentum=1.0, length=1024)


def test_too_few_frames_is_a_usage_error():
    with pytest.raises(UsageError, match="mel frames"):
        GriffinLimVocoder(MEL_16K, n_iter=1)(torch.zeros(1, 80, 2))


def test_the_vocoder_result_does_not_depend_on_how_many_items_it_refines_together():
    """Items are refined a few at a time (cache-sized groups): each wave equals that mel vocoded alone."""
    vocoder = GriffinLimVocoder(MEL_16K, n_iter=4)
    mel = torch.randn(6, 80, 20, generator=torch.Generator().manual_seed(2)) - 3.0
    together = vocoder(mel)
    for i in range(6):
        assert torch.equal(together[i : i + 1], vocoder(mel[i : i + 1]))
