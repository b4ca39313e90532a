"""Synchformer's audio branch and offset head, around the video branch of `agomni.model.encoders.synchformer`.

Together with that module's `MotionFormer` (the visual feature extractor the reference model's sync stream
uses; one implementation serves both) this is the whole Synchformer of ``synchformer_state_dict.pth``
(V. Iashin; as av-benchmark / MMAudio build it: ``Synchformer()`` in ``av_bench/synchformer``):

* ``afeat_extractor.ast``: an Audio Spectrogram Transformer trunk (HF ``ASTModel`` layout): a log-mel
  segment (128 mel x 66 frames) -> 16 x 16 patches every 10 bins / 10 frames (12 x 6, frequency-major),
  a class and a distillation token, learned positions (74), 12 post-LN-free pre-norm blocks
  (LayerNorm eps 1e-12, GELU MLP 3072), final LayerNorm.
* ``afeat_extractor.freq_attn_agg``: per time step, a class token + the 12 frequency tokens through one
  pre-norm ``nn.TransformerEncoderLayer`` (eps 1e-6); its class output -> 6 tokens per segment.
* ``vproj`` / ``aproj``: Linear 768 -> 768 on the visual (8 per segment) and audio (6 per segment) tokens.
* ``transformer``: input LayerNorms per modality, sequence [OFF, visual (14 x 8), MOD, audio (14 x 6)]
  (198 tokens) + a learned position table, 3 pre-norm blocks (8 heads, GELU MLP x4, LayerNorm eps 1e-5),
  final LayerNorm, ``off_head`` Linear on the OFF token -> 21 offset logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from agomni.model.encoders.synchformer import SYNCHFORMER, MotionFormer, MotionFormerConfig, SpatialAggregator


@dataclass(frozen=True)
class AudioTrunkConfig:
    """AST trunk sizes (the published checkpoint: 768-d, 12 blocks, 12 heads, MLP 3072) and the segment's
    spectrogram (128 mel x 66 frames, 16 x 16 patches every 10 x 10)."""

    mel_bins: int = 128
    frames: int = 66
    patch: int = 16
    stride: int = 10
    dim: int = 768
    depth: int = 12
    heads: int = 12
    mlp: int = 3072

    @property
    def grid(self) -> tuple[int, int]:
        """(frequency, time) patches: (12, 6)."""
        return (self.mel_bins - self.patch) // self.stride + 1, (self.frames - self.patch) // self.stride + 1


@dataclass(frozen=True)
class SyncHeadConfig:
    """The offset transformer: 3 blocks of 8 heads, 14 segments per window, 21 offset classes."""

    layers: int = 3
    heads: int = 8
    segments: int = 14
    classes: int = 21


def self_attention(
    x: torch.Tensor, heads: int, query: nn.Linear, key: nn.Linear, value: nn.Linear
) -> torch.Tensor:
    """Multi-head scaled dot-product attention of tokens (B, N, D) over themselves, before any output
    projection."""
    b, n, d = x.shape
    q, k, v = (proj(x).view(b, n, heads, -1).transpose(1, 2) for proj in (query, key, value))
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)


class AstSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self_attention(x, self.heads, self.query, self.key, self.value)


class AstDense(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.dense = nn.Linear(dim_in, dim_out)


class AstAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attention = AstSelfAttention(dim, heads)
        self.output = AstDense(dim, dim)


class AstLayer(nn.Module):
    """x + attn(LN x); then + MLP(LN .) (HF ``ASTLayer``)."""

    def __init__(self, config: AudioTrunkConfig):
        super().__init__()
        self.attention = AstAttention(config.dim, config.heads)
        self.intermediate = AstDense(config.dim, config.mlp)
        self.output = AstDense(config.mlp, config.dim)
        self.layernorm_before = nn.LayerNorm(config.dim, eps=1e-12)
        self.layernorm_after = nn.LayerNorm(config.dim, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention.output.dense(self.attention.attention(self.layernorm_before(x)))
        return x + self.output.dense(F.gelu(self.intermediate.dense(self.layernorm_after(x))))


class AstEncoder(nn.Module):
    def __init__(self, config: AudioTrunkConfig):
        super().__init__()
        self.layer = nn.ModuleList([AstLayer(config) for _ in range(config.depth)])


class AstPatches(nn.Module):
    def __init__(self, config: AudioTrunkConfig):
        super().__init__()
        self.projection = nn.Conv2d(1, config.dim, config.patch, stride=config.stride)


class AstEmbeddings(nn.Module):
    def __init__(self, config: AudioTrunkConfig):
        super().__init__()
        f, t = config.grid
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        self.patch_embeddings = AstPatches(config)
        self.position_embeddings = nn.Parameter(torch.zeros(1, f * t + 2, config.dim))


class AstTrunk(nn.Module):
    """Spectrogram segments (N, frames, mel) -> (N, 2 + f * t, dim) (class, distillation, patch tokens)."""

    def __init__(self, config: AudioTrunkConfig):
        super().__init__()
        self.embeddings = AstEmbeddings(config)
        self.encoder = AstEncoder(config)
        self.layernorm = nn.LayerNorm(config.dim, eps=1e-12)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        e = self.embeddings
        x = e.patch_embeddings.projection(spectrogram.transpose(1, 2)[:, None]).flatten(2).transpose(1, 2)
        n = x.shape[0]
        x = torch.cat([e.cls_token.expand(n, -1, -1), e.distillation_token.expand(n, -1, -1), x], dim=1)
        x = x + e.position_embeddings
        for layer in self.encoder.layer:
            x = layer(x)
        return self.layernorm(x)


class AudioFeatures(nn.Module):
    """Log-mel segments (N, frames, mel) -> (N, t, dim): AST tokens pooled over frequency per time step."""

    def __init__(self, config: AudioTrunkConfig):
        super().__init__()
        self.config = config
        self.ast = AstTrunk(config)
        self.freq_attn_agg = SpatialAggregator(
            MotionFormerConfig(embed_dim=config.dim, heads=config.heads, mlp_ratio=config.mlp // config.dim)
        )

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        f, t = self.config.grid
        tokens = self.ast(spectrogram)[:, 2:]  # (N, f * t, D), frequency-major
        n = tokens.shape[0]
        per_time = tokens.view(n, f, t, -1).transpose(1, 2).reshape(n * t, f, -1)
        return self.freq_attn_agg.pool(per_time).view(n, t, -1)


class HeadAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.key, self.query, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self_attention(x, self.heads, self.query, self.key, self.value))


class HeadBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = HeadAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class PositionTable(nn.Module):
    def __init__(self, length: int, dim: int):
        super().__init__()
        self.pos_emb = nn.Parameter(torch.zeros(1, length, dim))


class OffsetTransformer(nn.Module):
    """(B, S * tv, D) visual and (B, S * ta, D) audio tokens -> (B, classes) offset logits."""

    def __init__(self, dim: int, tokens: int, config: SyncHeadConfig):
        super().__init__()
        self.vis_in_lnorm, self.aud_in_lnorm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.OFF_tok = nn.Parameter(torch.zeros(1, 1, dim))
        self.MOD_tok = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_emb_cfg = PositionTable(tokens, dim)
        self.blocks = nn.Sequential(*[HeadBlock(dim, config.heads) for _ in range(config.layers)])
        self.ln_f = nn.LayerNorm(dim)
        self.off_head = nn.Linear(dim, config.classes)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        b = visual.shape[0]
        x = torch.cat(
            [
                self.OFF_tok.expand(b, -1, -1),
                self.vis_in_lnorm(visual),
                self.MOD_tok.expand(b, -1, -1),
                self.aud_in_lnorm(audio),
            ],
            dim=1,
        )
        x = self.ln_f(self.blocks(x + self.pos_emb_cfg.pos_emb))
        return self.off_head(x[:, 0])


class Synchformer(nn.Module):
    """The full Synchformer in the ``synchformer_state_dict.pth`` layout (see the module docstring)."""

    def __init__(
        self,
        video: MotionFormerConfig = SYNCHFORMER,
        audio: AudioTrunkConfig = AudioTrunkConfig(),
        head: SyncHeadConfig = SyncHeadConfig(),
    ):
        super().__init__()
        if video.embed_dim != audio.dim:
            raise ValueError(f"video ({video.embed_dim}) and audio ({audio.dim}) widths must match")
        self.head_config = head
        self.vfeat_extractor = MotionFormer(video)
        self.afeat_extractor = AudioFeatures(audio)
        self.vproj = nn.Linear(video.embed_dim, video.embed_dim)
        self.aproj = nn.Linear(audio.dim, audio.dim)
        tokens = 2 + head.segments * (video.time_tokens + audio.grid[1])
        self.transformer = OffsetTransformer(video.embed_dim, tokens, head)

    def audio_features(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """(B, S, frames, mel) normalised log-mel segments -> (B, S, t, D)."""
        b, s = spectrogram.shape[:2]
        return self.afeat_extractor(spectrogram.flatten(0, 1)).view(
            b, s, *self.afeat_extractor.config.grid[1:], -1
        )

    def offset_logits(self, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Visual (B, S, tv, D) and audio (B, S, ta, D) features of one window of S segments -> (B, classes)."""
        if visual.shape[1] != self.head_config.segments or audio.shape[1] != self.head_config.segments:
            raise ValueError(
                f"a window holds {self.head_config.segments} segments, got {visual.shape[1]} visual and "
                f"{audio.shape[1]} audio"
            )
        return self.transformer(self.vproj(visual).flatten(1, 2), self.aproj(audio).flatten(1, 2))
