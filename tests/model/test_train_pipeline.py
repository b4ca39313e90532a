"""`agomni train` end to end on a tiny toy corpus (2 items per task, 1 s): cached examples and falling loss."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from agomni.cli import build_parser
from agomni.model.checkpoint import build_network, load_model_checkpoint
from agomni.model.conditioning import ConditionerSpec
from agomni.model.train.cli import cli_train
from agomni.model.train.config import load_train_config
from agomni.model.train.export import export_checkpoint
from agomni.model.train.loop import build_model
from agomni.model.train.prepare import load_tiny_codec, prepare_run
from agomni.model.train.validation import validation_loss

CONFIG = {
    "corpus": {"toy": {"seed": 3, "n_train": 2, "n_heldout": 1, "duration": 1.0}},
    "codec": {"vae_training": {"steps": 20, "hidden": 16}, "griffin_lim_iterations": 4},
    "optimizer": {"lr": 0.003, "warmup_steps": 5, "schedule": "cosine"},
    "ema": {"decay": 0.9},
    "train": {"batch_size": 4, "max_steps": 36, "log_every": 6, "checkpoint_every": 12},
    "validation": {"times_per_item": 4},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    config = root / "tiny.json"
    config.write_text(json.dumps(CONFIG))
    args = build_parser().parse_args(["train", str(config), "--out", str(root / "run"), "--device", "cpu"])
    assert cli_train(args) == 0
    return config, root / "run"


@pytest.mark.slow
def test_cached_examples_match_the_manifest(run):
    config, out = run
    cfg = load_train_config(config)
    prepared = prepare_run(cfg, out, log=lambda m: None)  # second time: read from the cache
    items = [json.loads(x) for x in (out / "corpus/train/manifest.jsonl").read_text().splitlines()]
    ex = prepared.train
    assert list(ex.ids) == [x["id"] for x in items]
    for i, item in enumerate(items):
        flags = ex["presence"][i].tolist()
        assert flags == ["video" in item, "text" in item, "transcript" in item or "lyrics" in item]
        lt = item.get("transcript", item.get("lyrics"))
        if lt is not None:  # grapheme ids are UTF-8 bytes + 1, filler 0 to the latent length
            expected = [b + 1 for b in lt.encode()][:32]
            assert ex["lt_ids"][i].tolist() == expected + [0] * (32 - len(expected))
        if "video" not in item:
            assert float(ex["clip"][i].abs().sum()) == 0.0
    # latents: the codec's posterior mean of the wav read here with soundfile (16-bit PCM / 32768)
    codec, _ = load_tiny_codec(out / "vae/tiny-vae-16k.safetensors", 4)
    pcm, _ = sf.read(str(out / "corpus/train" / items[0]["reference_audio"]), dtype="int16")
    wave = torch.from_numpy(pcm.astype(np.float32) / 32768.0)[None, :16000]
    with torch.no_grad():
        expected = codec.encode(wave).mean[0]
    torch.testing.assert_close(ex["latent_mean"][0], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_loss_falls_and_checkpoints_carry_their_provenance(run):
    config, out = run
    cfg = load_train_config(config)
    records = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 6 and losses[-1] < losses[0]
    prepared = prepare_run(cfg, out, log=lambda m: None)
    v = cfg.validation
    initial = validation_loss(
        build_model(cfg, prepared, torch.device("cpu")),
        prepared.heldout,
        seed=v.seed,
        times_per_item=v.times_per_item,
    )
    final = load_model_checkpoint(out / "checkpoints/step-000036")
    recomputed = validation_loss(
        build_network(final), prepared.heldout, seed=v.seed, times_per_item=v.times_per_item
    )
    assert recomputed == pytest.approx(final.meta["extra"]["validation"]["loss"], rel=1e-6)
    assert recomputed < 0.9 * initial
    extra = final.meta["extra"]
    assert final.conditioners == ConditionerSpec(text_length=cfg.conditioners.text_tokens)
    assert extra["corpus"]["toycorpus"]["seed"] == 3
    assert extra["training_command"].startswith("agomni")
    assert final.meta["codec"]["vocoder"] == {"griffin_lim_iterations": cfg.codec.griffin_lim_iterations}
    assert final.meta["codec"]["vae"]["file"] == "../vae/tiny-vae-16k.safetensors"
    assert len(final.latent_stats[1]) == 20
    steps = sorted(p.name for p in (out / "checkpoints").glob("step-*.json") if ".train." not in p.name)
    assert steps == ["step-000012.json", "step-000024.json", "step-000036.json"]


def test_train_subcommand_arguments():
    args = build_parser().parse_args(["train", "c.json", "--out", "o", "--resume", "--max-steps", "5"])
    assert isinstance(args, argparse.Namespace)
    assert (args.config, args.out, args.resume, args.max_steps, args.device) == ("c.json", "o", True, 5, None)


@pytest.mark.slow
def test_float16_export_records_the_loss_of_the_stored_weights(run, tmp_path):
    config, out = run
    cfg = load_train_config(config)
    source = load_model_checkpoint(out / "checkpoints/step-000036")
    path = export_checkpoint(out / "checkpoints/step-000036", tmp_path / "shipped", float16=True)
    shipped = load_model_checkpoint(path)
    assert {v.dtype for v in shipped.network_state.values()} == {torch.float16}
    assert (tmp_path / "tiny-vae-16k.safetensors").read_bytes() == (
        out / "vae/tiny-vae-16k.safetensors"
    ).read_bytes()
    prepared = prepare_run(cfg, out, log=lambda m: None)
    v = cfg.validation
    half = {k: t.half().float() for k, t in source.network_state.items()}  # the rounding, done here
    net = build_model(cfg, prepared, torch.device("cpu"))
    net.load_state_dict(half)
    expected = validation_loss(net, prepared.heldout, seed=v.seed, times_per_item=v.times_per_item)
    validation = shipped.meta["extra"]["validation"]
    assert validation["loss"] == pytest.approx(expected, rel=1e-6)
    assert validation["loss_float32"] == source.meta["extra"]["validation"]["loss"]
    assert shipped.meta["extra"]["exported_from"]["sha256"] == source.sha256
    assert shipped.meta["codec"]["vae"]["file"] == "tiny-vae-16k.safetensors"
