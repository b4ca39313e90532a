"""Held-out flow-matching validation loss with FIXED times and noise, so checkpoints compare fairly.

Recipe (ours): for held-out example i (posterior-mean latent, normalised by the network's latent
statistics,
the item's own modalities, no dropout) and draw k < times_per_item, t and x0 come from ONE
torch.Generator seeded with `seed`, drawn once for all (i, k) in this order: t = sigmoid(N(0, 1)) for
all M * K pairs, then x0 ~ N(0, I) [M * K, T, C]. The loss is the mean over all pairs of the
per-sample velocity MSE, in fp32 on CPU or the given device; lower is better.
"""

from __future__ import annotations

import torch

from ..flow_matching import velocity_mse
from ..network import AgomniMMDiT
from .data import ExampleSet
from .objective import conditions_kwargs


def fixed_draws(n_items: int, times_per_item: int, latent_shape: tuple[int, int], seed: int):
    """(item index [M K], t [M K], x0 [M K, T, C]) for the validation recipe (module docstring)."""
    gen = torch.Generator().manual_seed(seed)
    count = n_items * times_per_item
    t = torch.sigmoid(torch.randn(count, generator=gen))
    x0 = torch.randn(count, *latent_shape, generator=gen)
    return torch.arange(n_items).repeat_interleave(times_per_item), t, x0


@torch.no_grad()
def per_item_validation_losses(
    model: AgomniMMDiT,
    examples: ExampleSet,
    *,
    seed: int,
    times_per_item: int,
    batch_size: int = 32,
) -> torch.Tensor:
    """Float64 [M]: each held-out item's mean velocity MSE over its fixed draws (module docstring)."""
    was_training = model.training
    model.eval()
    device = model.null_video.device
    x1_all = model.normalize(examples["latent_mean"].to(device)).cpu()
    index, t_all, x0_all = fixed_draws(len(examples), times_per_item, tuple(x1_all.shape[1:]), seed)
    losses = torch.zeros(len(index), dtype=torch.float64)
    for start in range(0, len(index), batch_size):
        idx = index[start : start + batch_size]
        batch = {k: v.to(device) for k, v in examples.select(idx).items()}
        kwargs = conditions_kwargs(batch, batch["presence"])
        loss = velocity_mse(
            model,
            x1_all[idx].to(device),
            x0_all[start : start + batch_size].to(device),
            t_all[start : start + batch_size].to(device),
            kwargs,
        )
        losses[start : start + len(idx)] = loss.double().cpu()
    model.train(was_training)
    return losses.view(len(examples), times_per_item).mean(dim=1)


def validation_loss(
    model: AgomniMMDiT,
    examples: ExampleSet,
    *,
    seed: int,
    times_per_item: int,
    batch_size: int = 32,
) -> float:
    """Mean velocity MSE (normalised-latent units squared) over the held-out set (module docstring):
    the mean of `per_item_validation_losses` (every item has the same number of draws)."""
    per_item = per_item_validation_losses(
        model, examples, seed=seed, times_per_item=times_per_item, batch_size=batch_size
    )
    return float(per_item.mean())
