"""A per-item metric taken apart into item outcomes, and put back together by its accumulator.

Every per-item metric of `agomni eval` (audio-visual, text-audio, speech) files its result through
`agomni.metrics.stage.StageScores.add_result`: the mean over the items it scored, the others listed with
their reason. Such a result is, once taken apart (`split`):

- a `MetricConfig`: what is the same for every item (unit, direction, recipe, backend, checkpoints, the
  labels of its scorer);
- one `ItemOutcome` per item: its value, or the reason and side it has none, and its entries in the
  per-item details (flags, transcripts and error counts, lip-sync offsets ...).

`combine` is the metric's accumulator (`agomni.metrics.item_mean.ItemMean` over the values; an error
rate's corpus rate from the summed counts): it files the same result from outcomes however they were
computed, in one pass, in parts on several ranks, or partly in an earlier run (read back from the
stage cache, `agomni.evaluate.stage_cache`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agomni.metrics.base import MetricResult, MetricSpec
from agomni.metrics.item_mean import ItemMean
from agomni.metrics.stage import StageScores

#: Per-item details keyed by item id (speech extras; audio-visual item details).
KEYED = ("items", "item_details")
#: Per-item flags: ``[{"id", "flags"}]``.
FLAGS = "flags"
#: Set-level details `combine` recomputes from the outcomes.
COMBINED = ("items_scored", "items_failed", "errors", "corpus", "per_item")
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


def split(scores: StageScores, name: str, ids: Sequence[str]) -> tuple[MetricConfig, dict[str, ItemOutcome]]:
    """Metric `name`, filed in `scores`, as its configuration and the outcome of each of ``ids`` (an id
    the result neither scored nor gave a reason for is an outcome with that said: `NO_OUTCOME`)."""
    metric = next(m for m in scores.metrics if m.name == name)
    details = dict(scores.details[name])
    keys = tuple(k for k in (*KEYED, FLAGS) if k in details)
    flags = {str(f["id"]): list(f["flags"]) for f in details.get(FLAGS, ())}
    errors = {str(e["id"]): e for e in details.get("errors", ())}
    config = MetricConfig(
        unit=metric.unit,
        higher_is_better=metric.higher_is_better,
        recipe=metric.profile,
        details={k: v for k, v in details.items() if k not in (*COMBINED, *keys, "unit", "recipe")},
        keys=keys,
        corpus="corpus" in details,
    )
    outcomes = {}
    for item_id in ids:
        entries = {k: details[k][item_id] for k in KEYED if k in keys and item_id in details[k]}
        if item_id in flags:
            entries[FLAGS] = flags[item_id]
        value = scores.item_scores.get(item_id, {}).get(name)
        if value is not None:
            outcomes[item_id] = ItemOutcome(float(value), entries=entries)
        elif item_id in errors:
            error = errors[item_id]
            outcomes[item_id] = ItemOutcome(
                None, str(error["reason"]), str(error.get("side", "generated")), entries
            )
        else:
            outcomes[item_id] = ItemOutcome(None, NO_OUTCOME, "generated", entries)
    return config, outcomes


def failed(per_item: Mapping[str, tuple[str, str]], ids: Sequence[str]) -> dict[str, ItemOutcome]:
    """The outcomes of ``ids`` for a metric none of whose items could be scored (`StageScores.failed`)."""
    return {i: ItemOutcome(None, *per_item.get(i, (NO_OUTCOME, "generated"))) for i in ids}


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
