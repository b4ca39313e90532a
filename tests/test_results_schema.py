"""Results files: round trip, JSON Schema checks, schema_version, atomic writes."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from agomni.errors import ResultsError
from agomni.results import (
    CheckpointRecord,
    ConfidenceInterval,
    CoverageEntry,
    GitInfo,
    NotComputed,
    Provenance,
    Results,
    RunInfo,
    SetMetric,
    Spread,
    read_results,
    results_schema,
    validate_results_dict,
    write_results,
)

SHA_A = "a" * 64
SHA_M = "0123456789abcdef" * 4


def make_results(**provenance_changes) -> Results:
    provenance = Provenance(
        agomni_version="0.1.0",
        git=GitInfo("f" * 40, False),
        packages={"numpy": "2.4.0", "soxr": None},
        python="CPython 3.11.7",
        platform="Linux-x86_64",
        device="cpu",
        seed=123,
        checkpoints={
            "panns-cnn14": CheckpointRecord(SHA_A, "pinned"),
            "vae": CheckpointRecord(SHA_M, "tofu"),
        },
        preprocessing={"sample_rate": 16000, "resampler": {"name": "soxr", "quality": "VHQ"}, "crop_s": 10.0},
        manifest_sha256=SHA_M,
        timings={"decode": 0.25, "embed": 1.5},
        random_weights=False,
    )
    provenance = Provenance(**{**provenance.__dict__, **provenance_changes})
    return Results(
        run=RunInfo(
            "run-1", "2026-01-31T12:00:00Z", ["agomni", "eval", "--suite", "x"], "vggsound-t2a", "/p", None, 2
        ),
        provenance=provenance,
        item_scores={"a": {"clap": 0.31, "ib": 0.2}, "b": {"clap": -0.05, "ib": 0.1}},
        metrics=[
            SetMetric(
                "fd_panns",
                12.5,
                "1",
                False,
                "av-benchmark",
                2,
                None,
                ConfidenceInterval(10.0, 15.0, 0.95, "bootstrap"),
            ),
            SetMetric("clap", 0.13, "cosine", True, "av-benchmark", 2, Spread("std", 0.18), None),
            SetMetric("kl", 1.25, "nat", False, "av-benchmark"),
        ],
        coverage=[
            CoverageEntry("a", "ok"),
            CoverageEntry("b", "ok", unscored={"lse_c": "no face found in any of the 50 frames"}),
            CoverageEntry("c", "missing", "no output file"),
        ],
    )


def test_round_trip(tmp_path):
    results = make_results()
    path = write_results(results, tmp_path / "run" / "results.json")
    assert path == tmp_path / "run" / "results.json"
    assert read_results(path) == results
    on_disk = json.loads(path.read_text())
    assert on_disk["schema_version"] == "1"
    assert on_disk["metrics"][0] == {
        "name": "fd_panns",
        "value": 12.5,
        "unit": "1",
        "higher_is_better": False,
        "profile": "av-benchmark",
        "n": 2,
        "spread": None,
        "ci": {"low": 10.0, "high": 15.0, "level": 0.95, "method": "bootstrap"},
    }
    assert on_disk["coverage"][2] == {
        "id": "c",
        "status": "missing",
        "reason": "no output file",
        "unscored": {},
    }
    assert on_disk["coverage"][1]["unscored"] == {"lse_c": "no face found in any of the 50 frames"}
    assert on_disk["provenance"]["packages"] == {"numpy": "2.4.0", "soxr": None}
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temporary file left


def test_schema_document_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(results_schema())


@pytest.mark.parametrize("key", ["unit", "higher_is_better", "profile", "value", "name"])
def test_metric_missing_a_required_key_is_rejected(tmp_path, key):
    data = make_results().to_dict()
    del data["metrics"][1][key]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsError) as info:
        read_results(path)
    assert info.value.problems == [f"metrics/1: '{key}' is a required property"]
    assert info.value.path == str(path)


def broken(change) -> dict:
    data = copy.deepcopy(make_results().to_dict())
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            lambda d: d["metrics"][0].update(higher_is_better="yes"),
            "metrics/0/higher_is_better: 'yes' is not of type",
        ),
        (lambda d: d["metrics"][0].update(unit=""), "metrics/0/unit"),
        (lambda d: d["metrics"][0]["ci"].update(level=95), "metrics/0/ci"),
        (lambda d: d["metrics"][0]["ci"].update(low=20.0), "metrics/0/ci: low 20.0 is above high 15.0"),
        (lambda d: d["metrics"][0].update(value=float("nan")), "metrics/0/value: not a finite number (nan)"),
        (
            lambda d: d["item_scores"]["a"].update(clap=float("inf")),
            "item_scores/a/clap: not a finite number",
        ),
        (
            lambda d: d["item_scores"].update(c={"clap": 0.1}),
            "item_scores/c: scores for an item that has coverage",
        ),
        (
            lambda d: d["item_scores"].update(q={"clap": 0.1}),
            "item_scores/q: scores for an item that is not in",
        ),
        (
            lambda d: d["coverage"].append({"id": "a", "status": "ok", "reason": ""}),
            "coverage/3: id 'a' listed more",
        ),
        (lambda d: d["coverage"][2].update(reason=""), "coverage/2/reason: '' should be non-empty"),
        (lambda d: d["coverage"][2].update(status="skipped"), "coverage/2/status"),
        (
            lambda d: d["coverage"][2].update(unscored={"lse_c": "no face"}),
            "coverage/2/unscored: per-metric reasons on an item with status 'missing'",
        ),
        (
            lambda d: d["coverage"][1]["unscored"].update(ib=""),
            "coverage/1/unscored/ib: '' should be non-empty",
        ),
        (
            lambda d: d["coverage"][1]["unscored"].update(ib="too short"),
            "item_scores/b: scores for ib, which its coverage entry lists as unscored",
        ),
        (lambda d: d["provenance"]["git"].update(commit=None), "provenance/git"),
        (
            lambda d: d["provenance"]["checkpoints"]["vae"].update(sha256=None),
            "provenance/checkpoints/vae/sha256",
        ),
        (
            lambda d: d["provenance"]["checkpoints"]["vae"].update(trust="random-weights"),
            "provenance/random_weights",
        ),
        (lambda d: d["provenance"]["timings"].update(decode=-1.0), "provenance/timings/decode"),
        (lambda d: d["provenance"].pop("seed"), "provenance: 'seed' is a required property"),
        (lambda d: d["run"].update(created_utc="yesterday"), "run/created_utc"),
        (lambda d: d.update(extra=1), "Additional properties are not allowed ('extra' was unexpected)"),
    ],
)
def test_schema_and_consistency_rejections(change, fragment):
    problems = validate_results_dict(broken(change))
    assert any(fragment in p for p in problems), problems


def test_files_written_before_per_metric_coverage_still_read(tmp_path):
    data = make_results().to_dict()
    for entry in data["coverage"]:
        del entry["unscored"]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    coverage = read_results(path).coverage
    assert [(c.id, c.status, c.unscored) for c in coverage] == [
        ("a", "ok", {}),
        ("b", "ok", {}),
        ("c", "missing", {}),
    ]


def test_random_weights_checkpoint_without_digest_is_accepted_when_flagged():
    data = broken(
        lambda d: d["provenance"]["checkpoints"].update(net={"sha256": None, "trust": "random-weights"})
    )
    data["provenance"]["random_weights"] = True
    assert validate_results_dict(data) == []


@pytest.mark.parametrize("version", ["2", 1, None])
def test_wrong_schema_version_is_a_clear_error(tmp_path, version):
    data = make_results().to_dict()
    data["schema_version"] = version
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsError) as info:
        read_results(path)
    assert info.value.problems == [
        f"schema_version: {version!r} is not supported; this agomni reads schema_version '1' "
        "(use the agomni version that wrote the file)"
    ]


def test_missing_schema_version_and_non_json(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"run": {}}')
    with pytest.raises(ResultsError, match="schema_version: missing"):
        read_results(path)
    path.write_text('{"schema_version": "1", "x": NaN}')
    with pytest.raises(ResultsError, match="not valid JSON: NaN is not valid JSON"):
        read_results(path)
    with pytest.raises(ResultsError, match="cannot read results file"):
        read_results(tmp_path / "absent.json")


def test_invalid_results_are_not_written_and_old_file_survives(tmp_path):
    path = write_results(make_results(), tmp_path / "results.json")
    before = path.read_bytes()
    with pytest.raises(ResultsError, match="random_weights"):
        write_results(make_results(checkpoints={"net": CheckpointRecord(None, "random-weights")}), path)
    with pytest.raises(ResultsError, match="not JSON-serializable"):
        write_results(make_results(preprocessing={"path": Path("/x")}), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_write_replaces_existing_file(tmp_path):
    path = write_results(make_results(seed=1), tmp_path / "results.json")
    write_results(make_results(seed=2), path)
    assert read_results(path).provenance.seed == 2
    assert json.loads(path.read_text())["provenance"]["seed"] == 2


def test_not_computed_entries_round_trip_and_older_files_read_as_none(tmp_path):
    entry = NotComputed(
        name="ib_score",
        kind="no-items",
        reason="no item could be scored: IB-score over 8 s needs 4 frames at 0.5 fps",
        side="video",
        counts={"IB-score over 8 s needs 4 frames at 0.5 fps, got 1": 12},
        items=("a", "b", "c"),
        hint="score clips of at least 8 s, or drop ib_score from --metrics",
    )
    results = dataclasses.replace(make_results(), not_computed=(entry,))
    path = write_results(results, tmp_path / "results.json")
    assert read_results(path).not_computed == (entry,)
    assert json.loads(path.read_text())["not_computed"][0]["counts"] == dict(entry.counts)

    data = results.to_dict()
    del data["not_computed"]
    path.write_text(json.dumps(data))
    assert read_results(path).not_computed == ()


@pytest.mark.parametrize("change", [{"kind": "broken"}, {"side": "left"}])
def test_not_computed_rejects_unknown_kind_and_side(change):
    fields = {"name": "fd_vggish", "kind": "weights", "reason": "weights not in the cache"} | change
    with pytest.raises(ValueError, match=next(iter(change.values()))):
        NotComputed(**fields)
    data = make_results().to_dict()
    data["not_computed"] = [{"side": "", "counts": {}, "items": [], "hint": ""} | fields]
    problems = validate_results_dict(data)
    assert len(problems) == 1
    assert problems[0].startswith(f"not_computed/0/{next(iter(change))}:")
