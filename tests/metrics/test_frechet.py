"""Frechet distance, streamed Gaussian statistics and FAD-inf against independent computations."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import scipy.linalg

from agomni.errors import MetricInputError
from agomni.metrics import (
    FrechetDistance,
    FrechetDistanceInf,
    GaussianStats,
    extrapolate_to_infinite_n,
    fad_inf,
    fad_inf_sizes,
    frechet_distance,
)

DIMS = (2, 16, 128)


def gaussian_set(rng: np.random.Generator, dim: int, rank: int, shift: float) -> np.ndarray:
    """3 * dim + 40 rows of a Gaussian whose covariance has rank ``rank`` (rank-deficient when < dim)."""
    return rng.normal(size=(3 * dim + 40, rank)) @ rng.normal(size=(rank, dim)) + shift


def stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0), np.cov(x, rowvar=False)


def scipy_sqrtm_fd(x1: np.ndarray, x2: np.ndarray) -> float:
    """The toolkits' formula with scipy.linalg.sqrtm (valid on well-conditioned covariances)."""
    (m1, s1), (m2, s2) = stats(x1), stats(x2)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    assert np.abs(np.imag(covmean)).max() < 1e-8
    return float((m1 - m2) @ (m1 - m2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(covmean)))


def cross_product_fd(x1: np.ndarray, x2: np.ndarray) -> float:
    """FD of the data without forming any covariance square root.

    With centred data X1, X2, the non-zero eigenvalues of S1 S2 are those of
    (X1 X2^T)(X2 X1^T) / ((n1 - 1)(n2 - 1)), so Tr (S1 S2)^(1/2) is the sum of the singular values of
    X1 X2^T / sqrt((n1 - 1)(n2 - 1)). The SVD of that product is backward stable (absolute error
    ~ eps * norm) and, unlike eigenvalue or sqrtm methods on S1 S2, does not square-root rounding noise
    in the null directions, so it stays accurate for rank-deficient covariances.
    """
    (m1, s1), (m2, s2) = stats(x1), stats(x2)
    c1, c2 = x1 - m1, x2 - m2
    nuclear = np.linalg.svd(c1 @ c2.T, compute_uv=False).sum() / np.sqrt((len(x1) - 1) * (len(x2) - 1))
    return float((m1 - m2) @ (m1 - m2) + np.trace(s1) + np.trace(s2) - 2 * nuclear)


def mpmath_fd(x1: np.ndarray, x2: np.ndarray, digits: int = 40) -> float:
    """FD of the data in 40-digit arithmetic: exact centring and covariances of the float64 data, then
    the eigenvalues of S1 S2 (real and >= 0 up to 1e-38 for these PSD Gram matrices)."""
    mpmath.mp.dps = digits

    def moments(x: np.ndarray) -> tuple[list, mpmath.matrix]:
        data = mpmath.matrix(x.tolist())
        n, d = data.rows, data.cols
        mean = [mpmath.fsum(data[i, j] for i in range(n)) / n for j in range(d)]
        centred = mpmath.matrix(n, d)
        for i in range(n):
            for j in range(d):
                centred[i, j] = data[i, j] - mean[j]
        return mean, (centred.T * centred) / (n - 1)

    (m1, s1), (m2, s2) = moments(x1), moments(x2)
    eigenvalues = mpmath.eig(s1 * s2, left=False, right=False)
    trace_sqrt = mpmath.fsum(mpmath.sqrt(max(mpmath.re(e), 0)) for e in eigenvalues)
    dim = len(m1)
    total = mpmath.fsum((a - b) ** 2 for a, b in zip(m1, m2, strict=True))
    total += mpmath.fsum(s1[i, i] + s2[i, i] for i in range(dim)) - 2 * trace_sqrt
    return float(total)


@pytest.mark.parametrize("dim", DIMS)
def test_matches_scipy_sqrtm_on_well_conditioned_sets(dim: int) -> None:
    rng = np.random.default_rng(dim)
    x1, x2 = gaussian_set(rng, dim, dim, 0.0), gaussian_set(rng, dim, dim, 0.3)
    ours = frechet_distance(*stats(x1), *stats(x2))
    assert ours == pytest.approx(scipy_sqrtm_fd(x1, x2), rel=1e-6)
    assert ours == pytest.approx(cross_product_fd(x1, x2), rel=1e-6)


