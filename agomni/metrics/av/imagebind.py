"""ImageBind (huge) audio and vision towers in the ``imagebind_huge.pth`` layout, and their preprocessing.

Network (facebookresearch/ImageBind ``imagebind_model.py``, ``multimodal_preprocessors.py``,
``transformer.py``; only the two towers IB-score uses are built, the checkpoint's other modalities are
ignored):

* vision: 2-frame clips (3 x 2 x 224 x 224) -> Conv3d (2 x 14 x 14, no bias) -> 16 x 16 patches, a class
  token, learned positions (257), a pre-transformer LayerNorm (eps 1e-6), 32 pre-norm blocks of
  ``nn.MultiheadAttention`` (1280-d, 16 heads) + GELU MLP x4 (LayerNorm eps 1e-6), head: LayerNorm, class
  token, Linear 1280 -> 1024 (no bias); output L2-normalised.
* audio: log-mel (1 x 128 x 204) -> Conv2d (16 x 16 every 10, no bias) -> 12 x 19 patches, LayerNorm
  (eps 1e-5), a class token, learned positions (229), 12 blocks (768-d, 12 heads, attention with
  ``add_bias_kv``), head: LayerNorm, class token, Linear 768 -> 1024; L2-normalised then x 20 (the
  checkpoint's fixed logit scale; it does not change a cosine).
* A video's (or audio's) embedding is the mean over its clips of the per-clip outputs.

Parameter names follow the checkpoint (``modality_preprocessors.vision.rgbt_stem.proj.1.weight``,
``modality_trunks.audio.blocks.<i>.attn.bias_k`` ...), so it loads with `agomni.weights.load_strict`
after dropping the other modalities.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from agomni.metrics.embedders.common import GeluMlp

AUDIO_LOGIT_SCALE = 20.0
TOWERS = ("vision", "audio")


@dataclass(frozen=True)
class TowerConfig:
    """One ViT tower: width, blocks, heads; `pre_norm` (vision) and `bias_kv` (audio) switch the variants."""

    dim: int
    depth: int
    heads: int
    pre_norm: bool
    bias_kv: bool


@dataclass(frozen=True)
class ImageBindConfig:
    """imagebind_huge: vision 1280 x 32 x 16, audio 768 x 12 x 12, joint 1024-d; audio 128 mel x 204 frames."""

    vision: TowerConfig = TowerConfig(dim=1280, depth=32, heads=16, pre_norm=True, bias_kv=False)
    audio: TowerConfig = TowerConfig(dim=768, depth=12, heads=12, pre_norm=False, bias_kv=True)
    out_dim: int = 1024
    image_size: int = 224
    patch: int = 14
    mel_bins: int = 128
    mel_frames: int = 204
    audio_patch: int = 16
    audio_stride: int = 10

    def tokens(self, tower: str) -> int:
        if tower == "vision":
            return (self.image_size // self.patch) ** 2 + 1
        f = (self.mel_bins - self.audio_patch) // self.audio_stride + 1
        t = (self.mel_frames - self.audio_patch) // self.audio_stride + 1
        return f * t + 1


IMAGEBIND_HUGE = ImageBindConfig()


class PadIm2Video(nn.Module):
    """Images (N, 3, H, W) become 2-frame clips by repetition; clips pass unchanged (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            x = x[:, :, None]
        return x.expand(-1, -1, 2, -1, -1) if x.shape[2] == 1 else x


class Stem(nn.Module):
    def __init__(self, proj: nn.Module, norm_layer: nn.Module | None):
        super().__init__()
        self.proj = proj
        self.norm_layer = norm_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x).flatten(2).transpose(1, 2)
        return self.norm_layer(x) if self.norm_layer is not None else x


class PositionTable(nn.Module):
    def __init__(self, tokens: int, dim: int):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))


