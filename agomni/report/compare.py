"""`agomni compare BASE NEW`: per-metric NEW - BASE with a seeded 95 % bootstrap interval and a verdict.

Per metric present in both runs:
- per-item metrics (item scores in both runs, e.g. KL, the flow-matching validation loss): paired
  bootstrap of the mean difference over the items both runs scored;
- set-level FD and KAD of `agomni run` folders: the items of both sets resampled together and the metric
  recomputed on the resampled embeddings (read back from each run's cache, `agomni.report.embeddings`);
- anything else (IS, FAD-inf, runs without per-item embeddings): the difference without an interval.
Verdict: "better" / "worse" when the interval excludes 0 on that side, else "no significant change"
("no interval" without one). A **regression** is a "worse" metric whose whole interval lies beyond the
tolerance (``--tolerance METRIC=VALUE``, in the metric's unit, default 0); ``--fail-on-regression``
makes any regression exit 1. ``--baseline best`` with several earlier runs (checkpoints of one training)
compares each metric with the earlier run that has its best value (`compare_with_best`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from agomni.errors import AgomniError, UsageError
from agomni.results import Results
from agomni.results.store import read_results
from agomni.run.runner import first_replicate, load_run, run_manifest

from .bootstrap import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    Interval,
    paired_mean_interval,
    set_metric_interval,
)
from .embeddings import RESAMPLABLE, item_rows, metric_kind, set_metric_function


@dataclass(frozen=True)
class MetricComparison:
    name: str
    unit: str
    higher_is_better: bool
    base: float
    new: float
    interval: Interval | None
    verdict: str
    regression: bool
    tolerance: float
    note: str = ""

    @property
    def delta(self) -> float:
        return self.new - self.base

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "interval"},
            "delta": self.delta,
            "interval": None if self.interval is None else asdict(self.interval),
        }


@dataclass(frozen=True)
class Comparison:
    base: str
    new: str
    metrics: tuple[MetricComparison, ...]

    @property
    def regressions(self) -> list[MetricComparison]:
        return [m for m in self.metrics if m.regression]

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "new": self.new, "metrics": [m.to_dict() for m in self.metrics]}


@dataclass(frozen=True)
class _Run:
    label: str
    folder: Path
    results: Results
    context: dict[str, Any]

    def replicate(self) -> tuple[Results, Path] | None:
        """The first replicate's results and generated-files folder (for the per-item embeddings)."""
        if not self.context:
            return None
        path, pred_dir = first_replicate(self.folder, self.context)
        return (read_results(path), pred_dir) if path.is_file() else None


def verdict(interval: Interval | None, higher_is_better: bool, tolerance: float) -> tuple[str, bool]:
    """(verdict, regression) for an interval of NEW - BASE (module docstring)."""
    if interval is None:
        return "no interval", False
    good_low, good_high = (
        (interval.low, interval.high) if higher_is_better else (-interval.high, -interval.low)
    )
    if good_low > 0:
        return "better", False
    if good_high < 0:
        return "worse", good_high < -tolerance
    return "no significant change", False


def _set_interval(base: _Run, new: _Run, name: str, resamples: int, seed: int) -> tuple[Interval | None, str]:
    kind = metric_kind(base.results, name)
    if kind not in RESAMPLABLE:
        return None, f"no interval: resampling {kind or 'this metric'} is not supported"
    reps = base.replicate(), new.replicate()
    if reps[0] is None or reps[1] is None:
        return None, "no interval: per-item embeddings are kept only in `agomni run` folders"
    rows = [
        item_rows(rep[0], name, run_manifest(run.folder, run.context), rep[1], run.folder / "cache")
        for run, rep in zip((base, new), reps, strict=True)
    ]
    common = [i for i in rows[0]["pred"] if i in rows[1]["pred"]]
    interval = set_metric_interval(
        set_metric_function(kind),
        [rows[0]["pred"][i] for i in common],
        [rows[1]["pred"][i] for i in common],
        [rows[0]["ref"][i] for i in common],
        resamples=resamples,
        seed=seed,
    )
    return interval, f"{len(common)} items, first replicate of each run"


