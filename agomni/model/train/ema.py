"""Exponential moving average of the network weights (the weights a checkpoint ships)."""

from __future__ import annotations

import torch
from torch import nn

from ...errors import WeightsError


def ema_decay(update: int, decay: float) -> float:
    """Decay of update `update` (0-based): min(decay, (1 + update) / (10 + update)) (the warm-up of
    TensorFlow's ExponentialMovingAverage with num_updates), so early EMAs are not stuck at the init."""
    return min(decay, (1 + update) / (10 + update))


class EMA:
    """shadow <- d * shadow + (1 - d) * weight after each optimizer step, d = `ema_decay(k, decay)`.

    The shadow holds a float32 copy of every parameter AND buffer of the model's state dict (buffers are
    copied, not averaged). `updates` counts the updates done (saved for exact resume).
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
        self._params = {name for name, _ in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> float:
        """Fold the model's current weights in; returns the decay used."""
        d = ema_decay(self.updates, self.decay)
        for name, value in model.state_dict().items():
            if name in self._params:
                self.shadow[name].mul_(d).add_(value.detach().float(), alpha=1 - d)
            else:
                self.shadow[name].copy_(value)
        self.updates += 1
        return d

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights, keyed like the model's state dict (CPU tensors)."""
        return {k: v.detach().cpu() for k, v in self.shadow.items()}

    def load(self, shadow: dict[str, torch.Tensor], updates: int) -> None:
        missing = set(self.shadow) ^ set(shadow)
        if missing:
            raise WeightsError(f"training state: EMA keys differ from the model: {sorted(missing)[:5]}")
        for k, v in shadow.items():
            self.shadow[k].copy_(v)
        self.updates = updates
