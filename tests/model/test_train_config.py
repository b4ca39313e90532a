"""Training config parsing, the learning-rate schedule and the EMA update, against hand-computed formulas."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from agomni.errors import UsageError
from agomni.model.train.config import TOY_CONFIG, load_train_config, parse_train_config
from agomni.model.train.ema import EMA
from agomni.model.train.schedule import learning_rate

TOY = {"corpus": {"toy": {"n_train": 2}}}


def test_toy_config_loads_and_names_its_model():
    cfg = load_train_config(TOY_CONFIG)
    assert cfg.model_config().name == "tiny-16k"
    assert cfg.model_config().sequence.duration_s == 2.0
    assert cfg.corpus.toy is not None and cfg.corpus.toy.n_train == 48


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({**TOY, "optimizer": {"lrr": 1.0}}))
    with pytest.raises(
        UsageError, match=r"c\.json: unknown config key optimizer\.lrr; valid keys of optimizer"
    ):
        load_train_config(path)
    with pytest.raises(UsageError, match="unknown config key bogus"):
        parse_train_config({**TOY, "bogus": 1})


def test_missing_corpus_is_clear():
    with pytest.raises(UsageError, match=r"no corpus: give corpus\.toy"):
        parse_train_config({"train": {"max_steps": 3}}, "x.json")
    with pytest.raises(UsageError, match="duration_s"):
        parse_train_config({"corpus": {"train_manifest": "a.jsonl", "heldout_manifest": "b.jsonl"}})


def test_bad_values_are_clear(tmp_path):
    with pytest.raises(UsageError, match=r"train\.batch_size must be int"):
        parse_train_config({**TOY, "train": {"batch_size": "8"}})
    with pytest.raises(UsageError, match="schedule 'linear'"):
        parse_train_config({**TOY, "optimizer": {"schedule": "linear"}})
    with pytest.raises(UsageError, match="unknown model size"):
        parse_train_config({**TOY, "model": {"size": "XXL"}})
    with pytest.raises(UsageError, match=r"no such training config"):
        load_train_config(tmp_path / "absent.json")


def test_warmup_then_constant_and_cosine_match_the_formula():
    cfg = parse_train_config({**TOY, "optimizer": {"lr": 0.002, "warmup_steps": 4, "schedule": "constant"}})
    assert [learning_rate(s, cfg.optimizer, 20) for s in range(6)] == pytest.approx(
        [0.0005, 0.001, 0.0015, 0.002, 0.002, 0.002], rel=1e-12
    )
    cos = parse_train_config(
        {**TOY, "optimizer": {"lr": 0.002, "warmup_steps": 4, "schedule": "cosine", "min_lr_ratio": 0.1}}
    ).optimizer
    # hand formula: after warm-up, 0.002 * (0.1 + 0.9 * (1 + cos(pi * (s - 4) / 16)) / 2)
    for s in (4, 8, 12, 20, 30):
        p = min(1.0, (s - 4) / 16)
        assert learning_rate(s, cos, 20) == pytest.approx(0.002 * (0.1 + 0.45 * (1 + math.cos(math.pi * p))))
    assert learning_rate(20, cos, 20) == pytest.approx(0.0002)


def test_ema_matches_the_formula_computed_in_numpy():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    ema = EMA(model, decay=0.95)
    shadow = {k: v.detach().double().numpy().copy() for k, v in model.state_dict().items()}
    for k in range(30):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        d = min(0.95, (1 + k) / (10 + k))
        for name, value in model.state_dict().items():
            shadow[name] = d * shadow[name] + (1 - d) * value.double().numpy()
        ema.update(model)
    assert ema.updates == 30
    for name, value in ema.state_dict().items():
        np.testing.assert_allclose(value.numpy(), shadow[name], rtol=1e-5, atol=1e-6)
