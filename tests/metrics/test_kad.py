"""Kernel Audio Distance against a direct O(n^2) numpy computation of kadtk's formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agomni.errors import MetricInputError
from agomni.metrics import KernelAudioDistance, kernel_audio_distance, median_pairwise_distance


def direct_kad(x: np.ndarray, y: np.ndarray, bandwidth: float, scale: float = 100.0) -> float:
    """kadtk's unbiased MMD^2 with every pairwise difference formed explicitly (no norm expansion)."""
    gamma = 1.0 / (2.0 * bandwidth**2 + 1e-8)

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-gamma * ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))

    m, n = len(x), len(y)
    k_xx = kernel(x, x)
    k_yy = kernel(y, y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(scale * (within_x + within_y - 2.0 * kernel(x, y).mean()))


def torch_median_pdist(x: np.ndarray) -> float:
    """kadtk's bandwidth rule: torch.median (lower middle value) of torch.pdist, here in float64."""
    return float(torch.median(torch.pdist(torch.from_numpy(x))))


def test_median_of_an_even_number_of_pairs_is_the_lower_middle_value() -> None:
    # points 0, 1, 3, 7 on a line: distances 1, 3, 7, 2, 6, 4 -> sorted 1 2 3 4 6 7 -> lower median 3
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    assert median_pairwise_distance(x) == pytest.approx(3.0, abs=1e-12)
    assert torch_median_pdist(x) == pytest.approx(3.0, abs=1e-12)


@pytest.mark.parametrize("block_size", [None, 1, 4, 7, 1024])
def test_median_matches_torch_pdist_for_any_block_size(block_size: int | None) -> None:
    x = np.random.default_rng(0).normal(size=(23, 5))
    assert median_pairwise_distance(x, block_size=block_size) == pytest.approx(
        torch_median_pdist(x), rel=1e-12
    )


def test_matches_direct_computation_with_median_bandwidth() -> None:
    rng = np.random.default_rng(1)
    ref, gen = rng.normal(size=(31, 6)), rng.normal(size=(24, 6)) + 0.4
    expected = direct_kad(ref, gen, torch_median_pdist(ref))
    assert kernel_audio_distance(ref, gen) == pytest.approx(expected, rel=1e-10)
    assert expected > 0
    # bandwidth comes from the reference set only, so swapping the sets changes the value
    assert kernel_audio_distance(gen, ref) == pytest.approx(
        direct_kad(gen, ref, torch_median_pdist(gen)), rel=1e-10
    )


@pytest.mark.parametrize("block_size", [1, 5, 8, 30])
def test_blockwise_equals_unblocked(block_size: int) -> None:
    rng = np.random.default_rng(2)
    ref, gen = rng.normal(size=(29, 4)), rng.normal(size=(17, 4)) * 1.3
    unblocked = kernel_audio_distance(ref, gen, bandwidth=1.7, block_size=None)
    assert unblocked == pytest.approx(direct_kad(ref, gen, 1.7), rel=1e-10)
    assert kernel_audio_distance(ref, gen, bandwidth=1.7, block_size=block_size) == pytest.approx(
        unblocked, rel=1e-12, abs=1e-14
    )


def test_scale_and_same_distribution_sign() -> None:
    rng = np.random.default_rng(3)
    ref, gen = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    assert kernel_audio_distance(ref, gen, scale=1.0) * 100 == pytest.approx(
        kernel_audio_distance(ref, gen), rel=1e-12
    )
    # the unbiased estimator of a zero MMD is close to 0 and may be negative
    assert abs(kernel_audio_distance(ref, gen)) < 5.0


def test_degenerate_inputs_are_errors() -> None:
    with pytest.raises(MetricInputError, match="bandwidth"):
        kernel_audio_distance(np.zeros((5, 2)), np.ones((5, 2)))
    with pytest.raises(MetricInputError, match="dimensions differ"):
        kernel_audio_distance(np.zeros((5, 2)), np.ones((5, 3)))
    with pytest.raises(MetricInputError, match="at least 2 rows"):
        kernel_audio_distance(np.eye(3), np.ones((1, 3)))


def test_accumulator_equals_function() -> None:
    rng = np.random.default_rng(4)
    ref, gen = rng.normal(size=(20, 5)), rng.normal(size=(15, 5)) + 0.2
    metric = KernelAudioDistance(block_size=6)
    metric.update(ref[:12], reference=True)
    metric.update(gen, reference=False)
    metric.update(ref[12:], reference=True)
    result = metric.compute()
    assert result.value == pytest.approx(direct_kad(ref, gen, torch_median_pdist(ref)), rel=1e-10)
    assert result.details["bandwidth"] == pytest.approx(torch_median_pdist(ref), rel=1e-12)
    assert (result.name, result.higher_is_better) == ("KAD", False)
    assert "kadtk" in result.recipe and "x 100" in result.unit
