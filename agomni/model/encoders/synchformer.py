"""Synchformer visual features: 8 tokens of 768-d per 16-frame segment of 25 fps video (MMAudio's sync stream).

Recipe (hkchengrex/MMAudio: ``eval_utils.load_video`` sync transform, ``FeaturesUtils.encode_video_with_sync``,
``ext/synchformer``; Synchformer by V. Iashin, MotionFormer "divided" 224/16x4 configuration):

1. uint8 RGB frames at 25 fps, the first floor(duration * 25); resize the shorter side to 224 (bicubic,
   antialiased; the longer side int(224 * long / short)), centre-crop 224 x 224, scale to [0, 1],
   normalise with mean 0.5 / std 0.5 (-> [-1, 1]).
2. Segments of 16 frames every 8 frames: (floor(duration * 25) - 16) // 8 + 1 of them (24 for 8 s).
3. Per segment, MotionFormer: Conv3d patches (2 frames x 16 x 16 px) -> 8 x 14 x 14 tokens (time-major)
   after a class token; positions = spatial table (tiled over time) + temporal table (repeated over
   space), the class token gets the spatial table's first row; 12 divided space-time blocks (time
   attention, then space attention, then an MLP; each pre-norm, LayerNorm eps 1e-6; the class token
   attends to every token, a patch token to the class token and the patches of its own position
   (time) or frame (space)); final LayerNorm of the patch tokens.
4. Spatial aggregation: per time step, a class token + the 196 patch tokens through one pre-norm
   ``nn.TransformerEncoderLayer`` (GELU, FF 3072, eps 1e-6); its class-token output is the feature.
   No temporal aggregation (identity): 8 tokens per segment, (B, segments * 8, 768).

Parameters keep the checkpoint's names under ``vfeat_extractor.`` (MMAudio's ``Synchformer.load_state_dict``
keeps only those, as here); ``patch_embed`` (2-D) is in the checkpoint but unused by the forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import UsageError, WeightsError
from ...weights import load_strict
from ..conditioners import check_frames, frames_at
from ..config import SequenceConfig
from .loading import registry_state

SYNCHFORMER_WEIGHTS = "synchformer-24-01-04T16-39-21"
SYNC_SIZE = 224  # MMAudio _SYNC_SIZE
SYNC_MEAN = 0.5
SYNC_STD = 0.5
_PREFIX = "vfeat_extractor."


@dataclass(frozen=True)
class MotionFormerConfig:
    """image_size: square input (px); patch_size: spatial patch (px); frames: frames per segment;
    time_patch: frames per 3-D patch (frames / time_patch temporal tokens); embed_dim, depth, heads,
    mlp_ratio of the blocks."""

    image_size: int = 224
    patch_size: int = 16
    frames: int = 16
    time_patch: int = 2
    embed_dim: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: int = 4

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def time_tokens(self) -> int:
        return self.frames // self.time_patch


SYNCHFORMER = MotionFormerConfig()


class PatchEmbed(nn.Module):
    def __init__(self, conv: nn.Module):
        super().__init__()
        self.proj = conv


class DividedAttention(nn.Module):
    """Self-attention restricted to groups of patch tokens plus the class token (see the module docstring)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, frames: int, over: str) -> torch.Tensor:
        """x (B, 1 + frames * patches, D); over = "time" (a patch token attends to the same patch in
        every frame) or "space" (to every patch of its frame); the class token attends to everything."""
        b, n, dim = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        cls_out = F.scaled_dot_product_attention(q[:, :, :1], k, v)

        def grouped(t: torch.Tensor) -> torch.Tensor:  # (b, h, f * p, d) -> (b, h, groups, members, d)
            t = t[:, :, 1:].unflatten(2, (frames, -1))
            return t.transpose(2, 3) if over == "time" else t

        qg, kg, vg = grouped(q), grouped(k), grouped(v)
        groups = qg.shape[2]
        kg = torch.cat([k[:, :, None, :1].expand(-1, -1, groups, -1, -1), kg], dim=3)
        vg = torch.cat([v[:, :, None, :1].expand(-1, -1, groups, -1, -1), vg], dim=3)
        out = F.scaled_dot_product_attention(qg, kg, vg)
        out = (out.transpose(2, 3) if over == "time" else out).flatten(2, 3)
        out = torch.cat([cls_out, out], dim=2).transpose(1, 2).reshape(b, n, dim)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class DividedSpaceTimeBlock(nn.Module):
    """x + time-attn(norm3 x); then + space-attn(norm1 .); then + mlp(norm2 .)."""

    def __init__(self, config: MotionFormerConfig):
        super().__init__()
        dim = config.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = DividedAttention(dim, config.heads)
        self.timeattn = DividedAttention(dim, config.heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, config.mlp_ratio * dim)
        self.norm3 = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        x = x + self.timeattn(self.norm3(x), frames, "time")
        x = x + self.attn(self.norm1(x), frames, "space")
        return x + self.mlp(self.norm2(x))


