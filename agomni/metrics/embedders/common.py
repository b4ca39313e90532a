"""Helpers shared by the network embedders (VGGish, PANNs, PaSST, LAION-CLAP).

`nonempty_batch` (the input check of a network embedder), `weights_info` (the one provenance convention
of the network embedders: their ``weights`` attribute), `registry_weights` / `file_weights` (a checkpoint
with that record), `CheckpointEmbedder` (the embedders that keep the record outside ``config()``),
`pad_or_crop` and `GeluMlp`. How files become waveforms is `agomni.io.prepare`; strict checkpoint loading
is `agomni.weights.load_strict`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agomni import weights as agomni_weights
from agomni.errors import MetricInputError, UsageError
from agomni.metrics.embedders import Embedder
from agomni.weights.store import hash_file


def nonempty_batch(
    embedder: Embedder, waveform: torch.Tensor | np.ndarray, *, min_samples: int
) -> torch.Tensor:
    """`embedder.check_waveform` (float32 CPU [B, samples], at least `min_samples` per row, finite) that
    also refuses an empty batch (B = 0) with MetricInputError naming the embedder."""
    x = embedder.check_waveform(waveform, min_samples=min_samples)
    if x.shape[0] == 0:
        raise MetricInputError(f"{embedder.name}: empty batch (0 waveforms)")
    return x


def check_network_options(who: str, batch_size: int, random_weights: bool, state_dict: object) -> None:
    """UsageError for a batch size below 1, or both random weights and a state dict asked for."""
    if batch_size < 1:
        raise UsageError(f"{who}: batch_size must be >= 1, got {batch_size}")
    if random_weights and state_dict is not None:
        raise UsageError(f"{who}: pass either random_weights=True or state_dict, not both")


# --- checkpoints ----------------------------------------------------------------------------------------


def checkpoint_description(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Provenance of a checkpoint given by path: resolved path and SHA-256."""
    resolved = Path(path).resolve()
    return {"path": str(resolved), "sha256": hash_file(resolved).sha256}


Source = Literal["registry", "file", "random", "state-dict-argument"]


def weights_info(
    source: Source,
    *,
    provenance: Mapping[str, Any] | None = None,
    seed: int | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The ``weights`` record every network embedder exposes (one convention for `agomni eval`):

    ``{"source", "name", "sha256", "trust_class", "random_weights", "seed", "pinned", ...}`` where
    ``trust_class`` is "pinned" / "tofu" (a registry checkpoint, or a file hashed on this use),
    "random" (seeded random weights; ``seed`` set) or "unverified" (a state dict passed in memory: no
    hash, so its numbers cannot be traced). ``provenance``: `agomni.weights.provenance` of a registry
    entry, or `checkpoint_description` of a file.
    """
    prov = dict(provenance or {})
    if source == "random":
        if not isinstance(seed, int):
            raise UsageError("random weights need an integer seed")
        return {"source": source, "name": name, "sha256": None, "trust_class": "random",
                "random_weights": True, "seed": seed, "pinned": False}  # fmt: skip
    if source == "state-dict-argument":
        return {"source": source, "name": name, "sha256": None, "trust_class": "unverified",
                "random_weights": False, "seed": None, "pinned": False}  # fmt: skip
    trust = prov.get("trust_class", "tofu") if source == "registry" else "tofu"
    return {
        **prov,
        "source": source,
        "name": prov.get("name", name),
        "trust_class": trust,
        "random_weights": False,
        "seed": None,
        "pinned": trust == "pinned",
    }


def registry_weights(entry: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict of registry ``entry`` (verified; fetched unless offline) and its `weights_info`."""
    state = agomni_weights.load_entry_state_dict(entry)
    return state, weights_info("registry", provenance=agomni_weights.provenance(entry))


def file_weights(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict in file ``path`` (`agomni.weights.load_state_dict`) and its `weights_info`."""
    state = agomni_weights.load_state_dict(path)
    return state, weights_info("file", provenance=checkpoint_description(path))


class CheckpointEmbedder(Embedder):
    """A network embedder whose weights come from the registry, a file or a seed, described by its
    ``weights`` record (`weights_info`); the record and ``random_weights`` are kept outside ``config()``
    and added to ``metadata()``."""

    weights: dict[str, Any]
    random_weights: bool

    def set_weights_record(self, weights: Mapping[str, Any], device: str | torch.device) -> None:
        """Keep ``weights`` and ``device``; only pinned, non-random weights are comparable with published
        numbers."""
        self.device = torch.device(device)
        self.weights = dict(weights)
        self.random_weights = bool(self.weights.get("random_weights", False))
        self.comparable_with_published = bool(self.weights.get("pinned", False)) and not self.random_weights

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "random_weights": self.random_weights, "weights": self.weights}


# --- layers --------------------------------------------------------------------------------------------


def pad_or_crop(x: torch.Tensor, length: int) -> torch.Tensor:
    """[..., n] -> [..., length]: the first ``length`` values of the last axis, zero-padded at the end if
    shorter (av-benchmark's ``pad_or_truncate``; PaSST's clip length)."""
    if x.shape[-1] >= length:
        return x[..., :length]
    return F.pad(x, (0, length - x.shape[-1]))


class GeluMlp(nn.Module):
    """A transformer block's MLP as timm writes it (``fc1``, GELU, ``fc2``; hidden width 4 x dim), under
    the parameter names of the PaSST, LAION-CLAP and ImageBind checkpoints."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


# --- seeded random weights -------------------------------------------------------------------------------

#: What PyTorch's default initialisation gave with random weights (VGGish embeddings ~3-8 % apart across
#: clips, PANNs logits ~1 %, KL ~1e-8, IS 1 + 1e-8) is useless for checking KL or IS; `he_init` and
#: `calibrate_batchnorm` give outputs that differ between clips as a trained network's do.
CALIBRATION_CLIPS = 8


def he_init(network: torch.nn.Module, seed: int) -> None:
    """Every Conv/Linear weight drawn from N(0, 2 / fan_in) (He, for ReLU networks), biases zero, from
    ``torch.Generator().manual_seed(seed)`` in module order: activations keep their scale through depth,
    so outputs follow the input instead of collapsing onto the biases."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.Conv1d) and not module.weight.requires_grad:
                continue  # fixed front-end matrices (STFT kernels)
            if isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
                if module.bias is not None:
                    module.bias.zero_()


def calibration_audio(seed: int, sample_rate: int, seconds: float = 1.0) -> torch.Tensor:
    """`CALIBRATION_CLIPS` seeded synthetic clips [B, samples]: tones and noise from -50 to -10 dBFS, every
    other one ending in digital silence (as zero-padded clips do)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    clips = []
    for i in range(CALIBRATION_CLIPS):
        level = 10 ** rng.uniform(-2.5, -0.5)
        tone = np.sin(2 * np.pi * rng.uniform(50, 0.45 * sample_rate) * t) * (i % 2)
        clip = level * (tone + rng.standard_normal(t.size) * (0.2 + i % 3))
        if i % 2:
            clip[t.size // 2 :] = 0.0
        clips.append(clip)
    return torch.from_numpy(np.stack(clips).astype(np.float32))


def calibrate_batchnorm(network: torch.nn.Module, batch: torch.Tensor) -> None:
    """Set every BatchNorm's running mean and variance to those of one forward pass over ``batch`` (as a
    trained network's statistics describe its inputs), then leave the network in eval mode."""
    norms = [m for m in network.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: exactly this batch's statistics
    network.train()
    with torch.no_grad():
        network(batch)
    network.eval()
    for norm in norms:
        norm.momentum = 0.1
