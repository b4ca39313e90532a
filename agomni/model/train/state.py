"""Training state for EXACT resume: raw weights, EMA, AdamW state and RNG states, without pickle.

Beside each checkpoint <stem>.safetensors/.json (EMA weights, agomni.model.checkpoint) the trainer
writes <stem>.train.safetensors (tensors: ``model.*`` raw weights, ``ema.*`` EMA weights,
``opt.<param index>.<key>`` AdamW moments and step counts, ``rng.generator`` the training generator's
state and ``rng.torch`` the global CPU RNG state, both as uint8 tensors) and <stem>.train.json (step,
EMA update count, AdamW param groups, the training config for a consistency check).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from agomni.atomic import atomic_write

from ...errors import UsageError, WeightsError

STATE_FORMAT = "agomni-train-state/1"


@dataclass
class TrainState:
    step: int
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    ema_updates: int
    optimizer: dict[str, Any]
    generator: torch.Tensor
    torch_rng: torch.Tensor
    config: dict[str, Any]


def state_paths(stem: Path) -> tuple[Path, Path]:
    return stem.with_name(stem.name + ".train.safetensors"), stem.with_name(stem.name + ".train.json")


def save_state(stem: Path, state: TrainState) -> None:
    """Write the two state files of `stem` (module docstring), each atomically."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in state.model.items()}
    tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in state.ema.items()})
    for index, entry in state.optimizer["state"].items():
        for key, value in entry.items():
            tensors[f"opt.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["rng.generator"] = state.generator
    tensors["rng.torch"] = state.torch_rng
    weights, meta = state_paths(stem)
    atomic_write(
        weights, lambda tmp: save_file(tensors, str(tmp), metadata={"format": STATE_FORMAT}), durable=True
    )
    doc = {
        "format": STATE_FORMAT,
        "step": state.step,
        "ema_updates": state.ema_updates,
        "param_groups": state.optimizer["param_groups"],
        "config": state.config,
    }
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    atomic_write(meta, lambda tmp: tmp.write_text(text, encoding="utf-8"), durable=True)


def load_state(stem: Path) -> TrainState:
    """Read the state files of `stem`; WeightsError when one is missing or of another format."""
    weights, meta = state_paths(stem)
    if not weights.is_file() or not meta.is_file():
        raise WeightsError(f"{stem}: training state files {weights.name} / {meta.name} are missing")
    doc = json.loads(meta.read_text(encoding="utf-8"))
    if doc.get("format") != STATE_FORMAT:
        raise WeightsError(f"{meta}: not a {STATE_FORMAT} file")
    tensors = load_file(str(weights))
    model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    ema = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, index, key = k.split(".", 2)
            opt_state.setdefault(int(index), {})[key] = v
    return TrainState(
        step=int(doc["step"]),
        model=model,
        ema=ema,
        ema_updates=int(doc["ema_updates"]),
        optimizer={"state": opt_state, "param_groups": doc["param_groups"]},
        generator=tensors["rng.generator"],
        torch_rng=tensors["rng.torch"],
        config=doc["config"],
    )


def latest_state(checkpoint_dir: Path) -> Path | None:
    """Stem of the highest-step training state in `checkpoint_dir`, or None when there is none."""
    stems = sorted(
        p.with_name(p.name[: -len(".train.json")]) for p in checkpoint_dir.glob("step-*.train.json")
    )
    return stems[-1] if stems else None


def check_resumable(saved: dict[str, Any], current: dict[str, Any], stem: Path) -> None:
    """UsageError when the saved run's config differs from this one (train.max_steps may differ)."""
    a = json.loads(json.dumps(saved))
    b = json.loads(json.dumps(current))
    for d in (a, b):
        d.get("train", {}).pop("max_steps", None)
    if a != b:
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        raise UsageError(
            f"{stem}: cannot resume: the training config differs in section(s) {', '.join(diff)}"
        )
