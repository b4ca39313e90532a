"""LT encoder: F5-style frame alignment of token ids, filler re-zeroing, padding independence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agomni.errors import UsageError
from agomni.model.lt_encoder import GRN, LTEncoder
from agomni.model.text import pad_to_frames, tokenize, vocab_size


def _encoder() -> LTEncoder:
    torch.manual_seed(0)
    enc = LTEncoder(vocab_size=12, dim=16, num_blocks=2, mult=2)
    with torch.no_grad():
        for block in enc.blocks:
            block.grn.gamma.normal_(0, 0.5)
            block.grn.beta.normal_(0, 0.5)
    return enc.eval()


def test_fillers_are_zero_and_trailing_filler_does_not_change_tokens():
    enc = _encoder()
    tokens = [3, 7, 7, 1, 11, 2]
    short = enc(pad_to_frames(tokens, 10)[None])
    long = enc(pad_to_frames(tokens, 30)[None])
    assert torch.equal(short[0, 6:], torch.zeros(4, 16)) and torch.equal(long[0, 6:], torch.zeros(24, 16))
    torch.testing.assert_close(short[0, :6], long[0, :6], atol=1e-6, rtol=0)
    assert short[0, :6].abs().sum(-1).min() > 0  # real tokens carry features


def test_out_of_range_ids_are_rejected():
    with pytest.raises(UsageError, match=r"\[0, 11\]"):
        _encoder()(torch.tensor([[12]]))


def test_grn_matches_the_convnext_v2_formula():
    grn = GRN(6)
    with torch.no_grad():
        grn.gamma.normal_()
        grn.beta.normal_()
    x = np.random.default_rng(0).standard_normal((2, 9, 6))
    gx = np.sqrt((x**2).sum(axis=1, keepdims=True))  # L2 over time
    nx = gx / (gx.mean(axis=-1, keepdims=True) + 1e-6)
    want = grn.gamma.detach().numpy() * (x * nx) + grn.beta.detach().numpy() + x
    np.testing.assert_allclose(grn(torch.from_numpy(x).float()).detach().numpy(), want, atol=1e-5)


def test_tokenizer_ids_feed_the_tiny_models_encoder():
    from .mmdit_tiny import random_tiny

    model = random_tiny(duration_s=1.0)
    assert model.config.lt_vocab_size == vocab_size(model.config.lt_tokenizer)
    ids = pad_to_frames(tokenize("la la land", "en", "grapheme"), model.sequence.latent_len)[None]
    features = model.lt_encoder(ids)
    assert features.shape == (1, model.sequence.latent_len, model.config.lt_dim)
    assert torch.equal(features[0, 10:], torch.zeros_like(features[0, 10:]))
