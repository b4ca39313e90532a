"""Embedders: networks or fixed transforms that turn waveforms into the embeddings metrics compare.

The interface (`Embedder`), as small as fadtk's model loader:

- what it is: ``name``, ``version``, ``config()`` (every setting that changes an output; with name and
  version it forms ``cache_key()``), ``comparable_with_published``;
- what it needs: ``sample_rate`` and ``min_samples``, together ``needs`` (`InputNeeds`; input is mono
  float32 ``[B, samples]``). How a file becomes
  that waveform (downmix, resampler, crop, padding) is the profile's recipe (`agomni.io.prepare`), not
  the embedder's;
- what it returns: ``heads`` (the named outputs, e.g. ``("embed", "logits")``) and ``outputs(waveform)``,
  which computes all of them in one pass: ``{"embed": [B, D] or [B, frames, D], "logits": [B, C]}``.
  ``output`` says whether ``"embed"`` is one row per clip or per frame. `agomni eval` caches the heads
  of one clip together, as one entry per network and clip.

A minimal embedder::

    class Energy(Embedder):
        name, version, output, comparable_with_published = "energy", "1", "clip", False
        sample_rate, min_samples = 16000, 160

        def config(self):
            return {"feature": "mean square"}

        def embed(self, waveform):
            return waveform.pow(2).mean(dim=1, keepdim=True)
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from agomni.errors import MetricInputError


@dataclass(frozen=True)
class InputNeeds:
    """What an embedder's input must be: float32 ``[B, samples]`` at ``sample_rate`` Hz with ``channels``
    channels (mono: the batch rows), each at least ``min_samples`` long."""

    sample_rate: int
    channels: int = 1
    min_samples: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Embedder(ABC):
    """Interface of all embedders (see the module docstring).

    ``embed(waveform)`` takes float32 mono audio [B, samples] at ``needs.sample_rate`` and returns a
    float32 tensor [B, D] (``output == "clip"``) or [B, frames, D] (``output == "frames"``);
    ``outputs(waveform)`` returns every head at once.
    """

    name: str
    version: str
    sample_rate: int
    min_samples: int = 1
    output: Literal["clip", "frames"]
    comparable_with_published: bool
    heads: ClassVar[tuple[str, ...]] = ("embed",)

    @property
    def needs(self) -> InputNeeds:
        """Rate, channels and minimum length of the input (``sample_rate`` and ``min_samples``)."""
        return InputNeeds(self.sample_rate, 1, self.min_samples)

    def outputs(self, waveform: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every head of a batch [B, samples] from one pass: ``{"embed": ...}`` (plus ``"logits"`` [B, C]
        for classifiers, which override this)."""
        return {"embed": self.embed(waveform)}

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
            "heads": list(self.heads),
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


__all__ = ["Embedder", "InputNeeds"]
