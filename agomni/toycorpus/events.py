"""Captioned synthetic sound events (the t2a items) and the impact sounds of the v2a videos.

Caption grammar (every caption is generated from it, and the item's ``meta.events`` lists what was
synthesized, so a caption can be checked against its audio)::

    caption := phrase | phrase " then " phrase
    phrase  := "a " PITCH " " SOURCE COUNT
    PITCH   := "low" | "mid" | "high"                 (see PITCH_CLASSES for the frequencies)
    SOURCE  := "beep" | "chirp" | "thud" | "noise burst"
    COUNT   := "" | " twice" | " three times"         (1, 2 or 3 repetitions)

Sources, each an event of 120-200 ms at nominal frequency f (Hz, drawn log-uniformly in its pitch
class's range): beep = sine at f with 5 ms raised-cosine fades; chirp = exponential sweep f/1.2 ->
f*1.2; thud = sine at f with exponential decay (time constant = length / 5); noise burst = white noise
band-passed to [f/1.2, f*1.2] (4th-order Butterworth, zero-phase). Every event has peak amplitude 0.5.
All spectral energy of an event lies (up to filter skirts) within [f/1.2, f*1.2], and the pitch classes'
ranges widened by that factor do not overlap, so a spectrum peak names the pitch word.

An item holds at most min(6, int((duration - 0.05) / 0.3)) events (`max_events`).

Held out (never in the train split; every held-out item has at least one): the (source, pitch) pairs in
`HELDOUT_PAIRS`; each of their words appears in train with other partners.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfiltfilt

from agomni.errors import UsageError

#: pitch word -> (lowest, highest) nominal event frequency in Hz.
PITCH_CLASSES: dict[str, tuple[float, float]] = {
    "low": (160.0, 280.0),
    "mid": (500.0, 900.0),
    "high": (1600.0, 2800.0),
}
SOURCES: tuple[str, ...] = ("beep", "chirp", "thud", "noise burst")
#: repetitions -> the caption suffix.
COUNT_WORDS: dict[int, str] = {1: "", 2: " twice", 3: " three times"}
#: (source, pitch) pairs only the held-out split contains.
HELDOUT_PAIRS: frozenset[tuple[str, str]] = frozenset({("chirp", "low"), ("noise burst", "high")})
#: Frequency spread of chirps and noise bursts: energy within [f / SPREAD, f * SPREAD].
SPREAD = 1.2
_PEAK = 0.5
_FADE_S = 0.005


@dataclass(frozen=True)
class Phrase:
    """One caption phrase: `count` events of `source` at pitch class `pitch`."""

    source: str
    pitch: str
    count: int

    @property
    def caption(self) -> str:
        return f"a {self.pitch} {self.source}{COUNT_WORDS[self.count]}"


def max_events(duration: float) -> int:
    """Most events an item of `duration` seconds holds: min(6, int((duration - 0.05) / 0.3))."""
    return min(6, int((duration - 0.05) / 0.3))


def caption(phrases: list[Phrase]) -> str:
    """The grammar's caption for `phrases` (joined with " then ")."""
    return " then ".join(phrase.caption for phrase in phrases)


def draw_phrases(rng: np.random.Generator, heldout: bool, max_events: int = 6) -> list[Phrase]:
    """One or two phrases with at most `max_events` events in all (counts are lowered, largest first,
    then the second phrase dropped, until they fit). With `heldout` one phrase uses a `HELDOUT_PAIRS`
    pair, otherwise none does."""
    if max_events < 1:
        raise UsageError(f"max_events must be >= 1, got {max_events}")
    all_pairs = [(source, pitch) for source in SOURCES for pitch in PITCH_CLASSES]
    allowed = all_pairs if heldout else [pair for pair in all_pairs if pair not in HELDOUT_PAIRS]
    n_phrases = 1 + int(rng.integers(2))
    pairs = []
    if heldout:
        held = sorted(HELDOUT_PAIRS)
        pairs.append(held[int(rng.integers(len(held)))])
    while len(pairs) < n_phrases:
        pairs.append(allowed[int(rng.integers(len(allowed)))])
    counts = [1 + int(rng.integers(3)) for _ in pairs]
    while sum(counts) > max_events:
        largest = int(np.argmax(counts))
        if counts[largest] > 1:
            counts[largest] -= 1
        else:
            pairs.pop()
            counts.pop()
    order = rng.permutation(len(pairs))
    return [Phrase(*pairs[i], counts[i]) for i in order]


