"""Load checkpoints without executing pickled code.

``.safetensors`` files load with safetensors.torch. ``.pt``, ``.pth``, ``.ckpt``, ``.bin``, ``.model``
and ``.tar`` (NISQA names its torch.save zip files so; a real tar archive is refused) files load with ``torch.load(weights_only=True, map_location="cpu")``, whose unpickler only
rebuilds tensors and plain containers. A checkpoint that needs anything else (a custom class, numpy
scalars, a function) raises UnsafeCheckpointError naming the offending global; pass
``allow_pickle=True`` (from Python; no command offers it) only for a file from a source you trust, since full
unpickling can run arbitrary code.

Wrappers: many checkpoints nest the tensors, e.g. ``{"model": state_dict, "iteration": ...}``
(PANNs, UniSpeech, s3prl), ``{"state_dict": ...}`` (LAION-CLAP), ``{"model_state_dict": ..., "dims":
...}`` (Whisper). `load_state_dict` unwraps exactly the key it is told to (each registry entry names
its ``state_dict_key``), or, without a key, a top-level mapping of tensors as is, or else the single
one of ``state_dict`` / ``model`` / ``model_state_dict`` / ``module`` that holds a mapping of tensors.
Anything else is an error that lists the keys found, never a guess.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UnsafeCheckpointError, WeightsError

# .tar: torch.save files published under that name (NISQA, torchopenl3)
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".model", ".tar")
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")
#: The global torch's weights-only unpickler refused, in each wording torch has used ("Unsupported global:
#: GLOBAL x.y was not an allowed global", "Trying to load unsupported GLOBAL x.y whose module x is blocked").
_UNSUPPORTED_GLOBAL = re.compile(r"\bGLOBAL ([A-Za-z_][\w.]*)")

if TYPE_CHECKING:  # torch is imported when a checkpoint is loaded, so `agomni weights list` stays quick
    import torch


def _looks_like_torch_file(path: Path) -> bool:
    """Zip-based torch.save (>= 1.6) or the legacy format, which starts with a pickle protocol opcode."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"


def load_checkpoint(path: str | Path, *, allow_pickle: bool = False) -> Any:
    """The raw object stored in a checkpoint file, on the CPU, loaded without pickled code by default."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such checkpoint file")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise WeightsError(f"{path}: not a readable safetensors file ({err})") from err
    if suffix not in TORCH_SUFFIXES:
        raise WeightsError(
            f"{path}: unknown checkpoint format {suffix!r}; expected .safetensors or one of {TORCH_SUFFIXES}"
        )
    if not _looks_like_torch_file(path):
        raise WeightsError(f"{path}: not a torch checkpoint (neither a torch zip archive nor a pickle)")
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = _UNSUPPORTED_GLOBAL.search(str(err))
        if found is None:
            raise WeightsError(f"{path}: unreadable torch checkpoint ({str(err).splitlines()[-1]})") from err
        if not allow_pickle:
            raise UnsafeCheckpointError(
                f"{path}: refused for safety: loading it would execute pickled code (it needs the global "
                f"{found.group(1)}). "
                "If you trust its source, load it from Python with allow_pickle=True "
                "(agomni.weights.load_state_dict), which runs full unpickling, or convert it once to "
                ".safetensors"
            ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile) as err:
        raise WeightsError(f"{path}: unreadable torch checkpoint ({err})") from err
    return torch.load(path, map_location="cpu", weights_only=False)


def _is_tensor_mapping(obj: Any) -> bool:
    import torch

    return (
        isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


def _describe_keys(obj: Mapping) -> str:
    keys = list(obj)
    shown = ", ".join(repr(k) for k in keys[:12])
    return shown + (f", ... ({len(keys)} keys)" if len(keys) > 12 else "")


def unwrap_state_dict(
    obj: Any, *, key: str | None = None, where: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """The ``{name: tensor}`` mapping inside a loaded checkpoint (see the module docstring for the rules)."""
    import torch

    if not isinstance(obj, Mapping):
        raise WeightsError(f"{where}: holds a {type(obj).__name__}, not a mapping of tensors")
    if key is not None:
        if key not in obj:
            raise WeightsError(f"{where}: no {key!r} entry; top-level keys: {_describe_keys(obj)}")
        inner = obj[key]
        if not isinstance(inner, Mapping):
            raise WeightsError(f"{where}: {key!r} holds a {type(inner).__name__}, not a mapping of tensors")
        obj, where = inner, f"{where}[{key!r}]"
    elif not _is_tensor_mapping(obj):
        candidates = [k for k in WRAPPER_KEYS if _is_tensor_mapping(obj.get(k))]
        if len(candidates) != 1:
            raise WeightsError(
                f"{where}: no unambiguous state dict (wrapper keys holding tensors: {candidates or 'none'}); "
                f"top-level keys: {_describe_keys(obj)}. Name the key explicitly (key=...)"
            )
        obj, where = obj[candidates[0]], f"{where}[{candidates[0]!r}]"
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{where}: entries that are not named tensors: {', '.join(map(repr, bad[:8]))}")
    if not obj:
        raise WeightsError(f"{where}: empty state dict")
    return dict(obj)


def load_state_dict(
    path: str | Path, *, allow_pickle: bool = False, key: str | None = None
) -> dict[str, torch.Tensor]:
    """Load a checkpoint file as ``{parameter name: CPU tensor}``.

    `key` names the wrapper entry to unwrap (see the registry's ``state_dict_key``). Refuses files
    that need pickled code unless `allow_pickle` is True (UnsafeCheckpointError).
    """
    return unwrap_state_dict(load_checkpoint(path, allow_pickle=allow_pickle), key=key, where=str(path))
