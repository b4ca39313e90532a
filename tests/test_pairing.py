"""pair_outputs: one-to-one pairing by id, loud on missing/extra/duplicate outputs, coverage with allow_missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agomni.errors import PairingError, UsageError
from agomni.manifest import load_manifest, output_name, pair_outputs
from agomni.results import CoverageEntry


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "m.jsonl"
    items = [{"id": i, "task": "t2a", "text": f"sound {i}"} for i in ("a", "b", "c")]
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return load_manifest(path)


def outputs(folder: Path, *names: str) -> Path:
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"\x00")
    return folder


def test_one_sample_per_item(tmp_path, manifest):
    pred = outputs(tmp_path / "pred", "a.wav", "b.flac", "c.WAV", "notes.txt", "a.wav.tmp")
    (pred / "subdir").mkdir()
    pairing = pair_outputs(manifest, pred)
    assert [(p.item.id, [o.name for o in p.outputs]) for p in pairing.pairs] == [
        ("a", ["a.wav"]),
        ("b", ["b.flac"]),
        ("c", ["c.WAV"]),
    ]
    assert pairing.coverage == tuple(CoverageEntry(i, "ok", "") for i in ("a", "b", "c"))
    assert pairing.ignored == ("a.wav.tmp", "notes.txt", "subdir")


def test_missing_output_fails_naming_the_id(tmp_path, manifest):
    pred = outputs(tmp_path / "pred", "a.wav", "b.wav")
    with pytest.raises(PairingError) as info:
        pair_outputs(manifest, pred)
    lines = str(info.value).splitlines()
    assert lines[1:] == [f"id 'c': no output file in {pred} (expected c.<ext>)"]
    assert info.value.exit_code == 2


def test_extra_output_fails(tmp_path, manifest):
    pred = outputs(tmp_path / "pred", "a.wav", "b.wav", "c.wav", "z.wav")
    with pytest.raises(PairingError) as info:
        pair_outputs(manifest, pred)
    assert str(info.value).splitlines()[1:] == ["z.wav: matches no manifest item (extra output)"]


def test_duplicate_output_fails(tmp_path, manifest):
    pred = outputs(tmp_path / "pred", "a.flac", "a.wav", "b.wav", "c.wav")
    with pytest.raises(PairingError) as info:
        pair_outputs(manifest, pred)
    assert str(info.value).splitlines()[1:] == ["id 'a': several outputs, keep one: a.flac, a.wav"]


def test_every_problem_listed_at_once(tmp_path, manifest):
    pred = outputs(tmp_path / "pred", "a.flac", "a.wav", "b__s0.wav", "z.mp3")
    with pytest.raises(PairingError) as info:
        pair_outputs(manifest, pred)
    lines = str(info.value).splitlines()
    assert lines[0] == f"{pred}: 5 pairing problem(s) against manifest {manifest.path}"
    assert sorted(lines[1:]) == sorted(
        [
            "b__s0.wav: matches no manifest item (a sample-numbered name, but one sample per item was expected)",
            "z.mp3: matches no manifest item (extra output)",
            "id 'a': several outputs, keep one: a.flac, a.wav",
            f"id 'b': no output file in {pred} (expected b.<ext>)",
            f"id 'c': no output file in {pred} (expected c.<ext>)",
        ]
    )


def test_allow_missing_records_coverage_but_extras_still_fail(tmp_path, manifest):
    pred = outputs(tmp_path / "pred", "b.ogg")
    pairing = pair_outputs(manifest, pred, allow_missing=True)
    assert [p.item.id for p in pairing.pairs] == ["b"]
    assert pairing.coverage == (
        CoverageEntry("a", "missing", f"no output file in {pred} (expected a.<ext>)"),
        CoverageEntry("b", "ok", ""),
        CoverageEntry("c", "missing", f"no output file in {pred} (expected c.<ext>)"),
    )
    outputs(pred, "zz.wav")
    with pytest.raises(PairingError, match=r"zz\.wav: matches no manifest item"):
        pair_outputs(manifest, pred, allow_missing=True)
    (pred / "zz.wav").unlink()
    outputs(pred, "b.wav")
    with pytest.raises(PairingError, match="several outputs"):
        pair_outputs(manifest, pred, allow_missing=True)


def test_multi_sample_naming(tmp_path, manifest):
    names = [f"{i}__s{k}.wav" for i in ("a", "b", "c") for k in range(3)]
    assert names == [
        output_name(i, ".wav", sample=k, num_samples=3) for i in ("a", "b", "c") for k in range(3)
    ]
    assert output_name("a", ".wav") == "a.wav"
    pred = outputs(tmp_path / "pred", *names)
    pairing = pair_outputs(manifest, pred, num_samples=3)
    assert [[o.name for o in p.outputs] for p in pairing.pairs] == [names[0:3], names[3:6], names[6:9]]
    assert all(entry.status == "ok" for entry in pairing.coverage)


def test_multi_sample_problems(tmp_path, manifest):
    pred = outputs(
        tmp_path / "pred", "a__s0.wav", "a__s1.wav", "a__s2.wav", "a.wav", "b__s0.wav", "b__s01.wav"
    )
    outputs(pred, "c__s0.wav", "c__s1.wav", "c__s1.mp3")
    with pytest.raises(PairingError) as info:
        pair_outputs(manifest, pred, num_samples=2)
    assert sorted(str(info.value).splitlines()[1:]) == sorted(
        [
            "a.wav: not named '<id>__s<k>.<ext>' as expected with 2 samples per item",
            "a__s2.wav: sample index 2 out of range (num_samples=2)",
            "b__s01.wav: not named '<id>__s<k>.<ext>' as expected with 2 samples per item",
            "id 'c' sample 1: several outputs, keep one: c__s1.mp3, c__s1.wav",
            f"id 'b': no output file in {pred} (expected b__s1.<ext>); 1 other sample(s) present but not used",
        ]
    )


def test_multi_sample_partial_item_is_missing_with_allow_missing(tmp_path, manifest):
    pred = outputs(tmp_path / "pred", "a__s0.wav", "a__s1.wav", "b__s1.wav")
    pairing = pair_outputs(manifest, pred, num_samples=2, allow_missing=True)
    assert [p.item.id for p in pairing.pairs] == ["a"]
    assert [(c.id, c.status) for c in pairing.coverage] == [("a", "ok"), ("b", "missing"), ("c", "missing")]
    assert pairing.coverage[1].reason == (
        f"no output file in {pred} (expected b__s0.<ext>); 1 other sample(s) present but not used"
    )


def test_bad_arguments(tmp_path, manifest):
    with pytest.raises(PairingError, match="output folder not found"):
        pair_outputs(manifest, tmp_path / "absent")
    with pytest.raises(UsageError, match="num_samples"):
        pair_outputs(manifest, tmp_path, num_samples=0)
    with pytest.raises(UsageError, match="extensions"):
        pair_outputs(manifest, tmp_path, extensions=("wav",))


def test_default_extensions_cover_the_common_audio_containers(tmp_path):
    path = tmp_path / "m.jsonl"
    exts = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")
    path.write_text("".join(json.dumps({"id": f"i{k}", "task": "t2a", "text": "t"}) + "\n" for k in range(6)))
    manifest = load_manifest(path)
    pred = outputs(tmp_path / "pred", *(f"i{k}{ext}" for k, ext in enumerate(exts)))
    pairing = pair_outputs(manifest, pred)
    assert [p.outputs[0].suffix for p in pairing.pairs] == list(exts)
    with pytest.raises(PairingError) as info:
        pair_outputs(manifest, pred, extensions=(".wav",))
    assert f"id 'i1': no output file in {pred} (expected i1.<ext>)" in str(info.value).splitlines()
    partial = pair_outputs(manifest, pred, extensions=(".wav",), allow_missing=True)
    assert [c.status for c in partial.coverage] == ["ok"] + ["missing"] * 5
    assert partial.ignored == tuple(f"i{k}{ext}" for k, ext in enumerate(exts) if k)


def test_generator_sidecars_are_listed_apart_from_unused_files(tmp_path, manifest):
    """`<stem>.json` beside `<stem>.wav` is a generator's sidecar; a JSON file without its audio is unused."""
    pred = outputs(tmp_path / "pred", "a.wav", "a.json", "b.wav", "b.json", "c.wav", "orphan.json", "x.txt")
    pairing = pair_outputs(manifest, pred)
    assert pairing.sidecars == ("a.json", "b.json")
    assert pairing.ignored == ("orphan.json", "x.txt")
