"""Inception Score (IS) of generated audio from classifier outputs (PANNs / PaSST logits).

Recipe: av-benchmark ``av_bench/metrics/isc.py`` (``compute_isc``, called with ``splits=10,
samples_shuffle=True, rng_seed=2020``), itself taken from audioldm_eval ``metrics/isc.py``:

1. permute the N rows with ``np.random.RandomState(seed).permutation(N)`` (seed 2020);
2. in float64, p = softmax(logits), log p = log_softmax(logits);
3. split k of ``splits`` is rows ``k * N // splits`` to ``(k + 1) * N // splits`` (integer division);
4. per split: q = mean of p over its rows, score_k = exp(mean over rows of sum_c p_c (log p_c - log q_c));
5. report mean(score_k) and the population standard deviation ``np.std(score_k)`` (ddof 0).

Dimensionless ("IS"), higher is better. The result depends on the row order (through the shuffle):
the function keeps the order given; the accumulator orders items by id before shuffling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agomni.errors import MetricInputError, TooFewItemsError
from agomni.metrics import base
from agomni.metrics.base import ArrayLike, ClassScores, Metric, MetricResult, MetricSpec

IS_SPEC = MetricSpec(
    unit="IS", higher_is_better=True, description="dimensionless, exp of nats", head="logits", sides=("pred",)
)
IS_UNIT = IS_SPEC.unit_text
IS_RECIPE = "av-benchmark/audioldm_eval compute_isc: softmax, RandomState(2020) shuffle, 10 splits, mean/std"
IS_SEED = 2020
IS_SPLITS = 10


def inception_score(
    scores: ArrayLike,
    *,
    splits: int = IS_SPLITS,
    shuffle: bool = True,
    seed: int = IS_SEED,
    inputs: ClassScores = "logits",
) -> MetricResult:
    """Inception Score of class scores [N, C] (rows in the order given), av-benchmark recipe.

    Returns a ``MetricResult`` named "IS" whose value is the mean over splits; ``details`` holds
    ``std`` (population std over splits), ``split_scores``, ``splits``, ``shuffle``, ``seed``, ``n``.
    Raises ``TooFewItemsError`` when N < ``splits``: a split would be empty, and av-benchmark's
    ``compute_isc`` (torch means over an empty split) then returns NaN, so no number exists to reproduce.
    """
    if splits < 1:
        raise MetricInputError(f"IS: splits must be at least 1, got {splits}")
    x = base.as_float64_matrix(scores, "IS generated scores", min_rows=1)
    n = x.shape[0]
    if n < splits:
        raise TooFewItemsError(
            f"IS with {splits} splits needs at least {splits} generated items, got {n}: a split would be "
            "empty, and av-benchmark's compute_isc returns NaN for it (mean over an empty split)",
            side="generated",
            hint=f"score at least {splits} generated items",
        )
    if shuffle:
        x = x[np.random.RandomState(seed).permutation(n)]
    log_p = base.to_log_probabilities(x, inputs, "IS scores")
    p = np.exp(log_p)
    split_scores = []
    for k in range(splits):
        rows = slice(k * n // splits, (k + 1) * n // splits)
        p_k, log_p_k = p[rows], log_p[rows]
        with np.errstate(divide="ignore"):
            log_q = np.log(p_k.mean(axis=0, keepdims=True))
        split_scores.append(float(np.exp(base.kl_terms(p_k, log_p_k, log_q).sum(axis=1).mean())))
    return MetricResult(
        name="IS",
        value=float(np.mean(split_scores)),
        unit=IS_UNIT,
        higher_is_better=True,
        recipe=IS_RECIPE,
        details={
            "std": float(np.std(split_scores)),
            "split_scores": split_scores,
            "splits": splits,
            "shuffle": shuffle,
            "seed": seed,
            "n": n,
        },
    )


class InceptionScore(Metric):
    """Accumulator for IS: ``update(scores [N, C], ids=N ids)`` keeps one row per generated item id
    (reference rows are ignored: IS scores the generated set only); ``compute()`` sorts the items by id
    (so the result does not depend on batch or rank order) and applies ``inception_score``. av-benchmark
    instead uses its feature files' insertion order, so its shuffle (and hence its IS, slightly) can
    differ for the same set. Items are gathered across ranks."""

    spec = IS_SPEC
    name = "IS"
    recipe = IS_RECIPE

    def __init__(
        self,
        *,
        splits: int = IS_SPLITS,
        shuffle: bool = True,
        seed: int = IS_SEED,
        inputs: ClassScores = "logits",
    ):
        self.splits = splits
        self.shuffle = shuffle
        self.seed = seed
        self.inputs = inputs
        self.add_state("items", "items")
        self.reset()

    def update(self, values: ArrayLike, *, reference: bool = False, ids: Sequence[str] | None = None) -> None:
        if reference:
            return
        if ids is None:
            raise MetricInputError("IS: items are ordered by id; pass ids= with the scores")
        base.add_items_by_id(self.items, list(ids), values, "IS scores")

    def compute(self) -> MetricResult:
        if not self.items:
            raise MetricInputError("IS: no items were added")
        ids = sorted(self.items)
        rows = [self.items[i] for i in ids]
        widths = {row.shape[0] for row in rows}
        if len(widths) != 1:
            raise MetricInputError(f"IS: items have different class counts {sorted(widths)}")
        return inception_score(
            np.stack(rows), splits=self.splits, shuffle=self.shuffle, seed=self.seed, inputs=self.inputs
        )
