"""Per-item flow-matching validation loss of a toy-trained checkpoint on a held-out manifest.

The recipe is the training run's (`agomni.model.train.validation`): held-out examples encoded with the
checkpoint's own codec (its tiny VAE) and conditioners, normalised by the network's latent statistics,
and ONE set of seeded draws (the config's validation seed and ``times_per_item``) for all items. The
per-item values are `per_item_validation_losses`, whose mean is the training run's `validation_loss`,
so comparisons get a paired bootstrap over items. Unit: mean squared velocity error in normalised
latent units squared; lower is better.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agomni.errors import UsageError
from agomni.model.checkpoint import Checkpoint, build_network, load_codec
from agomni.model.conditioning import build_conditioners
from agomni.model.train.data import ExampleSet, cached_examples
from agomni.model.train.validation import per_item_validation_losses

METRIC = "fm_validation_loss"
UNIT = "velocity MSE (normalised latent units^2)"


def _validation_settings(checkpoint: Checkpoint) -> dict[str, Any]:
    validation = (checkpoint.extra.get("train_config") or {}).get("validation")
    vae = checkpoint.meta["codec"]["vae"] or {}
    if validation is None or checkpoint.latent_stats is None or "sha256" not in vae:
        raise UsageError(
            f"{checkpoint.path}: not a toy-trained checkpoint (no train_config.validation, latent statistics "
            "and VAE file); the flow-matching validation loss needs them"
        )
    return validation


def heldout_examples(checkpoint: Checkpoint, manifest: Path, cache_dir: Path) -> ExampleSet:
    """The manifest's examples as the checkpoint's training run encoded them (cached under cache_dir)."""
    _validation_settings(checkpoint)
    conditioners = build_conditioners(checkpoint.conditioners, checkpoint.config)
    vae_sha256 = checkpoint.meta["codec"]["vae"]["sha256"]
    return cached_examples(
        manifest, load_codec(checkpoint), vae_sha256, conditioners, checkpoint.config, cache_dir
    )


def per_item_losses(checkpoint: Checkpoint, examples: ExampleSet) -> dict[str, float]:
    """{item id: mean velocity MSE over its fixed draws} (module docstring)."""
    validation = _validation_settings(checkpoint)
    losses = per_item_validation_losses(
        build_network(checkpoint),
        examples,
        seed=int(validation["seed"]),
        times_per_item=int(validation["times_per_item"]),
    )
    return {item_id: float(v) for item_id, v in zip(examples.ids, losses, strict=True)}


def describe(checkpoint: Checkpoint, n_items: int) -> dict[str, Any]:
    validation = _validation_settings(checkpoint)
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
