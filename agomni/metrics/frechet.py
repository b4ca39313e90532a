"""Frechet distance between Gaussian fits of two embedding sets (FAD / FD_PANNs / FD_PaSST / FD_VGG),
streamed sufficient statistics, and FAD-inf.

Recipe (audioldm_eval ``metrics/fad.py``, av-benchmark ``av_bench/metrics/fad.py``, fadtk ``fad.py``):
pool all embeddings of a set (frame-level or clip-level, as the embedder's protocol says), take the mean
and the unbiased covariance (``np.cov(x, rowvar=False)``, divisor N - 1) and report

    d = |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)).

The toolkits take the trace term from ``scipy.linalg.sqrtm(S1 @ S2)``, which can return imaginary parts
and slightly negative distances on near-singular covariances; here it is computed in float64 as the
sum of the singular values of S1^(1/2) S2^(1/2), with both square roots from symmetric eigen
decompositions (see ``frechet_distance``). Both give the same number wherever sqrtm is well behaved
(tests: 1e-6 relative or better against scipy, a 40-digit mpmath evaluation and an SVD of the centred
data cross-product). The distance is symmetric in its two sets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch.distributed as dist

from agomni.errors import MetricInputError, TooFewItemsError
from agomni.metrics.base import (
    Accumulator,
    ArrayLike,
    Metric,
    MetricResult,
    MetricSpec,
    as_float64,
    as_float64_matrix,
)

FD_SPEC = MetricSpec(unit="FD", higher_is_better=False, description="squared embedding distance")
FD_UNIT = FD_SPEC.unit_text
FD_RECIPE = "audioldm_eval/av-benchmark: pooled embeddings, mean + np.cov (N-1), float64"
FAD_INF_RECIPE = "fadtk score_inf: FD at linspace(min_n, N, steps) resampled sizes, fit in 1/n, intercept"

# Negative eigenvalues of a covariance down to -PSD_RTOL * (largest |eigenvalue|) are treated as rounding
# (float32-computed covariances reach ~1e-7) and set to 0; anything more negative is an input error.
PSD_RTOL = 1e-6
# A distance below 0 by at most NEGATIVE_RTOL * (Tr S1 + Tr S2 + |mu1 - mu2|^2) is rounding: reported as 0.
NEGATIVE_RTOL = 1e-9
# |S - S^T| allowed, relative to max |S|, before a covariance counts as non-symmetric.
SYMMETRY_RTOL = 1e-8


def _symmetric_psd(sigma: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetrised ``sigma`` and its eigen decomposition with rounding-level negative eigenvalues set to
    0. Raises ``MetricInputError`` for a non-symmetric or clearly indefinite matrix."""
    scale = float(np.max(np.abs(sigma))) if sigma.size else 0.0
    if np.max(np.abs(sigma - sigma.T)) > SYMMETRY_RTOL * max(scale, np.finfo(np.float64).tiny):
        raise MetricInputError(f"{what}: covariance matrix is not symmetric")
    sym = 0.5 * (sigma + sigma.T)
    eigenvalues, eigenvectors = np.linalg.eigh(sym)
    largest = float(np.max(np.abs(eigenvalues)))
    if eigenvalues[0] < -PSD_RTOL * largest:
        raise MetricInputError(
            f"{what}: covariance is not positive semi-definite (eigenvalue {eigenvalues[0]:.3g}, "
            f"largest {largest:.3g})"
        )
    return sym, np.clip(eigenvalues, 0.0, None), eigenvectors


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    Args:
        mu1, mu2: means, shape [D].
        sigma1, sigma2: covariances, shape [D, D], symmetric positive semi-definite.

    Returns:
        ``|mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2))`` in squared embedding units, >= 0.

    Trace term: with the principal square roots A = S1^(1/2), B = S2^(1/2) (from ``eigh``, rounding-level
    negative eigenvalues set to 0), S1 S2 = A (A B B^T A) A^(-1) is similar to the symmetric positive
    semi-definite matrix M = A S2 A = C C^T with C = A B (for singular S1 by continuity). So the
    eigenvalues of S1 S2 are real, >= 0, and equal the squared singular values of C, and
    Tr((S1 S2)^(1/2)) = sum of the singular values of C (its nuclear norm). Taking singular values of C
    instead of ``eigvalsh(M)`` avoids squaring: eigenvalues of M carry absolute errors ~eps |S|^2,
    which the square root would turn into ~sqrt(eps) |S| per (near-)null direction, while singular
    values of C carry ~eps |S|. No complex arithmetic is involved, so no imaginary parts arise, and
    rank-deficient covariances need no diagonal offset (the reference code's ``eps`` retry).

    Tolerances: covariance eigenvalues below 0 by at most ``PSD_RTOL`` (1e-6) times the largest one are
    rounding; a result below 0 by at most ``NEGATIVE_RTOL`` (1e-9) times Tr S1 + Tr S2 + |mu1 - mu2|^2
    is rounding and returned as 0.0. Larger violations raise ``MetricInputError``.
    """
    m1 = np.atleast_1d(as_float64(mu1))
    m2 = np.atleast_1d(as_float64(mu2))
    s1 = np.atleast_2d(as_float64(sigma1))
    s2 = np.atleast_2d(as_float64(sigma2))
    dim = m1.shape[0]
    if m1.ndim != 1 or m2.shape != m1.shape:
        raise MetricInputError(
            f"frechet_distance: means must be 1-D of equal length, got {m1.shape}, {m2.shape}"
        )
    if s1.shape != (dim, dim) or s2.shape != (dim, dim):
        raise MetricInputError(
            f"frechet_distance: covariances must be [{dim}, {dim}], got {s1.shape} and {s2.shape}"
        )
    for what, value in (("mu1", m1), ("mu2", m2), ("sigma1", s1), ("sigma2", s2)):
        if not np.isfinite(value).all():
            raise MetricInputError(f"frechet_distance: {what} holds NaN or infinite values")
    s1, w1, v1 = _symmetric_psd(s1, "frechet_distance sigma1")
    s2, w2, v2 = _symmetric_psd(s2, "frechet_distance sigma2")
    root1 = (v1 * np.sqrt(w1)) @ v1.T
    root2 = (v2 * np.sqrt(w2)) @ v2.T
    trace_sqrt = float(np.sum(np.linalg.svd(root1 @ root2, compute_uv=False)))
    diff = m1 - m2
    mean_term = float(diff @ diff)
    scale = mean_term + float(np.trace(s1)) + float(np.trace(s2))
    distance = scale - 2.0 * trace_sqrt
    if distance < 0.0:
        if -distance > NEGATIVE_RTOL * max(scale, np.finfo(np.float64).tiny):
            raise MetricInputError(
                f"frechet_distance: numerically negative result {distance:.6g} beyond rounding "
                f"(scale {scale:.6g}); the covariances are likely not positive semi-definite"
            )
        distance = 0.0
    return distance


class GaussianStats(Accumulator):
    """Streamed sufficient statistics of a set of D-dimensional embeddings, in float64.

    Three ``"sum"`` states: the row count ``n`` [1], the sum of rows ``sum`` [D] and the sum of outer
    products ``outer`` (X^T X) [D, D], so memory is O(D^2) whatever the number of clips; ``update`` adds
    to them in place. ``mean()`` and ``cov()`` equal ``np.mean(X, 0)`` and ``np.cov(X, rowvar=False)`` of
    all rows seen. Raw (uncentred) sums lose about eps * (|mean| / std)^2 of relative precision in the
    covariance, which is negligible in float64 for audio embeddings.

    Merging and ranks come from `Accumulator`: ``a + b`` is the union, ``all_reduce()`` the statistics
    summed over all ranks. Pass ``dim`` when a rank may see no rows.
    """

    name = "GaussianStats"
    STATES = ("n", "sum", "outer")

    def __init__(self, dim: int | None = None):
        self.add_state("n", "sum", np.zeros(1))
        self.add_state("sum", "sum", None if dim is None else np.zeros(dim))
        self.add_state("outer", "sum", None if dim is None else np.zeros((dim, dim)))
        self.reset()

    @property
    def dim(self) -> int | None:
        return None if self.sum is None else int(self.sum.shape[0])

    @property
    def count(self) -> int:
        """Number of rows seen."""
        return round(float(self.n[0]))

    def update(self, batch: ArrayLike) -> GaussianStats:
        """Add the rows of ``batch`` [N, D]; returns ``self``."""
        x = as_float64_matrix(batch, "GaussianStats.update batch", min_rows=0)
        if self.sum is None:
            self.sum, self.outer = np.zeros(x.shape[1]), np.zeros((x.shape[1], x.shape[1]))
        if x.shape[1] != self.dim:
            raise MetricInputError(
                f"GaussianStats.update: batch has dimension {x.shape[1]}, expected {self.dim}"
            )
        self.n += x.shape[0]
        self.sum += x.sum(axis=0)
        self.outer += x.T @ x
        return self

    @classmethod
    def from_embeddings(cls, embeddings: ArrayLike) -> GaussianStats:
        """Statistics of all rows of ``embeddings`` [N, D]."""
        return cls().update(embeddings)

    def mean(self) -> np.ndarray:
        """Mean of all rows, [D] float64."""
        self._require(1)
        return self.sum / self.count

    def cov(self) -> np.ndarray:
        """Unbiased covariance (divisor N - 1, as ``np.cov``), [D, D] float64, exactly symmetric."""
        self._require(2)
        mu = self.sum / self.count
        cov = (self.outer - self.count * np.outer(mu, mu)) / (self.count - 1)
        return 0.5 * (cov + cov.T)

    def frechet_distance(self, other: GaussianStats) -> float:
        """`frechet_distance` between the Gaussian fits of this set and ``other``."""
        return frechet_distance(self.mean(), self.cov(), other.mean(), other.cov())

    def _require(self, rows: int) -> None:
        if self.count < rows:
            raise TooFewItemsError(f"GaussianStats: needs at least {rows} embedding rows, has {self.count}")

    def merge(self, other: GaussianStats) -> GaussianStats:
        """Statistics of the union of both inputs (a new object; either side may be empty)."""
        if None not in (self.dim, other.dim) and self.dim != other.dim:
            raise MetricInputError(f"GaussianStats.merge: dimensions differ ({self.dim} vs {other.dim})")
        merged = GaussianStats()
        merged.load_state(self.state())
        merged.merge_state(other.state())
        return merged

    __add__ = merge

    def all_reduce(self, group: dist.ProcessGroup | None = None) -> GaussianStats:
        """Statistics summed over all ranks (``torch.distributed.all_reduce``); a copy when not distributed."""
        reduced = self + GaussianStats()
        reduced.sync(group)
        return reduced


SIDES = ("reference", "generated")


class FrechetDistance(Metric):
    """Accumulator for the Frechet distance between reference and generated embedding sets.

    ``update(embeddings [N, D], reference=True|False)`` adds rows to the set's `GaussianStats` (its
    ``"sum"`` states, prefixed ``reference_`` / ``generated_``); ``compute()`` returns the FD (lower is
    better). ``dim`` fixes the dimension up front (needed by ``sync`` when a rank may see no rows).
    """

    spec = FD_SPEC

    def __init__(self, dim: int | None = None, *, name: str = "FD", recipe: str = FD_RECIPE):
        self.name = name
        self.recipe = recipe
        blank = GaussianStats(dim)
        for side in SIDES:
            for state in GaussianStats.STATES:
                self.add_state(f"{side}_{state}", "sum", getattr(blank, state))
        self.reset()

    def stats(self, side: str) -> GaussianStats:
        """The ``"reference"`` or ``"generated"`` set's statistics (sharing this accumulator's arrays)."""
        stats = GaussianStats()
        for state in GaussianStats.STATES:
            setattr(stats, state, getattr(self, f"{side}_{state}"))
        return stats

    def _set(self, side: str, stats: GaussianStats) -> None:
        for state in GaussianStats.STATES:
            setattr(self, f"{side}_{state}", getattr(stats, state))

    def update(self, values: ArrayLike, *, reference: bool = False, ids: Sequence[str] | None = None) -> None:
        side = "reference" if reference else "generated"
        self._set(side, self.stats(side).update(values))

    def compute(self) -> MetricResult:
        reference, generated = self.stats("reference"), self.stats("generated")
        if reference.count < 2 or generated.count < 2:
            short = "generated" if generated.count < 2 else "reference"
            raise TooFewItemsError(
                f"{self.name} needs at least 2 embedding rows per set (a covariance over one row is undefined); "
                f"has reference {reference.count}, generated {generated.count}",
                side=short,
                hint=f"score at least 2 {short} items",
            )
        value = generated.frechet_distance(reference)
        return self.result_for(
            value, n_reference=reference.count, n_generated=generated.count, dim=reference.dim
        )


@dataclass(frozen=True)
class InfiniteNFit:
    """Least-squares line score(n) = intercept + slope / n through (n, score) points (fadtk score_inf)."""

    intercept: float
    slope: float
    r2: float
    points: list[tuple[int, float]] = field(default_factory=list)


def extrapolate_to_infinite_n(points: list[tuple[int, float]]) -> InfiniteNFit:
    """Fit score = intercept + slope * (1/n) by least squares (``np.polyfit`` degree 1, as fadtk) and
    return the intercept (the n -> infinity value), the slope and R^2 = 1 - SS_res / SS_tot."""
    if len({n for n, _ in points}) < 2:
        raise MetricInputError(f"extrapolate_to_infinite_n: needs at least 2 distinct sizes, got {points}")
    ns = np.array([n for n, _ in points], dtype=np.float64)
    ys = np.array([y for _, y in points], dtype=np.float64)
    xs = 1.0 / ns
    slope, intercept = np.polyfit(xs, ys, 1)
    residual = float(np.sum((ys - (slope * xs + intercept)) ** 2))
    total = float(np.sum((ys - ys.mean()) ** 2))
    r2 = 1.0 - residual / total if total > 0 else 1.0
    return InfiniteNFit(intercept=float(intercept), slope=float(slope), r2=r2, points=list(points))


def fad_inf_sizes(n_available: int, *, steps: int = 25, min_n: int = 500) -> list[int]:
    """The subset sizes of fadtk's FAD-inf: ``int(n)`` for n in ``np.linspace(min_n, N, steps)``."""
    if not 2 <= min_n <= n_available or steps < 2:
        raise TooFewItemsError(
            f"FAD-inf: needs 2 <= min_n ({min_n}) <= number of generated embeddings ({n_available}) "
            f"and steps >= 2 (got {steps})"
        )
    return [int(n) for n in np.linspace(min_n, n_available, steps)]


