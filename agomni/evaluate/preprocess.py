"""Preprocessing of one audio file for one embedder: decode, input recipe, crop/pad.

`PrepConfig` is the one path every embedder's audio takes: the profile's input recipe for that embedder
(`agomni.metrics.embedders.recipes`: downmix, DC removal, resampler, crop to the first seconds, int16
quantisation, minimum length, peak normalisation), then the profile's crop/pad. Network embedders that
carry a recipe themselves (VGGish, PANNs) are built with the same recipe object, so their own ``load``
and this path agree. ``to_dict()`` is part of the embedding cache key and of each run's provenance; it
includes the recipe's ``notes`` (where agomni's steps differ from the reference toolkit's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from agomni.evaluate.profiles import CropPad
from agomni.io.records import AudioRecord
from agomni.metrics.embedders.recipes import InputRecipe, load_prepared


@dataclass(frozen=True)
class PrepConfig:
    """Mono float32 audio at ``sample_rate`` Hz prepared by ``recipe``, then ``crop_pad`` applied."""

    sample_rate: int
    recipe: InputRecipe
    crop_pad: CropPad

    @property
    def downmix(self) -> str:
        return self.recipe.downmix

    @property
    def resampler(self) -> str:
        return self.recipe.resampler

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "channels": 1,
            "dtype": "float32",
            "downmix": self.recipe.downmix,
            "resampler": self.recipe.resampler,
            "recipe": self.recipe.to_dict(),
            "crop_pad": self.crop_pad.to_dict(),
            "notes": self.recipe.notes,
        }

    def prepare(self, path: Path) -> tuple[torch.Tensor, AudioRecord]:
        """Decode ``path`` and prepare it: float32 [samples] and the decoding record.

        Raises the typed `MediaError`s of `agomni.io.load_audio` (unreadable, empty, non-finite, silent),
        each naming the file.
        """
        waveform, record, _ = load_prepared(path, self.sample_rate, self.recipe)
        return apply_crop_pad(waveform[None], self.crop_pad, self.sample_rate)[0], record


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
