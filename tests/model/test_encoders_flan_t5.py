"""Flan-T5 text encoder: equal to transformers' T5EncoderModel and T5Tokenizer with the same random
weights / the same SentencePiece model (both built offline, tiny sizes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agomni.errors import OfflineError, UsageError, WeightsError
from agomni.model.encoders.flan_t5 import (
    FLAN_T5_LARGE,
    FlanT5TextConditioner,
    SentencePieceTokenizer,
    T5Encoder,
    T5EncoderConfig,
    t5_encoder_state,
)
from agomni.weights import load_strict

from .encoder_fixtures import make_spiece_model

transformers = pytest.importorskip("transformers")
sentencepiece = pytest.importorskip("sentencepiece")

TINY = T5EncoderConfig(vocab_size=120, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4)
PROMPTS = ["a dog barks twice", "rain on a tin roof,  then thunder", "Piano!"]


def _reference_model() -> torch.nn.Module:
    config = transformers.T5Config(
        vocab_size=TINY.vocab_size,
        d_model=TINY.d_model,
        d_kv=TINY.d_kv,
        d_ff=TINY.d_ff,
        num_layers=TINY.num_layers,
        num_heads=TINY.num_heads,
        relative_attention_num_buckets=TINY.relative_attention_num_buckets,
        relative_attention_max_distance=TINY.relative_attention_max_distance,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
    )
    torch.manual_seed(0)
    model = transformers.T5EncoderModel(config).eval()
    with torch.no_grad():  # HF initialises some weights to constants; make every weight informative
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return model


@pytest.fixture(scope="module")
def spiece(tmp_path_factory) -> str:
    return str(make_spiece_model(tmp_path_factory.mktemp("spiece"), PROMPTS))


def test_encoder_matches_transformers_t5_with_padding():
    reference = _reference_model()
    ours = T5Encoder(TINY).eval()
    load_strict(ours, t5_encoder_state(reference.state_dict(), "reference"), where="reference")
    ids = torch.randint(3, TINY.vocab_size, (2, 40))  # 40 > 2 * max_exact: exercises the log buckets
    mask = torch.ones(2, 40, dtype=torch.long)
    mask[1, 23:] = 0
    with torch.inference_mode():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        got = ours(ids, mask)
    valid = mask.bool()
    err = (got[valid] - expected[valid]).abs().max() / expected[valid].abs().max()
    assert err < 1e-4


def test_tokenizer_matches_transformers_t5_tokenizer(spiece):
    # transformers 5 converts the SentencePiece model to a `tokenizers` pipeline (needs protobuf)
    pytest.importorskip("google.protobuf")
    reference = transformers.T5Tokenizer.from_pretrained(str(Path(spiece).parent), extra_ids=0)
    ids, mask = SentencePieceTokenizer(spiece).encode(PROMPTS, length=64)
    for i, prompt in enumerate(PROMPTS):
        expected = reference(prompt)["input_ids"]
        assert expected[-1] == 1
        assert ids[i, : len(expected)].tolist() == expected
        assert int(mask[i].sum()) == len(expected)
        assert not ids[i, len(expected) :].any()


def test_conditioner_zeroes_padding_and_rejects_bad_prompts(spiece):
    reference = _reference_model()
    encoder = T5Encoder(TINY)
    load_strict(encoder, t5_encoder_state(reference.state_dict(), "reference"), where="reference")
    tokenizer = SentencePieceTokenizer(spiece)
    conditioner = FlanT5TextConditioner(encoder, tokenizer, length=32, random_weights=True)
    features = conditioner.encode(PROMPTS[:1])
    assert features.shape == (1, 32, TINY.d_model) and features.dtype == torch.float32
    n = len(tokenizer.encode(PROMPTS[:1], 32)[0][0].nonzero())
    assert features[0, :n].abs().sum(-1).min() > 0
    assert not features[0, n:].any()
    with torch.inference_mode():
        ids, mask = tokenizer.encode(PROMPTS[:1], n)
        alone = reference(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(features[0, :n], alone[0], rtol=1e-4, atol=1e-5)  # padding changes nothing
    with pytest.raises(UsageError, match="prompt 0 is empty"):
        conditioner.encode([" "])
    with pytest.raises(UsageError, match="more than 32"):
        conditioner.encode(["thunder " * 40])


def test_strict_loading_lists_missing_and_unexpected_keys():
    state = t5_encoder_state(_reference_model().state_dict(), "ref")
    del state["encoder.block.1.layer.1.DenseReluDense.wo.weight"]
    state["encoder.block.9.layer.0.layer_norm.weight"] = torch.ones(TINY.d_model)
    with pytest.raises(WeightsError) as info:
        load_strict(T5Encoder(TINY), state, where="ckpt.safetensors")
    message = str(info.value)
    assert "missing keys (1): encoder.block.1.layer.1.DenseReluDense.wo.weight" in message
    assert "unexpected keys (1): encoder.block.9.layer.0.layer_norm.weight" in message
    with pytest.raises(WeightsError, match="unexpected keys outside"):
        t5_encoder_state({"shared.weight": torch.ones(1), "head.weight": torch.ones(1)}, "ckpt")


def test_offline_without_cached_weights_raises_offline_error(monkeypatch, tmp_path):
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path))
    monkeypatch.setenv("AGOMNI_OFFLINE", "1")
    with pytest.raises(OfflineError, match="agomni weights import"):
        FlanT5TextConditioner.from_registry()


def test_flan_t5_large_has_the_transformers_key_set_and_shapes():
    config = transformers.T5Config(
        vocab_size=32128,
        d_model=1024,
        d_kv=64,
        d_ff=2816,
        num_layers=24,
        num_heads=16,
        feed_forward_proj="gated-gelu",
    )  # google/flan-t5-large config.json
    with torch.device("meta"):
        reference = transformers.T5EncoderModel(config)
        ours = T5Encoder(FLAN_T5_LARGE)
    expected = {k: tuple(v.shape) for k, v in t5_encoder_state(reference.state_dict(), "reference").items()}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == expected
