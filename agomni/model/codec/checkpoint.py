"""Reading the codec parts' safetensors files (no pickle); strict loading is `agomni.weights.load_strict`."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

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
    try:
        return load_file(str(p), device="cpu")
    except Exception as exc:  # safetensors raises its own SafetensorError for a corrupt header
        raise WeightsError(f"{p}: not a readable safetensors file ({exc})") from exc
