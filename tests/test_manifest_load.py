"""load_manifest: frozen items with absolute paths, the file's SHA-256, ManifestError with every problem."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from agomni.errors import ManifestError
from agomni.manifest import TASK_REQUIRED_FIELDS, load_manifest, validate_manifest


def write_lines(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


def test_items_paths_hash(tmp_path, monkeypatch):
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "v.mp4").write_bytes(b"\x00")
    (tmp_path / "media" / "p.wav").write_bytes(b"\x00")
    items = [
        {
            "id": "s1",
            "task": "v2song",
            "video": "media/v.mp4",
            "lyrics": "la la",
            "duration": 8,
            "meta": {"k": [1]},
        },
        {
            "id": "t1",
            "task": "tts",
            "transcript": "hello there",
            "prompt_audio": "media/p.wav",
            "prompt_text": "hi",
            "language": "en",
        },
    ]
    write_lines(tmp_path / "m.jsonl", items)
    monkeypatch.chdir(tmp_path)
    manifest = load_manifest("m.jsonl")

    assert manifest.sha256 == hashlib.sha256((tmp_path / "m.jsonl").read_bytes()).hexdigest()
    assert manifest.path == (tmp_path / "m.jsonl").resolve()
    assert manifest.root == tmp_path.resolve()
    assert manifest.ids == ("s1", "t1")
    assert manifest.task_counts() == {"tts": 1, "v2song": 1}
    song, speech = manifest.items
    assert song.video == (tmp_path / "media" / "v.mp4").resolve() and song.video.is_absolute()
    assert (song.line, song.task, song.lyrics, song.text, song.reference_audio) == (
        1,
        "v2song",
        "la la",
        None,
        None,
    )
    assert song.duration == 8.0 and isinstance(song.duration, float)
    assert dict(song.meta) == {"k": [1]}
    assert speech.prompt_audio == (tmp_path / "media" / "p.wav").resolve()
    assert (speech.transcript, speech.prompt_text, speech.language, speech.duration) == (
        "hello there",
        "hi",
        "en",
        None,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        song.id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        song.meta["k"] = 2  # type: ignore[index]
    assert hash(song) == hash(dataclasses.replace(song))


def test_manifest_error_lists_every_problem(tmp_path):
    path = write_lines(
        tmp_path / "m.jsonl",
        [{"id": "a", "task": "tts"}, {"id": "a", "task": "t2a", "text": "x", "video": "nope.mp4"}],
    )
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert info.value.path == str(path)
    assert info.value.problems == [
        f"{path}:1: id 'a': transcript: missing (required for task 'tts')",
        f"{path}:2: id 'a': video: file not found: nope.mp4",
        f"{path}:2: id 'a': duplicate id (also on line 1)",
    ]
    assert info.value.problems == [str(p) for p in validate_manifest(path)]
    assert info.value.exit_code == 2


def test_missing_manifest_raises_manifest_error(tmp_path):
    with pytest.raises(ManifestError, match="cannot read manifest"):
        load_manifest(tmp_path / "absent.jsonl")


def test_task_table_matches_the_design():
    assert dict(TASK_REQUIRED_FIELDS) == {
        "t2a": ("text",),
        "v2a": ("video",),
        "tts": ("transcript",),
        "v2s": ("video", "transcript"),
        "t2song": ("text",),
        "v2song": ("video",),
    }
