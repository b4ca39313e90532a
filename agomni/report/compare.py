"""`agomni compare BASE NEW`: per-metric NEW - BASE with a seeded 95 % bootstrap interval and a verdict.

Item sets: an item counts for a metric in a run when the run scored it for that metric (a per-item
score, or coverage "ok" without that metric among the item's unscored ones). When the runs' item sets
differ, every comparison is made on the items both runs scored, and says so: the items only in BASE
("lost") and only in NEW are listed, the per-item metrics compare their means over the shared items,
FD and KAD are recomputed on the shared items' embeddings, and a metric that can be neither is shown
with both runs' values and "different items" (no verdict).

Per metric present in both runs:
- per-item metrics (item scores in both runs, e.g. KL, the flow-matching validation loss): paired
  bootstrap of the mean difference over the items both runs scored;
- set-level FD and KAD of `agomni run` folders: the items of both sets resampled together and the metric
  recomputed on the resampled embeddings (read back from each run's cache, `agomni.report.embeddings`);
- anything else (IS, FAD-inf, runs without per-item embeddings): the difference without an interval.
Verdict: "better" / "worse" when the interval excludes 0 on that side, else "no significant change"
("no interval" without one). A **regression** is a "worse" metric whose whole interval lies beyond the
tolerance (``--tolerance METRIC=VALUE``, a finite number >= 0 in the metric's unit, default 0).

``--fail-on-regression`` exits 1 on a regression, on a metric BASE computed that NEW did not (named with
NEW's not-computed reason, or "absent"), and on items BASE scored that NEW did not (``--allow-lost-items``
accepts those: the comparison is then on the shared items only). Two runs with no metric in common
are an error (exit 2), never a pass.
``--baseline best`` with several earlier runs (checkpoints of one training) compares each metric with
the earlier run that has its best value (`compare_with_best`); the gate then also fails on a metric
some earlier run computed that NEW did not, and on items the chosen baselines scored that NEW did not.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from agomni.errors import AgomniError, UsageError
from agomni.results import Results, RunFolder

from .bootstrap import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    Interval,
    paired_mean_interval,
    set_metric_interval,
)
from .embeddings import RESAMPLABLE, metric_kind, scored_rows, set_metric_function

SHOWN_IDS = 5  # item ids listed per message


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
    lost: tuple[str, ...] = ()  # items BASE scored for this metric and NEW did not
    gained: tuple[str, ...] = ()  # items NEW scored for this metric and BASE did not

    @property
    def delta(self) -> float:
        return self.new - self.base

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "interval"},
            "lost": list(self.lost),
            "gained": list(self.gained),
            "delta": self.delta,
            "interval": None if self.interval is None else asdict(self.interval),
        }


@dataclass(frozen=True)
class MissingMetric:
    """A metric BASE computed that NEW did not, with NEW's reason."""

    name: str
    reason: str


@dataclass(frozen=True)
class Comparison:
    base: str
    new: str
    metrics: tuple[MetricComparison, ...]
    missing: tuple[MissingMetric, ...] = ()  # computed in BASE, not in NEW
    only_new: tuple[str, ...] = ()  # metric names computed in NEW only
    lost_items: tuple[str, ...] = ()  # items BASE scored ("ok") that NEW did not
    new_items: tuple[str, ...] = ()  # items NEW scored ("ok") that BASE did not

    @property
    def regressions(self) -> list[MetricComparison]:
        return [m for m in self.metrics if m.regression]

    @property
    def lost(self) -> tuple[str, ...]:
        """Every item BASE scored that NEW did not, for the run or for any one metric."""
        per_metric = (i for m in self.metrics for i in m.lost)
        return tuple(dict.fromkeys((*self.lost_items, *per_metric)))

    def failures(self, allow_lost_items: bool = False) -> list[str]:
        """Why the gate (``--fail-on-regression``) fails: one sentence per cause; [] when it passes."""
        out = [f"significant regression beyond tolerance: {', '.join(m.name for m in self.regressions)}"]
        out = out if self.regressions else []
        out += [
            f"metric {m.name} computed in {self.base} but not in {self.new}: {m.reason}" for m in self.missing
        ]
        if self.lost and not allow_lost_items:
            out.append(
                f"{len(self.lost)} item(s) scored in {self.base} but not in {self.new}: {_ids(self.lost)} "
                "(--allow-lost-items compares the shared items only)"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "new": self.new,
            "metrics": [m.to_dict() for m in self.metrics],
            "missing_in_new": [asdict(m) for m in self.missing],
            "only_in_new": list(self.only_new),
            "items_only_in_base": list(self.lost_items),
            "items_only_in_new": list(self.new_items),
        }


