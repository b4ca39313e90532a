"""Manifest validation: every problem kind, reported once, with its line number; `agomni validate` exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agomni.cli import main
from agomni.manifest import Problem, load_manifest, validate_manifest


def write_manifest(folder: Path, lines: list[object], name: str = "manifest.jsonl") -> Path:
    """Write `lines` (dicts as JSON, strings verbatim) one per line; line k of the file is lines[k-1]."""
    path = folder / name
    text = "".join((json.dumps(line) if isinstance(line, dict) else line) + "\n" for line in lines)
    path.write_text(text, encoding="utf-8")
    return path


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")
    return path


def test_acceptance_duplicate_missing_file_outside_root_exit_2(tmp_path, capsys):
    root = tmp_path / "set"
    touch(root / "audio" / "b.wav")
    touch(tmp_path / "outside.wav")
    path = write_manifest(
        root,
        [
            {"id": "a", "task": "t2a", "text": "a dog barks"},
            {"id": "b", "task": "tts", "transcript": "hello", "reference_audio": "audio/b.wav"},
            {"id": "a", "task": "t2a", "text": "a cat meows"},
            {"id": "c", "task": "v2a", "video": "video/c.mp4"},
            {"id": "d", "task": "t2a", "text": "rain", "reference_audio": "../outside.wav"},
        ],
    )
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:3: id 'a': duplicate id (also on line 1)",
        f"{path}:4: id 'c': video: file not found: video/c.mp4",
        f"{path}:5: id 'd': reference_audio: path leads outside the manifest's folder: ../outside.wav",
    ]


def test_acceptance_valid_manifest_exit_0(tmp_path, capsys):
    touch(tmp_path / "audio" / "b.wav")
    touch(tmp_path / "video" / "c.mp4")
    path = write_manifest(
        tmp_path,
        [
            {"id": "a", "task": "t2a", "text": "a dog barks", "duration": 8},
            {"id": "b", "task": "tts", "transcript": "hello", "reference_audio": "audio/b.wav"},
            {"id": "c", "task": "v2s", "video": "video/c.mp4", "transcript": "hi", "meta": {"x": [1]}},
            {"id": "e", "task": "t2a", "text": "rain", "language": "en"},
        ],
    )
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{path}: 4 items OK (tasks: t2a=2, tts=1, v2s=1)"]


def test_problem_line_format_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines: list[object] = [{"id": f"i{k}", "task": "t2a", "text": "t"} for k in range(6)]
    lines.append({"id": "x", "task": "t2a", "text": "t", "reference_audio": "audio/x.wav"})
    write_manifest(tmp_path, lines)
    problems = validate_manifest("manifest.jsonl")
    assert [str(p) for p in problems] == [
        "manifest.jsonl:7: id 'x': reference_audio: file not found: audio/x.wav"
    ]
    assert problems[0] == Problem("manifest.jsonl", 7, "x", "reference_audio", "file not found: audio/x.wav")


GOOD = {"id": "ok", "task": "t2a", "text": "fine"}


@pytest.mark.parametrize(
    ("bad_line", "field", "fragment"),
    [
        ('{"id": "x", "task": "t2a", "text": "t"', None, "invalid JSON"),
        ("[1, 2]", None, "not a JSON object (got array)"),
        ('"just a string"', None, "not a JSON object (got string)"),
        ('{"id": "x", "task": "t2a", "text": "t", "duration": NaN}', None, "NaN is not valid JSON"),
        (
            '{"id": "x", "task": "t2a", "text": "t", "text": "u"}',
            None,
            "repeated key(s) in the object: 'text'",
        ),
        (b'{"id": "x", "task": "t2a", "text": "\xff"}', None, "not valid UTF-8"),
        ("   ", None, "blank line"),
        ({"task": "t2a", "text": "t"}, "id", "missing (every item needs it)"),
        ({"id": "x", "text": "t"}, "task", "missing (every item needs it)"),
        (
            {"id": "x", "task": "t2v"},
            "task",
            "unknown task 't2v' (known: t2a, v2a, tts, v2s, t2song, v2song)",
        ),
        ({"id": "x", "task": 3}, "task", "must be a string, got number"),
        ({"id": "x", "task": "tts"}, "transcript", "missing (required for task 'tts')"),
        ({"id": "x", "task": "t2a"}, "text", "missing (required for task 't2a')"),
        ({"id": "x", "task": "v2song"}, "video", "missing (required for task 'v2song')"),
        ({"id": "x", "task": "t2a", "text": 5}, "text", "must be a string, got number"),
        ({"id": "x", "task": "t2a", "text": "  "}, "text", "empty string"),
        ({"id": "x", "task": "t2a", "text": None}, "text", "null is not allowed"),
        ({"id": 7, "task": "t2a", "text": "t"}, "id", "must be a string, got number"),
        ({"id": "x", "task": "t2a", "text": "t", "meta": []}, "meta", "must be a JSON object, got array"),
        ({"id": "x", "task": "t2a", "text": "t", "duration": "8"}, "duration", "must be a number of seconds"),
        ({"id": "x", "task": "t2a", "text": "t", "duration": True}, "duration", "got boolean"),
        (
            {"id": "x", "task": "t2a", "text": "t", "duration": 0},
            "duration",
            "positive number of seconds, got 0",
        ),
        ({"id": "x", "task": "t2a", "text": "t", "duration": -1.5}, "duration", "got -1.5"),
        ({"id": "x", "task": "t2a", "text": "t", "durration": 3}, "durration", "did you mean 'duration'?"),
        ({"id": "x", "task": "t2a", "text": "t", "speaker": 1}, "speaker", "unknown field (put free-form"),
        ({"id": "", "task": "t2a", "text": "t"}, "id", "empty id"),
        ({"id": "a/b", "task": "t2a", "text": "t"}, "id", "id contains '/'"),
        ({"id": "a\\b", "task": "t2a", "text": "t"}, "id", "id contains '\\\\'"),
        ({"id": ".hidden", "task": "t2a", "text": "t"}, "id", "starts with '.'"),
        ({"id": "a b", "task": "t2a", "text": "t"}, "id", "whitespace or a control character (' ')"),
        ({"id": "a\u0007b", "task": "t2a", "text": "t"}, "id", "whitespace or a control character"),
        ({"id": "a:b", "task": "t2a", "text": "t"}, "id", "id contains ':'"),
        ({"id": "a__b", "task": "t2a", "text": "t"}, "id", "contains '__'"),
        ({"id": "x" * 201, "task": "t2a", "text": "t"}, "id", "longer than 200 bytes"),
        (
            {"id": "x", "task": "t2a", "text": "t", "reference_audio": "/etc/hostname"},
            "reference_audio",
            "absolute",
        ),
        (
            {"id": "x", "task": "t2a", "text": "t", "prompt_audio": "a/../../x.wav"},
            "prompt_audio",
            "leads outside",
        ),
        ({"id": "x", "task": "v2a", "video": "sub"}, "video", "not a regular file: sub"),
    ],
)
def test_each_problem_kind_reported_once_on_its_line(tmp_path, bad_line, field, fragment):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "manifest.jsonl"
    bad = json.dumps(bad_line).encode() if isinstance(bad_line, dict) else bad_line
    bad = bad if isinstance(bad, bytes) else bad.encode()
    path.write_bytes(
        json.dumps(GOOD).encode() + b"\n" + bad + b"\n" + json.dumps(GOOD | {"id": "ok2"}).encode()
    )
    problems = validate_manifest(path)
    assert len(problems) == 1, problems
    assert problems[0].line == 2
    assert problems[0].field == field
    assert fragment in problems[0].message


def test_several_problems_on_one_line_all_reported(tmp_path):
    path = write_manifest(tmp_path, [{"id": "x", "task": "tts", "transcrpt": "hi", "duration": -2}])
    got = {(p.line, p.field) for p in validate_manifest(path)}
    assert got == {(1, "transcrpt"), (1, "duration"), (1, "transcript")}


def test_case_only_difference_between_ids(tmp_path):
    path = write_manifest(tmp_path, [GOOD | {"id": "Clip"}, GOOD, GOOD | {"id": "clip"}])
    [problem] = validate_manifest(path)
    assert (problem.line, problem.item_id) == (3, "clip")
    assert "differs only in letter case from 'Clip' on line 1" in problem.message


def test_duplicate_names_both_lines_for_each_repeat(tmp_path):
    path = write_manifest(tmp_path, [GOOD, GOOD | {"id": "b"}, GOOD, GOOD])
    assert [(p.line, p.message) for p in validate_manifest(path)] == [
        (3, "duplicate id (also on line 1)"),
        (4, "duplicate id (also on line 1)"),
    ]


def test_trailing_blank_lines_allowed_middle_blank_line_not(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n  \n")
    assert validate_manifest(path) == []
    path.write_text(json.dumps(GOOD) + "\n\n" + json.dumps(GOOD | {"id": "b"}) + "\n")
    [problem] = validate_manifest(path)
    assert problem.line == 2 and "blank line" in problem.message


def test_crlf_and_byte_order_mark_accepted(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\r\n" + json.dumps(GOOD | {"id": "b"}).encode()
    )
    assert validate_manifest(path) == []


def test_empty_manifest_is_a_problem(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text("\n \n")
    assert [str(p) for p in validate_manifest(path)] == [f"{path}: no items (the file is empty or blank)"]


def test_missing_manifest_one_problem_line_exit_2(tmp_path, capsys):
    path = tmp_path / "nope.jsonl"
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: cannot read manifest: No such file or directory"
    ]


def test_symlink_resolving_outside_root(tmp_path):
    root = tmp_path / "set"
    root.mkdir()
    outside = touch(tmp_path / "elsewhere" / "x.wav")
    os.symlink(outside, root / "x.wav")
    os.symlink(tmp_path / "elsewhere", root / "linked_dir")
    touch(root / "real.wav")
    os.symlink(root / "real.wav", root / "inside_link.wav")
    path = write_manifest(
        root,
        [
            GOOD | {"id": "a", "reference_audio": "x.wav"},
            GOOD | {"id": "b", "reference_audio": "linked_dir/x.wav"},
            GOOD | {"id": "c", "reference_audio": "inside_link.wav"},
        ],
    )
    problems = validate_manifest(path)
    assert [(p.line, p.field) for p in problems] == [(1, "reference_audio"), (2, "reference_audio")]
    assert all("resolves outside the manifest's folder through a symlink" in p.message for p in problems)


def test_broken_symlink(tmp_path):
    os.symlink(tmp_path / "gone.wav", tmp_path / "x.wav")
    path = write_manifest(tmp_path, [GOOD | {"reference_audio": "x.wav"}])
    [problem] = validate_manifest(path)
    assert problem.message == "file not found (broken symlink): x.wav"


def test_check_files_false_skips_existence_but_not_lexical_escape(tmp_path):
    path = write_manifest(
        tmp_path,
        [GOOD | {"id": "a", "reference_audio": "missing.wav"}, GOOD | {"id": "b", "video": "../v.mp4"}],
    )
    assert [p.line for p in validate_manifest(path)] == [1, 2]
    [problem] = validate_manifest(path, check_files=False)
    assert (problem.line, problem.field) == (2, "video")


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("bad_line", "field", "fragment"),
    [
        (
            {"id": "x", "task": "t2a", "text": "dog", "duration": 1e9},
            "duration",
            "got 1000000000.0 (at most 3600)",
        ),
        ({"id": "x", "task": "t2a", "text": "a" * 20_001}, "text", "longer than 20000 characters"),
        ({"id": "x", "task": "t2a", "text": "dog", "meta": _nested(17)}, "meta", "deeper than 16"),
        ({"id": "x", "task": "t2a", "text": "dog", "meta": {"blob": "x" * 70_000}}, "meta", "65536 bytes"),
        ('{"id": "x", "task": "t2a", "meta": ' + "[" * 100_000 + "]" * 100_000 + "}", None, "nested too"),
    ],
)
def test_values_that_validate_are_runnable_bounded_sizes(tmp_path, bad_line, field, fragment):
    """A manifest that passes `agomni validate` can be run: durations, text, meta depth and size bounded."""
    path = tmp_path / "manifest.jsonl"
    bad = json.dumps(bad_line) if isinstance(bad_line, dict) else bad_line
    path.write_text(json.dumps(GOOD) + "\n" + bad + "\n", encoding="utf-8")
    problems = validate_manifest(path)
    assert len(problems) == 1 and problems[0].line == 2 and problems[0].field == field, problems
    assert fragment in problems[0].message


def test_data_root_field_roots_the_item_paths_and_keeps_them_inside(tmp_path):
    """An item naming `data_root` (the importers of `agomni run` write it for a read-only data root) has
    its paths relative to that folder, under the same rules as the manifest's folder."""
    data = tmp_path / "data"
    touch(data / "audio" / "a.wav")
    touch(tmp_path / "outside.wav")
    os.symlink(tmp_path / "outside.wav", data / "link.wav")
    run = tmp_path / "run"
    run.mkdir()
    root = str(data)
    path = write_manifest(
        run,
        [
            GOOD | {"id": "a", "reference_audio": "audio/a.wav", "data_root": root},
            GOOD | {"id": "b", "reference_audio": "../outside.wav", "data_root": root},
            GOOD | {"id": "c", "reference_audio": "link.wav", "data_root": root},
            GOOD | {"id": "d", "reference_audio": "audio/a.wav", "data_root": "data"},
            GOOD | {"id": "e", "reference_audio": "audio/a.wav", "data_root": str(tmp_path / "absent")},
        ],
    )
    problems = [(p.line, p.field, p.message) for p in validate_manifest(path)]
    assert problems == [
        (2, "reference_audio", "path leads outside the item's data_root: ../outside.wav"),
        (3, "reference_audio", f"path resolves outside the item's data_root through a symlink: link.wav -> {tmp_path / 'outside.wav'}"),
        (4, "data_root", "must be an absolute folder path (the data root the item's paths are relative to): data"),
        (5, "data_root", f"folder not found: {tmp_path / 'absent'}"),
    ]  # fmt: skip
    path = write_manifest(run, [GOOD | {"id": "a", "reference_audio": "audio/a.wav", "data_root": root}])
    (item,) = load_manifest(path).items
    assert item.reference_audio == (data / "audio" / "a.wav").resolve() and item.data_root == data.resolve()


