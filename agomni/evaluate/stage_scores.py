"""What a per-item stage of `agomni eval` (audio-visual, text-audio) gives the run.

Such a stage scores each generated item on its own against something the manifest gives (a video, a
caption) and summarises each metric as a mean over the scored items (`agomni.metrics.av.item_mean`):
its result's details carry ``per_item`` (id -> value), ``errors`` ([{"id", "reason"}]) and
``items_scored``. `StageScores.add_result` files one such result; the pipeline merges the stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agomni.metrics.base import MetricResult
from agomni.results import SetMetric


@dataclass
class StageScores:
    """Set metrics, per-item scores (id -> metric -> value), the items each metric could not score
    (id -> metric -> reason: the run's coverage entry of the item lists them under ``unscored``) and
    per-metric details (configuration, checkpoints, errors) for the provenance."""

    metrics: list[SetMetric] = field(default_factory=list)
    item_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    unscored: dict[str, dict[str, str]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def add_result(self, name: str, result: MetricResult) -> None:
        """File metric `name`'s per-item-mean result: values per item, errors as unscored reasons, the
        remaining details, and the set value (n = the items scored)."""
        details = dict(result.details)
        for item_id, value in details.pop("per_item").items():
            self.item_scores.setdefault(item_id, {})[name] = value
        for error in details["errors"]:
            self.unscored.setdefault(error["id"], {})[name] = error["reason"]
        self.details[name] = {"unit": result.unit, "recipe": result.recipe, **details}
        self.metrics.append(
            SetMetric(
                name=name,
                value=result.value,
                unit=result.unit,
                higher_is_better=result.higher_is_better,
                profile=result.recipe,
                n=details["items_scored"],
            )
        )

    def merge(self, other: StageScores) -> None:
        """Add another stage's scores (metric names never overlap between stages)."""
        self.metrics += other.metrics
        for target, source in ((self.item_scores, other.item_scores), (self.unscored, other.unscored)):
            for item_id, values in source.items():
                target.setdefault(item_id, {}).update(values)
        self.details.update(other.details)