def compare_runs(
    base_dir: str | Path,
    new_dir: str | Path,
    *,
    tolerances: dict[str, float] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Comparison:
    """Compare two run folders metric by metric (module docstring)."""
    runs = []
    for folder in (base_dir, new_dir):
        results, context = load_run(folder)
        runs.append(_Run(Path(folder).name, Path(folder), results, context))
    base, new = runs
    tolerances = dict(tolerances or {})
    new_metrics = {m.name: m for m in new.results.metrics}
    unknown = sorted(set(tolerances) - set(new_metrics))
    if unknown:
        raise UsageError(f"--tolerance names metrics neither run has: {', '.join(unknown)}")
    out = []
    for metric in base.results.metrics:
        other = new_metrics.get(metric.name)
        if other is None:
            continue
        common = [
            i
            for i, s in base.results.item_scores.items()
            if metric.name in s and metric.name in new.results.item_scores.get(i, {})
        ]
        if common:
            values = [
                np.array([r.item_scores[i][metric.name] for i in common]) for r in (base.results, new.results)
            ]
            interval = paired_mean_interval(values[0], values[1], resamples=resamples, seed=seed)
            note = f"{len(common)} paired items"
        else:
            try:
                interval, note = _set_interval(base, new, metric.name, resamples, seed)
            except AgomniError as err:
                interval, note = None, f"no interval: {err}"
        tolerance = float(tolerances.get(metric.name, 0.0))
        word, regression = verdict(interval, metric.higher_is_better, tolerance)
        out.append(
            MetricComparison(
                metric.name,
                metric.unit,
                metric.higher_is_better,
                metric.value,
                other.value,
                interval,
                word,
                regression,
                tolerance,
                note,
            )
        )
    return Comparison(base.label, new.label, tuple(out))


def format_comparison(comparison: Comparison) -> str:
    lines = [
        f"compare {comparison.base} (base) -> {comparison.new} (new); delta = new - base, 95 % bootstrap interval"
    ]
    for m in comparison.metrics:
        arrow = "higher is better" if m.higher_is_better else "lower is better"
        ci = "" if m.interval is None else f" [{m.interval.low:+.4g}, {m.interval.high:+.4g}]"
        flag = " REGRESSION" if m.regression else ""
        lines.append(
            f"  {m.name} ({m.unit}, {arrow}): {m.base:.5g} -> {m.new:.5g}, delta {m.delta:+.4g}{ci}: "
            f"{m.verdict}{flag} ({m.note})"
        )
    return "\n".join(lines)


def parse_tolerances(values: list[str] | None) -> dict[str, float]:
    out = {}
    for value in values or []:
        name, sep, number = value.partition("=")
        try:
            out[name] = float(number)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise UsageError(f"--tolerance {value!r}: expected METRIC=VALUE, e.g. fd_offline=0.5")
    return out


def compare_with_best(
    earlier: Sequence[str | Path],
    new: str | Path,
    *,
    tolerances: dict[str, float] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Comparison:
    """`agomni compare RUN... NEW --baseline best`: each metric of NEW against the earlier run that has
    its best value (the baseline of each metric is named in its note)."""
    if not earlier:
        raise UsageError("--baseline best needs at least one earlier run before the new one")
    runs = {str(folder): load_run(folder)[0] for folder in earlier}
    new_results = load_run(new)[0]
    tolerances = dict(tolerances or {})
    unknown = sorted(set(tolerances) - {m.name for m in new_results.metrics})
    if unknown:
        raise UsageError(f"--tolerance names metrics neither run has: {', '.join(unknown)}")
    metrics = []
    for metric in new_results.metrics:
        having = [
            (folder, m.value)
            for folder, results in runs.items()
            for m in results.metrics
            if m.name == metric.name
        ]
        if not having:
            continue
        pick = max if metric.higher_is_better else min
        best_folder = pick(having, key=lambda fv: fv[1])[0]
        comparison = compare_runs(
            best_folder,
            new,
            tolerances={metric.name: tolerances[metric.name]} if metric.name in tolerances else None,
            resamples=resamples,
            seed=seed,
        )
        (found,) = [m for m in comparison.metrics if m.name == metric.name]
        label = Path(best_folder).name
        metrics.append(replace(found, note=f"baseline {label} (best so far); {found.note}"))
    labels = ", ".join(Path(f).name for f in earlier)
    return Comparison(f"best of {labels}", Path(new).name, tuple(metrics))


def cli_compare(args: argparse.Namespace) -> int:
    options = {"tolerances": parse_tolerances(args.tolerance), "resamples": args.resamples, "seed": args.seed}
    if args.baseline == "best":
        comparison = compare_with_best(args.base, args.new, **options)
    elif len(args.base) != 1:
        raise UsageError("compare takes BASE_RUN NEW_RUN; several earlier runs need --baseline best")
    else:
        comparison = compare_runs(args.base[0], args.new, **options)
    print(format_comparison(comparison))
    if args.json:
        Path(args.json).write_text(json.dumps(comparison.to_dict(), indent=1) + "\n", encoding="utf-8")
    regressions = comparison.regressions
    if regressions:
        print(f"significant regression beyond tolerance: {', '.join(m.name for m in regressions)}")
        if args.fail_on_regression:
            return 1
    return 0
