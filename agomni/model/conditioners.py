"""Pluggable conditioners: what the network needs from frozen encoders, and tiny random stand-ins.

A video conditioner turns decoded frames into CLIP-like features at `clip_fps` and Synchformer-like
features (`sync_tokens_per_segment` per segment of `sync_frames_per_segment` frames at
`sync_input_fps`); a text conditioner turns prompts into token features. The real encoders (CLIP,
Synchformer, Flan-T5) plug in behind these protocols; the random stand-ins below have the same
shapes and are deterministic functions of their input and seed, for tests and smoke runs only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from ..errors import UsageError
from .config import SequenceConfig


@dataclass(frozen=True)
class VideoFeatures:
    """clip: (B, clip_len, clip_dim) at clip_fps; sync: (B, sync_len, sync_dim) Synchformer tokens."""

    clip: torch.Tensor
    sync: torch.Tensor


class VideoConditioner(Protocol):
    clip_dim: int
    sync_dim: int

    def encode(self, frames: torch.Tensor, fps: float, sequence: SequenceConfig) -> VideoFeatures:
        """frames (B, T, 3, H, W) in [0, 1] at `fps` covering at least sequence.duration_s seconds."""
        ...


class TextConditioner(Protocol):
    text_dim: int

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """Prompts -> (B, L, text_dim) token features."""
        ...


def check_frames(frames: torch.Tensor) -> None:
    """UsageError unless `frames` is a (batch, time, 3, height, width) video tensor."""
    if frames.ndim != 5 or frames.shape[2] != 3:
        raise UsageError(f"video frames must be (batch, time, 3, height, width), got {tuple(frames.shape)}")


def frames_at(frames: torch.Tensor, fps: float, times_s: torch.Tensor, item: str = "video") -> torch.Tensor:
    """Nearest earlier frame for each time (seconds): (B, T, ...) -> (B, len(times), ...)."""
    index = torch.floor(times_s * fps + 1e-6).long()
    if int(index.max()) >= frames.shape[1]:
        needed = float(times_s.max())
        raise UsageError(f"{item}: {frames.shape[1]} frames at {fps} fps do not reach {needed:.3f} s")
    return frames[:, index]


class RandomVideoConditioner:
    """Stand-in video encoder: 4x4 average-pooled RGB thumbnails through fixed random projections."""

    def __init__(self, clip_dim: int, sync_dim: int, seed: int = 0):
        self.clip_dim, self.sync_dim = clip_dim, sync_dim
        g = torch.Generator().manual_seed(seed)
        self._clip_proj = torch.randn(48, clip_dim, generator=g) / 48**0.5
        self._sync_proj = torch.randn(2 * 48, sync_dim, generator=g) / 96**0.5

    @staticmethod
    def _thumbs(frames: torch.Tensor) -> torch.Tensor:
        b, t = frames.shape[:2]
        return F.adaptive_avg_pool2d(frames.flatten(0, 1).float(), 4).reshape(b, t, 48)

    def encode(self, frames: torch.Tensor, fps: float, sequence: SequenceConfig) -> VideoFeatures:
        check_frames(frames)
        clip_t = torch.arange(sequence.clip_len) / sequence.clip_fps
        clip = self._thumbs(frames_at(frames, fps, clip_t)) @ self._clip_proj
        # Token j of segment s summarises input frames s * step + 2j and 2j + 1 (2x temporal downsampling).
        per_seg = sequence.sync_tokens_per_segment
        stride = sequence.sync_frames_per_segment // per_seg
        seg = torch.arange(sequence.sync_segments)[:, None] * sequence.sync_segment_step
        first = (seg + stride * torch.arange(per_seg)[None, :]).flatten()
        pairs = [self._thumbs(frames_at(frames, fps, (first + k) / sequence.sync_input_fps)) for k in (0, 1)]
        sync = torch.cat(pairs, dim=-1) @ self._sync_proj
        return VideoFeatures(clip=clip, sync=sync)


class RandomTextConditioner:
    """Stand-in text encoder: UTF-8 bytes looked up in a fixed random table, zero-padded to `length` tokens."""

    def __init__(self, text_dim: int, length: int, seed: int = 0):
        self.text_dim, self.length = text_dim, length
        self._table = torch.randn(256, text_dim, generator=torch.Generator().manual_seed(seed))

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        out = torch.zeros(len(prompts), self.length, self.text_dim)
        for i, prompt in enumerate(prompts):
            data = list(prompt.encode("utf-8"))
            if not data:
                raise UsageError(f"prompt {i} is empty; mark text absent instead of encoding an empty prompt")
            if len(data) > self.length:
                raise UsageError(
                    f"prompt {i} has {len(data)} UTF-8 bytes, more than the {self.length} tokens"
                )
            out[i, : len(data)] = self._table[torch.tensor(data)]
        return out