def _ids(ids: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(ids[:SHOWN_IDS])
    return shown + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")


@dataclass(frozen=True)
class System:
    """One scored run folder as the comparison and the report read it (label: the folder's name)."""

    label: str
    folder: Path
    results: Results
    context: dict[str, Any]

    @classmethod
    def open(cls, folder: str | Path) -> System:
        run = RunFolder.open(folder)
        return cls(Path(folder).name, run.path, run.results(), run.context())

    def ok_items(self) -> list[str]:
        return [c.id for c in self.results.coverage if c.status == "ok"]

    def scored(self, name: str) -> list[str]:
        """The items this run scored for metric `name` (module docstring), in coverage order."""
        per_item = [i for i, s in self.results.item_scores.items() if name in s]
        if per_item:
            return per_item
        return [c.id for c in self.results.coverage if c.status == "ok" and name not in c.unscored]

    def not_computed_reason(self, name: str) -> str:
        entry = next((n for n in self.results.not_computed if n.name == name), None)
        return "absent from its results" if entry is None else f"not computed: {entry.reason}"


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


@dataclass(frozen=True)
class _Values:
    """BASE and NEW values of one metric on the compared items, with an interval and a note."""

    base: float
    new: float
    interval: Interval | None
    note: str


def _per_item(base: System, new: System, name: str, common: list[str], resamples: int, seed: int) -> _Values:
    values = [np.array([r.results.item_scores[i][name] for i in common]) for r in (base, new)]
    interval = paired_mean_interval(values[0], values[1], resamples=resamples, seed=seed)
    return _Values(float(values[0].mean()), float(values[1].mean()), interval, f"{len(common)} paired items")


def _set_metric(
    base: System, new: System, name: str, common: list[str], resamples: int, seed: int
) -> _Values:
    """FD / KAD on the shared items' cached embeddings (raises AgomniError when they cannot be read)."""
    kind = metric_kind(base.results, name)
    if kind not in RESAMPLABLE:
        raise UsageError(f"resampling {kind or 'this metric'} is not supported")
    rows = [scored_rows(run.folder, name) for run in (base, new)]
    common = [i for i in common if i in rows[0]["pred"] and i in rows[1]["pred"]]
    base_rows, new_rows = ([r["pred"][i] for i in common] for r in rows)
    ref_rows = [rows[0]["ref"][i] for i in common]
    interval = set_metric_interval(
        set_metric_function(kind), base_rows, new_rows, ref_rows, resamples=resamples, seed=seed
    )
    metric = set_metric_function(kind)
    values = metric(base_rows, ref_rows), metric(new_rows, ref_rows)
    return _Values(*values, interval, f"{len(common)} items, first replicate of each run")


def _compare_metric(
    base: System, new: System, name: str, resamples: int, seed: int
) -> tuple[_Values, list, list]:
    """(values, lost ids, gained ids) of metric `name`: on all items when both runs scored the same
    ones (the runs' own values), else on the shared items (module docstring)."""
    base_ids, new_ids = base.scored(name), new.scored(name)
    new_set, base_set = set(new_ids), set(base_ids)
    common = [i for i in base_ids if i in new_set]
    lost = [i for i in base_ids if i not in new_set]
    gained = [i for i in new_ids if i not in base_set]
    same = not lost and not gained
    full = (
        next(m.value for m in base.results.metrics if m.name == name),
        next(m.value for m in new.results.metrics if m.name == name),
    )
    per_item = all(name in base.results.item_scores.get(i, {}) for i in common) and all(
        name in new.results.item_scores.get(i, {}) for i in common
    )
    try:
        if per_item and common:
            values = _per_item(base, new, name, common, resamples, seed)
        else:
            values = _set_metric(base, new, name, common, resamples, seed)
    except AgomniError as err:
        note = f"no interval: {err}"
        if same:
            return _Values(*full, None, note), lost, gained
        return _Values(*full, None, f"different items, not comparable ({note})"), lost, gained
    if same:
        return _Values(*full, values.interval, values.note), lost, gained
    label = f"on the {len(common)} items both runs scored"
    where = [f"{len(lost)} only in base: {_ids(lost)}"] * bool(lost)
    where += [f"{len(gained)} only in new: {_ids(gained)}"] * bool(gained)
    run_values = f"whole-run values {full[0]:.5g} -> {full[1]:.5g}"
    return (
        _Values(values.base, values.new, values.interval, f"{label} ({'; '.join(where)}; {run_values})"),
        lost,
        gained,
    )


def check_tolerances(tolerances: dict[str, float], metrics: set[str]) -> None:
    """Each tolerance a finite number >= 0 naming a metric both runs computed, else a UsageError."""
    bad = {n: v for n, v in tolerances.items() if not math.isfinite(v) or v < 0}
    if bad:
        shown = ", ".join(f"{n}={v}" for n, v in bad.items())
        raise UsageError(
            f"--tolerance {shown}: a tolerance must be a finite number >= 0 (in the metric's unit)"
        )
    unknown = sorted(set(tolerances) - metrics)
    if unknown:
        raise UsageError(
            f"--tolerance names metrics the two runs do not both have: {', '.join(unknown)} "
            f"(shared: {', '.join(sorted(metrics)) or 'none'})"
        )


def compare_runs(
    base_dir: str | Path,
    new_dir: str | Path,
    *,
    tolerances: dict[str, float] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Comparison:
    """Compare two run folders metric by metric (module docstring)."""
    base, new = System.open(base_dir), System.open(new_dir)
    tolerances = dict(tolerances or {})
    new_metrics = {m.name: m for m in new.results.metrics}
    shared = [m for m in base.results.metrics if m.name in new_metrics]
    check_tolerances(tolerances, {m.name for m in shared})
    out = []
    for metric in shared:
        values, lost, gained = _compare_metric(base, new, metric.name, resamples, seed)
        tolerance = float(tolerances.get(metric.name, 0.0))
        word, regression = verdict(values.interval, metric.higher_is_better, tolerance)
        if values.note.startswith("different items"):
            word = "different items"
        out.append(
            MetricComparison(
                metric.name,
                metric.unit,
                metric.higher_is_better,
                values.base,
                values.new,
                values.interval,
                word,
                regression,
                tolerance,
                values.note,
                tuple(lost),
                tuple(gained),
            )
        )
    base_names = {m.name for m in base.results.metrics}
    missing = tuple(
        MissingMetric(m.name, new.not_computed_reason(m.name))
        for m in base.results.metrics
        if m.name not in new_metrics
    )
    base_ok, new_ok = base.ok_items(), new.ok_items()
    return Comparison(
        base.label,
        new.label,
        tuple(out),
        missing,
        tuple(n for n in new_metrics if n not in base_names),
        tuple(i for i in base_ok if i not in set(new_ok)),
        tuple(i for i in new_ok if i not in set(base_ok)),
    )


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
    for m in comparison.missing:
        lines.append(f"  {m.name}: computed in base, not in new ({m.reason})")
    if comparison.only_new:
        lines.append(f"  computed in new only (nothing to compare): {', '.join(comparison.only_new)}")
    if comparison.lost_items:
        lines.append(
            f"  items scored in base only: {len(comparison.lost_items)} ({_ids(comparison.lost_items)})"
        )
    if comparison.new_items:
        lines.append(
            f"  items scored in new only: {len(comparison.new_items)} ({_ids(comparison.new_items)})"
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
    its best value (the baseline of each metric is named in its note). A metric some earlier run computed
    that NEW did not is `missing`; items a chosen baseline scored that NEW did not are `lost`."""
    if not earlier:
        raise UsageError("--baseline best needs at least one earlier run before the new one")
    runs = {str(folder): RunFolder.open(folder).results() for folder in earlier}
    new_run = System.open(new)
    new_results = new_run.results
    tolerances = dict(tolerances or {})
    new_names = {m.name for m in new_results.metrics}
    earlier_names = {m.name for results in runs.values() for m in results.metrics}
    check_tolerances(tolerances, new_names & earlier_names)
    metrics, lost_items = [], []
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
        lost_items += comparison.lost_items
    missing = tuple(
        MissingMetric(name, new_run.not_computed_reason(name)) for name in sorted(earlier_names - new_names)
    )
    labels = ", ".join(Path(f).name for f in earlier)
    return Comparison(
        f"best of {labels}",
        Path(new).name,
        tuple(metrics),
        missing,
        tuple(n for n in new_names if n not in earlier_names),
        tuple(dict.fromkeys(lost_items)),
    )


def cli_compare(args: argparse.Namespace) -> int:
    options = {"tolerances": parse_tolerances(args.tolerance), "resamples": args.resamples, "seed": args.seed}
    if args.baseline == "best":
        comparison = compare_with_best(args.base, args.new, **options)
    elif len(args.base) != 1:
        raise UsageError("compare takes BASE_RUN NEW_RUN; several earlier runs need --baseline best")
    else:
        comparison = compare_runs(args.base[0], args.new, **options)
    if not comparison.metrics:
        missing = ", ".join(m.name for m in comparison.missing) or "none"
        raise UsageError(
            f"{comparison.base} and {comparison.new} have no metric in common (base: {missing}; new: "
            f"{', '.join(comparison.only_new) or 'none'}): nothing was compared; score both runs with the same metrics"
        )
    print(format_comparison(comparison))
    if args.json:
        Path(args.json).write_text(json.dumps(comparison.to_dict(), indent=1) + "\n", encoding="utf-8")
    failures = comparison.failures(allow_lost_items=args.allow_lost_items)
    for failure in failures:
        print(failure)
    if failures and args.fail_on_regression:
        return 1
    return 0
