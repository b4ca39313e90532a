"""Preprocessing of one audio file for one embedder: decode, downmix, resample, crop/pad.

Two kinds, both with ``to_dict()`` (part of the embedding cache key and of each run's provenance) and
``prepare(path) -> (float32 [samples], AudioRecord)``:
- ``PrepConfig``: settings from the embedder (sample rate) and the profile (downmix, resampler,
  crop/pad), for embedders without an input recipe of their own (the offline embedders, PaSST);
- ``EmbedderLoader``: the embedder's own ``load(path)`` with its ``recipe`` (VGGish and PANNs carry the
  av-benchmark / audioldm_eval input recipes: downmix, DC removal, resampler, crop/pad).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from agomni.evaluate.profiles import CropPad
from agomni.io import load_audio
from agomni.io.records import AudioRecord
from agomni.metrics.embedders import Embedder


@dataclass(frozen=True)
class PrepConfig:
    """Mono float32 audio at ``sample_rate`` Hz: channels combined by ``downmix`` ("mean" or "first"),
    resampled with the ``resampler`` policy of `agomni.io.resample`, then ``crop_pad`` applied."""

    sample_rate: int
    downmix: str
    resampler: str
    crop_pad: CropPad

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "channels": 1,
            "dtype": "float32",
            "downmix": self.downmix,
            "resampler": self.resampler,
            "crop_pad": self.crop_pad.to_dict(),
        }

    def prepare(self, path: Path) -> tuple[torch.Tensor, AudioRecord]:
        """Decode ``path`` and prepare it: float32 [samples] and the decoding record.

        Raises the typed `MediaError`s of `agomni.io.load_audio` (unreadable, empty, non-finite, silent),
        each naming the file.
        """
        waveform, record = load_audio(
            path, sample_rate=self.sample_rate, downmix=self.downmix, resampler=self.resampler
        )
        return apply_crop_pad(waveform, self.crop_pad, self.sample_rate)[0], record


@dataclass(frozen=True)
class EmbedderLoader:
    """The embedder's own ``load(path) -> (waveform [samples], AudioRecord, steps)`` and its ``recipe``."""

    embedder: Embedder

    def to_dict(self) -> dict[str, Any]:
        recipe = self.embedder.recipe  # type: ignore[attr-defined]
        return {
            "sample_rate": self.embedder.sample_rate,
            "channels": 1,
            "dtype": "float32",
            "loader": f"{type(self.embedder).__name__}.load",
            "loader_source_sha256": _source_sha256(type(self.embedder)),
            "recipe": recipe.to_dict() if hasattr(recipe, "to_dict") else str(recipe),
        }

    def prepare(self, path: Path) -> tuple[torch.Tensor, AudioRecord]:
        waveform, record, _ = self.embedder.load(path)  # type: ignore[attr-defined]
        return waveform, record


@functools.lru_cache(maxsize=32)
def _source_sha256(cls: type) -> str:
    """SHA-256 of the source file defining ``cls`` (its loader code is part of the preprocessing)."""
    return hashlib.sha256(Path(inspect.getfile(cls)).read_bytes()).hexdigest()


def preparer_for(embedder: Embedder, config: PrepConfig) -> PrepConfig | EmbedderLoader:
    """The embedder's own loader when it has one (``load`` and ``recipe``), else ``config``."""
    if callable(getattr(embedder, "load", None)) and hasattr(embedder, "recipe"):
        return EmbedderLoader(embedder)
    return config


def apply_crop_pad(waveform: torch.Tensor, spec: CropPad, sample_rate: int) -> torch.Tensor:
    """``waveform`` [channels, samples] padded to at least ``ceil(min_s * sr)`` samples, then padded or
    cropped (keeping the start) to exactly ``round(exact_s * sr)`` samples. Zero padding appends zeros;
    repeat padding tiles the clip and cuts it at the target length."""
    out = waveform
    if spec.min_s is not None:
        out = _pad_to(out, math.ceil(spec.min_s * sample_rate), spec.pad)
    if spec.exact_s is not None:
        target = round(spec.exact_s * sample_rate)
        out = _pad_to(out, target, spec.pad)[:, :target]
    return out.contiguous()


def _pad_to(waveform: torch.Tensor, target: int, mode: str) -> torch.Tensor:
    length = waveform.shape[-1]
    if length >= target:
        return waveform
    if mode == "repeat":
        return waveform.repeat(1, math.ceil(target / length))[:, :target]
    return torch.nn.functional.pad(waveform, (0, target - length))
