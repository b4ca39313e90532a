"""agomni.weights.load_strict against hand-built tiny modules and hand-written expected messages."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from agomni.errors import WeightsError
from agomni.weights import load_strict


class Tiny(nn.Module):
    """lin.weight [2, 3], lin.bias [2], bn.{weight, bias, running_mean, running_var} [2],
    bn.num_batches_tracked (int64 scalar)."""

    def __init__(self, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.lin = nn.Linear(3, 2, dtype=dtype)
        self.bn = nn.BatchNorm1d(2, dtype=dtype)


class Stack(nn.Module):
    def __init__(self, n: int, width: int = 2):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width, bias=False) for _ in range(n))


def _state(dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    return {
        "lin.weight": torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=dtype) / 3,
        "lin.bias": torch.tensor([0.5, -0.5], dtype=dtype),
        "bn.weight": torch.tensor([2.0, 3.0], dtype=dtype),
        "bn.bias": torch.tensor([0.25, 0.75], dtype=dtype),
        "bn.running_mean": torch.tensor([0.1, 0.2], dtype=dtype),
        "bn.running_var": torch.tensor([1.5, 2.5], dtype=dtype),
        "bn.num_batches_tracked": torch.tensor(11),
    }


def test_exact_listing_of_every_problem_and_nothing_loaded():
    module = Tiny()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    state = _state()
    del state["lin.bias"], state["bn.running_var"]
    state["extra.w"] = torch.zeros(1)
    state["head.b"] = torch.zeros(4)
    state["lin.weight"] = torch.zeros(2, 4)
    state["bn.bias"] = torch.zeros(3)
    with pytest.raises(WeightsError) as err:
        load_strict(module, state, where="ckpt.pt")
    assert str(err.value) == (
        "ckpt.pt: the state dict does not fit Tiny: "
        "missing keys (2): bn.running_var, lin.bias | "
        "unexpected keys (2): extra.w, head.b | "
        "shape mismatches (2): bn.bias: checkpoint (3,) vs model (2,); "
        "lin.weight: checkpoint (2, 4) vs model (2, 3)"
    )
    for k, v in module.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_only_the_categories_present_are_named():
    state = _state()
    del state["lin.bias"]
    with pytest.raises(WeightsError) as err:
        load_strict(Tiny(), state, where="w")
    assert str(err.value) == "w: the state dict does not fit Tiny: missing keys (1): lin.bias"


def test_values_are_loaded_in_the_module_dtype():
    for module_dtype, state_dtype in [
        (torch.float32, torch.float32),
        (torch.float32, torch.float16),  # a float16 export loads into the float32 network
        (torch.float64, torch.float64),  # full precision kept (1/3 is not a float32)
        (torch.float64, torch.float32),
    ]:
        module, state = Tiny(module_dtype), _state(state_dtype)
        load_strict(module, state, where="mem")
        loaded = module.state_dict()
        assert loaded["lin.weight"].dtype == module_dtype
        assert loaded["bn.num_batches_tracked"].dtype == torch.int64
        for k, v in state.items():
            expected = v.to(module_dtype) if v.is_floating_point() else v
            assert torch.equal(loaded[k], expected), (module_dtype, state_dtype, k)
    module = Tiny(torch.float64)
    load_strict(module, _state(torch.float64), where="mem")
    assert module.lin.weight[0, 0].item() == 1.0 / 3.0


def test_optional_suffixes_may_be_absent_and_keep_the_module_value():
    module = Tiny()
    module.bn.num_batches_tracked.fill_(7)
    state = _state()
    del state["bn.num_batches_tracked"]
    with pytest.raises(WeightsError, match=re.escape("missing keys (1): bn.num_batches_tracked")):
        load_strict(module, state, where="mem")
    load_strict(module, state, where="mem", optional_suffixes=("num_batches_tracked",))
    assert int(module.bn.num_batches_tracked) == 7
    assert torch.equal(module.bn.running_var, torch.tensor([1.5, 2.5]))
    # present optional keys are loaded like any other; other absent keys are still missing
    load_strict(module, _state(), where="mem", optional_suffixes=("num_batches_tracked",))
    assert int(module.bn.num_batches_tracked) == 11
    state = _state()
    del state["bn.running_mean"], state["bn.num_batches_tracked"]
    with pytest.raises(WeightsError) as err:
        load_strict(module, state, where="mem", optional_suffixes=("num_batches_tracked",))
    assert str(err.value).endswith("missing keys (1): bn.running_mean")


def test_assign_adopts_the_tensors_of_a_meta_module():
    with torch.device("meta"):
        module = Tiny()
    state = _state(torch.float16)
    load_strict(module, state, where="mem", assign=True)
    loaded = module.state_dict()
    for k, v in state.items():
        assert not loaded[k].is_meta, k
        expected = v.float() if v.is_floating_point() else v
        assert loaded[k].dtype == expected.dtype and torch.equal(loaded[k], expected), k
    assert isinstance(module.lin.weight, nn.Parameter)
    out = module.lin(torch.ones(1, 3))
    assert torch.allclose(out, torch.tensor([[2.5, 4.5]]), atol=1e-3)  # 6/3 + .5, 15/3 - .5 (fp16 weights)
    with torch.device("meta"):
        other = Tiny()
    with pytest.raises(WeightsError, match=re.escape("unexpected keys (1): x")):
        load_strict(other, {**_state(), "x": torch.zeros(1)}, where="mem", assign=True)


def test_listing_is_truncated_after_twenty_keys():
    names = sorted(f"layers.{i}.weight" for i in range(25))  # layers.0, layers.1, layers.10, ...
    with pytest.raises(WeightsError) as err:
        load_strict(Stack(25), {}, where="empty")
    assert str(err.value) == (
        "empty: the state dict does not fit Stack: missing keys (25): "
        + ", ".join(names[:20])
        + ", ... (25 in all)"
    )
    assert "layers.9.weight" not in str(err.value)  # the 21st-25th sorted keys are not listed
    with pytest.raises(WeightsError) as err:
        load_strict(Stack(20), {}, where="empty")
    assert "in all" not in str(err.value) and "layers.9.weight" in str(err.value)
    wrong = {f"layers.{i}.weight": torch.zeros(3, 3) for i in range(22)}
    with pytest.raises(WeightsError) as err:
        load_strict(Stack(22), wrong, where="w")
    shown = sorted(wrong)[:20]
    assert str(err.value).endswith(
        "shape mismatches (22): "
        + "; ".join(f"{k}: checkpoint (3, 3) vs model (2, 2)" for k in shown)
        + "; ... (22 in all)"
    )