def fad_inf(
    reference: GaussianStats,
    generated: ArrayLike,
    *,
    seed: int,
    steps: int = 25,
    min_n: int = 500,
) -> MetricResult:
    """FAD-inf (fadtk ``FrechetAudioDistance.score_inf``): FD between the reference statistics and
    ``n`` generated embeddings drawn with replacement, for each n in ``fad_inf_sizes``, then the
    intercept of a least-squares line in 1/n.

    Args:
        reference: statistics of the reference set (fadtk's "baseline", used whole).
        generated: generated embeddings [N, D] (fadtk's eval set, concatenated frames).
        seed: the subsampling draws are ``np.random.RandomState(seed).choice(N, n, replace=True)`` in
            order of increasing n from one stream (fadtk uses the unseeded global NumPy RNG).
        steps, min_n: as fadtk (defaults 25 and 500).

    Returns:
        ``MetricResult`` named "FAD-inf" whose value is the intercept; ``details`` holds slope, r2,
        points [(n, FD)], seed, steps, min_n.
    """
    x = as_float64_matrix(generated, "FAD-inf generated embeddings", min_rows=2)
    rng = np.random.RandomState(seed)
    points = []
    for n in fad_inf_sizes(x.shape[0], steps=steps, min_n=min_n):
        stats = GaussianStats.from_embeddings(x[rng.choice(x.shape[0], size=n, replace=True)])
        points.append((n, reference.frechet_distance(stats)))
    fit = extrapolate_to_infinite_n(points)
    return MetricResult(
        name="FAD-inf",
        value=fit.intercept,
        unit=FD_UNIT,
        higher_is_better=False,
        recipe=FAD_INF_RECIPE,
        details={
            "slope": fit.slope,
            "r2": fit.r2,
            "points": fit.points,
            "seed": seed,
            "steps": steps,
            "min_n": min_n,
        },
    )


