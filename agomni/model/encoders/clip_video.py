"""CLIP video features: DFN5B-CLIP ViT-H/14 image embeddings of frames at 8 fps (MMAudio's recipe).

Recipe (hkchengrex/MMAudio, ``eval_utils.load_video`` + ``FeaturesUtils.encode_video_with_clip``):
uint8 RGB frames at 8 fps -> resize to 384 x 384 (bicubic, antialiased, aspect ratio not kept) ->
[0, 1] -> normalise with the OpenAI CLIP mean/std -> open_clip ``encode_image(normalize=True)`` of
``hf-hub:apple/DFN5B-CLIP-ViT-H-14-384``: the ViT image tower, its class token through ``ln_post`` and
the projection, L2-normalised -> (B, T, 1024).

The tower is agomni's own code with open_clip's parameter names (``conv1``, ``class_embedding``,
``positional_embedding``, ``ln_pre``, ``transformer.resblocks.{i}.{ln_1,attn,ln_2,mlp.c_fc,mlp.c_proj}``,
``ln_post``, ``proj``), so the ``visual.*`` keys of ``open_clip_pytorch_model.bin`` load strictly; open_clip
is not needed at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...weights import load_strict
from ..conditioners import check_frames, frames_at
from ..config import SequenceConfig
from .loading import registry_state, select

CLIP_WEIGHTS = "dfn5b-clip-vit-h-14-384"
# MMAudio FeaturesUtils.clip_preprocess: the OpenAI CLIP statistics (also DFN5B's open_clip config).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ClipVisionConfig:
    """ViT image tower: input `image_size` pixels square, `patch_size` patches (the grid is
    image_size // patch_size: 27 x 27 at 384 / 14), `layers` blocks of `width` with `heads` heads,
    MLP `mlp_ratio` x width, QuickGELU or exact GELU, projection to `output_dim`."""

    image_size: int
    patch_size: int
    width: int
    layers: int
    heads: int
    output_dim: int
    mlp_ratio: float = 4.0
    quick_gelu: bool = True

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


# DFN5B-CLIP ViT-H/14 (open_clip ViT-H-14-378-quickgelu: width 1280, 32 layers, head width 80 = 16 heads,
# patch 14, embed_dim 1024, QuickGELU; open_clip's dfn5b pretrained config: bicubic, "squash" resize).
# MMAudio feeds 384 x 384 frames; the stride-14 patch convolution gives the same 27 x 27 grid at 378 and
# 384 px (the last 6 pixel rows/columns of a 384 px frame reach no patch), so the weights fit either way.
DFN5B_VIT_H_14_384 = ClipVisionConfig(
    image_size=384, patch_size=14, width=1280, layers=32, heads=16, output_dim=1024
)


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    """Multi-head self-attention with nn.MultiheadAttention's parameter layout (packed in_proj)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).view(b, n, 3, self.heads, -1).unbind(2)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.out_proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int, quick_gelu: bool):
        super().__init__()
        self.c_fc = nn.Linear(width, hidden)
        self.gelu = QuickGELU() if quick_gelu else nn.GELU()
        self.c_proj = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualBlock(nn.Module):
    def __init__(self, config: ClipVisionConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.width)
        self.attn = Attention(config.width, config.heads)
        self.ln_2 = nn.LayerNorm(config.width)
        self.mlp = Mlp(config.width, int(config.width * config.mlp_ratio), config.quick_gelu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, config: ClipVisionConfig):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualBlock(config) for _ in range(config.layers)])


