"""`agomni compare`: verdicts from the bootstrap interval; a planted regression exits 1, an improvement 0."""

import json
from dataclasses import replace

import numpy as np
import pytest

from agomni.cli import main
from agomni.report.bootstrap import Interval
from agomni.report.compare import compare_runs, verdict
from agomni.results import (
    CoverageEntry,
    NotComputed,
    Results,
    RunInfo,
    SetMetric,
    collect_provenance,
    write_results,
)


def write_run(folder, values, name="kl_panns", higher_is_better=False, first=0):
    """A results.json whose per-item metric `name` has `values` (one per item, ids from item-`first`)."""
    ids = [f"item-{i:02d}" for i in range(first, first + len(values))]
    metric = SetMetric(name, float(np.mean(values)), "nats", higher_is_better, "av-benchmark", n=len(values))
    results = Results(
        RunInfo(folder.name, "2026-01-01T00:00:00Z"),
        collect_provenance(seed=0),
        {i: {name: float(v)} for i, v in zip(ids, values, strict=True)},
        (metric,),
        tuple(CoverageEntry(i, "ok") for i in ids),
    )
    write_results(results, folder / "results.json")
    return folder


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.gamma(2.0, 0.5, size=50)
    return {
        "base": write_run(tmp_path / "base", base),
        "worse": write_run(tmp_path / "worse", base + 0.3 + rng.normal(0, 0.05, 50)),
        "better": write_run(tmp_path / "better", base - 0.3 + rng.normal(0, 0.05, 50)),
        "same": write_run(tmp_path / "same", base + rng.normal(0, 0.05, 50)),
    }


def test_planted_regression_exits_1_and_names_the_metric(runs, capsys):
    assert main(["compare", str(runs["base"]), str(runs["worse"]), "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "kl_panns (nats, lower is better)" in out and "worse REGRESSION" in out


def test_planted_improvement_exits_0(runs, capsys):
    assert main(["compare", str(runs["base"]), str(runs["better"]), "--fail-on-regression"]) == 0
    assert ": better (50 paired items)" in capsys.readouterr().out


def test_regression_within_tolerance_and_noise_exit_0(runs, tmp_path):
    worse = ["compare", str(runs["base"]), str(runs["worse"]), "--fail-on-regression"]
    assert main([*worse, "--tolerance", "kl_panns=1.0"]) == 0
    assert main(["compare", str(runs["base"]), str(runs["same"]), "--fail-on-regression"]) == 0
    report = tmp_path / "c.json"
    assert main(["compare", str(runs["base"]), str(runs["same"]), "--json", str(report)]) == 0
    saved = json.loads(report.read_text())["metrics"][0]
    assert (
        saved["verdict"] == "no significant change"
        and saved["interval"]["low"] < 0 < saved["interval"]["high"]
    )


def test_compare_reports_delta_as_new_minus_base(runs):
    comparison = compare_runs(runs["base"], runs["better"], resamples=100)
    (m,) = comparison.metrics
    assert m.delta == pytest.approx(m.new - m.base) and m.delta < 0


def test_verdict_follows_direction_and_tolerance():
    ci = Interval(0.1, 0.4, 0.95, 100, 0, 10, "x")  # new - base clearly positive
    assert verdict(ci, higher_is_better=True, tolerance=0) == ("better", False)
    assert verdict(ci, higher_is_better=False, tolerance=0) == ("worse", True)
    assert verdict(ci, higher_is_better=False, tolerance=0.2) == ("worse", False)  # low end within tolerance
    assert verdict(Interval(-0.1, 0.4, 0.95, 100, 0, 10, "x"), False, 0) == ("no significant change", False)


def test_bad_arguments_are_usage_errors_not_exit_3(runs, tmp_path, capsys):
    assert main(["compare", str(runs["base"]), str(tmp_path / "absent")]) == 2
    assert main(["compare", str(runs["base"]), str(runs["same"]), "--tolerance", "fd"]) == 2
    assert main(["report", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert "no results.json" in err and "METRIC=VALUE" in err and "Traceback" not in err


def test_lost_item_compares_shared_items_and_fails_the_gate(tmp_path, capsys):
    """NEW lost one of six items: the delta and its interval are both over the five shared items (the
    whole-run means differ although no shared item changed), and the gate fails unless allowed."""
    values = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 9.0])
    base = write_run(tmp_path / "base", values)
    new = write_run(tmp_path / "new", values[1:], first=1)  # item-00 lost; same scores on the others
    report = tmp_path / "c.json"
    argv = ["compare", str(base), str(new), "--fail-on-regression", "--json", str(report)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "items scored in base only: 1 (item-00)" in out and "scored in base but not in new: item-00" in out
    (m,) = json.loads(report.read_text())["metrics"]
    shared = values[1:].mean()
    assert (m["base"], m["new"], m["delta"]) == (pytest.approx(shared), pytest.approx(shared), 0.0)
    assert m["interval"]["low"] <= m["delta"] <= m["interval"]["high"]
    assert m["lost"] == ["item-00"] and "on the 5 items both runs scored" in m["note"]
    assert f"whole-run values {values.mean():.5g} -> {values[1:].mean():.5g}" in m["note"]
    assert main([*argv, "--allow-lost-items"]) == 0


def test_no_common_metric_is_an_error_and_a_missing_metric_fails_the_gate(tmp_path, capsys):
    rng = np.random.default_rng(1)
    values = rng.gamma(2.0, 0.5, size=8)
    base = write_run(tmp_path / "base", values)
    other = write_run(tmp_path / "other", values, name="wer")
    assert main(["compare", str(base), str(other), "--fail-on-regression"]) == 2
    assert "no metric in common" in capsys.readouterr().err
    # BASE computed kl_panns and wer; NEW only kl_panns, with a not-computed entry for wer
    both = Results.from_dict(json.loads((base / "results.json").read_text()))
    extra = SetMetric("wer", 3.0, "% WER", False, "seed-tts-eval", n=8)
    write_results(replace(both, metrics=(*both.metrics, extra)), tmp_path / "two" / "results.json")
    reason = "no generated item could be scored (8 items: no speech)"
    entry = NotComputed("wer", "no-items", reason, side="generated", counts={"no speech": 8})
    write_results(replace(both, not_computed=(entry,)), tmp_path / "one" / "results.json")
    assert main(["compare", str(tmp_path / "two"), str(tmp_path / "one")]) == 0  # reported, no gate
    assert main(["compare", str(tmp_path / "two"), str(tmp_path / "one"), "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert f"metric wer computed in two but not in one: not computed: {reason}" in out
    (tmp_path / "one" / "results.json").unlink()
    write_results(both, tmp_path / "one" / "results.json")
    assert main(["compare", str(tmp_path / "two"), str(tmp_path / "one"), "--fail-on-regression"]) == 1
    assert "metric wer computed in two but not in one: absent from its results" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["nan", "-0.1", "inf", "-inf"])
def test_nan_negative_or_infinite_tolerance_is_refused(runs, value, capsys):
    argv = ["compare", str(runs["base"]), str(runs["worse"]), "--fail-on-regression"]
    assert main([*argv, "--tolerance", f"kl_panns={value}"]) == 2
    assert "a tolerance must be a finite number >= 0" in capsys.readouterr().err
