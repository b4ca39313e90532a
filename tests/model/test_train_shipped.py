"""Acceptance of the shipped tiny checkpoints: on a freshly built toy corpus' held-out split, the final
checkpoint's fixed-draw validation loss is below the early one's, and both equal their json values."""

from __future__ import annotations

import pytest
import torch

from agomni.model.checkpoint import build_network, load_checkpoint
from agomni.model.checkpoints import TOY_EARLY, TOY_FINAL, TOY_VAE
from agomni.model.train.data import Conditioners, LatentStats, build_examples
from agomni.model.train.prepare import load_tiny_codec
from agomni.model.train.validation import validation_loss
from agomni.toycorpus import build_corpus


@pytest.mark.slow
def test_final_checkpoint_beats_the_early_one_on_fresh_heldout_data(tmp_path):
    early, final = load_checkpoint(TOY_EARLY, expected_size="tiny-16k"), load_checkpoint(TOY_FINAL)
    assert early.step < final.step
    meta = final.meta["extra"]
    toy, train_cfg = meta["corpus"]["toycorpus"], meta["train_config"]
    # The held-out split does not depend on n_train, so a 1-item train split keeps this test short.
    manifests = build_corpus(
        tmp_path, seed=toy["seed"], n_train=1, n_heldout=toy["n_heldout"], duration=toy["duration"]
    )
    codec, _ = load_tiny_codec(TOY_VAE, train_cfg["codec"]["griffin_lim_iterations"])
    assert final.meta["codec"]["vae"]["sha256"] == early.meta["codec"]["vae"]["sha256"]
    conditioners = Conditioners.random_standins(
        final.config, train_cfg["conditioners"]["seed"], train_cfg["conditioners"]["text_tokens"]
    )
    assert meta["conditioners"] == conditioners.description
    heldout = build_examples(manifests["heldout"], codec, conditioners, final.config)
    assert heldout.manifest_sha256 == meta["validation"]["heldout_manifest_sha256"]  # the same bytes
    norm = final.meta["codec"]["latent_normalisation"]
    stats = LatentStats(mean=torch.tensor(norm["mean"]), std=torch.tensor(norm["std"]))
    val = train_cfg["validation"]
    losses = {}
    for name, ckpt in (("early", early), ("final", final)):
        losses[name] = validation_loss(
            build_network(ckpt), heldout, stats, seed=val["seed"], times_per_item=val["times_per_item"]
        )
        assert losses[name] == pytest.approx(ckpt.meta["extra"]["validation"]["loss"], rel=1e-4)
    assert losses["final"] < losses["early"]
