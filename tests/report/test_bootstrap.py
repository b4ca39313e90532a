"""The bootstrap interval equals a direct numpy resampling computation with the same seed."""

import numpy as np
import pytest
import scipy.linalg

from agomni.errors import MetricInputError
from agomni.report.bootstrap import paired_mean_interval, set_metric_interval
from agomni.report.embeddings import set_metric_function


def test_paired_mean_interval_equals_direct_numpy_resampling():
    rng = np.random.default_rng(5)
    base = rng.normal(1.0, 0.3, size=40)
    new = base - 0.2 + rng.normal(0, 0.05, size=40)
    got = paired_mean_interval(base, new, resamples=500, seed=11)
    # Direct computation, written out: same generator, same draw for both runs, 2.5/97.5 percentiles.
    draws = np.random.default_rng(11).integers(0, 40, size=(500, 40))
    differences = np.array([new[row].mean() - base[row].mean() for row in draws])
    low, high = np.percentile(differences, [2.5, 97.5])
    assert (got.low, got.high) == (low, high)
    assert got.high < 0  # a planted improvement of 0.2 is significant
    assert paired_mean_interval(base, new, resamples=500, seed=12).low != got.low  # the seed matters


def _fd_scipy(gen, ref):
    """FD by the textbook formula with scipy's sqrtm (independent of agomni.metrics.frechet)."""
    mu1, mu2 = gen.mean(0), ref.mean(0)
    s1, s2 = np.cov(gen, rowvar=False), np.cov(ref, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_set_level_interval_resamples_items_of_both_sets_like_numpy():
    rng = np.random.default_rng(0)
    ref = [rng.normal(size=3) for _ in range(30)]
    base = [rng.normal(0.5, 1.0, size=3) for _ in range(30)]
    new = [rng.normal(0.1, 1.0, size=3) for _ in range(30)]
    got = set_metric_interval(set_metric_function("fd"), base, new, ref, resamples=200, seed=3)
    draws = np.random.default_rng(3).integers(0, 30, size=(200, 30))
    differences = []
    for row in draws:
        r = np.stack([ref[i] for i in row])
        differences.append(
            _fd_scipy(np.stack([new[i] for i in row]), r) - _fd_scipy(np.stack([base[i] for i in row]), r)
        )
    low, high = np.percentile(differences, [2.5, 97.5])
    assert got.low == pytest.approx(low, rel=1e-7, abs=1e-9)
    assert got.high == pytest.approx(high, rel=1e-7, abs=1e-9)


def test_a_bootstrap_over_one_item_is_an_error():
    with pytest.raises(MetricInputError, match="at least 2 paired items"):
        paired_mean_interval(np.array([1.0]), np.array([2.0]))
