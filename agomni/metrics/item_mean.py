"""`ItemMean`: the accumulator of every per-item metric (audio-visual, text-audio, speech).

Each of these metrics scores every item on its own and reports the mean over items (syncnet_python /
Wav2Lip: mean over videos; av-benchmark: mean over items; seed-tts-eval: mean of the per-utterance
rates). Items that could not be scored are not
dropped: `add_error` keeps them with their reason, and they come out in ``details["errors"]`` and the
counts. The values are an ``"items"`` state (merged by id across batches and ranks; an id seen twice is an
error); the errors travel with them in ``state()`` / ``merge_state``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agomni.errors import MetricInputError
from agomni.metrics.base import ArrayLike, Metric, MetricResult, MetricSpec, add_items_by_id
from agomni.metrics.stage import no_scorable_items


class ItemMean(Metric):
    """Mean of per-item values: ``update(values [N], ids=[...])`` for scored items, ``add_error(id, reason)``
    for the others. `spec` (unit, direction), `name` and `recipe` come from the caller (the catalogue entry
    of the metric); `config` (what determined the numbers, e.g. the detector, random weights) is copied
    into the result."""

    def __init__(self, name: str, spec: MetricSpec, recipe: str, config: Mapping[str, Any]):
        self.name, self.spec, self.recipe = name, spec, recipe
        self.config = dict(config)
        self.add_state("values", "items")
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.errors: dict[str, str] = {}
        self.sides: dict[str, str] = {}

    def update(self, values: ArrayLike, *, reference: bool = False, ids: Sequence[str] | None = None) -> None:
        if reference:
            raise MetricInputError(f"{self.name}: scores generated items only (no reference set)")
        rows = np.asarray(values, dtype=np.float64).reshape(-1, 1)
        if ids is None or len(ids) != len(rows):
            raise MetricInputError(f"{self.name}: give one item id per value")
        for item_id in ids:
            if item_id in self.errors:
                raise MetricInputError(f"{self.name}: item {item_id!r} was already added")
        add_items_by_id(self.values, list(ids), rows, self.name)

    def add_error(self, item_id: str, reason: str, side: str = "generated") -> None:
        """An item that could not be scored, with the reason and the `side` at fault ("generated",
        "video", "text", ...): it is reported, not averaged."""
        if item_id in self.values or item_id in self.errors:
            raise MetricInputError(f"{self.name}: item {item_id!r} was already added")
        self.errors[item_id] = str(reason)
        self.sides[item_id] = side

    def state(self) -> dict[str, Any]:
        return {**super().state(), "errors": dict(self.errors), "sides": dict(self.sides)}

    def merge_state(self, state: Mapping[str, Any]) -> None:
        super().merge_state(state)
        for item_id, reason in state["errors"].items():
            self.add_error(item_id, reason, state["sides"][item_id])

    def compute(self) -> MetricResult:
        if not self.values:
            raise no_scorable_items(self.name, self.errors, self.sides)
        per_item = {k: float(v[0]) for k, v in sorted(self.values.items())}
        mean = math.fsum(per_item.values()) / len(per_item)
        return self.result_for(
            mean,
            items_scored=len(per_item),
            items_failed=len(self.errors),
            errors=[{"id": k, "reason": v, "side": self.sides[k]} for k, v in sorted(self.errors.items())],
            per_item=per_item,
            aggregation="mean over scored items",
            **self.config,
        )