def test_an_empty_or_punctuation_only_transcript_or_lyrics_is_a_valid_item(tmp_path):
    """Spoken words may be empty (the speech metrics list such an item as unscorable with the reason);
    every other text field still refuses an empty string."""
    path = write_manifest(
        tmp_path,
        [
            {"id": "a", "task": "tts", "transcript": ""},
            {"id": "b", "task": "tts", "transcript": " ...!? "},
            {"id": "c", "task": "t2song", "text": "a calm song", "lyrics": ""},
            {"id": "d", "task": "tts", "transcript": "hi", "prompt_text": ""},
            {"id": "e", "task": "tts", "transcript": "hi", "language": " "},
        ],
    )
    problems = validate_manifest(path, check_files=False)
    assert [(p.line, p.field, p.message) for p in problems] == [
        (4, "prompt_text", "empty string (omit the field instead)"),
        (5, "language", "empty string (omit the field instead)"),
    ]
    write_manifest(
        tmp_path,
        [
            {"id": "a", "task": "tts", "transcript": ""},
            {"id": "b", "task": "v2s", "video": "v.mp4", "transcript": ""},
        ],
    )
    (tmp_path / "v.mp4").write_bytes(b"")
    assert [(i.id, i.transcript) for i in load_manifest(tmp_path / "manifest.jsonl").items] == [
        ("a", ""),
        ("b", ""),
    ]