@pytest.mark.parametrize("dim", DIMS)
def test_matches_high_precision_reference_on_rank_deficient_sets(dim: int) -> None:
    rng = np.random.default_rng(100 + dim)
    rank = max(1, dim // 2)
    x1, x2 = gaussian_set(rng, dim, rank, 0.0), gaussian_set(rng, dim, rank, 0.3)
    ours = frechet_distance(*stats(x1), *stats(x2))
    assert ours == pytest.approx(cross_product_fd(x1, x2), rel=1e-6)
    if dim <= 16:  # 40-digit eigenvalues are quick up to 16 x 16; at 128 the SVD reference stands alone
        assert ours == pytest.approx(mpmath_fd(x1, x2), rel=1e-6)


def test_mpmath_reference_agrees_with_cross_product_reference() -> None:
    """The two references used above agree with each other, so either one can anchor dim 128."""
    rng = np.random.default_rng(7)
    x1, x2 = gaussian_set(rng, 16, 5, 0.0), gaussian_set(rng, 16, 5, -0.2)
    assert cross_product_fd(x1, x2) == pytest.approx(mpmath_fd(x1, x2), rel=1e-10)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("rank_fraction", [1.0, 0.5])
def test_identical_sets_give_zero(dim: int, rank_fraction: float) -> None:
    rng = np.random.default_rng(dim)
    x = gaussian_set(rng, dim, max(1, int(dim * rank_fraction)), 0.5)
    mu, sigma = stats(x)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9


def test_mean_term_alone_is_squared_distance_of_means() -> None:
    sigma = np.diag([1.0, 2.0, 3.0])
    assert frechet_distance([0.0, 0.0, 0.0], sigma, [1.0, 2.0, 2.0], sigma) == pytest.approx(9.0, abs=1e-12)


def test_one_dimensional_closed_form() -> None:
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 with standard deviations s1 = 2, s2 = 3: 1 + 1 = 2
    assert frechet_distance([1.0], [[4.0]], [2.0], [[9.0]]) == pytest.approx(2.0, abs=1e-12)


def test_indefinite_covariance_is_rejected() -> None:
    with pytest.raises(MetricInputError, match="positive semi-definite"):
        frechet_distance(np.zeros(2), np.diag([1.0, -0.5]), np.zeros(2), np.eye(2))


def test_non_symmetric_and_mismatched_inputs_are_rejected() -> None:
    with pytest.raises(MetricInputError, match="not symmetric"):
        frechet_distance(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), np.eye(2))
    with pytest.raises(MetricInputError, match="covariances must be"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(MetricInputError, match="NaN"):
        frechet_distance(np.array([np.nan, 0.0]), np.eye(2), np.zeros(2), np.eye(2))


def test_streamed_stats_equal_numpy_on_full_set() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(loc=2.0, size=(257, 12))
    acc = GaussianStats()
    for start in range(0, len(x), 40):
        acc.update(x[start : start + 40])
    assert acc.count == 257
    np.testing.assert_allclose(acc.mean(), np.mean(x, axis=0), rtol=1e-12)
    np.testing.assert_allclose(acc.cov(), np.cov(x, rowvar=False), rtol=1e-10, atol=1e-12)


def test_merge_equals_accumulator_over_union() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(50, 6)), rng.normal(size=(31, 6)) + 1.0
    merged = GaussianStats.from_embeddings(a) + GaussianStats.from_embeddings(b)
    union = np.concatenate([a, b])
    assert merged.count == 81
    np.testing.assert_allclose(merged.mean(), union.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged.cov(), np.cov(union, rowvar=False), rtol=1e-10, atol=1e-12)
    rebuilt = GaussianStats()
    rebuilt.load_state(merged.state())
    np.testing.assert_array_equal(rebuilt.cov(), merged.cov())
    empty = GaussianStats(6)
    np.testing.assert_array_equal((empty + merged).cov(), merged.cov())


def test_stats_reject_bad_batches() -> None:
    acc = GaussianStats(3)
    with pytest.raises(MetricInputError, match="dimension 4"):
        acc.update(np.zeros((2, 4)))
    with pytest.raises(MetricInputError, match="row 1"):
        acc.update(np.array([[0.0, 0.0, 0.0], [np.inf, 0.0, 0.0]]))
    with pytest.raises(MetricInputError, match="at least 2"):
        GaussianStats.from_embeddings(np.zeros((1, 3))).cov()


def test_accumulator_equals_function_and_is_labelled() -> None:
    rng = np.random.default_rng(5)
    ref, gen = rng.normal(size=(90, 8)), rng.normal(size=(70, 8)) * 1.5
    metric = FrechetDistance()
    for start in range(0, 90, 30):
        metric.update(ref[start : start + 30], reference=True)
    metric.update(gen[:20], reference=False)
    metric.update(gen[20:], reference=False)
    result = metric.compute()
    assert result.value == pytest.approx(scipy_sqrtm_fd(gen, ref), rel=1e-9)
    assert (result.unit, result.higher_is_better) == ("FD (squared embedding distance)", False)
    assert result.details["n_reference"] == 90 and result.details["n_generated"] == 70
    assert "np.cov" in result.recipe and "lower is better" in str(result)
    metric.reset()
    with pytest.raises(MetricInputError, match="at least 2"):
        metric.compute()


