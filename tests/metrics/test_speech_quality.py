"""DNSMOS (speechmos, bundled ONNX models) on a committed clean recording and the same with noise."""

from __future__ import annotations

import numpy as np
import pytest

from agomni.metrics.speech.quality import DNSMOS, dnsmos
from tests.metrics.speech_fixtures import utterances


@pytest.mark.slow
def test_clean_recording_scores_higher_than_the_same_with_added_noise() -> None:
    clean = utterances()["f2_2"][0]
    noise = np.random.default_rng(0).standard_normal(len(clean))
    snr_db = 5.0
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    noisy = clean + noise
    noisy /= max(1.0, np.abs(noisy).max())
    scores = dnsmos([clean, noisy], ids=["clean", "noisy_5dB"])
    values = {name: [item.value for item in s.items] for name, s in scores.items()}
    print(f"DNSMOS clean vs 5 dB SNR white noise: {values}")
    for name in ("DNSMOS_BAK", "DNSMOS_OVRL", "DNSMOS_P808"):
        assert values[name][0] > values[name][1] + 0.3, name
    assert all(1.0 <= v <= 5.0 for vs in values.values() for v in vs)
    assert scores["DNSMOS_OVRL"].unit == "MOS (1-5)" and scores["DNSMOS_OVRL"].higher_is_better


def test_out_of_range_samples_are_an_item_error_and_non_speech_is_flagged() -> None:
    clean = utterances()["m1_0"][0]
    rng = np.random.default_rng(1)
    scores = dnsmos(
        [clean * 3.0, 0.2 * rng.standard_normal(16000), np.zeros(0)],
        ids=["loud", "noise", "empty"],
        model=DNSMOS(),
    )
    ovrl = scores["DNSMOS_OVRL"]
    assert "empty audio" in ovrl.items[2].error
    assert "outside [-1, 1]" in ovrl.items[0].error and ovrl.items[0].value is None
    assert ovrl.items[1].value is not None and "non-speech" in ovrl.items[1].flags[0]
    assert ovrl.covered == 1 and [e["id"] for e in ovrl.errors] == ["loud", "empty"]
