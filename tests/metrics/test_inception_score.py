"""Inception Score against hand-computed values and an independent torch version of the recipe."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agomni.errors import MetricInputError, TooFewItemsError
from agomni.metrics import InceptionScore, inception_score


def test_hand_computed_probabilities_two_splits() -> None:
    # split 1: [1, 0], [0, 1] -> marginal [1/2, 1/2], each row KL = ln 2 -> exp(ln 2) = 2
    # split 2: [1/2, 1/2] twice -> KL 0 -> 1.  mean 1.5, population std 0.5
    p = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5]])
    result = inception_score(p, splits=2, shuffle=False, inputs="probabilities")
    assert result.value == pytest.approx(1.5, abs=1e-12)
    assert result.details["std"] == pytest.approx(0.5, abs=1e-12)
    assert result.details["split_scores"] == pytest.approx([2.0, 1.0], abs=1e-12)


def test_hand_computed_logits_two_splits() -> None:
    # split 1: softmax rows [1/4, 3/4] and [3/4, 1/4], marginal [1/2, 1/2];
    #   each row KL = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.13081203594113697 -> score exp(0.13081203594113697)
    # split 2: two uniform rows -> score 1
    logits = np.array([[0.0, math.log(3.0)], [math.log(3.0), 0.0], [2.0, 2.0], [-1.0, -1.0]])
    result = inception_score(logits, splits=2, shuffle=False)
    first = math.exp(0.13081203594113697)
    assert result.value == pytest.approx((first + 1.0) / 2, rel=1e-12)
    assert result.details["std"] == pytest.approx((first - 1.0) / 2, rel=1e-12)
    assert (result.unit.startswith("IS"), result.higher_is_better) == (True, True)


def av_benchmark_isc(logits: torch.Tensor, splits: int, seed: int) -> tuple[float, float]:
    """The av-benchmark / audioldm_eval compute_isc recipe, written independently in torch."""
    n = logits.shape[0]
    shuffled = logits[np.random.RandomState(seed).permutation(n)].double()
    p, log_p = shuffled.softmax(dim=1), shuffled.log_softmax(dim=1)
    scores = []
    for k in range(splits):
        rows = slice(k * n // splits, (k + 1) * n // splits)
        q = p[rows].mean(dim=0, keepdim=True)
        scores.append((p[rows] * (log_p[rows] - q.log())).sum(dim=1).mean().exp().item())
    return float(np.mean(scores)), float(np.std(scores))


def test_matches_reference_recipe_with_uneven_splits() -> None:
    logits = torch.from_numpy(np.random.default_rng(1).normal(scale=4.0, size=(53, 31)))
    mean, std = av_benchmark_isc(logits, splits=10, seed=2020)
    result = inception_score(logits)
    assert result.value == pytest.approx(mean, rel=1e-10)
    assert result.details["std"] == pytest.approx(std, rel=1e-10)
    assert (result.details["seed"], result.details["splits"]) == (2020, 10)


def test_shuffle_is_randomstate_permutation() -> None:
    logits = np.random.default_rng(2).normal(scale=4.0, size=(40, 7))
    permuted = logits[np.random.RandomState(2020).permutation(40)]
    shuffled = inception_score(logits, seed=2020)
    assert (
        shuffled.details["split_scores"] == inception_score(permuted, shuffle=False).details["split_scores"]
    )
    assert inception_score(logits, seed=7).details["split_scores"] != shuffled.details["split_scores"]


def test_too_few_items_for_the_splits_is_an_error() -> None:
    with pytest.raises(TooFewItemsError, match="IS with 10 splits needs at least 10 generated items, got 9"):
        inception_score(np.zeros((9, 3)))


def test_accumulator_orders_items_by_id() -> None:
    rng = np.random.default_rng(3)
    ids = [f"id{i:02d}" for i in range(30)]
    logits = rng.normal(scale=3.0, size=(30, 5))
    metric = InceptionScore()
    metric.update(logits[20:], ids=ids[20:])
    metric.update(torch.from_numpy(logits[:20]), ids=ids[:20])
    assert metric.compute() == inception_score(logits)
    with pytest.raises(MetricInputError, match="'id03' was added twice"):
        metric.update(logits[:1], ids=["id03"])
    metric.reset()
    with pytest.raises(MetricInputError, match="no items"):
        metric.compute()
