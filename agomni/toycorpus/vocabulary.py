"""The committed word recordings the toy corpus builds speech and singing from.

What is committed (``agomni/toycorpus/recordings/``): one mono 16 kHz 16-bit FLAC per (speaker, word),
listed in ``vocabulary.tsv`` (columns: file, speaker, language, text, samples, f0_hz). They were made
once with espeak-ng by `record_vocabulary` (each `SPEAKERS` entry is an espeak-ng voice + pitch + speed),
so building the corpus never needs espeak-ng. Recipe per word: synthesize at espeak-ng's native
22.05 kHz -> resample to 16 kHz (scipy ``resample_poly(x, 320, 441)``, Kaiser window) -> trim
leading/trailing silence (10 ms frames below 2 % of the word's peak frame RMS, 10 ms kept either side)
-> peak-normalize to 0.7 -> 16-bit FLAC. ``f0_hz`` is the median autocorrelation pitch (40 ms frames,
10 ms hop, 50-400 Hz, voiced where the normalized autocorrelation peak > 0.5 and the frame RMS > 10 %
of the word's loudest frame; it can be off by an octave on a few words, e.g. en_m2 "big"); the
singing voice uses the median of a speaker's f0_hz values to pitch-shift its words onto notes.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from agomni.errors import UnreadableMediaError, UsageError

#: The folder the recordings are committed in.
RECORDINGS_DIR: Path = Path(__file__).resolve().parent / "recordings"
#: Sample rate of the committed recordings, in Hz.
RECORDING_RATE: int = 16000
_TSV_NAME = "vocabulary.tsv"
_TSV_COLUMNS = ("file", "speaker", "language", "text", "samples", "f0_hz")


@dataclass(frozen=True)
class Speaker:
    """A toy-corpus voice: an espeak-ng voice spec, pitch (0-99) and speed (words per minute)."""

    name: str
    language: str
    espeak_voice: str
    pitch: int
    speed: int
    description: str


#: The voices ("speakers"); the description is the tts item's caption (`text`).
SPEAKERS: dict[str, Speaker] = {
    speaker.name: speaker
    for speaker in (
        Speaker("en_m1", "en", "en-us+m3", 40, 150, "a calm male voice"),
        Speaker("en_f1", "en", "en-us+f3", 60, 160, "a bright female voice"),
        Speaker("en_m2", "en", "en+m1", 25, 135, "a deep slow male voice"),
        Speaker("zh_m1", "zh", "cmn", 40, 220, "a calm male voice speaking Chinese"),
        Speaker("zh_f1", "zh", "cmn+f2", 65, 220, "a bright female voice speaking Chinese"),
    )
}

_ENGLISH = (
    "hello, world, the, cat, dog, runs, sings, today, music, light, green, blue, red, ball, jumps, "
    "over, small, big, house, river, sun, moon, night, morning, thank you, good morning, "
    "see you soon, how are you"
)
#: language -> (text, file-name slug) of every recorded word or short phrase.
VOCABULARY: dict[str, tuple[tuple[str, str], ...]] = {
    "en": tuple((word, word.replace(" ", "_")) for word in _ENGLISH.split(", ")),
    "zh": (
        ("你好", "nihao"),
        ("谢谢", "xiexie"),
        ("音乐", "yinyue"),
        ("今天", "jintian"),
        ("朋友", "pengyou"),
        ("月亮", "yueliang"),
        ("太阳", "taiyang"),
        ("唱歌", "changge"),
    ),
}


@dataclass(frozen=True)
class Recording:
    """One committed word recording: `file` relative to the recordings folder, `samples` at 16 kHz,
    `f0_hz` its median pitch in Hz."""

    file: str
    speaker: str
    language: str
    text: str
    samples: int
    f0_hz: float


class Vocabulary:
    """The recordings, loaded as float32 mono at `sample_rate` (resampled from 16 kHz with scipy
    ``resample_poly`` when it differs).

    Raises `UnreadableMediaError` naming the path when the folder, its ``vocabulary.tsv`` or a listed
    file is missing, unreadable, or not what the list says (rate, channels, sample count).
    """

    def __init__(self, recordings_dir: str | Path = RECORDINGS_DIR, sample_rate: int = RECORDING_RATE):
        self.root = Path(recordings_dir)
        self.sample_rate = sample_rate
        self.recordings = read_vocabulary_list(self.root)
        self._audio = {rec.file: self._load(rec) for rec in self.recordings}

    def _load(self, rec: Recording) -> np.ndarray:
        path = self.root / rec.file
        try:
            data, rate = sf.read(str(path), dtype="int16", always_2d=True)
        except (OSError, RuntimeError, sf.LibsndfileError) as err:
            raise UnreadableMediaError(path, f"cannot read toy-corpus recording: {err}") from err
        if rate != RECORDING_RATE or data.shape[1] != 1 or data.shape[0] != rec.samples:
            raise UnreadableMediaError(
                path,
                f"expected mono {RECORDING_RATE} Hz with {rec.samples} samples (vocabulary.tsv), got "
                f"{data.shape[1]} channel(s) at {rate} Hz with {data.shape[0]} samples; "
                "regenerate with agomni.toycorpus.record_vocabulary()",
            )
        audio = data[:, 0].astype(np.float32) / 32768.0
        if self.sample_rate != RECORDING_RATE:
            audio = resample_poly(audio, self.sample_rate, RECORDING_RATE).astype(np.float32)
        return audio

    def audio(self, rec: Recording) -> np.ndarray:
        """The recording's samples, float32 ``[samples]`` at `sample_rate`."""
        return self._audio[rec.file]

    def of_speaker(self, speaker: str) -> list[Recording]:
        """The speaker's recordings, in vocabulary order."""
        return [rec for rec in self.recordings if rec.speaker == speaker]


