"""Synthetic prepared data for fast training-loop tests (no corpus, codec or conditioners involved)."""

from __future__ import annotations

import dataclasses

import torch

from agomni.model.checkpoint import default_codec_reference
from agomni.model.conditioning import ConditionerSpec
from agomni.model.config import tiny_16k
from agomni.model.train.config import parse_train_config
from agomni.model.train.data import ExampleSet, LatentStats
from agomni.model.train.prepare import Prepared


def synthetic_prepared(n_train: int = 8, n_heldout: int = 3, seed: int = 0) -> Prepared:
    """Random examples with the tiny-16k shapes for 1 s clips, random presence flags."""
    config = tiny_16k().with_duration(1.0)
    seq = config.sequence
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> ExampleSet:
        tensors = {
            "latent_mean": torch.randn(n, seq.latent_len, config.latent_dim, generator=g),
            "latent_std": 0.1 * torch.rand(n, seq.latent_len, config.latent_dim, generator=g),
            "clip": torch.randn(n, seq.clip_len, config.clip_dim, generator=g),
            "sync": torch.randn(n, seq.sync_len, config.sync_dim, generator=g),
            "text": torch.randn(n, 6, config.text_dim, generator=g),
            "lt_ids": torch.randint(1, 50, (n, seq.latent_len), generator=g),
            "presence": torch.rand(n, 3, generator=g) > 0.3,
        }
        return ExampleSet(ids=tuple(f"x{i}" for i in range(n)), tensors=tensors, manifest_sha256="0" * 64)

    train, heldout = split(n_train), split(n_heldout)
    return Prepared(
        config,
        train,
        heldout,
        LatentStats.of(train),
        default_codec_reference(config),
        {"corpus": "synthetic"},
        ConditionerSpec(),
    )


def loop_config(**train):
    """A TrainConfig for loop tests: toy corpus section (unused), tiny batches, constant lr."""
    data = {
        "corpus": {"toy": {"n_train": 2, "n_heldout": 1, "duration": 1.0}},
        "optimizer": {"lr": 0.003, "warmup_steps": 2, "schedule": "constant"},
        "ema": {"decay": 0.9},
        "train": {"batch_size": 4, "max_steps": 4, "log_every": 1, "checkpoint_every": 2, **train},
        "validation": {"times_per_item": 2, "batch_size": 4},
    }
    return parse_train_config(data, "test-config")


def replace_train(cfg, **kw):
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **kw))
