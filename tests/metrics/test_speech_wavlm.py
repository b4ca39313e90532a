"""Our WavLM equals the reference WavLM module (unilm code, as vendored by audiobox-aesthetics) with the
same random weights, in the WavLM-Large layout (LayerNorm feature extractor, conv bias, pre-LayerNorm
layers: the SIM-o backbone) at small width, with a padded batch."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from audiobox_aesthetics.model.wavlm import WavLM as ReferenceWavLM
from audiobox_aesthetics.model.wavlm import WavLMConfig as ReferenceConfig

from agomni.metrics.speech.wavlm import WavLM
from agomni.metrics.speech.wavlm_ecapa import WAVLM_LARGE
from agomni.weights import load_strict
from tests.metrics.speech_fixtures import utterances

#: WavLM-Large's layout (the SIM-o backbone's extractor and layer settings) at width 64, 3 layers.
LARGE_LAYOUT = dataclasses.replace(
    WAVLM_LARGE, embed_dim=64, ffn_dim=128, heads=4, layers=3, conv_pos=16, conv_pos_groups=4
)

#: LARGE_LAYOUT in the reference's config keys.
REFERENCE_LARGE_LAYOUT = {
    "extractor_mode": "layer_norm",
    "conv_bias": True,
    "encoder_embed_dim": 64,
    "encoder_ffn_embed_dim": 128,
    "encoder_attention_heads": 4,
    "encoder_layers": 3,
    "layer_norm_first": True,
    "conv_pos": 16,
    "conv_pos_groups": 4,
    "relative_position_embedding": True,
    "num_buckets": 320,
    "max_distance": 800,
    "gru_rel_pos": True,
}


def test_large_layout_hidden_states_equal_the_reference_module() -> None:
    torch.manual_seed(21)
    reference = ReferenceWavLM(ReferenceConfig(REFERENCE_LARGE_LAYOUT)).eval()
    with torch.no_grad():  # gates and LayerNorms away from their defaults
        for name, p in reference.named_parameters():
            if name.endswith(("grep_a", "norm.weight", "layer_norm.weight", ".2.1.weight")):
                p.normal_(1.0, 0.3)
    ours = WavLM(LARGE_LAYOUT).eval()
    load_strict(ours, reference.state_dict(), where="reference WavLM")

    audio = utterances()["f2_4"][0].astype(np.float32)
    wav = torch.zeros(2, len(audio))
    wav[0] = torch.from_numpy(audio)
    wav[1, : len(audio) // 2] = torch.from_numpy(audio[len(audio) // 2 :])
    padding = torch.zeros_like(wav, dtype=torch.bool)
    padding[1, len(audio) // 2 :] = True
    with torch.no_grad():
        (_, expected), expected_mask = reference.extract_features(
            wav.clone(), padding_mask=padding, output_layer=3, ret_layer_results=True
        )
        got, got_mask = ours.hidden_states(wav, padding)
    assert torch.equal(got_mask, expected_mask)
    assert len(got) == len(expected) == 4
    for ours_state, (reference_state, _) in zip(got, expected, strict=True):
        reference_state = reference_state.transpose(0, 1)
        keep = ~got_mask  # padded frames are not compared: both sides ignore them as keys
        scale = reference_state[keep].abs().max().item()
        torch.testing.assert_close(ours_state[keep], reference_state[keep], rtol=1e-4, atol=1e-4 * scale)
    assert got[-1][0].std() > 0.1
