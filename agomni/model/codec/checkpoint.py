"""Strict state-dict loading for the codec parts, from memory or from a safetensors file (no pickle)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from agomni.errors import WeightsError


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file, on CPU. Never unpickles anything.

    A registry name (not a file) is refused with a message saying to resolve it first.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(
            f"{p}: no such checkpoint file; pass the path of a .safetensors file "
            "(resolve registry names with agomni.weights first)"
        )
    if p.suffix != ".safetensors":
        raise WeightsError(f"{p}: only .safetensors checkpoints are loaded (no pickle); convert it first")
    from safetensors.torch import load_file

    try:
        return load_file(str(p), device="cpu")
    except Exception as exc:  # safetensors raises its own SafetensorError for a corrupt header
        raise WeightsError(f"{p}: not a readable safetensors file ({exc})") from exc


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], *, what: str, source: str) -> None:
    """Copy ``state`` into ``module``; every key must match by name and shape.

    Raises :class:`WeightsError` naming ``what`` and ``source`` and listing every missing key,
    unexpected key and shape mismatch (all of them, not just the first).
    """
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    )
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): {'; '.join(mismatched)}")
    if problems:
        raise WeightsError(f"{source}: {what} state dict does not match the model; " + " | ".join(problems))
    module.load_state_dict(dict(state), strict=True)
