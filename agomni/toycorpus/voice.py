"""Speech (tts, v2s) and singing (t2song, v2song) assembled from the committed word recordings.

Speech: an utterance is 1-4 recordings of one speaker placed one after another, unchanged (same
samples, so a test can find each word back), 40-120 ms of silence between words, starting 50-150 ms
in, zero-padded to the item's duration. Only recordings that fit alone are drawn; words are then
dropped at random (never a required held-out word) until the last one ends 50 ms before the end. The
transcript is the words joined by a space (English) or by nothing (Chinese).

Singing (our recipe): a melody of one note per beat on a major or natural-minor scale within the
octave above the tonic (in octave 2 for voices below 150 Hz, else octave 3, `tonic_midi`); note
onsets fall on video frames (beats of 3, 4 or 6 frames at 8 fps = 160, 120 or 80 bpm). Each note sings one lyric word: the word recording is pitch-shifted by
resampling (linear interpolation, ratio = note frequency / the speaker's median recorded pitch,
clipped to [0.5, 3]), fitted to 90 % of the beat by overlap-add time stretching (40 ms Hann grains,
10 ms output hop; pitch kept), and mixed 1 : 1 (each peak-normalized) with a sung "ah" vowel: the
first 8 harmonics of the note frequency, harmonic h with amplitude (0.6 + the summed gains of
three Lorentzian formant resonances at 700, 1220, 2600 Hz) / h, so the fundamental stays strongest,
5.5 Hz vibrato of +-1 % after 150 ms, 20 ms attack and 60 ms release. The song is scaled to peak 0.7.
"""

from __future__ import annotations

import numpy as np

from agomni.errors import UsageError

from .vocabulary import Recording, Vocabulary

GAP_RANGE_S = (0.04, 0.12)
LEAD_RANGE_S = (0.05, 0.15)
TAIL_S = 0.05


def join_words(words: list[str], language: str) -> str:
    """Transcript of `words`: separated by spaces, except Chinese (no separator)."""
    return ("" if language == "zh" else " ").join(words)


def draw_utterance(
    vocab: Vocabulary,
    speaker: str,
    rng: np.random.Generator,
    duration: float,
    allowed: set[str] | None = None,
    required: set[str] | None = None,
    max_words: int = 4,
) -> list[tuple[Recording, float]]:
    """(recording, onset in seconds) of each word of one utterance of `speaker` (layout in the module
    docstring). Words come from `allowed` (texts; None = all); with `required`, one word (at a random
    place) is one of those texts. Raises `UsageError` when no word of the pool fits in `duration`."""
    sr = vocab.sample_rate
    longest = duration - TAIL_S - LEAD_RANGE_S[1]
    pool = [
        rec
        for rec in vocab.of_speaker(speaker)
        if (allowed is None or rec.text in allowed) and len(vocab.audio(rec)) / sr <= longest
    ]
    first_pool = [rec for rec in pool if required is None or rec.text in required]
    if not first_pool:
        raise UsageError(
            f"speaker {speaker!r} has no recording that fits in {duration} s "
            f"(allowed: {sorted(allowed) if allowed else 'all'}, required one of: {sorted(required or [])})"
        )
    n_words = 1 + int(rng.integers(max_words))
    words = [(first_pool[int(rng.integers(len(first_pool)))], required is not None)]
    words += [(pool[int(rng.integers(len(pool)))], False) for _ in range(n_words - 1)]
    words = [words[i] for i in rng.permutation(n_words)]
    lead = rng.uniform(*LEAD_RANGE_S)
    gaps = rng.uniform(*GAP_RANGE_S, size=n_words)

    def end(chosen: list[tuple[Recording, bool]]) -> float:
        speech = sum(len(vocab.audio(rec)) / sr for rec, _ in chosen)
        return lead + speech + float(gaps[: len(chosen) - 1].sum())

    while end(words) > duration - TAIL_S:  # terminates: every single word fits
        droppable = [i for i, (_, keep) in enumerate(words) if not keep]
        words.pop(droppable[int(rng.integers(len(droppable)))])
    placed, time = [], lead
    for index, (rec, _) in enumerate(words):
        placed.append((rec, round(time * sr) / sr))
        time += len(vocab.audio(rec)) / sr + float(gaps[index])
    return placed


def render_speech(vocab: Vocabulary, placed: list[tuple[Recording, float]], duration: float) -> np.ndarray:
    """float32 ``[round(duration * sample_rate)]``: each recording copied unchanged at its onset."""
    sr = vocab.sample_rate
    out = np.zeros(round(duration * sr), np.float32)
    for rec, onset in placed:
        audio = vocab.audio(rec)
        start = round(onset * sr)
        if start + len(audio) > len(out):
            raise UsageError(f"word {rec.text!r} at {onset} s runs past the end of a {duration} s item")
        out[start : start + len(audio)] = audio
    return out


# --- singing --------------------------------------------------------------------------------------

