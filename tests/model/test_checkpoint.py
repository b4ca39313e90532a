"""Reference-model checkpoints: save/load round trip, strict and clear failures (an impossible sidecar names
the file and the field), codec references, latent statistics inside the network."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from agomni.errors import ChecksumMismatchError, UsageError, WeightsError
from agomni.model import model_config
from agomni.model.checkpoint import (
    build_network,
    codec_reference,
    default_codec_reference,
    load_codec,
    load_model_checkpoint,
    save_checkpoint,
)
from agomni.model.codec import AudioCodec, codec_config
from agomni.model.conditioning import ConditionerSpec

from .mmdit_tiny import random_tiny


@pytest.fixture(scope="module")
def network():
    return random_tiny("tiny-16k", duration_s=8.0, seed=3)


def save(path, network, *, config=None, state=None, step=7, **kw):
    config = config or network.config
    kw.setdefault("codec", default_codec_reference(config))
    kw.setdefault("conditioners", ConditionerSpec())
    return save_checkpoint(path, network_state=state or network.state_dict(), config=config, step=step, **kw)


@pytest.fixture
def saved(tmp_path, network):
    return save(tmp_path / "run" / "step-7", network, extra={"note": "test"}, random_weights=True)


def test_round_trip_gives_identical_tensors_config_and_step(saved, network):
    assert saved.name == "step-7.safetensors" and saved.with_suffix(".json").is_file()
    ckpt = load_model_checkpoint(saved)
    own = network.state_dict()
    assert set(ckpt.network_state) == set(own)
    for key, value in own.items():
        assert torch.equal(ckpt.network_state[key], value), key
        assert ckpt.network_state[key].dtype == value.dtype
    assert ckpt.config == network.config
    assert ckpt.step == 7 and ckpt.meta["extra"]["note"] == "test" and ckpt.random_weights
    rebuilt = build_network(ckpt)
    for key, value in rebuilt.state_dict().items():
        assert torch.equal(value, own[key]), key


def test_sidecar_records_the_sha256_of_the_weights_bytes_and_no_temp_files_remain(saved):
    meta = json.loads(saved.with_suffix(".json").read_text())
    assert meta["sha256"] == hashlib.sha256(saved.read_bytes()).hexdigest()
    assert meta["config"]["name"] == "tiny-16k" and meta["step"] == 7 and meta["agomni_version"]
    assert sorted(p.name for p in saved.parent.iterdir()) == ["step-7.json", "step-7.safetensors"]


def test_loading_by_stem_or_json_path_is_the_same_checkpoint(saved):
    by_stem = load_model_checkpoint(saved.with_suffix(""))
    by_json = load_model_checkpoint(saved.with_suffix(".json"))
    assert by_stem.sha256 == by_json.sha256 == load_model_checkpoint(saved).sha256


def test_missing_sidecar_json_is_a_clear_error(saved):
    saved.with_suffix(".json").unlink()
    with pytest.raises(WeightsError, match=r"step-7\.json: checkpoint sidecar JSON is missing"):
        load_model_checkpoint(saved)


def test_another_size_than_expected_names_both(saved):
    assert load_model_checkpoint(saved, expected_size="tiny").config.name == "tiny-16k"
    with pytest.raises(WeightsError, match="checkpoint is tiny-16k, you asked for L-44k"):
        load_model_checkpoint(saved, expected_size="L")


def test_tampered_weights_fail_the_sha256_check(saved):
    state = load_file(str(saved))
    key = sorted(state)[0]
    state[key] = state[key] + 1.0
    save_file(state, str(saved))
    with pytest.raises(WeightsError, match=r"SHA-256 \w+ differs"):
        load_model_checkpoint(saved)


def test_shape_mismatch_and_missing_keys_are_listed(tmp_path, network):
    state = dict(network.state_dict())
    state.pop("final.conv.bias")
    state["null_text"] = torch.zeros(3)
    path = save(tmp_path / "bad", network, state=state, step=1)
    with pytest.raises(WeightsError) as err:
        load_model_checkpoint(path)
    message = str(err.value)
    assert "missing keys (1): final.conv.bias" in message
    assert "null_text: checkpoint (3,) vs model (64,)" in message


def test_weights_of_another_size_under_a_config_do_not_load(tmp_path, network):
    other = model_config("tiny-44k")
    path = save(tmp_path / "mixed", network, config=other, step=1)
    with pytest.raises(WeightsError, match=r"model size tiny-44k.*does not fit"):
        load_model_checkpoint(path)


def test_unserialisable_extra_is_refused_before_writing(tmp_path, network):
    with pytest.raises(UsageError, match="not JSON-serialisable"):
        save(tmp_path / "x", network, step=1, extra={"a": object()})
    assert list(tmp_path.iterdir()) == []


def test_codec_reference_loads_the_named_codec_weights_and_checks_their_sha256(tmp_path, network):
    torch.manual_seed(5)
    source = AudioCodec(codec_config("16k", tiny=True))
    save_file(source.vae.state_dict(), str(tmp_path / "vae.safetensors"))
    save_file(source.vocoder.state_dict(), str(tmp_path / "voc.safetensors"))
    ref = codec_reference(
        "16k", tiny=True, vae=tmp_path / "vae.safetensors", vocoder=tmp_path / "voc.safetensors"
    )
    path = save(tmp_path / "m", network, step=2, codec=ref)
    codec = load_codec(load_model_checkpoint(path))
    assert not codec.random_weights
    for key, value in source.vocoder.state_dict().items():
        assert torch.equal(codec.vocoder.state_dict()[key], value), key
    save_file({k: v + 1 for k, v in source.vae.state_dict().items()}, str(tmp_path / "vae.safetensors"))
    with pytest.raises(ChecksumMismatchError, match="codec vae SHA-256"):
        load_codec(load_model_checkpoint(path))


def test_checkpoint_without_codec_gets_a_labelled_random_codec(saved):
    codec = load_codec(load_model_checkpoint(saved))
    assert codec.random_weights and codec.sample_rate == 16000
    assert codec.provenance == {"vae": "random (seed 0)", "vocoder": "random (seed 0)"}


def test_latent_statistics_travel_with_the_checkpoint_into_the_network(tmp_path, network):
    g = torch.Generator().manual_seed(4)
    mean, std = torch.randn(20, generator=g), torch.rand(20, generator=g) + 0.5
    ckpt = load_model_checkpoint(save(tmp_path / "s", network, latent_stats=(mean, std)))
    rebuilt = build_network(ckpt)
    z = torch.randn(2, 5, 20, generator=g)
    torch.testing.assert_close(rebuilt.normalize(z), (z - mean) / std)
    torch.testing.assert_close(rebuilt.unnormalize(rebuilt.normalize(z)), z)
    # not in the weights file: the state dict is the network's parameters only
    assert "latent_mean" not in ckpt.network_state


def _sidecar(path):
    return json.loads(path.with_suffix(".json").read_text())


IMPOSSIBLE = [
    (lambda m: m["config"].update(hidden_dim=-64), "config.hidden_dim"),
    (lambda m: m["config"].update(num_heads=3), "config.num_heads"),
    (lambda m: m["config"].update(latent_dim=0), "config.latent_dim"),
    (lambda m: m["config"].update(colour="red"), "config.colour"),
    (lambda m: m["config"]["sequence"].update(duration_s=1e9), "config.sequence.duration_s"),
    (lambda m: m["config"]["sequence"].update(duration_s=-1), "config.sequence.duration_s"),
    (lambda m: m["config"]["sequence"].update(sample_rate="16k"), "config.sequence.sample_rate"),
    (lambda m: m["config"]["dropout"].update(video=1.5), "config.dropout.video"),
    (lambda m: m["config"].pop("num_heads"), "config.num_heads"),
    (lambda m: m.update(step=-3), "step"),
    (lambda m: m.update(surprise=1), "surprise"),
    (lambda m: m.pop("codec"), "codec"),
    (lambda m: m["codec"].update(rate="96k"), "codec.rate"),
    (
        lambda m: m["codec"].update(vocoder={"griffin_lim_iterations": 0}),
        "codec.vocoder.griffin_lim_iterations",
    ),
    (lambda m: m["conditioners"]["text"].update(length=-5), "conditioners"),
    (lambda m: m["conditioners"]["video"].update(kind="magic"), "conditioners"),
    (lambda m: m.update(latent_stats={"mean": [0.0] * 20, "std": [1.0] * 19}), "latent_stats.std"),
    (lambda m: m.update(latent_stats={"mean": [0.0] * 20, "std": [0.0] * 20}), "latent_stats.std"),
]


@pytest.mark.parametrize(("break_it", "field"), IMPOSSIBLE)
def test_an_impossible_sidecar_is_a_weights_error_naming_file_and_field(saved, break_it, field):
    meta = _sidecar(saved)
    break_it(meta)
    saved.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError) as err:
        load_model_checkpoint(saved)
    assert str(saved.with_suffix(".json")) in str(err.value) and field in str(err.value)


def test_an_old_format_sidecar_names_the_format(saved):
    meta = _sidecar(saved)
    meta["format"] = "agomni-mmdit-checkpoint/1"
    saved.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match=r"step-7\.json: field format: 'agomni-mmdit-checkpoint/1'"):
        load_model_checkpoint(saved)
