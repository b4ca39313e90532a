"""BigVGAN-style vocoder generator: log-mel [B, n_mels, T] -> wave [B, T * hop].

Structure follows BigVGAN as MMAudio uses it (``mmaudio/ext/bigvgan/bigvgan_vocoder.yml`` for 16 kHz:
``upsample_rates [4, 4, 2, 2, 2, 2]``, ``upsample_kernel_sizes [8, 8, 4, 4, 4, 4]``,
``upsample_initial_channel 1536``, ``resblock_kernel_sizes [3, 7, 11]``, dilations ``[1, 3, 5]``,
SnakeBeta with log-scale parameters, tanh output; and the ``nvidia/bigvgan_v2_44khz_128band_512x``
config used by MMAudio at 44.1 kHz: rates ``[8, 4, 2, 2, 2, 2]``, kernels ``[16, 8, 4, 4, 4, 4]``,
1536 channels, ``use_tanh_at_final=False`` (clamp to [-1, 1]) and ``use_bias_at_final=False``):
a k=7 input conv, per stage a transposed conv (kernel k, stride u, padding (k - u) / 2, so the
length grows exactly u-fold) that halves the channels, then the mean of one multi-dilation residual
block per kernel size; a final SnakeBeta, k=7 conv to one channel and tanh or clamp.

Ours (documented differences): no anti-aliased (up/low-pass/down) wrapper around the activations and
plain convs instead of weight-normalised ones (i.e. weights as after BigVGAN's
``remove_weight_norm``). The product of the upsampling rates must equal the mel hop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from agomni.errors import UsageError


@dataclass(frozen=True)
class VocoderConfig:
    """Generator widths and upsampling; ``prod(upsample_rates)`` is the hop in samples per mel frame."""

    n_mels: int
    upsample_rates: tuple[int, ...]
    upsample_kernels: tuple[int, ...]
    initial_channels: int
    resblock_kernels: tuple[int, ...] = (3, 7, 11)
    resblock_dilations: tuple[int, ...] = (1, 3, 5)
    tanh_output: bool = True
    output_bias: bool = True

    def __post_init__(self) -> None:
        if len(self.upsample_rates) != len(self.upsample_kernels):
            raise UsageError(
                f"vocoder needs one kernel per upsampling rate: {self.upsample_rates} vs {self.upsample_kernels}"
            )
        for u, k in zip(self.upsample_rates, self.upsample_kernels, strict=True):
            if k < u or (k - u) % 2:
                raise UsageError(f"vocoder upsampling kernel {k} must be >= rate {u} with k - u even")
        if self.initial_channels >> len(self.upsample_rates) < 1:
            raise UsageError(
                f"vocoder initial_channels {self.initial_channels} cannot be halved "
                f"{len(self.upsample_rates)} times"
            )

    @property
    def hop(self) -> int:
        """Output samples per input mel frame."""
        return math.prod(self.upsample_rates)


VOCODER_16K = VocoderConfig(
    n_mels=80, upsample_rates=(4, 4, 2, 2, 2, 2), upsample_kernels=(8, 8, 4, 4, 4, 4), initial_channels=1536,
)  # fmt: skip
VOCODER_44K = VocoderConfig(
    n_mels=128, upsample_rates=(8, 4, 2, 2, 2, 2), upsample_kernels=(16, 8, 4, 4, 4, 4), initial_channels=1536,
    tanh_output=False, output_bias=False,
)  # fmt: skip


class SnakeBeta(nn.Module):
    """x + sin^2(a x) / b per channel, with a = exp(log_alpha), b = exp(log_beta) (BigVGAN's log scale)."""

    def __init__(self, channels: int):
        super().__init__()
        self.log_alpha = nn.Parameter(torch.zeros(channels))
        self.log_beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.log_alpha.exp()[:, None]
        beta = self.log_beta.exp()[:, None]
        return x + torch.sin(x * alpha).square() / (beta + 1e-9)


class MultiDilationBlock(nn.Module):
    """For each dilation d: x += conv_k(snake(conv_k,d(snake(x)))) (BigVGAN AMP block type 1)."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        self.dilated = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=d * (kernel - 1) // 2)
            for d in dilations
        )
        self.plain = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2) for _ in dilations
        )
        self.acts1 = nn.ModuleList(SnakeBeta(channels) for _ in dilations)
        self.acts2 = nn.ModuleList(SnakeBeta(channels) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2, a1, a2 in zip(self.dilated, self.plain, self.acts1, self.acts2, strict=True):
            x = x + c2(a2(c1(a1(x))))
        return x


class Vocoder(nn.Module):
    """Log-mel [B, n_mels, T] -> wave [B, T * hop] in [-1, 1]."""

    def __init__(self, cfg: VocoderConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.initial_channels
        self.conv_pre = nn.Conv1d(cfg.n_mels, c, 7, padding=3)
        self.ups = nn.ModuleList()
        self.stages = nn.ModuleList()
        for u, k in zip(cfg.upsample_rates, cfg.upsample_kernels, strict=True):
            self.ups.append(nn.ConvTranspose1d(c, c // 2, k, stride=u, padding=(k - u) // 2))
            c //= 2
            self.stages.append(
                nn.ModuleList(
                    MultiDilationBlock(c, rk, cfg.resblock_dilations) for rk in cfg.resblock_kernels
                )
            )
        self.act_post = SnakeBeta(c)
        self.conv_post = nn.Conv1d(c, 1, 7, padding=3, bias=cfg.output_bias)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.ndim != 3 or mel.shape[1] != self.cfg.n_mels:
            raise UsageError(
                f"vocoder expects mel [batch, {self.cfg.n_mels}, frames], got {tuple(mel.shape)}"
            )
        x = self.conv_pre(mel)
        for up, blocks in zip(self.ups, self.stages, strict=True):
            x = up(x)
            x = sum(block(x) for block in blocks) / len(blocks)
        x = self.conv_post(self.act_post(x)).squeeze(1)
        return torch.tanh(x) if self.cfg.tanh_output else x.clamp(-1.0, 1.0)