class SpatialAggregator(nn.TransformerEncoderLayer):
    """Class-token pooling of each time step's patch tokens: (N, patches, D) -> (N, D)."""

    def __init__(self, config: MotionFormerConfig):
        super().__init__(
            d_model=config.embed_dim,
            nhead=config.heads,
            dim_feedforward=config.mlp_ratio * config.embed_dim,
            dropout=0.0,
            activation=nn.GELU(),
            layer_norm_eps=1e-6,
            batch_first=True,
            norm_first=True,
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.embed_dim))

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return super().forward(x)[:, 0]


class MotionFormer(nn.Module):
    """Normalised segments (N, 3, frames, size, size) in [-1, 1] -> (N, time_tokens, embed_dim)."""

    def __init__(self, config: MotionFormerConfig):
        super().__init__()
        self.config = config
        dim, p = config.embed_dim, config.patch_size
        self.patch_embed = PatchEmbed(nn.Conv2d(3, dim, p, stride=p))  # in the checkpoint, unused
        self.patch_embed_3d = PatchEmbed(
            nn.Conv3d(3, dim, (config.time_patch, p, p), stride=(config.time_patch, p, p))
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.grid**2 + 1, dim))
        self.temp_embed = nn.Parameter(torch.zeros(1, config.time_tokens, dim))
        self.blocks = nn.ModuleList([DividedSpaceTimeBlock(config) for _ in range(config.depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.spatial_attn_agg = SpatialAggregator(config)

    def embed(self, segments: torch.Tensor) -> torch.Tensor:
        """(N, 3, frames, H, W) -> tokens (N, 1 + time_tokens * grid^2, D) with positions added."""
        x = self.patch_embed_3d.proj(segments).flatten(2).transpose(1, 2)
        patches = self.config.grid**2
        spatial = self.pos_embed[:, 1:].repeat(1, self.config.time_tokens, 1)
        temporal = self.temp_embed.repeat_interleave(patches, dim=1)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + torch.cat([self.pos_embed[:, :1], spatial + temporal], dim=1)

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        x = self.embed(segments)
        for block in self.blocks:
            x = block(x, self.config.time_tokens)
        x = self.norm(x[:, 1:])  # (N, t * h * w, D), time-major
        n, t = x.shape[0], self.config.time_tokens
        pooled = self.spatial_attn_agg.pool(x.reshape(n * t, self.config.grid**2, -1))
        return pooled.view(n, t, -1)


def sync_preprocess(frames: torch.Tensor, size: int = SYNC_SIZE) -> torch.Tensor:
    """Frames (N, 3, H, W) in [0, 1] (uint8 / 255) -> (N, 3, size, size) in [-1, 1], on the frames' device.

    Shorter side to `size` (bicubic, antialiased, on the CPU in uint8 as torchvision v2 does for MMAudio's
    decoded frames), centre crop (offsets rounded as torchvision's), then (x - 0.5) / 0.5.
    """
    h, w = frames.shape[-2:]
    if min(h, w) < 1:
        raise UsageError(f"video frames of size {h} x {w} cannot be resized")
    new_h, new_w = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
    levels = frames.detach().float().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).cpu()
    if (new_h, new_w) != (h, w):
        levels = F.interpolate(
            levels, size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False
        )
    top, left = round((new_h - size) / 2.0), round((new_w - size) / 2.0)
    crop = levels[..., top : top + size, left : left + size]
    return (crop.to(frames.device, torch.float32) / 255.0 - SYNC_MEAN) / SYNC_STD


def motionformer_state(state: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """The ``vfeat_extractor.*`` entries of a Synchformer checkpoint, prefix removed (the audio
    branch and the synchronisation head are not used, as in MMAudio)."""
    chosen = {k[len(_PREFIX) :]: v for k, v in state.items() if k.startswith(_PREFIX)}
    if not chosen:
        shown = ", ".join(sorted(state)[:12])
        raise WeightsError(f"{where}: no '{_PREFIX}' keys; found: {shown}")
    return chosen


class SynchformerEncoder:
    """Synchformer sync features of a video: (B, sync_len, embed_dim) float32 (192 x 768 for 8 s).

    `encode_sync(frames, fps, sequence)`: frames (B, T, 3, H, W) in [0, 1] at `fps`; the frame at each
    time k / sync_input_fps, k < floor(duration * sync_input_fps), is preprocessed (`sync_preprocess`),
    cut into segments of `sequence.sync_frames_per_segment` every `sequence.sync_segment_step` frames,
    and run through MotionFormer `batch_segments` at a time.
    """

    def __init__(
        self,
        model: MotionFormer,
        *,
        random_weights: bool,
        checkpoint_sha256: str | None = None,
        device: str | torch.device = "cpu",
        batch_segments: int = 8,
    ):
        self.model = model.eval().to(device)
        self.sync_dim = model.config.embed_dim
        self.random_weights = random_weights
        self.checkpoint_sha256 = checkpoint_sha256
        self.device = torch.device(device)
        self.batch_segments = batch_segments

    @classmethod
    def from_registry(
        cls,
        *,
        device: str | torch.device = "cpu",
        weights_name: str = SYNCHFORMER_WEIGHTS,
        config: MotionFormerConfig = SYNCHFORMER,
    ) -> SynchformerEncoder:
        """The Synchformer checkpoint MMAudio uses, from the weights registry (OfflineError when offline
        and not cached)."""
        state, sha = registry_state(weights_name)
        with torch.device("meta"):
            model = MotionFormer(config)
        load_strict(model, motionformer_state(state, weights_name), where=weights_name, assign=True)
        return cls(model, random_weights=False, checkpoint_sha256=sha, device=device)

    def encode_sync(self, frames: torch.Tensor, fps: float, sequence: SequenceConfig) -> torch.Tensor:
        check_frames(frames)
        config = self.model.config
        if sequence.sync_frames_per_segment != config.frames:
            raise UsageError(
                f"the sequence asks for {sequence.sync_frames_per_segment}-frame segments; this Synchformer "
                f"takes {config.frames}"
            )
        if sequence.sync_tokens_per_segment != config.time_tokens:
            raise UsageError(
                f"the sequence expects {sequence.sync_tokens_per_segment} tokens per segment; this "
                f"Synchformer gives {config.time_tokens}"
            )
        count = int(sequence.duration_s * sequence.sync_input_fps)
        chosen = frames_at(frames, fps, torch.arange(count) / sequence.sync_input_fps)
        b = chosen.shape[0]
        pixels = sync_preprocess(chosen.flatten(0, 1), config.image_size).view(
            b, count, 3, *([config.image_size] * 2)
        )
        starts = torch.arange(sequence.sync_segments) * sequence.sync_segment_step
        index = starts[:, None] + torch.arange(config.frames)[None, :]
        segments = pixels[:, index].flatten(0, 1).transpose(1, 2)  # (B * S, 3, frames, H, W)
        out = []
        with torch.inference_mode():
            for chunk in segments.split(self.batch_segments):
                out.append(self.model(chunk.to(self.device, self.model.norm.weight.dtype)).float())
        return torch.cat(out).view(b, sequence.sync_len, -1)
