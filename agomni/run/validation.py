"""Per-item flow-matching validation loss of a toy-trained checkpoint on a held-out manifest.

The recipe is the training run's (`agomni.model.train.validation`): held-out examples encoded with the
checkpoint's own tiny VAE and frozen stand-in conditioners, normalised with the checkpoint's latent
statistics, and ONE set of seeded draws (`fixed_draws` with the config's validation seed and
``times_per_item``) for all items. Here the per-sample velocity MSEs are kept per item (the mean of an
item's draws), so comparisons get a paired bootstrap over items; the mean over items equals
`validation_loss` on the same set (tested). Unit: mean squared velocity error in normalised latent
units squared; lower is better.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from agomni.errors import UsageError
from agomni.model.checkpoint import Checkpoint, build_network, file_sha256, latent_stats
from agomni.model.train.config import parse_train_config
from agomni.model.train.data import Conditioners, ExampleSet, LatentStats, cached_examples
from agomni.model.train.objective import conditions_kwargs, velocity_mse
from agomni.model.train.prepare import load_tiny_codec
from agomni.model.train.validation import fixed_draws

METRIC = "fm_validation_loss"
UNIT = "velocity MSE (normalised latent units^2)"


def heldout_examples(
    checkpoint: Checkpoint, manifest: Path, cache_dir: Path
) -> tuple[ExampleSet, LatentStats]:
    """The manifest's examples as the checkpoint's training run encoded them, and its latent stats."""
    train_config = checkpoint.extra.get("train_config")
    stats = latent_stats(checkpoint)
    vae = (checkpoint.meta.get("codec") or {}).get("vae") or {}
    if train_config is None or stats is None or "file" not in vae:
        raise UsageError(
            f"{checkpoint.path}: not a toy-trained checkpoint (no train_config, latent statistics and tiny "
            "VAE); the flow-matching validation loss needs them"
        )
    cfg = parse_train_config(train_config, f"{checkpoint.path} extra.train_config")
    vae_path = Path(checkpoint.path).parent / vae["file"]
    codec, _ = load_tiny_codec(vae_path, cfg.codec.griffin_lim_iterations)
    conditioners = Conditioners.random_standins(
        checkpoint.config, cfg.conditioners.seed, cfg.conditioners.text_tokens
    )
    examples = cached_examples(
        manifest, codec, file_sha256(vae_path), conditioners, checkpoint.config, cache_dir
    )
    return examples, LatentStats(mean=stats[0], std=stats[1])


@torch.no_grad()
def per_item_losses(checkpoint: Checkpoint, examples: ExampleSet, stats: LatentStats) -> dict[str, float]:
    """{item id: mean velocity MSE over its fixed draws} (module docstring)."""
    validation = checkpoint.extra["train_config"]["validation"]
    seed, times, batch_size = int(validation["seed"]), int(validation["times_per_item"]), 32
    model = build_network(checkpoint)
    x1_all = stats.normalise(examples["latent_mean"])
    index, t_all, x0_all = fixed_draws(len(examples), times, tuple(x1_all.shape[1:]), seed)
    losses = torch.zeros(len(index), dtype=torch.float64)
    for start in range(0, len(index), batch_size):
        idx = index[start : start + batch_size]
        batch = examples.select(idx)
        stop = start + len(idx)
        kwargs = conditions_kwargs(batch, batch["presence"])
        losses[start:stop] = velocity_mse(
            model, x1_all[idx], x0_all[start:stop], t_all[start:stop], kwargs
        ).double()
    per_item = losses.view(len(examples), times).mean(dim=1)
    return {item_id: float(v) for item_id, v in zip(examples.ids, per_item, strict=True)}


def describe(checkpoint: Checkpoint, n_items: int) -> dict[str, Any]:
    validation = checkpoint.extra["train_config"]["validation"]
    return {
        "recipe": "agomni.model.train.validation fixed draws, per-item mean of the per-draw velocity MSE",
        "seed": validation["seed"],
        "times_per_item": validation["times_per_item"],
        "items": n_items,
        "unit": UNIT,
        "higher_is_better": False,
        "checkpoint_sha256": checkpoint.sha256,
        "recorded_in_checkpoint": (checkpoint.extra.get("validation") or {}).get("loss"),
    }
