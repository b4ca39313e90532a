"""Learning-rate schedule: linear warm-up, then constant or cosine decay."""

from __future__ import annotations

import math

from .config import OptimizerSection


def learning_rate(step: int, opt: OptimizerSection, max_steps: int) -> float:
    """Learning rate of the update made at `step` (0-based).

    Warm-up: lr * (step + 1) / warmup_steps for step < warmup_steps. After it, "constant": lr;
    "cosine": lr * (r + (1 - r) * (1 + cos(pi * p)) / 2) with r = min_lr_ratio and
    p = (step - warmup_steps) / max(1, max_steps - warmup_steps) clipped to [0, 1].
    """
    if step < opt.warmup_steps:
        return opt.lr * (step + 1) / opt.warmup_steps
    if opt.schedule == "constant":
        return opt.lr
    progress = min(1.0, (step - opt.warmup_steps) / max(1, max_steps - opt.warmup_steps))
    r = opt.min_lr_ratio
    return opt.lr * (r + (1 - r) * 0.5 * (1 + math.cos(math.pi * progress)))
