"""`agomni compare`: verdicts from the bootstrap interval; a planted regression exits 1, an improvement 0."""

import json

import numpy as np
import pytest

from agomni.cli import main
from agomni.report.bootstrap import Interval
from agomni.report.compare import compare_runs, verdict
from agomni.results import CoverageEntry, Results, RunInfo, SetMetric, collect_provenance, write_results


def write_run(folder, values, name="kl_panns", higher_is_better=False):
    """A results.json whose per-item metric `name` has `values` (one per item)."""
    ids = [f"item-{i:02d}" for i in range(len(values))]
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