class ClipVisionTower(nn.Module):
    """Normalised images (N, 3, image_size, image_size) -> image embeddings (N, output_dim), not yet
    L2-normalised: patch conv -> [class token | patches] + positions -> ln_pre -> blocks -> ln_post of
    the class token -> @ proj."""

    def __init__(self, config: ClipVisionConfig):
        super().__init__()
        self.config = config
        scale = config.width**-0.5
        self.conv1 = nn.Conv2d(3, config.width, config.patch_size, stride=config.patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(config.width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(config.grid**2 + 1, config.width))
        self.ln_pre = nn.LayerNorm(config.width)
        self.transformer = Transformer(config)
        self.ln_post = nn.LayerNorm(config.width)
        self.proj = nn.Parameter(scale * torch.randn(config.width, config.output_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.conv1(images).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype))
        for block in self.transformer.resblocks:
            x = block(x)
        return self.ln_post(x[:, 0]) @ self.proj


def clip_preprocess(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Frames (N, 3, H, W) in [0, 1] (uint8 / 255) -> (N, 3, size, size) normalised CLIP input, on the
    frames' device.

    MMAudio resizes the decoded uint8 frames on the CPU (torchvision v2 Resize((size, size), BICUBIC),
    antialias on), which runs torch's native uint8 kernel there; the same kernel is used here: the
    frames are rounded to uint8 levels, resized on the CPU, then scaled to [0, 1] and normalised.
    """
    levels = frames.detach().float().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).cpu()
    resized = F.interpolate(levels, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    pixels = resized.to(frames.device, torch.float32) / 255.0
    mean = torch.tensor(CLIP_MEAN, device=frames.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=frames.device).view(1, 3, 1, 1)
    return (pixels - mean) / std


def clip_tower_state(state: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """The ``visual.*`` entries of an open_clip checkpoint (prefix removed); the text tower and the
    logit scale are ignored."""
    text_keys = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection")
    return select(state, "visual.", (*text_keys, "logit_scale", "logit_bias", "attn_mask"), where)


class ClipVideoEncoder:
    """CLIP features of a video at `sequence.clip_fps`: (B, clip_len, output_dim), L2-normalised, float32.

    `encode_clip(frames, fps, sequence)`: frames (B, T, 3, H, W) in [0, 1] at `fps`; the frame at each
    CLIP time k / clip_fps (nearest earlier frame) is preprocessed (`clip_preprocess`) and embedded in
    chunks of `batch_frames`. `random_weights` / `checkpoint_sha256` record provenance.
    """

    def __init__(
        self,
        tower: ClipVisionTower,
        *,
        random_weights: bool,
        checkpoint_sha256: str | None = None,
        device: str | torch.device = "cpu",
        batch_frames: int = 32,
    ):
        self.tower = tower.eval().to(device)
        self.clip_dim = tower.config.output_dim
        self.random_weights = random_weights
        self.checkpoint_sha256 = checkpoint_sha256
        self.device = torch.device(device)
        self.batch_frames = batch_frames

    @classmethod
    def from_registry(
        cls,
        *,
        device: str | torch.device = "cpu",
        weights_name: str = CLIP_WEIGHTS,
        config: ClipVisionConfig = DFN5B_VIT_H_14_384,
    ) -> ClipVideoEncoder:
        """DFN5B-CLIP ViT-H/14-384 from the weights registry (OfflineError when offline and not cached)."""
        state, sha = registry_state(weights_name)
        with torch.device("meta"):
            tower = ClipVisionTower(config)
        load_strict(tower, clip_tower_state(state, weights_name), where=weights_name, assign=True)
        return cls(tower, random_weights=False, checkpoint_sha256=sha, device=device)

    def embed_images(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (N, 3, H, W) in [0, 1] -> L2-normalised embeddings (N, output_dim), float32."""
        out = []
        with torch.inference_mode():
            for chunk in frames.split(self.batch_frames):
                images = clip_preprocess(chunk, self.tower.config.image_size).to(self.device)
                out.append(F.normalize(self.tower(images.to(self.tower.proj.dtype)).float(), dim=-1))
        return torch.cat(out)

    def encode_clip(self, frames: torch.Tensor, fps: float, sequence: SequenceConfig) -> torch.Tensor:
        check_frames(frames)
        times = torch.arange(sequence.clip_len) / sequence.clip_fps
        chosen = frames_at(frames, fps, times)
        b, t = chosen.shape[:2]
        return self.embed_images(chosen.flatten(0, 1)).view(b, t, -1)
