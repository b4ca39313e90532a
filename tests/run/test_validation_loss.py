"""Per-item flow-matching validation losses average to the training run's validation_loss."""

from pathlib import Path

import numpy as np
import pytest

from agomni.model.checkpoint import build_network, load_checkpoint
from agomni.model.train.validation import validation_loss
from agomni.run.validation import heldout_examples, per_item_losses
from agomni.toycorpus import build_corpus

CHECKPOINTS = Path(__file__).resolve().parents[2] / "agomni/model/checkpoints"


@pytest.mark.slow  # encodes 6 toy items (3 videos) with the tiny VAE and stand-in conditioners (about 20 s)
def test_per_item_losses_average_to_validation_loss_and_rank_the_checkpoints(tmp_path):
    manifest = build_corpus(tmp_path / "toy", n_train=1, n_heldout=1)["heldout"]
    means = {}
    for name in ("tiny-16k-toy-early", "tiny-16k-toy"):
        ckpt = load_checkpoint(CHECKPOINTS / f"{name}.safetensors")
        examples, stats = heldout_examples(ckpt, manifest, tmp_path / "cache")
        losses = per_item_losses(ckpt, examples, stats)
        assert list(losses) == list(examples.ids)
        reference = validation_loss(build_network(ckpt), examples, stats, seed=1234, times_per_item=4)
        assert np.mean(list(losses.values())) == pytest.approx(reference, rel=1e-6)
        means[name] = reference
    assert means["tiny-16k-toy"] < means["tiny-16k-toy-early"]
