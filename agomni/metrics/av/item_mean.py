"""`ItemMean`: the accumulator of the per-item audio-visual scores (LSE-C, LSE-D, DeSync, IB-score).

Each of these metrics scores every item on its own and reports the mean over items (syncnet_python /
Wav2Lip: mean over videos; av-benchmark: mean over items). Items that could not be scored are not
dropped: they stay in the state with their reason and come out in ``details["errors"]`` and the coverage
counts. State is item-level (``reduction = "gather"``), merged by item id (an id seen twice is an error).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar, Literal

from agomni.errors import MetricInputError
from agomni.metrics.base import Metric, MetricResult


class ItemMean(Metric):
    """Mean of per-item values; `update(item_id, value=None, error=None)` takes exactly one of the two.

    `labels` (name, unit, higher_is_better, recipe) and `config` (what determined the numbers, e.g. the
    detector and whether the weights are random) are copied into the result.
    """

    reduction: ClassVar[Literal["gather"]] = "gather"

    def __init__(self, name: str, unit: str, higher_is_better: bool, recipe: str, config: dict[str, Any]):
        self.name, self.unit, self.higher_is_better, self.recipe = name, unit, higher_is_better, recipe
        self.config = dict(config)
        self.reset()

    def reset(self) -> None:
        self.values: dict[str, float] = {}
        self.errors: dict[str, str] = {}

    def update(self, item_id: str, value: float | None = None, error: str | None = None) -> None:
        if (value is None) == (error is None):
            raise MetricInputError(f"{self.name}, item {item_id!r}: give exactly one of a value or an error")
        if item_id in self.values or item_id in self.errors:
            raise MetricInputError(f"{self.name}: item {item_id!r} was already added")
        if value is not None and not math.isfinite(value):
            raise MetricInputError(f"{self.name}, item {item_id!r}: value {value} is not finite")
        if value is not None:
            self.values[item_id] = float(value)
        else:
            self.errors[item_id] = str(error)

    def update_many(self, items: Iterable[tuple[str, float | None, str | None]]) -> None:
        for item_id, value, error in items:
            self.update(item_id, value, error)

    def state(self) -> dict[str, Any]:
        return {"values": dict(self.values), "errors": dict(self.errors)}

    def merge_state(self, state: dict[str, Any]) -> None:
        for item_id, value in state["values"].items():
            self.update(item_id, value=value)
        for item_id, error in state["errors"].items():
            self.update(item_id, error=error)

    def compute(self) -> MetricResult:
        if not self.values:
            reasons = "; ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())[:5])
            raise MetricInputError(
                f"{self.name}: no item could be scored ({len(self.errors)} errors{': ' + reasons if reasons else ''})"
            )
        mean = sum(self.values.values()) / len(self.values)
        return self.result_for(
            mean,
            items_scored=len(self.values),
            items_failed=len(self.errors),
            errors=[{"id": k, "reason": v} for k, v in sorted(self.errors.items())],
            per_item={k: self.values[k] for k in sorted(self.values)},
            aggregation="mean over scored items",
            **self.config,
        )
