"""Cached training examples -> the network's condition arguments (the loss is
`agomni.model.flow_matching.velocity_mse`)."""

from __future__ import annotations

import torch

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
