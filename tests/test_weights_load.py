"""The safe checkpoint loader: tensors come back unchanged, pickled code is refused by default."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from agomni.errors import UnsafeCheckpointError, WeightsError
from agomni.weights import load_checkpoint, load_state_dict, unwrap_state_dict

EXECUTED: list[str] = []


def _mark_executed(tag: str) -> str:
    EXECUTED.append(tag)
    return tag


class Payload:
    """Unpickling this calls `_mark_executed`: the code execution the safe loader must refuse."""

    def __reduce__(self):
        return (_mark_executed, ("payload ran",))


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "conv.weight": torch.randn(4, 3, 3, generator=g),
        "conv.bias": torch.arange(4.0),
        "n": torch.tensor(7),
    }


def _assert_same(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key].dtype == value.dtype and torch.equal(got[key], value), key


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".ckpt", ".bin"])
def test_plain_tensor_dict_from_torch_file(tmp_path, suffix):
    path = tmp_path / f"w{suffix}"
    torch.save(_tensors(), path)
    _assert_same(load_state_dict(path), _tensors())


def test_plain_tensor_dict_from_safetensors(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file(_tensors(), str(path))
    got = load_state_dict(path)
    _assert_same(got, _tensors())
    assert all(t.device.type == "cpu" for t in got.values())


class SystemCall:
    """Unpickles as a call of os.system (never run: the loader must refuse it)."""

    def __reduce__(self):
        return (os.system, ("exit 0",))


def test_custom_class_pickle_is_refused_without_running_it(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2), "extra": Payload()}, path)
    EXECUTED.clear()
    with pytest.raises(UnsafeCheckpointError) as info:
        load_state_dict(path)
    assert EXECUTED == []
    message = str(info.value)
    assert str(path) in message and "_mark_executed" in message and "allow_pickle=True" in message
    assert "refused for safety" in message and "--allow-pickle" not in message  # no CLI offers that option


def test_blocked_module_global_is_refused_for_safety_and_named(tmp_path):
    """torch's other wording ("Trying to load unsupported GLOBAL posix.system whose module posix is
    blocked") is a refusal too, naming the global, not "an unreadable checkpoint"."""
    path = tmp_path / "system.pt"
    torch.save({"w": torch.zeros(2), "extra": SystemCall()}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"refused for safety.*global (posix|os|nt)\.system"):
        load_state_dict(path)


def test_allow_pickle_is_an_explicit_opt_in(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(2), "extra": Payload()}, path)
    EXECUTED.clear()
    obj = load_checkpoint(path, allow_pickle=True)
    assert EXECUTED == ["payload ran"] and obj["extra"] == "payload ran"
    assert torch.equal(obj["w"], torch.ones(2))


def test_numpy_scalar_metadata_needs_allow_pickle(tmp_path):
    # LAION-CLAP checkpoints store numpy scalars next to the state dict
    path = tmp_path / "clap.pt"
    torch.save({"state_dict": _tensors(), "epoch": np.float64(15.0)}, path)
    with pytest.raises(UnsafeCheckpointError, match="numpy"):
        load_state_dict(path, key="state_dict")
    _assert_same(load_state_dict(path, key="state_dict", allow_pickle=True), _tensors())


def test_wrappers_unwrap_explicitly_or_when_unambiguous(tmp_path):
    path = tmp_path / "panns.pth"
    torch.save({"model": _tensors(), "iteration": 560000}, path)
    _assert_same(load_state_dict(path), _tensors())
    _assert_same(load_state_dict(path, key="model"), _tensors())
    with pytest.raises(WeightsError, match="no 'state_dict' entry; top-level keys: 'model', 'iteration'"):
        load_state_dict(path, key="state_dict")


def test_ambiguous_or_foreign_contents_are_errors():
    with pytest.raises(WeightsError, match="no unambiguous state dict"):
        unwrap_state_dict({"model": _tensors(), "state_dict": _tensors()})
    with pytest.raises(
        WeightsError, match=r"wrapper keys holding tensors: none.*top-level keys: 'w', 'dims'"
    ):
        unwrap_state_dict({"w": torch.zeros(1), "dims": {"n_mels": 128}})
    with pytest.raises(WeightsError, match=r"\['model'\]: entries that are not named tensors: 'dims'"):
        unwrap_state_dict({"model": {"w": torch.zeros(1), "dims": {"n_mels": 128}}}, key="model")
    with pytest.raises(WeightsError, match="not a mapping"):
        unwrap_state_dict([torch.zeros(1)])


def test_whisper_layout(tmp_path):
    path = tmp_path / "large-v3.pt"
    torch.save({"dims": {"n_mels": 128, "n_audio_layer": 32}, "model_state_dict": _tensors()}, path)
    _assert_same(load_state_dict(path, key="model_state_dict"), _tensors())
    assert load_checkpoint(path)["dims"] == {"n_mels": 128, "n_audio_layer": 32}


def test_unreadable_files_are_weights_errors_not_unsafe(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(WeightsError, match="not a torch checkpoint") as info:
        load_state_dict(garbage)
    assert not isinstance(info.value, UnsafeCheckpointError)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(WeightsError, match="safetensors"):
        load_state_dict(broken)
    onnx = tmp_path / "x.onnx"
    onnx.write_bytes(b"x")
    with pytest.raises(WeightsError, match="unknown checkpoint format"):
        load_state_dict(onnx)
    with pytest.raises(WeightsError, match="no such checkpoint file"):
        load_state_dict(tmp_path / "absent.pt")


def test_truncated_torch_zip_is_a_weights_error(tmp_path):
    path = tmp_path / "cut.pt"
    torch.save(_tensors(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError) as info:
        load_state_dict(path)
    assert not isinstance(info.value, UnsafeCheckpointError)