def test_extrapolation_recovers_exact_intercept() -> None:
    # FD(n) = 3.25 + 410 / n exactly, at fadtk's default sizes for 5000 generated embeddings
    sizes = fad_inf_sizes(5000)
    assert sizes[0] == 500 and sizes[-1] == 5000 and len(sizes) == 25
    fit = extrapolate_to_infinite_n([(n, 3.25 + 410.0 / n) for n in sizes])
    assert fit.intercept == pytest.approx(3.25, abs=1e-9)
    assert fit.slope == pytest.approx(410.0, rel=1e-9)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)


def test_fad_inf_sizes_follow_fadtk_linspace() -> None:
    assert fad_inf_sizes(1000, steps=3, min_n=500) == [500, 750, 1000]
    assert fad_inf_sizes(10, steps=4, min_n=3) == [3, 5, 7, 10]
    with pytest.raises(MetricInputError, match="min_n"):
        fad_inf_sizes(100, min_n=500)


def test_fad_inf_is_seeded_and_matches_an_independent_recomputation() -> None:
    rng = np.random.default_rng(6)
    ref, gen = rng.normal(size=(400, 4)), rng.normal(size=(300, 4)) + 0.2
    reference = GaussianStats.from_embeddings(ref)
    first = fad_inf(reference, gen, seed=11, steps=5, min_n=50)
    assert fad_inf(reference, gen, seed=11, steps=5, min_n=50) == first
    assert fad_inf(reference, gen, seed=12, steps=5, min_n=50).value != first.value
    # independent: draws from RandomState(11).choice in order of n, FD via scipy sqrtm, np.polyfit in 1/n
    draws = np.random.RandomState(11)
    ns = [int(n) for n in np.linspace(50, 300, 5)]
    scores = [scipy_sqrtm_fd(gen[draws.choice(300, size=n, replace=True)], ref) for n in ns]
    slope, intercept = np.polyfit(1.0 / np.array(ns), scores, 1)
    assert first.value == pytest.approx(intercept, rel=1e-8)
    assert first.details["slope"] == pytest.approx(slope, rel=1e-8)
    assert [n for n, _ in first.details["points"]] == ns
    assert first.details["seed"] == 11 and first.name == "FAD-inf"


def test_fad_inf_extrapolates_towards_fd_of_the_whole_generated_set() -> None:
    """Resampling n rows with replacement from N generated rows: as n grows the subset statistics tend
    to those of the whole generated set, so the intercept estimates FD(reference, all N rows), while the
    smallest-n FD carries a much larger finite-sample bias (rows from the reference distribution)."""
    rng = np.random.default_rng(8)
    dim = 6
    reference = GaussianStats.from_embeddings(rng.normal(size=(200_000, dim)))
    generated = rng.normal(size=(4000, dim))
    result = fad_inf(reference, generated, seed=0, steps=10, min_n=200)
    whole = GaussianStats.from_embeddings(generated)
    fd_whole = scipy_sqrtm_fd_from_stats(reference, whole)
    first_fd = result.details["points"][0][1]
    assert first_fd > 5 * fd_whole
    assert abs(result.value - fd_whole) < 0.2 * first_fd
    assert result.details["slope"] > 0


def scipy_sqrtm_fd_from_stats(a: GaussianStats, b: GaussianStats) -> float:
    diff = a.mean() - b.mean()
    covmean = np.real(scipy.linalg.sqrtm(a.cov() @ b.cov()))
    return float(diff @ diff + np.trace(a.cov()) + np.trace(b.cov()) - 2 * np.trace(covmean))


def test_fad_inf_accumulator_equals_function() -> None:
    rng = np.random.default_rng(9)
    ref, gen = rng.normal(size=(120, 3)), rng.normal(size=(80, 3))
    metric = FrechetDistanceInf(3, seed=5, steps=4, min_n=20)
    metric.update(ref, reference=True)
    metric.update(gen[:30], reference=False)
    metric.update(gen[30:], reference=False)
    expected = fad_inf(GaussianStats.from_embeddings(ref), gen, seed=5, steps=4, min_n=20)
    assert metric.compute() == expected


def test_merged_fd_accumulators_equal_one_over_the_union() -> None:
    rng = np.random.default_rng(10)
    ref, gen = rng.normal(size=(60, 4)), rng.normal(size=(50, 4)) + 0.3
    first, second, whole = FrechetDistance(4), FrechetDistance(4), FrechetDistance(4)
    first.update(ref[:25], reference=True)
    first.update(gen[:40], reference=False)
    second.update(ref[25:], reference=True)
    second.update(gen[40:], reference=False)
    whole.update(ref, reference=True)
    whole.update(gen, reference=False)
    assert first.merge(second).compute().value == pytest.approx(whole.compute().value, rel=1e-12)
    assert whole.compute().value == pytest.approx(scipy_sqrtm_fd(gen, ref), rel=1e-9)
    with pytest.raises(MetricInputError, match="dimensions differ"):
        GaussianStats.from_embeddings(ref) + GaussianStats.from_embeddings(gen[:, :3])
