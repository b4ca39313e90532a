"""KL divergence between the class distributions of reference and generated audio, paired by item id.

Both directions are computed and labelled, because the toolkits disagree:

- ``kl_ref_gen`` = KL(ref || gen), av-benchmark ``av_bench/metrics/kl.py`` (``compute_kl``, key
  ``kl_softmax``; used for KL_PANNs and KL_PaSST in MMAudio's tables): ``F.kl_div(log_softmax(gen),
  log_softmax(ref), reduction="sum", log_target=True) / N`` = mean over pairs of
  sum_c p_ref,c (log p_ref,c - log p_gen,c). No epsilon (its ``EPS`` is defined but unused there).
- ``kl_gen_ref`` = KL(gen || ref), stable-audio-metrics ``src/passt_kld.py`` (``passt_kld``):
  ``F.kl_div((p_ref + 1e-6).log(), p_gen, reduction="sum")`` per item, averaged over items =
  mean over pairs of sum_c p_gen,c (log p_gen,c - log(p_ref,c + 1e-6)), with 0 log 0 = 0.

Inputs are classifier logits (softmax over classes, as both toolkits) or probabilities. All arithmetic
is float64 (the toolkits use the model's float32). Unit: nats. Lower is better.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from agomni.errors import MetricInputError, PairingError
from agomni.metrics.base import (
    ArrayLike,
    ClassScores,
    Metric,
    MetricResult,
    MetricSpec,
    add_items_by_id,
    as_float64,
    as_float64_matrix,
    kl_terms,
    to_log_probabilities,
)

KL_SPEC = MetricSpec(unit="nats", higher_is_better=False, description="", head="logits")
SAM_REF_EPS = 1e-6
KL_RECIPES = {
    "ref_gen": "av-benchmark compute_kl kl_softmax: KL(ref||gen), softmax over logits, sum / N pairs",
    "gen_ref": "stable-audio-metrics passt_kld: KL(gen||ref), softmax, log(p_ref + 1e-6), mean over items",
}
Direction = Literal["ref_gen", "gen_ref"]
MAX_LISTED_IDS = 20


@dataclass(frozen=True)
class PairedKL:
    """KL in both directions, in nats, averaged over ``n_pairs`` items; ``per_item`` maps each id to its
    (KL(ref||gen), KL(gen||ref))."""

    kl_ref_gen: float
    kl_gen_ref: float
    n_pairs: int
    per_item: dict[str, tuple[float, float]] = field(default_factory=dict)


def _listed(ids: list[str]) -> str:
    shown = ", ".join(repr(item) for item in ids[:MAX_LISTED_IDS])
    more = len(ids) - MAX_LISTED_IDS
    return shown + (f" and {more} more" if more > 0 else "")


def paired_ids(reference_ids: list[str], generated_ids: list[str], what: str) -> list[str]:
    """The ids present in both lists, sorted. Any id present in only one raises ``PairingError`` naming
    (up to 20 of) the unpaired ids on each side."""
    ref, gen = set(reference_ids), set(generated_ids)
    only_ref, only_gen = sorted(ref - gen), sorted(gen - ref)
    if only_ref or only_gen:
        problems = []
        if only_ref:
            problems.append(f"{len(only_ref)} reference id(s) without a generated item: {_listed(only_ref)}")
        if only_gen:
            problems.append(f"{len(only_gen)} generated id(s) without a reference item: {_listed(only_gen)}")
        raise PairingError(f"{what}: " + "; ".join(problems))
    if not ref:
        raise MetricInputError(f"{what}: no items to pair")
    return sorted(ref)


def kl_divergence(
    reference: Mapping[str, ArrayLike],
    generated: Mapping[str, ArrayLike],
    *,
    inputs: ClassScores = "logits",
) -> PairedKL:
    """Paired KL divergence between class distributions, both directions (see the module docstring).

    Args:
        reference: item id -> class scores [C] of the reference (ground-truth) audio.
        generated: item id -> class scores [C] of the generated audio for the same item.
        inputs: ``"logits"`` (softmax applied) or ``"probabilities"`` (rows summing to 1).

    Raises:
        PairingError: an id present on one side only (all such ids are named).
        MetricInputError: mismatched class counts, non-finite values, or an infinite KL(ref||gen) for
            probability inputs where the generated probability is 0 and the reference one is not.
    """
    ids = paired_ids(list(reference), list(generated), "KL")
    ref_scores = _stack_by_id(reference, ids, "KL reference")
    gen_scores = _stack_by_id(generated, ids, "KL generated")
    if ref_scores.shape[1] != gen_scores.shape[1]:
        raise MetricInputError(
            f"KL: class counts differ (reference {ref_scores.shape[1]}, generated {gen_scores.shape[1]})"
        )
    log_ref = to_log_probabilities(ref_scores, inputs, "KL reference")
    log_gen = to_log_probabilities(gen_scores, inputs, "KL generated")
    p_ref, p_gen = np.exp(log_ref), np.exp(log_gen)
    ref_gen = kl_terms(p_ref, log_ref, log_gen).sum(axis=1)
    gen_ref = kl_terms(p_gen, log_gen, np.log(p_ref + SAM_REF_EPS)).sum(axis=1)
    infinite = np.flatnonzero(~np.isfinite(ref_gen))
    if infinite.size:
        raise MetricInputError(
            f"KL: KL(ref||gen) is infinite for item {ids[int(infinite[0])]!r} (a class with reference "
            "probability > 0 has generated probability 0)"
        )
    per_item = {item: (float(a), float(b)) for item, a, b in zip(ids, ref_gen, gen_ref, strict=True)}
    return PairedKL(
        kl_ref_gen=float(ref_gen.sum() / len(ids)),
        kl_gen_ref=float(gen_ref.sum() / len(ids)),
        n_pairs=len(ids),
        per_item=per_item,
    )


def _stack_by_id(scores: Mapping[str, ArrayLike], ids: list[str], what: str) -> np.ndarray:
    """Rows ``scores[id]`` for ``ids`` as a validated float64 [N, C] matrix; names a malformed item."""
    rows = []
    for item in ids:
        row = as_float64(scores[item])
        if row.ndim != 1 or (rows and row.shape != rows[0].shape):
            expected = f"[{rows[0].shape[0]}]" if rows else "[C]"
            raise MetricInputError(f"{what}: item {item!r} has shape {row.shape}, expected {expected}")
        if not np.isfinite(row).all():
            raise MetricInputError(f"{what}: item {item!r} holds NaN or infinite values")
        rows.append(row)
    return as_float64_matrix(np.stack(rows), what)


class KLDivergence(Metric):
    """Accumulator for the paired KL. ``update(scores [N, C], ids=N ids, reference=True|False)``;
    ``compute()`` pairs by id and reports the ``direction`` chosen (default ``"ref_gen"``, av-benchmark),
    with both directions in ``details`` (``kl_ref_gen``, ``kl_gen_ref``) and each item's value in
    ``details["per_item"]``. Items are gathered across ranks (``"items"`` states)."""

    spec = KL_SPEC

    def __init__(self, *, direction: Direction = "ref_gen", inputs: ClassScores = "logits", name: str = "KL"):
        if direction not in KL_RECIPES:
            raise MetricInputError(f"KL: direction must be 'ref_gen' or 'gen_ref', got {direction!r}")
        self.direction = direction
        self.inputs = inputs
        self.name = name
        self.recipe = KL_RECIPES[direction]
        self.add_state("reference", "items")
        self.add_state("generated", "items")
        self.reset()

    def update(self, values: ArrayLike, *, reference: bool = False, ids: Sequence[str] | None = None) -> None:
        key = "reference" if reference else "generated"
        if ids is None:
            raise MetricInputError(f"{self.name}: KL pairs items by id; pass ids= with the scores")
        add_items_by_id(getattr(self, key), list(ids), values, f"KL {key} scores")

    def compute(self) -> MetricResult:
        kl = kl_divergence(self.reference, self.generated, inputs=self.inputs)
        index = 0 if self.direction == "ref_gen" else 1
        return self.result_for(
            kl.kl_ref_gen if index == 0 else kl.kl_gen_ref,
            direction=self.direction,
            kl_ref_gen=kl.kl_ref_gen,
            kl_gen_ref=kl.kl_gen_ref,
            n_pairs=kl.n_pairs,
            recipes=dict(KL_RECIPES),
            per_item={item: values[index] for item, values in kl.per_item.items()},
        )
