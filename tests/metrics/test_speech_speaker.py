"""Speaker similarity: resemblyzer (real bundled weights) on committed recordings; speechbrain ECAPA
loaded through the weights registry equals speechbrain's own EncoderClassifier pipeline."""

from __future__ import annotations

import dataclasses
import textwrap

import numpy as np
import pytest
import torch

from agomni import weights
from agomni.metrics.speech.speaker import SpeechBrainECAPA, speaker_similarity
from tests.metrics.speech_fixtures import utterances


@pytest.mark.slow
def test_resemblyzer_same_voice_scores_higher_than_different_voices() -> None:
    u = utterances()
    pairs = {  # generated, prompt: different sentences in every pair
        "same_f2": ("f2_0", "f2_3"),
        "same_m1": ("m1_0", "m1_2"),
        "diff_a": ("f2_1", "m1_0"),
        "diff_b": ("m1_1", "f2_4"),
    }
    result = speaker_similarity(
        [u[g][0] for g, _ in pairs.values()], [u[p][0] for _, p in pairs.values()], ids=list(pairs)
    )
    sims = {item.id: item.value for item in result.items}
    print(f"resemblyzer SIM per pair: {sims}")
    assert min(sims["same_f2"], sims["same_m1"]) > max(sims["diff_a"], sims["diff_b"]) + 0.05
    assert result.unit == "cosine" and result.higher_is_better and "not comparable" in result.recipe
    assert all(item.flags == () and item.error is None for item in result.items)


def test_short_prompt_is_an_item_error_and_non_speech_is_flagged() -> None:
    u = utterances()
    encoder = SpeechBrainECAPA.random(seed=1)
    tone = 0.5 * np.sin(2 * np.pi * 220 * np.arange(32000) / 16000)
    result = speaker_similarity(
        [u["f2_0"][0], u["f2_0"][0], tone, np.zeros(0)],
        [u["f2_1"][0][:15000], u["f2_1"][0], u["f2_1"][0], u["f2_1"][0]],
        ids=["short", "ok", "tone", "empty"],
        encoder=encoder,
    )
    by_id = {item.id: item for item in result.items}
    assert "shorter than 1.0 s" in by_id["short"].error and by_id["short"].value is None
    assert by_id["ok"].error is None and by_id["ok"].flags == ()
    assert by_id["tone"].value is not None and by_id["tone"].flags[0].startswith("generated: non-speech")
    assert "empty audio" in by_id["empty"].error
    assert result.covered == 2 and [e["id"] for e in result.errors] == ["short", "empty"]
    assert "RANDOM WEIGHTS" in result.backend


HYPERPARAMS = """
    n_mels: 80
    compute_features: !new:speechbrain.lobes.features.Fbank
        n_mels: !ref <n_mels>
    mean_var_norm: !new:speechbrain.processing.features.InputNormalization
        norm_type: sentence
        std_norm: False
    embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
        input_size: !ref <n_mels>
        channels: [1024, 1024, 1024, 1024, 3072]
        kernel_sizes: [5, 3, 3, 3, 1]
        dilations: [1, 2, 3, 4, 1]
        attention_channels: 128
        lin_neurons: 192
    modules:
        compute_features: !ref <compute_features>
        mean_var_norm: !ref <mean_var_norm>
        embedding_model: !ref <embedding_model>
    pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
        loadables:
            embedding_model: !ref <embedding_model>
"""


@pytest.mark.slow
def test_speechbrain_ecapa_from_registry_equals_encoder_classifier(tmp_path, monkeypatch) -> None:
    """Random weights saved as the registry's checkpoint, imported into a fresh cache, loaded by
    ``SpeechBrainECAPA.from_registry``; the reference is speechbrain's EncoderClassifier built from the
    spkrec-ecapa-voxceleb hyperparameters (module part) with the same file."""
    from speechbrain.inference.speaker import EncoderClassifier

    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AGOMNI_OFFLINE", "1")
    reference_dir = tmp_path / "sb"
    reference_dir.mkdir()
    state = SpeechBrainECAPA.random(seed=3).model.state_dict()
    generator = torch.Generator().manual_seed(5)
    for key, value in state.items():  # BatchNorm running statistics away from 0 / 1
        if key.endswith("running_mean"):
            value.normal_(0.0, 0.1, generator=generator)
        elif key.endswith("running_var"):
            value.uniform_(0.5, 1.5, generator=generator)
    torch.save(state, reference_dir / "embedding_model.ckpt")
    (reference_dir / "hyperparams.yaml").write_text(textwrap.dedent(HYPERPARAMS))

    entry = dataclasses.replace(weights.get_entry("ecapa-voxceleb-embedding"), pin=None)
    with weights.registered(entry):
        weights.import_file(entry, reference_dir / "embedding_model.ckpt")
        ours = SpeechBrainECAPA.from_registry()
    assert ours.random_weights is False  # loaded as the registry's file (here: random test weights)

    reference = EncoderClassifier.from_hparams(source=str(reference_dir), savedir=str(tmp_path / "save"))
    reference.mods.embedding_model.load_state_dict(torch.load(reference_dir / "embedding_model.ckpt"))
    reference.eval()
    for name in ("f2_0", "m1_1"):
        audio = utterances()[name][0].astype(np.float32)
        with torch.no_grad():
            expected = reference.encode_batch(torch.from_numpy(audio)[None])[0, 0].numpy()
        got = ours.embed(audio)
        assert got.shape == (192,)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
