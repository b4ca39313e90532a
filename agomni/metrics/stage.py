"""What a per-item stage of `agomni eval` (audio-visual, text-audio, speech) is asked and gives the run.

Such a stage scores each generated item on its own against something the manifest gives (a video, a
caption, a transcript or prompt) and summarises each metric as a mean over the scored items
(`agomni.metrics.av.item_mean`): its result's details carry ``per_item`` (id -> value), ``errors``
([{"id", "reason"}]) and ``items_scored``. A stage is a function `StageRequest` -> `StageScores`;
`StageScores.add_result` files one result; `agomni.evaluate.item_stages` runs the stages and merges them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agomni.errors import UsageError
from agomni.manifest import Item, load_manifest
from agomni.metrics.base import MetricResult
from agomni.results import SetMetric


@dataclass(frozen=True)
class StageRequest:
    """One stage's metric ``names``, the generated files to score (``pred``: id -> path, the items the
    run covers "ok"), the ``manifest`` that gives what they are judged against, and the run's options:
    ``batch_size`` (windows / segments / clips per network call of the audio-visual scorers; None: each
    scorer's default), ``backends`` (the speech stage's recogniser / speaker encoder) and ``protocol`` (the
    suite's protocol, which the speech stage's normalisers follow)."""

    names: tuple[str, ...]
    pred: dict[str, Path]
    manifest: Path | None
    random_weights: bool
    device: str
    seed: int
    progress: bool
    batch_size: int | None = None
    backends: tuple[str, ...] = ()
    protocol: str | None = None

    def manifest_items(self, needs: str, fields: str = "") -> dict[str, Item]:
        """The manifest's items by id; without a manifest a `UsageError` saying what the stage's metrics
        ``needs`` from each item and in which ``fields``."""
        if self.manifest is None:
            where = f" ({fields})" if fields else ""
            raise UsageError(f"{', '.join(self.names)} {needs}: pass --manifest{where}")
        return {item.id: item for item in load_manifest(self.manifest).items}


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
