"""Shared fixtures of the `agomni eval` tests: generated clips and small test embedders.

The embedders are plugged into the metric registry (by monkeypatching `REGISTRY`) through their module
path ``tests.eval_fixtures``, exactly as a real embedder module is.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import soundfile as sf
import torch

from agomni.metrics.embedders.offline import SpectralStatsEmbedder

RATE = 16000


def write_clip(
    path: Path, seed: int, *, seconds: float = 0.5, base_hz: float = 300.0, noise: float = 0.05
) -> Path:
    """A seeded tone-plus-noise clip, 16-bit PCM WAV at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    clip = 0.3 * np.sin(2 * np.pi * (base_hz + 40 * rng.random()) * t) + noise * rng.normal(size=t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(clip, -1, 1).astype(np.float32), RATE, subtype="PCM_16")
    return path


def write_sets(root: Path, n: int, *, pred_ids: list[str] | None = None) -> tuple[Path, Path]:
    """``root/ref`` and ``root/pred`` with ``n`` clips each (ids item00 ...), differently distributed."""
    ids = [f"item{i:02d}" for i in range(n)]
    for i, item in enumerate(ids):
        write_clip(root / "ref" / f"{item}.wav", 1000 + i, base_hz=300.0, noise=0.05)
    for i, item in enumerate(pred_ids if pred_ids is not None else ids):
        write_clip(root / "pred" / f"{item}.wav", 2000 + i, base_hz=500.0, noise=0.1)
    return root / "pred", root / "ref"


def read_clip(path: Path) -> torch.Tensor:
    """The clip as float32 [samples], decoded independently of agomni (soundfile)."""
    data, rate = sf.read(path, dtype="float32")
    assert rate == RATE
    return torch.from_numpy(data)


class CountingEmbedder(SpectralStatsEmbedder):
    """The offline mel-stats embedder, counting how many clips it embedded (class-wide), optionally
    labelled as a random-weights network with a seed (to test checkpoint identity) and a ``logits`` head: a fixed
    projection of the clip statistics to 10 classes (to test KL/IS)."""

    clips_embedded: ClassVar[int] = 0
    heads = ("embed", "logits")

    def __init__(self, seed: int | None = None):
        super().__init__("mel", "clip")
        self.name = "counting-mel-stats"
        if seed is not None:
            self.random_weights = True
            self.weights = {"source": "random", "random_weights": True, "seed": seed}
        self.projection = torch.from_numpy(np.random.default_rng(7).normal(size=(128, 10)) / 40).float()

    def embed(self, waveform: torch.Tensor) -> torch.Tensor:
        type(self).clips_embedded += int(waveform.shape[0])
        return super().embed(waveform)

    def outputs(self, waveform: torch.Tensor) -> dict[str, torch.Tensor]:
        """Both heads from one counted pass (as the PANNs and PaSST embedders give them)."""
        embedding = self.embed(waveform)
        return {"embed": embedding, "logits": embedding @ self.projection}


def counting_embedder() -> CountingEmbedder:
    return CountingEmbedder()


def seeded_counting_embedder(seed: int) -> CountingEmbedder:
    """A 'random-weights' variant: its checkpoint identity is random-weights:<seed>."""
    return CountingEmbedder(seed)