class FrechetDistanceInf(Metric):
    """Accumulator for FAD-inf: reference rows go into streamed sums, generated rows are kept (the
    subsampling needs them all) and gathered across ranks in rank order."""

    spec = FD_SPEC
    name = "FAD-inf"
    recipe = FAD_INF_RECIPE

    def __init__(self, dim: int | None = None, *, seed: int, steps: int = 25, min_n: int = 500):
        self.seed = seed
        self.steps = steps
        self.min_n = min_n
        self.reference = FrechetDistance(dim, name="FAD-inf reference")
        self.add_state("generated", "rows")
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.reference.reset()

    def state(self) -> dict[str, Any]:
        return {**super().state(), "reference": self.reference.state()}

    def merge_state(self, state: Mapping[str, Any]) -> None:
        super().merge_state(state)
        self.reference.merge_state(state["reference"])

    def update(self, values: ArrayLike, *, reference: bool = False, ids: Sequence[str] | None = None) -> None:
        if reference:
            self.reference.update(values, reference=True)
            return
        x = as_float64_matrix(values, "FAD-inf generated embeddings", min_rows=0)
        if self.generated and x.shape[1] != self.generated[0].shape[1]:
            raise MetricInputError(
                f"FAD-inf: generated batch has dimension {x.shape[1]}, expected {self.generated[0].shape[1]}"
            )
        self.generated.append(x)

    def compute(self) -> MetricResult:
        generated = np.concatenate(self.generated, axis=0) if self.generated else np.zeros((0, 1))
        reference = self.reference.stats("reference")
        return fad_inf(reference, generated, seed=self.seed, steps=self.steps, min_n=self.min_n)
