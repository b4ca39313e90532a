"""Acceptance of the shipped tiny checkpoints: on a freshly built toy corpus' held-out split, the final
checkpoint's fixed-draw validation loss is below the early one's, and both equal their json values
(the sidecars were converted to the current format; weights and held-out loss are unchanged)."""

from __future__ import annotations

import json

import pytest

from agomni.model.checkpoint import build_network, file_sha256, load_model_checkpoint
from agomni.model.checkpoints import TOY_EARLY, TOY_FINAL, TOY_VAE
from agomni.model.conditioning import build_conditioners
from agomni.model.train.data import build_examples
from agomni.model.train.prepare import load_tiny_codec
from agomni.model.train.validation import validation_loss
from agomni.toycorpus import build_corpus

# SHA-256 of the shipped weight files as first committed; converting the sidecars must not touch them.
SHIPPED_WEIGHTS = {
    TOY_FINAL: "8eba3570b4f6ca21b6a43b7697755099e77fe946b27b98ef2e805fabac38d3bb",
    TOY_EARLY: "41c37735099e8eb7b8cea9c6c40a183941b6e16b224a1d90c1ca79a0c5feb2c9",
}


def test_shipped_weights_are_unchanged_and_the_sidecars_record_them():
    for stem, sha256 in SHIPPED_WEIGHTS.items():
        assert file_sha256(stem.with_name(stem.name + ".safetensors")) == sha256
        meta = json.loads(stem.with_name(stem.name + ".json").read_text())
        assert meta["sha256"] == sha256 and meta["format"] == "agomni-mmdit-checkpoint/2"


@pytest.mark.slow
def test_final_checkpoint_beats_the_early_one_on_fresh_heldout_data(tmp_path):
    early = load_model_checkpoint(TOY_EARLY, expected_size="tiny-16k")
    final = load_model_checkpoint(TOY_FINAL)
    assert early.step < final.step
    meta = final.meta["extra"]
    toy, train_cfg = meta["corpus"]["toycorpus"], meta["train_config"]
    # The held-out split does not depend on n_train, so a 1-item train split keeps this test short.
    manifests = build_corpus(
        tmp_path, seed=toy["seed"], n_train=1, n_heldout=toy["n_heldout"], duration=toy["duration"]
    )
    codec, _ = load_tiny_codec(TOY_VAE, train_cfg["codec"]["griffin_lim_iterations"])
    assert (
        final.meta["codec"]["vae"]["sha256"] == early.meta["codec"]["vae"]["sha256"] == file_sha256(TOY_VAE)
    )
    assert final.conditioners.text_length == train_cfg["conditioners"]["text_tokens"]
    conditioners = build_conditioners(final.conditioners, final.config)
    heldout = build_examples(manifests["heldout"], codec, conditioners, final.config)
    assert heldout.manifest_sha256 == meta["validation"]["heldout_manifest_sha256"]  # the same bytes
    val = train_cfg["validation"]
    losses = {}
    for name, ckpt in (("early", early), ("final", final)):
        losses[name] = validation_loss(
            build_network(ckpt), heldout, seed=val["seed"], times_per_item=val["times_per_item"]
        )
        assert losses[name] == pytest.approx(ckpt.meta["extra"]["validation"]["loss"], rel=1e-4)
    assert losses["final"] < losses["early"]
