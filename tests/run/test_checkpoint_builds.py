"""`agomni run` with a checkpoint builds the reference model once: conditioners, network and codec are
built for the first item and reused for every seed and after a failed item, and the reused model gives
each item the audio a one-off `generate` call gives it."""

import json
from pathlib import Path

import numpy as np
import soundfile as sf

import agomni.model.generate as generate_module
import agomni.run.generators as generators_module
from agomni.cli import main
from agomni.errors import UsageError
from agomni.manifest import load_manifest
from agomni.model.generate import generate
from tests.run.toy_fixtures import no_video_manifest

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "agomni/model/checkpoints/tiny-16k-toy.safetensors"


def _counted(monkeypatch, module, name, counts):
    original = getattr(module, name)

    def counting(*args, **kwargs):
        counts[name] = counts.get(name, 0) + 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)


def test_two_seeds_and_a_failing_item_build_the_model_once(tmp_path, monkeypatch):
    manifest = no_video_manifest(tmp_path / "toy")
    items = list(load_manifest(manifest))[:3]
    failing = items[1].id
    conditions = generate_module.item_conditions

    def fails_for_one(item, *args):  # generation (not scoring) of this item fails
        if item.id == failing:
            raise UsageError(f"item {item.id}: refused by the test")
        return conditions(item, *args)

    monkeypatch.setattr(generate_module, "item_conditions", fails_for_one)
    small = manifest.with_name("small.jsonl")
    small.write_text("".join(manifest.read_text().splitlines(keepends=True)[:3]))
    counts: dict[str, int] = {}
    for name in ("build_conditioners", "build_network", "load_codec"):
        _counted(monkeypatch, generate_module, name, counts)
    _counted(monkeypatch, generators_module, "load_model_checkpoint", counts)

    out = tmp_path / "run"
    argv = ["run", "smoke", "--generator", f"checkpoint:{CHECKPOINT}", "--manifest", str(small)]
    argv += ["--out", str(out), "--seeds", "0,1", "--steps", "2", "--no-progress", "--format", "json"]
    code = main([*argv, "--metrics", "fd_offline"])

    assert counts == {
        "load_model_checkpoint": 1,
        "build_conditioners": 1,
        "build_network": 1,
        "load_codec": 1,
    }
    for seed in (0, 1):
        folder = out / f"seed-{seed}" / "sample-0"
        assert not (folder / f"{failing}.wav").exists()
        for item in (items[0], items[2]):  # the reused model's audio equals a freshly built model's
            written, rate = sf.read(folder / f"{item.id}.wav", dtype="float32")
            (fresh,) = generate([item], CHECKPOINT, seed=seed, steps=2, batch_size=1)
            assert rate == fresh.sample_rate and np.array_equal(written, fresh.wave.numpy())
    assert code == 0
    coverage = {entry["id"]: entry for entry in json.loads((out / "results.json").read_text())["coverage"]}
    assert coverage[failing]["status"] != "ok" and "refused by the test" in coverage[failing]["reason"]
