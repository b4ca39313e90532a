"""Checkpoint selection for the frozen conditioner encoders, from the weights registry.

Each encoder keeps the parameter names of its published checkpoint (so a checkpoint loads without a
renaming table) and takes only the sub-tree it uses: `select` cuts a prefix and refuses keys outside
the documented ignored prefixes; `agomni.weights.load_strict` then lists every missing, unexpected and
mis-shaped key.
Files come from `agomni.weights.resolve` (cached, re-hashed; OfflineError with the import
instructions when offline and absent) and load without pickled code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from ... import weights
from ...errors import WeightsError


def _listing(keys: Iterable[str], limit: int = 12) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def select(
    state: Mapping[str, torch.Tensor], prefix: str, ignored: tuple[str, ...], where: str
) -> dict[str, torch.Tensor]:
    """The entries under `prefix` (prefix removed); WeightsError for a key neither under it nor ignored."""
    chosen = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    stray = [k for k in state if not k.startswith(prefix) and not k.startswith(ignored)]
    if stray:
        raise WeightsError(f"{where}: unexpected keys outside {prefix!r}: {_listing(stray)}")
    if not chosen:
        raise WeightsError(f"{where}: no keys under {prefix!r}; found: {_listing(state)}")
    return chosen


def registry_state(name: str) -> tuple[dict[str, torch.Tensor], str]:
    """(tensors, SHA-256) of registry entry `name`: resolved (verified; OfflineError when offline and
    not cached) and loaded without pickled code."""
    state = weights.load_entry_state_dict(name)
    return state, weights.sha256_of(name)
