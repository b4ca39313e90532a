"""Scoring: one accumulator per metric, fed item by item, and its `SetMetric` with details.

Memory: FD keeps streamed sufficient statistics (`FrechetDistance`: count, sum, sum of outer products,
O(D^2) whatever the number of clips). KAD needs every embedding (its unbiased estimator sums over all
pairs and its bandwidth is a median over all reference pairs), so its rows are kept in float64 and
bounded by ``KAD_MAX_ROWS`` per set. KL keeps one class vector per item and set (O(N C)), IS one per
generated item. FAD-inf keeps every generated row (fadtk's subsampling draws from all of them) and the
reference set's streamed statistics; its subsampling is seeded with the run's ``--seed`` (recorded in
the metric's details). Under a profile with ``embedding_dtype`` "float16" (fadtk) every embedding is
rounded to float16 before it enters a metric, as fadtk stores them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agomni.errors import MetricInputError
from agomni.evaluate.profiles import Profile
from agomni.evaluate.registry import MetricEntry
from agomni.metrics import (
    FrechetDistance,
    FrechetDistanceInf,
    InceptionScore,
    KernelAudioDistance,
    kl_divergence,
)
from agomni.metrics.kl import KL_RECIPES, KL_UNIT
from agomni.results import SetMetric, Spread

#: How the two KL directions are written in results and printed tables.
KL_LABELS: dict[str, str] = {"ref_gen": "KL(ref||gen)", "gen_ref": "KL(gen||ref)"}
#: KAD keeps every embedding row: at most this many rows per set (its bandwidth median alone then needs
#: about KAD_MAX_ROWS^2 / 2 float64 distances, 1.6 GB at 20,000).
KAD_MAX_ROWS = 20_000


class MetricState:
    """The accumulator of one metric and the item/row counts it saw."""

    def __init__(self, entry: MetricEntry, profile: Profile, group_label: str, pooling: str, seed: int = 0):
        """``pooling``: "clip" (one row per clip), "frames" (every frame a row) or "clip-mean";
        ``seed``: FAD-inf's subsampling seed."""
        self.entry = entry
        self.seed = seed
        self.profile = profile
        self.group_label = group_label
        self.pooling = pooling
        self.rows = {"pred": 0, "ref": 0}
        self.items = {"pred": 0, "ref": 0}
        if entry.kind == "fd":
            self.accumulator: Any = FrechetDistance(name=entry.name)
        elif entry.kind == "kad":
            self.accumulator = KernelAudioDistance()
        elif entry.kind == "is":
            self.accumulator = InceptionScore(
                splits=profile.is_splits, seed=profile.is_seed, shuffle=profile.is_shuffle
            )
        elif entry.kind == "fad_inf":
            self.accumulator = None  # built on the first rows: it needs their dimension
        self.scores: dict[str, dict[str, np.ndarray]] = {"pred": {}, "ref": {}}

    def add(self, item_id: str, side: str, output: np.ndarray) -> None:
        """Feed one item's embedder output ([D], [frames, D] or class scores [C])."""
        kind = self.entry.kind
        if kind in ("kl", "is"):
            if output.ndim != 1:
                raise MetricInputError(
                    f"{self.entry.name}: item {item_id!r}: expected class scores [C], got shape {output.shape}"
                )
            if kind == "kl":
                self.scores[side][item_id] = output
                self.items[side] += 1
            elif side == "pred":  # IS scores the generated set only
                self.accumulator.update([item_id], output[None, :])
                self.items[side] += 1
            return
        rows = output[None, :] if output.ndim == 1 else output
        if output.ndim == 2 and self.pooling == "clip-mean":
            rows = output.mean(axis=0, keepdims=True)
        if self.profile.embedding_dtype == "float16":
            rows = rows.astype(np.float16)
        if kind == "fad_inf" and self.accumulator is None:
            self.accumulator = FrechetDistanceInf(rows.shape[1], seed=self.seed)
        if kind == "kad" and self.rows[side] + rows.shape[0] > KAD_MAX_ROWS:
            raise MetricInputError(
                f"{self.entry.name}: KAD keeps every embedding and is bounded to {KAD_MAX_ROWS} rows per "
                f"set; the {side} set exceeds it at item {item_id!r} (use clip-level embeddings or fewer items)"
            )
        self.accumulator.update(rows, reference=side == "ref")
        self.rows[side] += rows.shape[0]
        self.items[side] += 1


def score(metric: MetricState, item_scores: dict[str, dict[str, float]]) -> tuple[SetMetric, dict[str, Any]]:
    """The metric's `SetMetric` (value, unit, direction, profile, n, spread) and its details for
    provenance; paired KL also writes each item's value into ``item_scores``."""
    entry, profile = metric.entry, metric.profile
    spread = None
    if entry.kind == "kl":
        paired = kl_divergence(metric.scores["ref"], metric.scores["pred"], inputs="logits")
        direction = profile.kl_direction
        value = paired.kl_ref_gen if direction == "ref_gen" else paired.kl_gen_ref
        for item_id, (ref_gen, gen_ref) in paired.per_item.items():
            item_scores.setdefault(item_id, {})[entry.name] = ref_gen if direction == "ref_gen" else gen_ref
        details = {
            "direction": direction,
            "direction_label": KL_LABELS[direction],
            "kl_ref_gen": paired.kl_ref_gen,
            "kl_gen_ref": paired.kl_gen_ref,
            "recipe": KL_RECIPES[direction],
            "unit": KL_UNIT,
        }
        n = paired.n_pairs
    else:
        if metric.accumulator is None:
            raise MetricInputError(f"{entry.name}: no embeddings were accumulated")
        result = metric.accumulator.compute()
        value = result.value
        details = {"recipe": result.recipe, "unit": result.unit, **result.details}
        if entry.kind == "is":
            spread = Spread("std", float(result.details["std"]))
            n = int(result.details["n"])
        else:
            n = metric.items["pred"]
            details.update(
                n_generated_items=metric.items["pred"],
                n_reference_items=metric.items["ref"],
                n_generated_rows=metric.rows["pred"],
                n_reference_rows=metric.rows["ref"],
                pooling=metric.pooling,
            )
    set_metric = SetMetric(
        name=entry.name,
        value=float(value),
        unit=entry.unit,
        higher_is_better=entry.higher_is_better,
        profile=profile.name,
        n=n,
        spread=spread,
    )
    return set_metric, {"kind": entry.kind, "embedder": metric.group_label, **details}