#: tempo word -> beat length in video frames (8 fps): 160, 120 and 80 bpm.
TEMPI: dict[str, int] = {"fast": 3, "medium": 4, "slow": 6}
KEYS: tuple[str, ...] = ("C", "D", "E", "F", "G", "A")
_KEY_SEMITONES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9}
SCALES: dict[str, tuple[int, ...]] = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
#: (tempo, mode) pairs only the held-out split sings.
HELDOUT_STYLES: frozenset[tuple[str, str]] = frozenset({("fast", "minor"), ("slow", "major")})
_C2_MIDI = 36
_FORMANTS = ((700.0, 130.0), (1220.0, 70.0), (2600.0, 160.0))  # "ah": (centre Hz, bandwidth Hz)


def midi_to_hz(midi: float) -> float:
    """Equal-tempered frequency in Hz of MIDI note `midi` (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def style_text(tempo: str, key: str, mode: str) -> str:
    """The t2song/v2song style prompt, e.g. "a slow song in C major"."""
    return f"a {tempo} song in {key} {mode}"


def tonic_midi(key: str, speaker_f0: float) -> int:
    """MIDI note of `key`'s tonic in octave 2 (C2 = 65.41 Hz) for voices whose median pitch is below
    150 Hz, else in octave 3 (C3 = 130.81 Hz)."""
    octave_c = _C2_MIDI if speaker_f0 < 150.0 else _C2_MIDI + 12
    return octave_c + _KEY_SEMITONES[key]


def draw_melody(rng: np.random.Generator, tonic: int, mode: str, n_notes: int) -> list[int]:
    """MIDI notes of a random walk (steps of -2..2 scale degrees, kept within the octave above
    `tonic`, degrees 0..7) starting on the tonic, third or fifth."""
    scale = SCALES[mode]
    degree = int(rng.choice([0, 2, 4]))
    notes = []
    for _ in range(n_notes):
        notes.append(tonic + 12 * (degree // 7) + scale[degree % 7])
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, 7))
    return notes


def sung_vowel(frequency: float, length: int, sample_rate: int) -> np.ndarray:
    """The "ah" vowel of the module docstring at `frequency` Hz, ``[length]`` float64, peak 1."""
    t = np.arange(length) / sample_rate
    vibrato = 1 + 0.01 * np.sin(2 * np.pi * 5.5 * t) * np.clip((t - 0.15) / 0.1, 0, 1)
    phase = 2 * np.pi * frequency * np.cumsum(vibrato) / sample_rate
    signal = np.zeros(length)
    for h in range(1, 9):
        f = h * frequency
        if f >= sample_rate / 2:
            break
        gain = sum(1 / (1 + ((f - centre) / (bw / 2)) ** 2) for centre, bw in _FORMANTS) + 0.6
        signal += gain / h * np.sin(h * phase)
    envelope = np.minimum(1, t / 0.02) * np.clip((length / sample_rate - t) / 0.06, 0, 1)
    signal *= envelope
    return signal / np.abs(signal).max()


def pitch_shift(audio: np.ndarray, ratio: float) -> np.ndarray:
    """Resample by linear interpolation so every frequency is multiplied by `ratio` (length / ratio)."""
    positions = np.arange(0, len(audio) - 1, ratio)
    return np.interp(positions, np.arange(len(audio)), audio)


def time_stretch(audio: np.ndarray, length: int, sample_rate: int) -> np.ndarray:
    """Overlap-add `audio` into exactly `length` samples, pitch kept: 40 ms Hann grains at a 10 ms output
    hop, read from input positions spread evenly over the input."""
    grain = int(0.04 * sample_rate)
    hop = grain // 4
    window = np.hanning(grain)
    source = np.concatenate([audio, np.zeros(grain)])
    out = np.zeros(length + grain)
    norm = np.zeros(length + grain)
    n_grains = max(1, (length - 1) // hop + 1)
    for g in range(n_grains):
        start = round(g * max(0, len(audio) - grain) / max(1, n_grains - 1))
        out[g * hop : g * hop + grain] += source[start : start + grain] * window
        norm[g * hop : g * hop + grain] += window
    return out[:length] / np.maximum(norm[:length], 1e-3)


def render_song(
    vocab: Vocabulary,
    notes: list[dict],
    speaker_f0: float,
    duration: float,
) -> np.ndarray:
    """float32 ``[round(duration * sample_rate)]``: each note of `notes` ({"recording": Recording,
    "onset_s", "duration_s", "frequency_hz"}) sung as in the module docstring, peak 0.7."""
    sr = vocab.sample_rate
    out = np.zeros(round(duration * sr))
    for note in notes:
        start = round(note["onset_s"] * sr)
        length = min(round(0.9 * note["duration_s"] * sr), len(out) - start)
        ratio = float(np.clip(note["frequency_hz"] / speaker_f0, 0.5, 3.0))
        word = time_stretch(pitch_shift(vocab.audio(note["recording"]).astype(np.float64), ratio), length, sr)
        word *= np.minimum(1, np.arange(length)[::-1] / (0.06 * sr))
        vowel = sung_vowel(note["frequency_hz"], length, sr)
        out[start : start + length] += word / max(np.abs(word).max(), 1e-9) + vowel
    return (0.7 * out / np.abs(out).max()).astype(np.float32)
