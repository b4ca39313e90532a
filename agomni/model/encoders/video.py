"""The real `VideoConditioner`: CLIP features from `ClipVideoEncoder`, sync features from `SynchformerEncoder`."""

from __future__ import annotations

import torch

from ..conditioners import VideoFeatures
from ..config import SequenceConfig
from .clip_video import ClipVideoEncoder
from .synchformer import SynchformerEncoder


class EncoderVideoConditioner:
    """`VideoConditioner` backed by the frozen encoders.

    `encode` computes both streams from one decode; `encode_clip` / `encode_sync` compute one (MMAudio
    decodes the video at 8 fps for CLIP and at 25 fps for Synchformer, so a caller holding both decodes
    should call each on its own decode). `random_weights` is True if either encoder is untrained;
    `checkpoint_sha256` maps "clip" / "sync" to the SHA-256 of the file each was loaded from.
    """

    def __init__(self, clip: ClipVideoEncoder, sync: SynchformerEncoder):
        self.clip, self.sync = clip, sync
        self.clip_dim, self.sync_dim = clip.clip_dim, sync.sync_dim
        self.random_weights = clip.random_weights or sync.random_weights
        self.checkpoint_sha256 = {"clip": clip.checkpoint_sha256, "sync": sync.checkpoint_sha256}

    def encode_clip(self, frames: torch.Tensor, fps: float, sequence: SequenceConfig) -> torch.Tensor:
        """(B, clip_len, clip_dim) L2-normalised CLIP features (see `ClipVideoEncoder`)."""
        return self.clip.encode_clip(frames, fps, sequence)

    def encode_sync(self, frames: torch.Tensor, fps: float, sequence: SequenceConfig) -> torch.Tensor:
        """(B, sync_len, sync_dim) Synchformer features (see `SynchformerEncoder`)."""
        return self.sync.encode_sync(frames, fps, sequence)

    def encode(self, frames: torch.Tensor, fps: float, sequence: SequenceConfig) -> VideoFeatures:
        return VideoFeatures(
            clip=self.encode_clip(frames, fps, sequence), sync=self.encode_sync(frames, fps, sequence)
        )
