"""The toy corpus: valid manifests, determinism, held-out splits, and media that match their text.

Every check reads the written files back (soundfile, PyAV through agomni.io.load_video, csv for the
recordings list) and compares them with what the manifest's text fields say, recomputed here with
numpy: the caption grammar is re-parsed with a regex, events are found as runs of non-zero samples,
pitches by FFT peak, contacts from the decoded pixels, words by comparing PCM samples.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from agomni.errors import UnreadableMediaError, UsageError
from agomni.io import load_video
from agomni.manifest import TASKS, load_manifest, validate_manifest
from agomni.toycorpus import RECORDINGS_DIR, build_corpus
from agomni.toycorpus.__main__ import main

FPS = 8
SR = 16000
SMALL = {"n_train": 4, "n_heldout": 2, "duration": 2.0, "sample_rate": SR}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_corpus(tmp_path_factory.mktemp("toy") / "corpus", seed=0, **SMALL)


def _items(manifest: Path, task: str | None = None) -> list[dict]:
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    return [row for row in rows if task is None or row["task"] == task]


def _all_items(corpus: dict[str, Path], task: str) -> list[tuple[Path, dict]]:
    return [(path.parent, item) for path in corpus.values() for item in _items(path, task)]


def _pcm(path: Path) -> np.ndarray:
    data, rate = sf.read(str(path), dtype="int16")
    assert rate == SR and data.ndim == 1
    return data


def _runs(nonzero: np.ndarray, merge_gap: int) -> list[tuple[int, int]]:
    """[start, stop) of runs of True, merging runs separated by fewer than `merge_gap` False samples."""
    idx = np.flatnonzero(nonzero)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > merge_gap)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    stops = np.concatenate([idx[breaks], [idx[-1]]]) + 1
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- manifests, splits, determinism ---------------------------------------------------------------


def test_manifests_are_valid_and_cover_every_task_in_both_splits(corpus: dict[str, Path]) -> None:
    assert set(corpus) == {"train", "heldout"}
    ids = {}
    for split, path in corpus.items():
        assert path.name == "manifest.jsonl"
        assert validate_manifest(path) == []
        manifest = load_manifest(path)  # raises on any problem, files included
        expected = SMALL["n_train"] if split == "train" else SMALL["n_heldout"]
        assert manifest.task_counts() == dict.fromkeys(TASKS, expected)
        assert all(item.duration == 2.0 for item in manifest)
        ids[split] = set(manifest.ids)
    assert not ids["train"] & ids["heldout"]


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    kwargs = {"n_train": 1, "n_heldout": 1, "duration": 2.0, "sample_rate": SR}
    build_corpus(tmp_path / "a", seed=3, **kwargs)
    build_corpus(tmp_path / "b", seed=3, **kwargs)
    build_corpus(tmp_path / "c", seed=4, **kwargs)
    a, b, c = (_tree_hashes(tmp_path / name) for name in "abc")
    assert any(name.endswith(".wav") for name in a) and any(name.endswith(".mp4") for name in a)
    assert a == b
    assert a["train/manifest.jsonl"] != c["train/manifest.jsonl"]


def test_heldout_items_each_have_a_combination_train_never_has(corpus: dict[str, Path]) -> None:
    """Combinations per task, read from the manifests: t2a (source, pitch) from the caption text; v2a
    (shape, colour) from the caption; speech (speaker, word); songs (tempo, mode) from the style text."""

    def combos(item: dict) -> set[tuple]:
        task = item["task"]
        if task == "t2a":
            return {(m[2], m[1]) for m in _PHRASE.finditer(item["text"])}
        if task == "v2a":
            colour, shape = re.match(r"a (\w+) (ball|square) ", item["text"]).groups()
            return {(shape, colour)}
        if task in ("tts", "v2s"):
            return {(item["meta"]["speaker"], w["text"]) for w in item["meta"]["words"]}
        tempo, mode = re.fullmatch(r"a (\w+) song in [A-G] (major|minor)", item["text"]).groups()
        return {(tempo, mode)}

    for task in TASKS:
        seen = set().union(*(combos(item) for item in _items(corpus["train"], task)))
        for item in _items(corpus["heldout"], task):
            assert combos(item) - seen, f"{item['id']} has no combination unseen in train"
            assert item["meta"]["heldout_combinations"]
        assert all(not item["meta"]["heldout_combinations"] for item in _items(corpus["train"], task))


def test_cli_prints_the_count_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "cli"), "--seed", "1", "--n-train", "2", "--n-heldout", "1"]) == 0
    out = capsys.readouterr().out
    for task in TASKS:
        assert re.search(rf"^{task}\s+2\s+1$", out, re.MULTILINE), out
    assert re.search(r"^total\s+12\s+6$", out, re.MULTILINE)
    assert validate_manifest(tmp_path / "cli" / "heldout" / "manifest.jsonl") == []


# --- bad input ------------------------------------------------------------------------------------


def test_missing_recordings_folder_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-recordings"
    with pytest.raises(UnreadableMediaError, match="recordings folder not found") as info:
        build_corpus(tmp_path / "out", recordings_dir=missing, n_train=1, n_heldout=1)
    assert str(missing) in str(info.value)


def test_missing_recording_file_is_named(tmp_path: Path) -> None:
    copy = tmp_path / "recordings"
    shutil.copytree(RECORDINGS_DIR, copy)
    (copy / "en_m1" / "00_hello.flac").unlink()
    with pytest.raises(UnreadableMediaError, match=r"00_hello\.flac"):
        build_corpus(tmp_path / "out", recordings_dir=copy, n_train=1, n_heldout=1)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_train": 0}, {"n_heldout": 0}, {"duration": 0.5}, {"duration": 1.3}, {"sample_rate": 1000}],
)
def test_bad_arguments_are_usage_errors(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(UsageError):
        build_corpus(tmp_path, **kwargs)


# --- t2a: captions match the audio -----------------------------------------------------------------

_PHRASE = re.compile(r"a (low|mid|high) (beep|chirp|thud|noise burst)( twice| three times)?")
# Bands written out here from the pitch words' meaning: every event's spectrum peak must fall inside.
_BANDS_HZ = {"low": (100.0, 400.0), "mid": (400.0, 1200.0), "high": (1200.0, 4000.0)}


def _parse_caption(caption: str) -> list[tuple[str, str, int]]:
    parts = caption.split(" then ")
    parsed = []
    for part in parts:
        match = _PHRASE.fullmatch(part)
        assert match, f"caption phrase {part!r} is outside the grammar"
        count = {None: 1, " twice": 2, " three times": 3}[match[3]]
        parsed.append((match[1], match[2], count))
    return parsed


def test_t2a_caption_counts_and_pitches_are_in_the_audio(corpus: dict[str, Path]) -> None:
    for root, item in _all_items(corpus, "t2a"):
        phrases = _parse_caption(item["text"])
        audio = _pcm(root / item["reference_audio"]).astype(np.float64) / 32768
        events = _runs(audio != 0, merge_gap=int(0.005 * SR))
        expected = [pitch for pitch, _, count in phrases for _ in range(count)]
        assert len(events) == len(expected), (item["id"], item["text"], len(events))
        for (start, stop), pitch, meta in zip(events, expected, item["meta"]["events"], strict=True):
            segment = audio[start:stop] * np.hanning(stop - start)
            spectrum = np.abs(np.fft.rfft(segment, n=1 << 15))
            peak_hz = np.argmax(spectrum) * SR / (1 << 15)
            low, high = _BANDS_HZ[pitch]
            assert low <= peak_hz < high, (item["id"], item["text"], pitch, peak_hz)
            assert abs(start / SR - meta["onset_s"]) <= 0.001 and meta["pitch"] == pitch


# --- v2a / v2song: sounds start on the frames where the object touches a surface ----------------


def _contact_frames(video_path: Path) -> list[int]:
    """Frames where a non-white object pixel has a white (surface) pixel as 4-neighbour."""
    frames, record = load_video(video_path)
    assert record.fps == FPS and (record.height, record.width) == (64, 64)
    rgb = frames.permute(0, 2, 3, 1).numpy().astype(int)
    white = (rgb > 200).all(axis=-1)
    background = rgb[0, 0, 32]  # wall-free and floor-free in every scene: top row, middle
    obj = (np.abs(rgb - background).sum(axis=-1) > 60) & ~white
    near = np.zeros_like(obj)
    near[:, 1:] |= obj[:, :-1]
    near[:, :-1] |= obj[:, 1:]
    near[:, :, 1:] |= obj[:, :, :-1]
    near[:, :, :-1] |= obj[:, :, 1:]
    assert obj.any(axis=(1, 2)).all(), f"{video_path}: object missing from a frame"
    return [k for k in range(len(rgb)) if (near[k] & white[k]).any()]


def _onsets_s(path: Path) -> list[float]:
    audio = _pcm(path).astype(np.float64) / 32768
    return [start / SR for start, _ in _runs(np.abs(audio) > 1e-3, merge_gap=int(0.03 * SR))]


def test_v2a_impact_sounds_start_on_the_rendered_impact_frames(corpus: dict[str, Path]) -> None:
    for root, item in _all_items(corpus, "v2a"):
        contacts = _contact_frames(root / item["video"])
        assert contacts == item["meta"]["impact_frames"], item["id"]
        onsets = _onsets_s(root / item["reference_audio"])
        assert len(onsets) == len(contacts), (item["id"], onsets, contacts)
        for onset, frame in zip(onsets, contacts, strict=True):
            assert abs(onset - frame / FPS) < 1 / FPS, (item["id"], onset, frame)
            assert abs(onset - frame / FPS) <= 0.002  # in fact exact up to the 5 ms fade-in


def test_v2song_ball_lands_on_every_note_onset(corpus: dict[str, Path]) -> None:
    for root, item in _all_items(corpus, "v2song"):
        onsets = [note["onset_s"] for note in item["meta"]["notes"]]
        contacts = _contact_frames(root / item["video"])
        assert [k / FPS for k in contacts] == onsets, item["id"]
        audio = _pcm(root / item["reference_audio"]).astype(np.float64) / 32768
        first = np.flatnonzero(np.abs(audio) > 1e-3)[0] / SR
        assert abs(first - onsets[0]) < 1 / FPS


# --- speech: transcripts are the words whose recordings were concatenated --------------------------


def _vocabulary_rows() -> dict[str, dict[str, str]]:
    with (RECORDINGS_DIR / "vocabulary.tsv").open(encoding="utf-8", newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}


def _check_words(audio: np.ndarray, words: list[dict], speaker: str, rows: dict) -> None:
    covered = np.zeros(len(audio), bool)
    for word in words:
        row = rows[word["recording"]]
        assert row["text"] == word["text"] and row["speaker"] == speaker
        recording, rate = sf.read(str(RECORDINGS_DIR / word["recording"]), dtype="int16")
        assert rate == SR and sf.info(str(RECORDINGS_DIR / word["recording"])).frames == word["samples"]
        start = round(word["onset_s"] * SR)
        np.testing.assert_array_equal(audio[start : start + len(recording)], recording)
        covered[start : start + len(recording)] = True
    assert not audio[~covered].any(), "audio outside the listed words must be silence"
    spans = sorted((round(w["onset_s"] * SR), w["samples"]) for w in words)
    assert all(a + n <= b for (a, n), (b, _) in itertools.pairwise(spans)), "words overlap"


def test_speech_transcripts_are_the_concatenated_recordings(corpus: dict[str, Path]) -> None:
    rows = _vocabulary_rows()
    items = _all_items(corpus, "tts") + _all_items(corpus, "v2s")
    assert {item["language"] for _, item in items} <= {"en", "zh"}
    for root, item in items:
        meta = item["meta"]
        separator = "" if item["language"] == "zh" else " "
        assert item["transcript"] == separator.join(w["text"] for w in meta["words"])
        _check_words(_pcm(root / item["reference_audio"]), meta["words"], meta["speaker"], rows)
        if item["task"] == "tts":
            assert item["prompt_text"] == separator.join(w["text"] for w in meta["prompt_words"])
            assert item["prompt_text"] != item["transcript"]
            _check_words(_pcm(root / item["prompt_audio"]), meta["prompt_words"], meta["speaker"], rows)


def test_v2s_mouth_opens_with_the_speech(corpus: dict[str, Path]) -> None:
    for root, item in _all_items(corpus, "v2s"):
        frames, _ = load_video(root / item["video"])
        rgb = frames.permute(0, 2, 3, 1).numpy().astype(int)
        face = rgb[0, 10, 32]
        mouth_rows = (
            (np.abs(rgb[:, :, 32] - face).sum(axis=-1) > 60) & (np.arange(64) > 10) & (np.arange(64) < 56)
        )
        heights = mouth_rows.sum(axis=1)
        assert heights.tolist() == item["meta"]["mouth_heights_px"]
        audio = _pcm(root / item["reference_audio"]).astype(np.float64) / 32768
        rms = [
            np.sqrt(np.mean(audio[max(0, k * 2000 - 1000) : k * 2000 + 1000] ** 2))
            for k in range(len(heights))
        ]
        assert np.corrcoef(heights, rms)[0, 1] > 0.8, item["id"]


# --- songs: lyrics are the sung words, on the melody's pitches --------------------------------------


def test_song_lyrics_and_pitches(corpus: dict[str, Path]) -> None:
    rows = _vocabulary_rows()
    for root, item in _all_items(corpus, "t2song") + _all_items(corpus, "v2song"):
        notes = item["meta"]["notes"]
        separator = "" if item["language"] == "zh" else " "
        assert item["lyrics"] == separator.join(note["text"] for note in notes)
        assert all(rows[note["recording"]]["text"] == note["text"] for note in notes)
        audio = _pcm(root / item["reference_audio"]).astype(np.float64) / 32768
        for note in notes:
            start = round((note["onset_s"] + 0.05) * SR)
            stop = round((note["onset_s"] + 0.8 * note["duration_s"]) * SR)
            spectrum = np.abs(np.fft.rfft(audio[start:stop] * np.hanning(stop - start), n=1 << 16))
            hz = np.arange(len(spectrum)) * SR / (1 << 16)
            expected = 440 * 2 ** ((note["midi"] - 69) / 12)
            assert abs(note["frequency_hz"] - expected) < 1e-3
            near = spectrum[np.abs(hz - expected) <= 0.03 * expected].max()
            band = spectrum[(hz >= 50) & (hz <= 4000)]
            assert near >= 0.5 * band.max(), (item["id"], note)  # the sung fundamental dominates


def test_other_sample_rate_resamples_every_file(tmp_path: Path) -> None:
    manifests = build_corpus(tmp_path, n_train=1, n_heldout=1, duration=1.0, sample_rate=24000)
    for path in manifests.values():
        assert validate_manifest(path) == []
        for item in load_manifest(path):
            for audio in (item.reference_audio, item.prompt_audio):
                if audio is not None:
                    info = sf.info(str(audio))
                    assert info.samplerate == 24000 and info.channels == 1
            assert sf.info(str(item.reference_audio)).frames == 24000
