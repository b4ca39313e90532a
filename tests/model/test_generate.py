"""`generate` / `agomni generate` on a tiny toy corpus with a random tiny checkpoint (CPU); batching items
into one network call gives each row the output it gets alone."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

from agomni.cli import main
from agomni.errors import ChecksumMismatchError, TooShortError, UsageError
from agomni.manifest import TASK_REQUIRED_FIELDS, TASKS, load_manifest, pair_outputs
from agomni.model.checkpoint import (
    build_network,
    codec_reference,
    default_codec_reference,
    load_model_checkpoint,
    save_checkpoint,
)
from agomni.model.codec.vae import MelVAE, VAEConfig
from agomni.model.conditioning import ConditionerSpec, build_conditioners, item_conditions
from agomni.model.flow_matching import sample
from agomni.model.generate import batch_inputs, derive_seed, generate
from agomni.toycorpus import build_corpus

from .mmdit_tiny import random_tiny

SR, HOP = 16_000, 256
STEPS = 2


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return load_manifest(build_corpus(root, n_train=1, n_heldout=1, duration=2.0)["heldout"])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    network = random_tiny("tiny-16k", duration_s=8.0, seed=11)
    folder = tmp_path_factory.mktemp("ckpt")
    return save_checkpoint(
        folder / "tiny",
        network_state=network.state_dict(),
        config=network.config,
        step=0,
        codec=default_codec_reference(network.config),
        conditioners=ConditionerSpec(),
    )


@pytest.fixture(scope="module")
def outputs(corpus, checkpoint):
    return generate(corpus.items, checkpoint, seed=0, steps=STEPS)


def _by_task(corpus, task):
    return next(item for item in corpus if item.task == task)


def test_every_task_gives_one_finite_output_of_the_right_length(corpus, outputs):
    assert sorted(o.task for o in outputs) == sorted(TASKS)
    for out in outputs:
        assert out.wave.dtype == torch.float32 and out.wave.ndim == 1
        assert abs(out.wave.numel() - 2.0 * SR) <= HOP, out.item_id
        assert bool(torch.isfinite(out.wave).all()) and float(out.wave.abs().max()) > 0, out.item_id
        assert out.sample_rate == SR


def test_absent_fields_are_masked_modalities(corpus, outputs):
    expected = {  # from the toy corpus items: which modality each task's item lacks
        item.id: sorted(
            name
            for name, present in (
                ("video", item.video is not None),
                ("text", item.text is not None),
                ("lt", item.transcript is not None or item.lyrics is not None),
            )
            if not present
        )
        for item in corpus
    }
    for out in outputs:
        assert sorted(out.metadata["item"]["absent_modalities"]) == expected[out.item_id]
        for field in TASK_REQUIRED_FIELDS[out.task]:
            assert field in out.metadata["item"], (out.item_id, field)


def test_outputs_are_labelled_random_weights(outputs):
    for out in outputs:
        assert out.random_weights and out.metadata["random_weights"] is True
        assert set(out.metadata["random_parts"]) == {
            "network",
            "video conditioner",
            "text conditioner",
            "codec",
        }


def test_same_seed_is_bit_identical_and_other_seeds_differ(corpus, checkpoint, outputs):
    first = {o.item_id: o.wave for o in outputs}
    for out in generate(corpus.items, checkpoint, seed=0, steps=STEPS):
        assert torch.equal(out.wave, first[out.item_id])
    items = [_by_task(corpus, "v2s"), _by_task(corpus, "t2a")]
    for out in generate(items, checkpoint, seed=1, steps=STEPS):
        assert not torch.equal(out.wave, first[out.item_id])
        assert out.seed == derive_seed(1, out.item_id, 0)


def test_items_batched_together_get_the_latents_they_get_alone(corpus, checkpoint):
    """Rows of different tasks (different absent modalities) in one batch: each row's sampled latents
    equal those of the row run alone, up to float32 rounding of the batched GEMMs."""
    ckpt = load_model_checkpoint(checkpoint)
    network = build_network(ckpt)
    network.set_duration(2.0)
    conditioners = build_conditioners(ckpt.conditioners, ckpt.config)
    rows = [item_conditions(item, ckpt.config, network.sequence, conditioners) for item in corpus]
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(len(rows), network.sequence.latent_len, ckpt.config.latent_dim, generator=g)
    together = sample(network, network.preprocess_conditions(**batch_inputs(rows)), noise, steps=3)
    for i, row in enumerate(rows):
        alone = sample(
            network, network.preprocess_conditions(**row.network_inputs()), noise[i : i + 1], steps=3
        )
        torch.testing.assert_close(together[i : i + 1], alone, atol=1e-4 * alone.abs().max().item(), rtol=0)


def test_derived_seed_follows_the_documented_rule():
    digest = hashlib.sha256(b"agomni-generate/3/abc/2").digest()
    assert derive_seed(3, "abc", 2) == int.from_bytes(digest[:8], "big") % 2**63


def test_conditions_change_the_output(corpus, checkpoint, outputs):
    item = _by_task(corpus, "tts")
    changed = [
        dataclasses.replace(item, text="a deep calm voice"),
        dataclasses.replace(item, transcript="river ball"),
    ]
    base = next(o.wave for o in outputs if o.item_id == item.id)
    for out in generate(changed, checkpoint, seed=0, steps=STEPS):
        assert not torch.equal(out.wave, base)


def test_num_samples_differ_and_follow_the_naming_contract(corpus, checkpoint):
    item = _by_task(corpus, "t2a")
    samples = generate([item], checkpoint, seed=0, num_samples=2, steps=STEPS)
    assert [s.file_name() for s in samples] == [f"{item.id}__s0.wav", f"{item.id}__s1.wav"]
    assert not torch.equal(samples[0].wave, samples[1].wave)


def test_other_durations_work(corpus, checkpoint):
    items = [_by_task(corpus, task) for task in ("t2a", "tts", "t2song")]
    for seconds in (4.0, 1.5):
        for out in generate(items, checkpoint, duration=seconds, steps=STEPS):
            assert abs(out.wave.numel() - seconds * SR) <= HOP
            assert out.duration_s == seconds and bool(torch.isfinite(out.wave).all())


def test_video_shorter_than_the_duration_names_the_item_and_both_durations(corpus, checkpoint):
    item = _by_task(corpus, "v2a")
    with pytest.raises(TooShortError) as err:
        generate([item], checkpoint, duration=4.0, steps=STEPS)
    message = str(err.value)
    assert item.id in message and "2.000 s" in message and "4.000 s" in message
    assert str(item.video) in message


def test_unsupported_language_names_the_item(corpus, checkpoint):
    item = dataclasses.replace(_by_task(corpus, "tts"), language="fr")
    with pytest.raises(UsageError, match=rf"item {item.id}: transcript: unsupported language 'fr'"):
        generate([item], checkpoint, steps=STEPS)


def test_cli_writes_paired_files_with_sidecars(corpus, checkpoint, outputs, tmp_path, capsys):
    out = tmp_path / "gen"
    argv = ["generate", "--checkpoint", str(checkpoint), "--manifest", str(corpus.path), "--out", str(out)]
    assert main([*argv, "--steps", str(STEPS)]) == 0
    err = capsys.readouterr().err
    assert "RANDOM WEIGHTS" in err
    pairing = pair_outputs(corpus, out)
    assert len(pairing.pairs) == len(corpus) and pairing.ignored == ()
    assert sorted(pairing.sidecars) == sorted(f"{item.id}.json" for item in corpus)
    expected = {o.item_id: o.wave.numpy() for o in outputs}
    sha = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    for pair in pairing.pairs:
        data, rate = sf.read(pair.outputs[0], dtype="float32")
        assert rate == SR and np.array_equal(data, expected[pair.item.id])
        meta = json.loads(pair.outputs[0].with_suffix(".json").read_text())
        assert meta["random_weights"] is True and meta["checkpoint"]["sha256"] == sha
        assert meta["file_sha256"] == hashlib.sha256(pair.outputs[0].read_bytes()).hexdigest()
        assert (meta["seed"], meta["steps"], meta["cfg"], meta["sampler"]) == (0, STEPS, 4.5, "euler")
        assert meta["item"]["id"] == pair.item.id and meta["duration_s"] == 2.0
    assert main([*argv, "--steps", str(STEPS)]) == 2  # refuses to overwrite
    assert "use a new or empty --out folder" in capsys.readouterr().err


def test_cli_suite_without_manifest_says_what_to_pass(checkpoint, tmp_path, capsys):
    assert (
        main(["generate", "--checkpoint", str(checkpoint), "--suite", "smoke", "--out", str(tmp_path)]) == 2
    )
    assert "pass --manifest" in capsys.readouterr().err


def test_bf16_weights_are_used_and_give_finite_audio(corpus, checkpoint, outputs):
    item = _by_task(corpus, "v2song")
    fp32 = next(o.wave for o in outputs if o.item_id == item.id)
    (bf16,) = generate([item], checkpoint, seed=0, steps=STEPS, dtype="bf16")
    assert bf16.wave.shape == fp32.shape and bool(torch.isfinite(bf16.wave).all())
    assert (
        bf16.metadata["dtype"] == "bf16"
        and bf16.metadata["network_weights"] == "torch.bfloat16 (no autocast)"
    )
    assert not torch.equal(bf16.wave, fp32)  # the network really ran in bf16


def test_too_short_a_duration_for_the_model_names_the_item(corpus, checkpoint):
    item = _by_task(corpus, "t2a")
    with pytest.raises(UsageError, match=rf"item {item.id}: duration 0.25 s is shorter than one Synchformer"):
        generate([item], checkpoint, duration=0.25, steps=STEPS)


def _training_run_checkpoint(root, network):
    """A checkpoint laid out as a training run writes it: <run>/vae/ and <run>/checkpoints/, the VAE named
    relative to the checkpoint, a Griffin-Lim vocoder, latent statistics and seeded stand-ins."""
    vae_cfg = VAEConfig(
        mel_channels=80, latent_channels=20, hidden=8, channel_mult=(1, 2), res_blocks=1, groups=4
    )
    torch.manual_seed(4)
    vae_path = root / "vae" / "tiny-vae-16k.safetensors"
    vae_path.parent.mkdir(parents=True)
    save_file(MelVAE(vae_cfg).state_dict(), str(vae_path))
    codec = codec_reference(
        "16k", tiny=True, vae=vae_path, vocoder=4, vae_config=vae_cfg, relative_to=root / "checkpoints"
    )
    assert codec["vae"]["file"] == "../vae/tiny-vae-16k.safetensors"
    return save_checkpoint(
        root / "checkpoints" / "step-000002",
        network_state=network.state_dict(),
        config=network.config,
        step=2,
        codec=codec,
        conditioners=ConditionerSpec(video_seed=3, text_seed=3, text_length=64),
        latent_stats=(torch.full((20,), 0.5), torch.full((20,), 2.0)),
    )


def test_training_run_checkpoint_uses_its_vae_griffin_lim_stats_and_conditioners(corpus, tmp_path):
    network = random_tiny("tiny-16k", duration_s=8.0, seed=11)
    path = _training_run_checkpoint(tmp_path, network)
    item = _by_task(corpus, "t2a")
    (out,) = generate([item], path, steps=STEPS)
    meta = out.metadata
    assert meta["random_parts"] == ["video conditioner", "text conditioner"]
    assert meta["codec"]["random_weights"] is False
    assert meta["codec"]["provenance"]["vae"] == str(
        tmp_path / "checkpoints" / "../vae/tiny-vae-16k.safetensors"
    )
    assert meta["codec"]["provenance"]["vocoder"].startswith("Griffin-Lim (4 iterations")
    assert meta["conditioners"]["text"]["seed"] == 3 and meta["conditioners"]["text"]["length_tokens"] == 64
    assert meta["latent_stats"].startswith("checkpoint statistics")
    assert abs(out.wave.numel() - 2.0 * SR) <= HOP and bool(torch.isfinite(out.wave).all())
    (tmp_path / "vae" / "tiny-vae-16k.safetensors").write_bytes(b"tampered")
    with pytest.raises(ChecksumMismatchError, match="codec vae SHA-256"):
        generate([item], path, steps=STEPS)


def test_cli_batch_size_and_precision_options_are_used_and_recorded(corpus, checkpoint, outputs, tmp_path):
    out = tmp_path / "gen"
    argv = ["generate", "--checkpoint", str(checkpoint), "--manifest", str(corpus.path), "--out", str(out)]
    argv += ["--steps", str(STEPS), "--batch-size", "1", "--dtype", "fp32", "--no-compile"]
    assert main(argv) == 0
    expected = {o.item_id: o.wave.numpy() for o in outputs}
    for item in corpus:
        meta = json.loads((out / f"{item.id}.json").read_text())
        assert "--batch-size=1" in meta["command"] and "--no-compile" in meta["command"]
        assert meta["dtype"] == "fp32" and meta["compiled"] is False
        data, _ = sf.read(out / f"{item.id}.wav", dtype="float32")
        # one item per call instead of the corpus' runs: the same audio up to batched-GEMM rounding
        # amplified by Griffin-Lim's 32 phase iterations
        assert np.sqrt(np.mean((data - expected[item.id]) ** 2)) <= 0.05 * np.sqrt(
            np.mean(expected[item.id] ** 2)
        )
