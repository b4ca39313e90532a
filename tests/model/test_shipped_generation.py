"""Acceptance: the shipped tiny checkpoint generates audio for each of the six tasks of the held-out split,
and what it generates follows its conditions (closer to the item's own reference than to the others')."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from agomni.manifest import TASKS, load_manifest
from agomni.model.checkpoint import load_model_checkpoint
from agomni.model.checkpoints import TOY_FINAL
from agomni.model.codec.mel import LogMel, mel_settings
from agomni.model.generate import generate
from agomni.toycorpus import build_corpus


@pytest.mark.slow
def test_shipped_checkpoint_generates_every_task_and_follows_its_conditions(tmp_path):
    ckpt = load_model_checkpoint(TOY_FINAL, expected_size="tiny-16k")
    toy = ckpt.meta["extra"]["corpus"]["toycorpus"]
    manifests = build_corpus(tmp_path, seed=toy["seed"], n_train=1, n_heldout=2, duration=toy["duration"])
    items = list(load_manifest(manifests["heldout"]))
    assert {item.task for item in items} == set(TASKS)
    outputs = generate(items, ckpt, seed=0, steps=25, cfg=4.5, progress=False)
    mel = LogMel(mel_settings("16k"))

    def log_mel(wave: np.ndarray) -> torch.Tensor:
        return mel(torch.as_tensor(wave, dtype=torch.float32)[None])[0]

    generated, references = [], []
    for item, out in zip(items, outputs, strict=True):
        wave = out.wave.numpy()
        assert out.item_id == item.id and np.isfinite(wave).all()
        assert abs(wave.size - round(toy["duration"] * out.sample_rate)) <= 256
        assert np.sqrt(np.mean(wave**2)) > 1e-3, f"{item.id}: silent output"
        reference, rate = sf.read(item.reference_audio, dtype="float32")
        assert rate == out.sample_rate
        generated.append(log_mel(wave[: reference.size]))
        references.append(log_mel(reference[: wave.size]))
    # Mean absolute log-mel distance of each output to every reference (independent of the model's codec).
    distance = np.array([[float((g - r).abs().mean()) for r in references] for g in generated])
    own = np.diag(distance).mean()
    others = distance[~np.eye(len(items), dtype=bool)].mean()
    assert own < others, (own, others)