def layout_events(
    phrases: list[Phrase], rng: np.random.Generator, duration: float, sample_rate: int
) -> list[dict]:
    """Times and frequencies of every event of `phrases`, fitted inside `duration` seconds.

    Each event: {"source", "pitch", "phrase" (index), "frequency_hz", "onset_s", "offset_s"}, times on the
    sample grid. Event lengths 120-200 ms, 80-150 ms between repetitions, 150-250 ms between phrases,
    starting 50-150 ms in; all gaps shrink proportionally when the events would not end 50 ms before the
    end. Raises `UsageError` if even then they do not fit.
    """
    lengths, gaps = [], []
    for index, phrase in enumerate(phrases):
        for repeat in range(phrase.count):
            lengths.append(rng.uniform(0.12, 0.2))
            gaps.append(rng.uniform(0.05, 0.15) if not gaps else rng.uniform(0.08, 0.15))
            if repeat == 0 and index > 0:
                gaps[-1] = rng.uniform(0.15, 0.25)
    available = duration - 0.05
    total = sum(lengths) + sum(gaps)
    if total > available:
        scale = (available - sum(lengths)) / sum(gaps)
        if scale < 0.3:
            raise UsageError(f"duration {duration} s is too short for the caption {caption(phrases)!r}")
        gaps = [gap * scale for gap in gaps]
    events, time, k = [], 0.0, 0
    for index, phrase in enumerate(phrases):
        low, high = PITCH_CLASSES[phrase.pitch]
        for _ in range(phrase.count):
            time += gaps[k]
            onset = round(time * sample_rate) / sample_rate
            offset = round((time + lengths[k]) * sample_rate) / sample_rate
            frequency = float(np.exp(rng.uniform(np.log(low), np.log(high))))
            events.append(
                {
                    "source": phrase.source,
                    "pitch": phrase.pitch,
                    "phrase": index,
                    "frequency_hz": round(frequency, 3),
                    "onset_s": onset,
                    "offset_s": offset,
                }
            )
            time += lengths[k]
            k += 1
    return events


def render_events(
    events: list[dict], rng: np.random.Generator, duration: float, sample_rate: int
) -> np.ndarray:
    """float32 mono ``[round(duration * sample_rate)]`` holding each event at its onset (silence elsewhere)."""
    out = np.zeros(round(duration * sample_rate), np.float64)
    for event in events:
        start = round(event["onset_s"] * sample_rate)
        length = round(event["offset_s"] * sample_rate) - start
        out[start : start + length] += event_sound(
            event["source"], event["frequency_hz"], length, sample_rate, rng
        )
    return out.astype(np.float32)


def event_sound(
    source: str, frequency: float, length: int, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """One event of `source` at nominal `frequency` Hz, `length` samples, peak 0.5 (recipes above)."""
    t = np.arange(length) / sample_rate
    if source == "beep":
        signal = np.sin(2 * np.pi * frequency * t)
    elif source == "chirp":
        f0, f1, span = frequency / SPREAD, frequency * SPREAD, length / sample_rate
        rate = np.log(f1 / f0) / span
        signal = np.sin(2 * np.pi * f0 * (np.exp(rate * t) - 1) / rate)
    elif source == "thud":
        signal = np.sin(2 * np.pi * frequency * t) * np.exp(-t / (length / sample_rate / 5))
    elif source == "noise burst":
        sos = butter(
            4, [frequency / SPREAD, frequency * SPREAD], btype="bandpass", fs=sample_rate, output="sos"
        )
        pad = length // 2
        signal = sosfiltfilt(sos, rng.standard_normal(length + 2 * pad))[pad : pad + length]
    else:
        raise UsageError(f"unknown sound source {source!r}; known: {', '.join(SOURCES)}")
    signal = signal * fade(length, sample_rate)
    return _PEAK * signal / np.abs(signal).max()


def fade(length: int, sample_rate: int, fade_s: float = _FADE_S) -> np.ndarray:
    """Gain ``[length]``: raised-cosine fade-in and fade-out of `fade_s` seconds (clipped to half)."""
    n = min(int(fade_s * sample_rate), length // 2)
    gain = np.ones(length)
    if n > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
        gain[:n] = ramp
        gain[length - n :] = ramp[::-1]
    return gain


#: Impact sound per v2a object shape: ball = "bonk" (decaying sine), square = "clack" (decaying band noise).
IMPACT_SOURCES: dict[str, str] = {"ball": "thud", "square": "noise burst"}
#: Impact pitch (Hz) per object colour.
IMPACT_FREQUENCIES: dict[str, float] = {"blue": 220.0, "green": 440.0, "yellow": 880.0, "red": 1760.0}
#: Length of one impact sound in seconds.
IMPACT_LENGTH_S = 0.12


def render_impacts(
    times: list[float], shape: str, colour: str, rng: np.random.Generator, duration: float, sample_rate: int
) -> np.ndarray:
    """float32 mono ``[round(duration * sample_rate)]``: one impact sound of (`shape`, `colour`) starting
    at each time in `times` (seconds, rounded to the sample grid), cut at the end of the clip."""
    out = np.zeros(round(duration * sample_rate), np.float64)
    length = round(IMPACT_LENGTH_S * sample_rate)
    for time in times:
        start = round(time * sample_rate)
        sound = event_sound(IMPACT_SOURCES[shape], IMPACT_FREQUENCIES[colour], length, sample_rate, rng)
        sound = sound * np.exp(-np.arange(length) / (0.03 * sample_rate))
        stop = min(len(out), start + length)
        out[start:stop] += sound[: stop - start]
    return out.astype(np.float32)
