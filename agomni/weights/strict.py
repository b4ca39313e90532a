"""Strict state-dict loading: every key exactly once with its shape, or one WeightsError listing them all.

The single loader used by the metric embedders, the codec, the generation network and the frozen
conditioner encoders. Unlike ``nn.Module.load_state_dict(strict=True)``, which stops at the first
size mismatch, the error lists every missing key, unexpected key and shape mismatch (sorted, at most
`MAX_LISTED` per category), so a wrong or edited checkpoint is diagnosed in one go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from agomni.errors import WeightsError

MAX_LISTED = 20


def _listing(items: Sequence[str], separator: str) -> str:
    shown = separator.join(items[:MAX_LISTED])
    return shown + (f"{separator}... ({len(items)} in all)" if len(items) > MAX_LISTED else "")


def load_strict(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    where: str,
    optional_suffixes: tuple[str, ...] = (),
    assign: bool = False,
) -> None:
    """Load `state` into `module`, requiring exactly the module's keys with the module's shapes.

    Args:
        module: the network to fill (its ``state_dict()`` keys, shapes and dtypes are the reference).
        state: checkpoint tensors by key. Each tensor is cast to the dtype of the module's own entry for
            that key (what ``load_state_dict`` does when copying, so e.g. a float16 checkpoint loads into
            a float32 network, and a float64 module keeps full precision).
        where: the checkpoint's path or description, first in the error message.
        optional_suffixes: keys of the module ending in one of these may be absent from `state`; they
            keep the module's current value (e.g. BatchNorm's ``num_batches_tracked``).
        assign: adopt the (cast) tensors instead of copying them, for a module built on the meta device
            (no random initialisation, no second copy).

    Raises:
        WeightsError: ``"<where>: the state dict does not fit <ModuleClass>: missing keys (n): a, b |
            unexpected keys (n): ... | shape mismatches (n): key: checkpoint (..) vs model (..)"``,
            naming every problem category present, each listing at most 20 sorted keys then
            ``"... (N in all)"``. Nothing is loaded in that case.
    """
    own = module.state_dict()
    missing = sorted(k for k in own if k not in state and not k.endswith(optional_suffixes))
    unexpected = sorted(k for k in state if k not in own)
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(k for k in state if k in own)
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = [
        f"{label} ({len(items)}): {_listing(items, separator)}"
        for label, items, separator in (
            ("missing keys", missing, ", "),
            ("unexpected keys", unexpected, ", "),
            ("shape mismatches", shapes, "; "),
        )
        if items
    ]
    if problems:
        raise WeightsError(
            f"{where}: the state dict does not fit {type(module).__name__}: " + " | ".join(problems)
        )
    merged = {**own, **{k: v.to(own[k].dtype) for k, v in state.items()}}
    module.load_state_dict(merged, strict=True, assign=assign)


__all__ = ["MAX_LISTED", "load_strict"]
