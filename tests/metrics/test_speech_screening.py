"""The speech detector behind the "non-speech audio" flag (`agomni.metrics.speech.items.speech_like`):
speech stays speech at 0 dB SNR in white or pink noise, while noise alone, silence and tones are flagged.

Speech: utterances of 4-6 words of every voice of the toy-corpus recordings (English and Chinese, 0.1 s
pauses) and the committed test sentences, mixed with seeded noise at 0 dB SNR over the utterance.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf

from agomni.metrics.speech.items import NON_SPEECH, speech_like
from agomni.toycorpus import RECORDINGS_DIR as RECORDINGS
from tests.metrics.speech_fixtures import utterances

RATE = 16000


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    """1/f power noise: white noise shaped by 1/sqrt(f) in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    k = np.maximum(np.arange(len(spectrum)), 1)
    return np.fft.irfft(spectrum / np.sqrt(k), n)


def _at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    gain = np.sqrt(np.mean(speech**2) / np.mean(noise**2)) / 10 ** (snr_db / 20)
    return speech + gain * noise


def _toy_utterances(rng: np.random.Generator, per_voice: int) -> list[np.ndarray]:
    with (RECORDINGS / "vocabulary.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    out = []
    for voice in sorted({r["speaker"] for r in rows}):
        files = [r["file"] for r in rows if r["speaker"] == voice]
        for _ in range(per_voice):
            parts = [np.zeros(RATE // 5)]
            for k in rng.choice(len(files), 4 if voice.startswith("zh") else 6, replace=False):
                word, rate = sf.read(RECORDINGS / files[k], dtype="float64")
                assert rate == RATE
                parts += [word, np.zeros(RATE // 10)]
            out.append(np.concatenate(parts))
    return out


@pytest.mark.parametrize("noise", ["white", "pink"])
def test_speech_at_0_db_snr_is_not_flagged_non_speech(noise):
    rng = np.random.default_rng(7)
    speech = _toy_utterances(rng, per_voice=4) + [audio for audio, _ in utterances().values()]
    for k, clean in enumerate(speech):
        assert speech_like(clean, RATE)[0], k
        hiss = rng.standard_normal(len(clean)) if noise == "white" else _pink(rng, len(clean))
        is_speech, numbers = speech_like(_at_snr(clean, hiss, 0.0), RATE)
        assert is_speech, f"utterance {k} in {noise} noise at 0 dB: {numbers}"


def test_noise_silence_and_tones_are_still_flagged_non_speech():
    rng = np.random.default_rng(8)
    t = np.arange(3 * RATE) / RATE
    signals = {
        "white noise": 0.1 * rng.standard_normal(len(t)),
        "pink noise": 0.1 * _pink(rng, len(t)),
        "digital silence": np.zeros(len(t)),
        "near silence": 1e-6 * rng.standard_normal(len(t)),
        "a chirp 100-220 Hz": 0.3 * np.sin(2 * np.pi * (100 * t + 20 * t**2)),
        **{f"a {f} Hz tone": 0.3 * np.sin(2 * np.pi * f * t) for f in (100, 220, 300)},
    }
    for name, audio in signals.items():
        is_speech, why = speech_like(audio, RATE)
        assert not is_speech and why.startswith(NON_SPEECH), f"{name}: {why}"
