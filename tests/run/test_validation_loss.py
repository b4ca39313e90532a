"""Per-item flow-matching validation losses: each item's value is the mean velocity MSE of its own fixed
draws, computed here item by item (unbatched) with the training loss, and the final checkpoint beats
the early one."""

from pathlib import Path

import numpy as np
import pytest
import torch

from agomni.model.checkpoint import build_network, load_model_checkpoint
from agomni.model.flow_matching import velocity_mse
from agomni.model.train.objective import conditions_kwargs
from agomni.model.train.validation import fixed_draws
from agomni.run.validation import heldout_examples, per_item_losses
from agomni.toycorpus import build_corpus

CHECKPOINTS = Path(__file__).resolve().parents[2] / "agomni/model/checkpoints"


@pytest.mark.slow  # encodes 6 toy items (3 videos) with the tiny VAE and stand-in conditioners (about 20 s)
def test_per_item_losses_equal_item_by_item_computation_and_rank_the_checkpoints(tmp_path):
    manifest = build_corpus(tmp_path / "toy", n_train=1, n_heldout=1)["heldout"]
    means = {}
    for name in ("tiny-16k-toy-early", "tiny-16k-toy"):
        ckpt = load_model_checkpoint(CHECKPOINTS / f"{name}.safetensors")
        examples = heldout_examples(ckpt, manifest, tmp_path / "cache")
        losses = per_item_losses(ckpt, examples)
        assert list(losses) == list(examples.ids)
        validation = ckpt.extra["train_config"]["validation"]
        seed, times = int(validation["seed"]), int(validation["times_per_item"])
        model = build_network(ckpt)
        with torch.no_grad():
            x1 = model.normalize(examples["latent_mean"])
            _, t, x0 = fixed_draws(len(examples), times, tuple(x1.shape[1:]), seed)
            for i, item_id in enumerate(examples.ids):
                draws = slice(i * times, (i + 1) * times)
                batch = examples.select(torch.full((times,), i))
                kwargs = conditions_kwargs(batch, batch["presence"])
                expected = velocity_mse(model, x1[[i] * times], x0[draws], t[draws], kwargs).double().mean()
                assert losses[item_id] == pytest.approx(float(expected), rel=1e-5)
        means[name] = np.mean(list(losses.values()))
    assert means["tiny-16k-toy"] < means["tiny-16k-toy-early"]
