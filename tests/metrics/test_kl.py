"""Paired KL divergence against hand-computed values and the toolkits' torch formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agomni.errors import MetricInputError, PairingError
from agomni.metrics import KLDivergence, kl_divergence

# Item "a": softmax([0, ln 3]) = [1/4, 3/4] (reference), softmax([5, 5]) = [1/2, 1/2] (generated).
# Item "b": softmax([ln 2, 0]) = [2/3, 1/3] (reference), softmax([0, ln 2]) = [1/3, 2/3] (generated).
REFERENCE = {"a": [0.0, math.log(3.0)], "b": [math.log(2.0), 0.0]}
GENERATED = {"a": [5.0, 5.0], "b": [0.0, math.log(2.0)]}
# KL(ref||gen): a = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.13081203594113697, b = 1/3 ln 2 = 0.23104906018664842
KL_REF_GEN = {"a": 0.13081203594113697, "b": 0.23104906018664842}
# KL(gen||ref) with reference probabilities + 1e-6 (stable-audio-metrics):
# a = 1/2 ln(0.5 / 0.250001) + 1/2 ln(0.5 / 0.750001) = 0.1438383695636683
# b = 1/3 ln((1/3) / (2/3 + 1e-6)) + 2/3 ln((2/3) / (1/3 + 1e-6)) = 0.23104656019002345
KL_GEN_REF = {"a": 0.1438383695636683, "b": 0.23104656019002345}


def test_hand_computed_values_both_directions() -> None:
    kl = kl_divergence(REFERENCE, GENERATED)
    assert kl.n_pairs == 2
    assert kl.kl_ref_gen == pytest.approx((0.13081203594113697 + 0.23104906018664842) / 2, rel=1e-12)
    assert kl.kl_gen_ref == pytest.approx((0.1438383695636683 + 0.23104656019002345) / 2, rel=1e-12)
    for item in ("a", "b"):
        assert kl.per_item[item][0] == pytest.approx(KL_REF_GEN[item], rel=1e-12)
        assert kl.per_item[item][1] == pytest.approx(KL_GEN_REF[item], rel=1e-12)


def test_probability_inputs_give_the_same_values() -> None:
    reference = {"a": [0.25, 0.75], "b": [2 / 3, 1 / 3]}
    generated = {"a": [0.5, 0.5], "b": [1 / 3, 2 / 3]}
    kl = kl_divergence(reference, generated, inputs="probabilities")
    assert kl.kl_ref_gen == pytest.approx(0.1809305480638927, rel=1e-12)
    assert kl.kl_gen_ref == pytest.approx(0.18744246487684588, rel=1e-12)


def test_matches_av_benchmark_and_stable_audio_metrics_torch_formulas() -> None:
    rng = np.random.default_rng(0)
    ids = [f"clip{i:03d}" for i in range(37)]
    ref_logits = torch.from_numpy(rng.normal(scale=3.0, size=(37, 527)))
    gen_logits = torch.from_numpy(rng.normal(scale=3.0, size=(37, 527)))
    # av-benchmark compute_kl (kl_softmax): kl_div(log_softmax(gen), log_softmax(ref), sum, log_target) / N
    av_benchmark = F.kl_div(
        F.log_softmax(gen_logits, dim=1), F.log_softmax(ref_logits, dim=1), reduction="sum", log_target=True
    ) / len(ids)
    # stable-audio-metrics passt_kld: per item kl_div((p_ref + 1e-6).log(), p_gen, sum), averaged
    p_ref, p_gen = ref_logits.softmax(dim=1), gen_logits.softmax(dim=1)
    sam = torch.stack(
        [F.kl_div((p_ref[i] + 1e-6).log(), p_gen[i], reduction="sum") for i in range(len(ids))]
    ).mean()
    # items given in a different order on each side: pairing is by id, not position
    reference = dict(zip(ids, ref_logits, strict=True))
    generated = dict(reversed(list(zip(ids, gen_logits.numpy(), strict=True))))
    kl = kl_divergence(reference, generated)
    assert kl.kl_ref_gen == pytest.approx(float(av_benchmark), rel=1e-10)
    assert kl.kl_gen_ref == pytest.approx(float(sam), rel=1e-10)


def test_unpaired_ids_raise_pairing_error_naming_them() -> None:
    with pytest.raises(PairingError) as error:
        kl_divergence({**REFERENCE, "only_ref": [0.0, 0.0]}, {**GENERATED, "only_gen": [1.0, 0.0]})
    message = str(error.value)
    assert "'only_ref'" in message and "'only_gen'" in message
    assert "1 reference id(s) without a generated item" in message


def test_bad_inputs_raise_typed_errors() -> None:
    with pytest.raises(MetricInputError, match="'b' has shape"):
        kl_divergence(REFERENCE, {"a": [0.0, 0.0], "b": [0.0, 0.0, 0.0]})
    with pytest.raises(MetricInputError, match="'a' holds NaN"):
        kl_divergence(REFERENCE, {"a": [np.nan, 0.0], "b": [0.0, 0.0]})
    with pytest.raises(MetricInputError, match="infinite for item 'a'"):
        kl_divergence({"a": [0.5, 0.5]}, {"a": [1.0, 0.0]}, inputs="probabilities")
    with pytest.raises(MetricInputError, match="not a probability vector"):
        kl_divergence({"a": [0.5, 0.6]}, {"a": [0.5, 0.5]}, inputs="probabilities")


def test_accumulator_pairs_across_batches_and_labels_direction() -> None:
    metric = KLDivergence()
    metric.update(np.array([GENERATED["b"]]), ids=["b"], reference=False)
    metric.update(np.array([REFERENCE["a"], REFERENCE["b"]]), ids=["a", "b"], reference=True)
    metric.update(torch.tensor([GENERATED["a"]]), ids=["a"], reference=False)
    result = metric.compute()
    assert result.value == pytest.approx(0.1809305480638927, rel=1e-12)
    assert result.details["kl_gen_ref"] == pytest.approx(0.18744246487684588, rel=1e-12)
    assert (result.unit, result.higher_is_better, result.details["direction"]) == ("nats", False, "ref_gen")
    assert "av-benchmark" in result.recipe
    other = KLDivergence(direction="gen_ref")
    other.load_state(metric.state())
    assert other.compute().value == pytest.approx(0.18744246487684588, rel=1e-12)
    assert "stable-audio-metrics" in other.recipe
    with pytest.raises(MetricInputError, match="'a' was added twice"):
        metric.update(np.array([[0.0, 0.0]]), ids=["a"], reference=True)
