"""The flow-matching objective on explicit noise and times (so that the draws can be fixed or sharded).

Same recipe as agomni.model.flow_matching.flow_matching_loss (rectified flow, MMAudio): x_t =
(1 - t) x0 + t x1, target x1 - x0, per-sample mean squared error; here x0 and t are arguments.
"""

from __future__ import annotations

import torch
from torch import nn

from ..flow_matching import interpolate
from ..network import ModalityPresence


def conditions_kwargs(batch: dict[str, torch.Tensor], presence: torch.Tensor) -> dict[str, object]:
    """Keyword arguments of AgomniMMDiT.forward for a batch of cached examples and presence [B, 3] bool."""
    return {
        "clip_f": batch["clip"],
        "sync_f": batch["sync"],
        "text_f": batch["text"],
        "lt_ids": batch["lt_ids"],
        "presence": ModalityPresence(video=presence[:, 0], text=presence[:, 1], lt=presence[:, 2]),
    }


def velocity_mse(
    model: nn.Module, x1: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, kwargs: dict[str, object]
) -> torch.Tensor:
    """(B,) mean over frames and channels of (v(x_t, t) - (x1 - x0))^2; `model` is the network or its DDP."""
    v = model(interpolate(x0, x1, t), t, **kwargs)
    return (v.float() - (x1 - x0)).pow(2).flatten(1).mean(dim=1)
