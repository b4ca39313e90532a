"""Embedders: networks or fixed transforms that turn waveforms into the embeddings metrics compare.

Every embedder states what it is (``name``, ``version``), what it expects (``sample_rate``, mono float32
waveforms [B, samples]), what it returns (``output``: one row per clip, or per frame), and whether its
numbers can be compared with published tables (``comparable_with_published``). ``config()`` holds every
setting that changes the embedding; together with name and version it forms ``cache_key()``, to be
combined with the audio content hash and checkpoint hash by the embedding cache.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import Any, Literal

import numpy as np
import torch

from agomni.errors import MetricInputError


class Embedder(ABC):
    """Interface of all embedders.

    ``embed(waveform)`` takes float32 mono audio [B, samples] at ``sample_rate`` and returns a float32
    tensor [B, D] (``output == "clip"``) or [B, frames, D] (``output == "frames"``).
    """

    name: str
    sample_rate: int
    version: str
    output: Literal["clip", "frames"]
    comparable_with_published: bool

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Every setting that changes the embedding (JSON-serialisable)."""

    @abstractmethod
    def embed(self, waveform: torch.Tensor) -> torch.Tensor:
        """Embeddings of a batch of waveforms [B, samples] (float32, ``sample_rate`` Hz)."""

    def metadata(self) -> dict[str, Any]:
        """Name, version, sample rate, output level, config and comparability, for provenance records."""
        return {
            "name": self.name,
            "version": self.version,
            "sample_rate": self.sample_rate,
            "output": self.output,
            "comparable_with_published": self.comparable_with_published,
            "config": self.config(),
        }

    def cache_key(self) -> str:
        """SHA-256 (hex) of the canonical JSON of ``metadata()``."""
        text = json.dumps(self.metadata(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def check_waveform(self, waveform: torch.Tensor | np.ndarray, *, min_samples: int = 1) -> torch.Tensor:
        """``waveform`` as a float32 CPU tensor [B, samples], or ``MetricInputError`` naming the problem
        (wrong rank, too short, non-finite values with the batch row)."""
        x = torch.as_tensor(waveform)
        if x.ndim != 2:
            raise MetricInputError(
                f"{self.name}: expected a waveform batch [B, samples], got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise MetricInputError(f"{self.name}: expected float samples in [-1, 1], got dtype {x.dtype}")
        if x.shape[1] < min_samples:
            raise MetricInputError(
                f"{self.name}: waveform has {x.shape[1]} samples, needs at least {min_samples} "
                f"({min_samples / self.sample_rate:.3f} s at {self.sample_rate} Hz)"
            )
        finite = torch.isfinite(x).all(dim=1)
        if not bool(finite.all()):
            row = int(torch.nonzero(~finite)[0, 0])
            raise MetricInputError(f"{self.name}: waveform row {row} holds NaN or infinite samples")
        return x.detach().to(device="cpu", dtype=torch.float32)


__all__ = ["Embedder"]
