"""Lyrics/transcription (LT) encoder: token ids -> frame-aligned features, without durations.

Recipe (F5-TTS's text embedding, agomni's choice for the paper's "lightweight LT encoder"): token
ids come from agomni.model.text (symbol index + 1, so 0 is the filler) filler-padded or truncated to
the audio-latent frame count (`pad_to_frames`); they are embedded, given a sinusoidal absolute position, and
refined by ConvNeXt-V2 blocks; filler positions are re-zeroed after the embedding and after every
block. agomni also zeroes them before each block's GRN (whose norm runs over time; F5-TTS does not),
so the features of real tokens do not depend on how much filler follows them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from .layers import sinusoidal_features
from .text import FILLER_ID


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt-V2) over the time axis of (B, N, C)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.linalg.vector_norm(x, dim=1, keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    """Depthwise conv k=7 -> LayerNorm -> Linear(dim, mult*dim) -> GELU -> GRN -> Linear back, residual;
    filler frames are zeroed before GRN and after the residual."""

    def __init__(self, dim: int, mult: int):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, mult * dim)
        self.grn = GRN(mult * dim)
        self.pw2 = nn.Linear(mult * dim, dim)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """x (B, N, dim); keep (B, N, 1) 0/1, 0 at fillers, which are zeroed before GRN's norm over time."""
        h = self.dwconv(x.transpose(1, 2)).transpose(1, 2)
        h = self.pw2(self.grn(F.gelu(self.pw1(self.norm(h))) * keep))
        return (x + h) * keep


class LTEncoder(nn.Module):
    """(B, N) token ids (0 = filler, 1..vocab_size-1 = symbols) -> (B, N, dim) features.

    vocab_size is the embedding table size, filler included (agomni.model.text.vocab_size).
    """

    def __init__(self, vocab_size: int, dim: int, num_blocks: int, mult: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.dim = dim
        # nn.Embedding's own N(0, 1) initialisation, drawn here (same place in the random stream) except
        # on the meta device, where torch's normal_ first imports torch._dynamo and sympy (~2 CPU s of a
        # generation run's start-up) for values that the checkpoint replaces anyway.
        self.embed = nn.Embedding(vocab_size, dim, _weight=torch.empty(vocab_size, dim))
        if self.embed.weight.device.type != "meta":
            with torch.no_grad():
                nn.init.normal_(self.embed.weight)
        self.blocks = nn.ModuleList([ConvNeXtV2Block(dim, mult) for _ in range(num_blocks)])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.dtype != torch.long or ids.ndim != 2:
            raise UsageError(
                f"LT ids must be a (batch, frames) int64 tensor, got {tuple(ids.shape)} {ids.dtype}"
            )
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise UsageError(
                f"LT ids must be in [0, {self.vocab_size - 1}] (0 = filler; agomni.model.text ids), "
                f"got range [{int(ids.min())}, {int(ids.max())}]"
            )
        keep = (ids != FILLER_ID).unsqueeze(-1).to(self.embed.weight.dtype)
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.embed(ids) + sinusoidal_features(positions, self.dim).to(self.embed.weight.dtype)
        x = x * keep
        for block in self.blocks:
            x = block(x, keep)
        return x