def read_vocabulary_list(recordings_dir: Path) -> list[Recording]:
    """Parse ``vocabulary.tsv`` in `recordings_dir` (see the module docstring for its columns)."""
    tsv = recordings_dir / _TSV_NAME
    if not recordings_dir.is_dir():
        raise UnreadableMediaError(
            recordings_dir,
            "toy-corpus recordings folder not found (it ships with agomni; regenerate it with "
            "agomni.toycorpus.record_vocabulary(), which needs espeak-ng)",
        )
    if not tsv.is_file():
        raise UnreadableMediaError(tsv, "recordings list vocabulary.tsv not found in the recordings folder")
    with tsv.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    if not rows or tuple(rows[0]) != _TSV_COLUMNS:
        raise UnreadableMediaError(tsv, "header must be the tab-separated columns " + " ".join(_TSV_COLUMNS))
    recordings = []
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) != len(_TSV_COLUMNS):
            raise UnreadableMediaError(tsv, f"line {lineno}: expected {len(_TSV_COLUMNS)} columns")
        file, speaker, language, text, samples, f0 = row
        if speaker not in SPEAKERS:
            raise UnreadableMediaError(tsv, f"line {lineno}: unknown speaker {speaker!r}")
        recordings.append(Recording(file, speaker, language, text, int(samples), float(f0)))
    if not recordings:
        raise UnreadableMediaError(tsv, "lists no recordings")
    return recordings


def record_vocabulary(out_dir: str | Path = RECORDINGS_DIR, *, espeak: str = "espeak-ng") -> Path:
    """Regenerate the committed recordings with espeak-ng (used once; the corpus build never calls it).

    Writes ``<speaker>/<index>_<slug>.flac`` for every speaker in `SPEAKERS` and every word of its
    language in `VOCABULARY`, and ``vocabulary.tsv``, into `out_dir`; returns the tsv path. Recipe in
    the module docstring. Raises `UsageError` when the `espeak` executable is not on PATH.
    """
    executable = shutil.which(espeak)
    if executable is None:
        raise UsageError(f"{espeak!r} not found on PATH; install it (apt-get install espeak-ng)")
    out = Path(out_dir)
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory() as tmp:
        raw_path = Path(tmp) / "word.wav"
        for speaker in SPEAKERS.values():
            (out / speaker.name).mkdir(parents=True, exist_ok=True)
            for index, (text, slug) in enumerate(VOCABULARY[speaker.language]):
                command = [executable, "-v", speaker.espeak_voice, "-p", str(speaker.pitch)]
                command += ["-s", str(speaker.speed), "-w", str(raw_path), text]
                subprocess.run(command, check=True, capture_output=True)
                raw, rate = sf.read(str(raw_path), dtype="float64", always_2d=True)
                audio = _prepare(raw[:, 0], rate)
                file = f"{speaker.name}/{index:02d}_{slug}.flac"
                sf.write(str(out / file), np.round(audio * 32767).astype(np.int16), RECORDING_RATE, "PCM_16")
                f0 = median_f0(audio, RECORDING_RATE)
                rows.append((file, speaker.name, speaker.language, text, str(len(audio)), f"{f0:.1f}"))
    tsv = out / _TSV_NAME
    with tsv.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(_TSV_COLUMNS)
        writer.writerows(rows)
    return tsv


def _prepare(raw: np.ndarray, rate: int) -> np.ndarray:
    """Resample to 16 kHz, trim silence, peak-normalize to 0.7 (recipe in the module docstring)."""
    if rate != 22050:
        raise UsageError(f"espeak-ng wrote {rate} Hz audio; record_vocabulary expects 22050 Hz")
    audio = resample_poly(raw, 320, 441)
    hop = RECORDING_RATE // 100
    frames = len(audio) // hop
    rms = np.sqrt(np.mean(audio[: frames * hop].reshape(frames, hop) ** 2, axis=1))
    loud = np.flatnonzero(rms > 0.02 * rms.max())
    start = max(0, (loud[0] - 1) * hop)
    stop = min(len(audio), (loud[-1] + 2) * hop)
    audio = audio[start:stop]
    return 0.7 * audio / np.abs(audio).max()


def median_f0(audio: np.ndarray, sample_rate: int) -> float:
    """Median autocorrelation pitch in Hz of the voiced 40 ms frames (10 ms hop, 50-400 Hz)."""
    size, hop = int(0.04 * sample_rate), int(0.01 * sample_rate)
    lo, hi = int(sample_rate / 400), int(sample_rate / 50)
    starts = range(0, len(audio) - size, hop)
    frames = np.stack([audio[s : s + size] for s in starts])
    rms = np.sqrt(np.mean(frames**2, axis=1))
    pitches = []
    for frame, level in zip(frames, rms, strict=True):
        if level < 0.1 * rms.max():
            continue
        frame = frame - frame.mean()
        ac = np.correlate(frame, frame, mode="full")[size - 1 :]
        if ac[0] <= 0:
            continue
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] / ac[0] > 0.5:
            pitches.append(sample_rate / lag)
    if not pitches:
        raise UsageError("no voiced frame found: cannot estimate the recording's pitch")
    return float(np.median(pitches))
