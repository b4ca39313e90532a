"""KAD against the kadtk package itself (PyPI kadtk 1.1.0, installed by .ci/setup without its dependencies):
its own ``calc_kernel_audio_distance`` and ``median_pairwise_distance`` run on the same embeddings.

kadtk's package imports TensorFlow-era model loaders at import time, so the test loads only its
``kadtk/kad.py`` file, with the two sibling modules that file imports for its class (embedding and model
loaders, unused by the function) replaced by empty stand-ins.

One difference is by design: kadtk 1.1.0 on PyPI takes the default bandwidth from its *second* set (the
evaluated one), while the kadtk repository's current code (commit 7ec65d7, "median distance heuristic on the
reference set") and agomni take it from the reference set. With the bandwidth given explicitly both agree,
and with each package's default the only difference is that choice.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from agomni.metrics import KernelAudioDistance, kernel_audio_distance, median_pairwise_distance


@pytest.fixture(scope="module")
def kadtk_kad() -> types.ModuleType:
    spec = importlib.util.find_spec("kadtk")
    assert spec is not None and spec.submodule_search_locations, "kadtk is installed by .ci/setup"
    path = Path(next(iter(spec.submodule_search_locations))) / "kad.py"
    stand_ins = {
        "kadtk": types.ModuleType("kadtk"),
        "kadtk.emb_loader": types.ModuleType("kadtk.emb_loader"),
        "kadtk.model_loader": types.ModuleType("kadtk.model_loader"),
    }
    stand_ins["kadtk.emb_loader"].EmbeddingLoader = object
    stand_ins["kadtk.model_loader"].ModelLoader = object
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        module_spec = importlib.util.spec_from_file_location("kadtk_kad_reference", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    return module


def _sets(seed: int, m: int = 40, n: int = 33, d: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(m, d))
    generated = 1.3 * rng.normal(size=(n, d)) + 0.4  # spread and offset differ from the reference
    return reference, generated


def _kadtk(module: types.ModuleType, x: np.ndarray, y: np.ndarray, bandwidth: float | None) -> float:
    value = module.calc_kernel_audio_distance(
        torch.from_numpy(x), torch.from_numpy(y), (None, None), "cpu", bandwidth, precision=torch.float64
    )
    return float(value)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kad_equals_kadtk_with_the_reference_bandwidth(kadtk_kad, seed) -> None:
    reference, generated = _sets(seed)
    bandwidth = kadtk_kad.median_pairwise_distance(torch.from_numpy(reference))  # kadtk's own rule (float32)
    ours = kernel_audio_distance(reference, generated, bandwidth=bandwidth)
    assert ours == pytest.approx(_kadtk(kadtk_kad, reference, generated, bandwidth), rel=1e-9, abs=1e-12)
    # our bandwidth rule equals kadtk's on the same set (kadtk measures it in float32)
    assert median_pairwise_distance(reference) == pytest.approx(bandwidth, rel=1e-6)
    assert abs(ours) > 1.0  # the sets differ: a value far from 0, not a vacuous agreement


def test_the_accumulator_equals_kadtk_on_sets_added_in_parts(kadtk_kad) -> None:
    reference, generated = _sets(3)
    metric = KernelAudioDistance()
    for part in np.array_split(reference, 3):
        metric.update(part, reference=True)
    for part in np.array_split(generated, 4):
        metric.update(part)
    result = metric.compute()
    expected = _kadtk(kadtk_kad, reference, generated, median_pairwise_distance(reference))
    assert result.value == pytest.approx(expected, rel=1e-9)


def test_kadtk_1_1_0_default_bandwidth_is_the_evaluated_sets_median(kadtk_kad) -> None:
    """kadtk 1.1.0's default differs from agomni's (and kadtk's repository's) in that one choice only."""
    reference, generated = _sets(4)
    pypi_default = _kadtk(kadtk_kad, reference, generated, None)
    with_generated_bandwidth = kernel_audio_distance(
        reference, generated, bandwidth=kadtk_kad.median_pairwise_distance(torch.from_numpy(generated))
    )
    assert pypi_default == pytest.approx(with_generated_bandwidth, rel=1e-9)
    assert kernel_audio_distance(reference, generated) != pytest.approx(pypi_default, rel=1e-3)
