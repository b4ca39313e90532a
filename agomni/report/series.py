"""Checkpoint series: the runs of one training (each with its checkpoint step in run.json) as a trend.

`build_series` gives, per metric, one point per run at its step with a 95 % interval, and the best run
per metric (by the metric's direction). Intervals: a per-item metric (item scores, e.g. KL, the
flow-matching validation loss): seeded percentile bootstrap of the mean over items; FD and KAD of an
`agomni run` folder: seeded percentile bootstrap over items of the set metric recomputed from the run's
embedding cache (first replicate, `SET_RESAMPLES` resamples); otherwise the run's own confidence interval
or ± std over replicates when it has one, else none (the point is drawn without a bar and says so).

`agomni compare --baseline best` (`agomni.report.compare.compare_with_best`) gates a checkpoint against
the best earlier one per metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from agomni.errors import AgomniError

from .bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, resample_indices
from .embeddings import RESAMPLABLE, metric_kind, scored_rows, set_metric_function
from .paper_tables import step_of

SET_RESAMPLES = 200
LEVEL = 0.95


@dataclass(frozen=True)
class Point:
    system: str
    step: int
    value: float
    low: float | None
    high: float | None
    interval: str  # what the interval is ("" when there is none)


@dataclass(frozen=True)
class MetricSeries:
    metric: str
    unit: str
    higher_is_better: bool
    points: tuple[Point, ...]
    best: str  # the system with the best value

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


@dataclass(frozen=True)
class Series:
    metrics: tuple[MetricSeries, ...]


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    alpha = (1.0 - LEVEL) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def _mean_interval(scores: np.ndarray) -> tuple[float, float]:
    idx = resample_indices(len(scores), DEFAULT_RESAMPLES, DEFAULT_SEED)
    return _percentiles(scores[idx].mean(axis=1))


def _set_interval(system: Any, name: str, kind: str) -> tuple[float, float]:
    rows = scored_rows(system.folder, name)
    ids = sorted(rows["pred"])
    metric = set_metric_function(kind)
    idx = resample_indices(len(ids), SET_RESAMPLES, DEFAULT_SEED)
    with threadpool_limits(limits=1, user_api="blas"):  # as bootstrap.set_metric_interval: small matrices
        values = [
            metric([rows["pred"][ids[i]] for i in draw], [rows["ref"][ids[i]] for i in draw]) for draw in idx
        ]
    return _percentiles(np.asarray(values))


def _point(system: Any, step: int, name: str) -> Point:
    metric = next(m for m in system.results.metrics if m.name == name)
    scores = np.array([s[name] for s in system.results.item_scores.values() if name in s])
    if len(scores) >= 2:
        low, high = _mean_interval(scores)
        kind = f"95 % bootstrap of the mean over {len(scores)} items"
        return Point(system.label, step, metric.value, low, high, kind)
    kind = metric_kind(system.results, name)
    if kind in RESAMPLABLE and "manifest" in system.context:
        try:
            low, high = _set_interval(system, name, kind)
            text = f"95 % bootstrap over items ({SET_RESAMPLES} resamples, first replicate)"
            return Point(system.label, step, metric.value, low, high, text)
        except (AgomniError, OSError, KeyError):
            pass
    if metric.ci is not None:
        return Point(system.label, step, metric.value, metric.ci.low, metric.ci.high, metric.ci.method)
    if metric.spread is not None:
        sd = metric.spread.value
        return Point(
            system.label, step, metric.value, metric.value - sd, metric.value + sd, metric.spread.kind
        )
    return Point(system.label, step, metric.value, None, None, "")


def build_series(systems: Sequence[Any]) -> Series | None:
    """The trend of every metric the runs share, against step (module docstring); None unless there are
    at least two runs and each records its checkpoint step."""
    steps = [step_of(s) for s in systems]
    if len(systems) < 2 or any(step is None for step in steps):
        return None
    names = [m.name for m in systems[0].results.metrics]
    shared = [n for n in names if all(any(m.name == n for m in s.results.metrics) for s in systems)]
    order = sorted(range(len(systems)), key=lambda i: steps[i])
    out = []
    for name in shared:
        points = tuple(_point(systems[i], steps[i], name) for i in order)
        first = next(m for m in systems[0].results.metrics if m.name == name)
        pick = max if first.higher_is_better else min
        best = pick(points, key=lambda p: p.value).system
        out.append(MetricSeries(name, first.unit, first.higher_is_better, points, best))
    return Series(tuple(out))
