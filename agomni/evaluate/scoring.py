"""Scoring: one accumulator per metric, fed item by item through the one ``update`` signature, and its
`SetMetric` with details.

Memory: FD keeps streamed sufficient statistics (O(D^2) whatever the number of clips). KAD needs every
embedding (its unbiased estimator sums over all pairs, its bandwidth is a median over all reference
pairs), so its rows are bounded per set (`agomni.metrics.kad.MAX_ROWS`). KL keeps one class vector per item and
set, IS one per generated item. FAD-inf keeps every generated row (fadtk's subsampling draws from all of
them), seeded with the run's ``--seed``. Under a profile with ``embedding_dtype`` "float16" (fadtk)
every embedding is rounded to float16 before it enters a metric, as fadtk stores them.

Which items a metric uses: every item with both files; an item with one file (``--allow-missing``)
only when the profile's policy for that metric is "all" (`agomni.evaluate.profiles.Profile.uses_for`).
Each metric records the ids it used and left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from agomni.errors import MetricInputError
from agomni.evaluate.profiles import Profile
from agomni.evaluate.registry import KINDS, MetricEntry
from agomni.metrics import Metric
from agomni.metrics.stage import no_scorable_items
from agomni.results import SetMetric, Spread

#: How the two KL directions are written in results and printed tables.
KL_LABELS: dict[str, str] = {"ref_gen": "KL(ref||gen)", "gen_ref": "KL(gen||ref)"}


def build_accumulator(entry: MetricEntry, profile: Profile, seed: int) -> Metric:
    """The accumulator of ``entry`` with the profile's settings (KL direction, IS splits, FAD-inf seed)."""
    options: dict[str, dict[str, Any]] = {
        "fd": {"name": entry.name},
        "kad": {},
        "kl": {"direction": profile.kl_direction, "name": entry.name},
        "is": {"splits": profile.is_splits, "seed": profile.is_seed, "shuffle": profile.is_shuffle},
        "fad_inf": {"seed": seed},
    }
    return KINDS[entry.kind](**options[entry.kind])


class MetricState:
    """One metric: its accumulator, the network label and head it reads, how frame-level rows are pooled,
    which items it uses when unpaired, and the item/row counts and ids it saw."""

    def __init__(self, entry: MetricEntry, profile: Profile, network: str, pooling: str, seed: int = 0):
        """``pooling``: "clip" (one row per clip), "frames" (every frame a row) or "clip-mean"."""
        self.entry = entry
        self.profile = profile
        self.network = network
        self.pooling = pooling
        self.uses = profile.uses_for(entry.name, entry.kind)
        self.accumulator = build_accumulator(entry, profile, seed)
        self.rows = {"pred": 0, "ref": 0}
        self.used: dict[str, list[str]] = {"pred": [], "ref": []}
        self.left_out: list[str] = []

    def wants(self, paired: bool) -> bool:
        """Whether an item is used: paired, or unpaired under an "all" policy."""
        return paired or self.uses == "all"

    def add(self, item_id: str, side: str, output: np.ndarray) -> None:
        """Feed one item's output of the metric's head ([D], [frames, D] or class scores [C])."""
        if self.entry.head == "logits" and output.ndim != 1:
            raise MetricInputError(
                f"{self.entry.name}: item {item_id!r}: expected class scores [C], got shape {output.shape}"
            )
        rows = output[None, :] if output.ndim == 1 else output
        if output.ndim == 2 and self.pooling == "clip-mean":
            rows = output.mean(axis=0, keepdims=True)
        if self.entry.head == "embed" and self.profile.embedding_dtype == "float16":
            rows = rows.astype(np.float16)
        if side not in self.accumulator.spec.sides:
            return
        self.accumulator.update(rows, reference=side == "ref", ids=[item_id])
        self.rows[side] += rows.shape[0]
        self.used[side].append(item_id)


def score(
    metric: MetricState,
    item_scores: dict[str, dict[str, float]],
    unused: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[SetMetric, dict[str, Any]]:
    """The metric's `SetMetric` (value, unit, direction, profile, n, spread) and its details for
    provenance; paired KL also writes each item's value into ``item_scores``. A side with no item raises
    `NoScorableItemsError` with why each item was not used (``unused``: id -> (side, problem))."""
    entry = metric.entry
    unused = unused or {}
    for side, label in (("pred", "generated"), ("ref", "reference")):
        if side in metric.accumulator.spec.sides and not metric.used[side]:
            failed = {i: why for i, (s, why) in unused.items() if side == "pred" or s == label}
            raise no_scorable_items(entry.name, failed, {i: s for i, (s, _) in unused.items()}, label)
    result = metric.accumulator.compute()
    details = {"kind": entry.kind, "embedder": metric.network, "recipe": result.recipe, "unit": result.unit}
    details.update({key: value for key, value in result.details.items() if key != "per_item"})
    details.update(
        pooling=metric.pooling,
        uses_when_unpaired=metric.uses,
        n_generated_items=len(metric.used["pred"]),
        n_reference_items=len(metric.used["ref"]),
        n_generated_rows=metric.rows["pred"],
        n_reference_rows=metric.rows["ref"],
        unpaired_items_used=sorted(set(metric.used["pred"]) ^ set(metric.used["ref"]))
        if "ref" in metric.accumulator.spec.sides
        else [],
        unpaired_items_left_out=sorted(metric.left_out),
    )
    if "direction" in details:
        details["direction_label"] = KL_LABELS[details["direction"]]
    for item_id, value in result.details.get("per_item", {}).items():
        item_scores.setdefault(item_id, {})[entry.name] = value
    n = int(result.details.get("n_pairs", len(metric.used["pred"])))
    spread = Spread("std", float(result.details["std"])) if "std" in result.details else None
    set_metric = SetMetric(
        name=entry.name,
        value=float(result.value),
        unit=entry.unit,
        higher_is_better=entry.higher_is_better,
        profile=metric.profile.name,
        n=n,
        spread=spread,
    )
    return set_metric, details
