"""pytest-benchmark: tiny-model generation on the CPU (the shipped toy checkpoint, toy-corpus items).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python -m pytest benchmarks/bench_generate.py --benchmark-only``
(not part of the test suite: `testpaths` is tests/). Seconds of wall clock per call, lower is better.
The toy checkpoint's conditioners are random stand-ins, so every output is labelled random_weights.
"""

from __future__ import annotations

import pytest
import torch

from agomni.manifest import load_manifest
from agomni.model.checkpoint import build_network, load_model_checkpoint
from agomni.model.checkpoints import TOY_FINAL
from agomni.model.flow_matching import DEFAULT_CFG, DEFAULT_STEPS, sample
from agomni.model.generate import generate
from agomni.toycorpus import build_corpus


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    return list(load_manifest(build_corpus(root, n_train=1, n_heldout=2, duration=2.0)["heldout"]))


@pytest.fixture(scope="module")
def checkpoint():
    return load_model_checkpoint(TOY_FINAL)


@pytest.mark.parametrize("batch_size", [1, 32])
def test_generate_12_toy_items(benchmark, items, checkpoint, batch_size):
    """`generate` of 12 held-out items (2 per task, 2 s each, the default steps and CFG), items per network
    call."""
    benchmark.extra_info.update(
        items=len(items), batch_size=batch_size, steps=DEFAULT_STEPS, cfg=DEFAULT_CFG, random_weights=True
    )
    outputs = benchmark.pedantic(
        generate, args=(items, checkpoint), kwargs={"batch_size": batch_size}, rounds=2, warmup_rounds=1
    )
    assert len(outputs) == len(items) and all(bool(torch.isfinite(o.wave).all()) for o in outputs)


def test_sampler_default_steps_batch_8(benchmark, checkpoint):
    """`sample` alone: the default Euler steps with CFG for 8 rows of 2 s, all modalities present."""
    network = build_network(checkpoint)
    network.set_duration(2.0)
    seq, cfg = network.sequence, checkpoint.config
    g = torch.Generator().manual_seed(0)
    conditions = network.preprocess_conditions(
        clip_f=torch.randn(8, seq.clip_len, cfg.clip_dim, generator=g),
        sync_f=torch.randn(8, seq.sync_len, cfg.sync_dim, generator=g),
        text_f=torch.randn(8, 64, cfg.text_dim, generator=g),
        lt_ids=torch.randint(1, 200, (8, seq.latent_len), generator=g),
    )
    noise = torch.randn(8, seq.latent_len, cfg.latent_dim, generator=g)
    benchmark.extra_info.update(rows=8, steps=DEFAULT_STEPS, cfg=DEFAULT_CFG, random_weights=True)
    x = benchmark.pedantic(sample, args=(network, conditions, noise), rounds=3, warmup_rounds=1)
    assert bool(torch.isfinite(x).all())