class Preprocessor(nn.Module):
    """Stem tokens with a class token prepended and learned positions added."""

    def __init__(self, stem: Stem, tokens: int, dim: int):
        super().__init__()
        self.rgbt_stem = stem
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding_helper = PositionTable(tokens, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.rgbt_stem(x)
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return tokens + self.pos_embedding_helper.pos_embed


class Block(nn.Module):
    def __init__(self, config: TowerConfig):
        super().__init__()
        self.attn = nn.MultiheadAttention(config.dim, config.heads, bias=True, add_bias_kv=config.bias_kv)
        self.norm_1 = nn.LayerNorm(config.dim, eps=1e-6)
        self.mlp = GeluMlp(config.dim)
        self.norm_2 = nn.LayerNorm(config.dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (L, N, D), as the reference's trunk
        h = self.norm_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm_2(x))


class Trunk(nn.Module):
    def __init__(self, config: TowerConfig):
        super().__init__()
        self.pre_transformer_layer = nn.Sequential(
            nn.LayerNorm(config.dim, eps=1e-6) if config.pre_norm else nn.Identity()
        )
        self.blocks = nn.Sequential(*[Block(config) for _ in range(config.depth)])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.pre_transformer_layer(tokens).transpose(0, 1)
        return self.blocks(x).transpose(0, 1)


class SelectFirst(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]


class ImageBindTowers(nn.Module):
    """`embed_vision(clips (B, S, 3, 2, 224, 224))` and `embed_audio(mels (B, S, 1, 128, 204))` -> (B, 1024):
    per-clip outputs (normalised; audio x 20) averaged over the S clips, as ImageBind's forward."""

    def __init__(self, config: ImageBindConfig = IMAGEBIND_HUGE):
        super().__init__()
        self.config = config
        v, a = config.vision, config.audio
        k = (2, config.patch, config.patch)
        vision_stem = Stem(nn.Sequential(PadIm2Video(), nn.Conv3d(3, v.dim, k, stride=k, bias=False)), None)
        audio_stem = Stem(
            nn.Conv2d(1, a.dim, config.audio_patch, stride=config.audio_stride, bias=False),
            nn.LayerNorm(a.dim),
        )
        self.modality_preprocessors = nn.ModuleDict(
            {
                "vision": Preprocessor(vision_stem, config.tokens("vision"), v.dim),
                "audio": Preprocessor(audio_stem, config.tokens("audio"), a.dim),
            }
        )
        self.modality_trunks = nn.ModuleDict({"vision": Trunk(v), "audio": Trunk(a)})
        self.modality_heads = nn.ModuleDict(
            {
                name: nn.Sequential(
                    nn.LayerNorm(tower.dim, eps=1e-6),
                    SelectFirst(),
                    nn.Linear(tower.dim, config.out_dim, bias=False),
                )
                for name, tower in (("vision", v), ("audio", a))
            }
        )

    def _embed(self, tower: str, clips: torch.Tensor, scale: float, batch_size: int | None) -> torch.Tensor:
        b, s = clips.shape[:2]
        outputs = []
        for chunk in clips.flatten(0, 1).split(batch_size or b * s):
            x = self.modality_preprocessors[tower](chunk)
            outputs.append(self.modality_heads[tower](self.modality_trunks[tower](x)))
        return (F.normalize(torch.cat(outputs), dim=-1) * scale).view(b, s, -1).mean(dim=1)

    def embed_vision(self, clips: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """`batch_size` clips per tower call (None: all B x S at once); the numbers do not depend on it."""
        return self._embed("vision", clips, 1.0, batch_size)

    def embed_audio(self, mels: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """`batch_size` clips per tower call (None: all B x S at once); the numbers do not depend on it."""
        return self._embed("audio", mels, AUDIO_LOGIT_SCALE, batch_size)


def tower_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The checkpoint's vision and audio tensors (preprocessors, trunks, heads); other modalities and the
    postprocessors' fixed logit scales are left out."""
    parts = ("modality_preprocessors", "modality_trunks", "modality_heads")
    return {k: v for k, v in state.items() if any(k.startswith(f"{p}.{t}.") for p in parts for t in TOWERS)}
