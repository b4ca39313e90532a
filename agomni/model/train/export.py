"""Copy a run's checkpoint (EMA weights) and its tiny VAE under new names, e.g. into agomni/model/checkpoints/.

`export_checkpoint` re-saves through agomni.model.checkpoint.save_checkpoint (so the sidecar's
sha256 and weights_file name the new file), keeping the step, config, codec and extra metadata and
adding ``extra.exported_from`` (the run's checkpoint path and SHA-256). With ``float16=True`` the
weights are stored as float16 (half the bytes; they load into the float32 network) and the held-out
validation loss is recomputed with the stored weights on the run's cached held-out examples, so the
json's ``extra.validation.loss`` is the loss of exactly the shipped tensors; the float32 value is kept
as ``extra.validation.loss_float32``. The training state (.train.*) is not exported: a shipped
checkpoint is for generation and evaluation, not for resuming.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from ..checkpoint import build_network, load_model_checkpoint, save_checkpoint
from .config import parse_train_config
from .prepare import VAE_STEM, prepare_run
from .validation import validation_loss


def export_checkpoint(source: str | Path, target: str | Path, *, float16: bool = False) -> Path:
    """Re-save checkpoint `source` (<run>/checkpoints/step-N) as `target` (stem) and copy <run>/vae/
    tiny-vae-16k.* beside it (the name the checkpoint's codec entry refers to). Returns the weights path."""
    ckpt = load_model_checkpoint(source)
    run_dir = Path(ckpt.path).parent.parent
    extra = {**ckpt.meta["extra"], "exported_from": {"path": str(ckpt.path), "sha256": ckpt.sha256}}
    state = ckpt.network_state
    if float16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        ckpt.network_state = state
        cfg = parse_train_config(extra["train_config"], f"{ckpt.path} extra.train_config")
        prepared = prepare_run(cfg, run_dir, log=lambda message: None)
        v = cfg.validation
        with torch.no_grad():
            loss = validation_loss(
                build_network(ckpt),
                prepared.heldout,
                seed=v.seed,
                times_per_item=v.times_per_item,
                batch_size=v.batch_size,
            )
        validation = {**extra["validation"], "loss": loss, "loss_float32": extra["validation"]["loss"]}
        extra.update(validation=validation, stored_dtype="float16 (cast from the float32 EMA at export)")
    codec = ckpt.meta["codec"]
    codec = {**codec, "vae": {**codec["vae"], "file": f"{VAE_STEM}.safetensors"}}
    out = save_checkpoint(
        target,
        network_state=state,
        config=ckpt.config,
        step=ckpt.step,
        codec=codec,
        conditioners=ckpt.conditioners,
        latent_stats=ckpt.latent_stats,
        random_weights=ckpt.random_weights,
        extra=extra,
    )
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(run_dir / "vae" / f"{VAE_STEM}{suffix}", out.parent / f"{VAE_STEM}{suffix}")
    return out
