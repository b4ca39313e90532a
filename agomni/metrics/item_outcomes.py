"""A per-item metric as item outcomes, put together by its accumulator.

Every per-item metric of `agomni eval` (audio-visual, text-audio, speech) is scored as:

- a `MetricConfig`: what is the same for every item (unit, direction, recipe, backend, checkpoints, the
  labels of its scorer);
- one `ItemOutcome` per item: its value, or the reason and side it has none, and its entries in the
  per-item details (flags, transcripts and error counts, lip-sync offsets ...).

A stage files both (`agomni.metrics.stage.StageScores.file`); `combine` is the metric's accumulator
(`agomni.metrics.item_mean.ItemMean` over the values; an error rate's corpus rate from the summed
counts): it files the same result from outcomes however they were computed, in one pass, in parts on
several ranks, or partly in an earlier run (read back from the stage cache, `agomni.evaluate.stage_cache`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agomni import suites
from agomni.metrics.base import MetricResult, MetricSpec
from agomni.metrics.item_mean import ItemMean

#: Per-item flags: ``[{"id", "flags"}]`` (every other per-item details key: id -> entry).
FLAGS = "flags"
NO_OUTCOME = "the scorer returned neither a value nor a reason for this item"


@dataclass(frozen=True)
class ItemOutcome:
    """One item of one metric: its ``value``, or the ``reason`` and ``side`` it has none; ``entries``: its
    entry in each per-item details key (`KEYED`, `FLAGS`)."""

    value: float | None
    reason: str = ""
    side: str = "generated"
    entries: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "reason": self.reason, "side": self.side, "entries": dict(self.entries)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ItemOutcome:
        value = data["value"]
        return cls(
            None if value is None else float(value),
            str(data["reason"]),
            str(data["side"]),
            dict(data["entries"]),
        )


@dataclass(frozen=True)
class MetricConfig:
    """What one per-item metric's result says of every item alike: unit, direction, recipe, the other
    set-level details (backend, checkpoints, scorer labels), the per-item details keys it carries, and
    whether it has a corpus rate (error rates: summed errors over summed reference lengths)."""

    unit: str
    higher_is_better: bool
    recipe: str
    details: Mapping[str, Any]
    keys: tuple[str, ...] = ()
    corpus: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "recipe": self.recipe,
            "details": dict(self.details),
            "keys": list(self.keys),
            "corpus": self.corpus,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricConfig:
        return cls(
            str(data["unit"]),
            bool(data["higher_is_better"]),
            str(data["recipe"]),
            dict(data["details"]),
            tuple(data["keys"]),
            bool(data["corpus"]),
        )


def metric_config(
    name: str,
    details: Mapping[str, Any],
    *,
    recipe: str | None = None,
    keys: tuple[str, ...] = (),
    corpus: bool = False,
) -> MetricConfig:
    """Metric `name`'s configuration: unit, direction and (unless given) recipe from its catalogue entry
    (evaluation/metrics.json)."""
    spec = suites.load_metric_specs()[name]
    return MetricConfig(
        spec.unit, spec.higher_is_better, spec.recipe if recipe is None else recipe, details, keys, corpus
    )


def combine(name: str, config: MetricConfig, outcomes: Mapping[str, ItemOutcome]) -> MetricResult:
    """Metric `name`'s result from its item outcomes: the mean over the scored ones (`ItemMean`, which
    raises `NoScorableItemsError` when there is none), the errors with their sides, each per-item details
    key, and for an error rate its corpus rate (x100, as its items' rates)."""
    spec = MetricSpec(unit=config.unit, higher_is_better=config.higher_is_better, description="")
    accumulator = ItemMean(name, spec, config.recipe, {})
    for item_id, outcome in outcomes.items():
        if outcome.value is None:
            accumulator.add_error(item_id, outcome.reason, outcome.side)
        else:
            accumulator.update([outcome.value], ids=[item_id])
    result = accumulator.compute()
    details = dict(result.details)
    for key in config.keys:
        if key == FLAGS:
            details[key] = [
                {"id": i, "flags": list(o.entries[key])}
                for i, o in sorted(outcomes.items())
                if key in o.entries
            ]
        else:
            details[key] = {i: o.entries[key] for i, o in outcomes.items() if key in o.entries}
    if config.corpus:
        counts = [o.entries["items"] for o in outcomes.values() if o.value is not None]
        errors = sum(c["substitutions"] + c["deletions"] + c["insertions"] for c in counts)
        length = sum(c["reference_length"] for c in counts)
        details["corpus"] = 100.0 * errors / length if length else None
    details.update(config.details)
    return MetricResult(name, result.value, config.unit, config.higher_is_better, config.recipe, details)
