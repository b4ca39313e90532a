"""Low-level layers of the reference MMDiT: channel-last convs, SwiGLU (Conv)MLPs, adaLN modulation,
timestep and sinusoidal position embeddings.

Numerics follow MMAudio's `low_level.py` / `embeddings.py` (SwiGLU hidden width 2/3 of the nominal
ratio rounded up to a multiple; DiT's cos/sin timestep features); tensors are channel-last
(batch, tokens, channels) throughout.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def swiglu_width(hidden: int, multiple_of: int) -> int:
    """SwiGLU hidden width: 2/3 of the nominal width, rounded up to a multiple of `multiple_of`."""
    width = int(2 * hidden / 3)
    return multiple_of * math.ceil(width / multiple_of)


class ChannelLastConv1d(nn.Conv1d):
    """Conv1d on (B, N, C) tensors; 'same' padding for odd kernels.

    On the GPU this is cuDNN's convolution. On the CPU it is the same sum as one matrix product over
    the unfolded windows, copied once into a contiguous (B * N, kernel x C) matrix: oneDNN's small 1-D
    convolutions on channel-last inputs cost 10-100x more (and suffer most from busy cores), which made
    CPU generation of the small sizes convolution-bound; a product over the overlapping (B, N,
    kernel x C) view instead runs as a batched GEMM that copies every sample's windows separately.
    """

    def __init__(self, in_dim: int, out_dim: int, kernel_size: int, bias: bool = True):
        super().__init__(in_dim, out_dim, kernel_size, padding=kernel_size // 2, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return super().forward(x.transpose(1, 2)).transpose(1, 2)
        return self.apply_to_windows(self.windows(x), x.shape[:-1])

    def windows(self, x: torch.Tensor) -> torch.Tensor:
        """CPU: (B, N, C) -> the (B * N, kernel x C) matrix of 'same'-padded windows (one copy)."""
        k, pad = self.kernel_size[0], self.padding[0]
        return F.pad(x, (0, 0, pad, pad)).unfold(1, k, 1).transpose(2, 3).reshape(-1, k * x.shape[-1])

    def apply_to_windows(self, windows: torch.Tensor, leading: torch.Size) -> torch.Tensor:
        """CPU: the convolution as one matrix product over `windows(x)`; `leading` = x.shape[:-1]."""
        weight = self.weight.permute(0, 2, 1).reshape(self.out_channels, -1)
        return F.linear(windows, weight, self.bias).view(*leading, self.out_channels)


class MLP(nn.Module):
    """SwiGLU feed-forward on (B, N, dim): w2(silu(w1 x) * w3 x), no biases."""

    def __init__(self, dim: int, hidden: int, multiple_of: int):
        super().__init__()
        width = swiglu_width(hidden, multiple_of)
        self.w1 = nn.Linear(dim, width, bias=False)
        self.w2 = nn.Linear(width, dim, bias=False)
        self.w3 = nn.Linear(dim, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class ConvMLP(nn.Module):
    """SwiGLU feed-forward whose three projections are temporal convolutions (kernel `kernel_size`)."""

    def __init__(self, dim: int, hidden: int, multiple_of: int, kernel_size: int):
        super().__init__()
        width = swiglu_width(hidden, multiple_of)
        self.w1 = ChannelLastConv1d(dim, width, kernel_size, bias=False)
        self.w2 = ChannelLastConv1d(width, dim, kernel_size, bias=False)
        self.w3 = ChannelLastConv1d(dim, width, kernel_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return self.w2(F.silu(self.w1(x)) * self.w3(x))
        windows = self.w1.windows(x)  # w1 and w3 read the same windows: copied once
        lead = x.shape[:-1]
        return self.w2(
            F.silu(self.w1.apply_to_windows(windows, lead)) * self.w3.apply_to_windows(windows, lead)
        )


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation x * (1 + scale) + shift; shift/scale broadcast over tokens or are per token."""
    return x * (1 + scale) + shift


class AdaLN(nn.Module):
    """SiLU + Linear producing `chunks` modulation vectors of width dim (zero-initialised by the network)."""

    def __init__(self, dim: int, chunks: int):
        super().__init__()
        self.chunks = chunks
        self.linear = nn.Linear(dim, chunks * dim)

    def forward(self, c: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.linear(F.silu(c)).chunk(self.chunks, dim=-1)


def sinusoidal_frequencies(dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """(dim // 2,) float32 f_k = max_period ** (-k / (dim/2)), k < dim/2, on the CPU (see agomni.model.rope)."""
    half = dim // 2
    return torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device="cpu") / half)


def sinusoidal_features(
    values: torch.Tensor, dim: int, max_period: float = 10_000.0, frequencies: torch.Tensor | None = None
) -> torch.Tensor:
    """[cos(v f_k), sin(v f_k)] (..., dim) float32; `frequencies`: `sinusoidal_frequencies(dim, max_period)`
    already on the values' device (no host-to-device copy per call)."""
    if frequencies is None:
        frequencies = sinusoidal_frequencies(dim, max_period).to(values.device)
    args = values.float()[..., None] * frequencies.float()
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepEmbedder(nn.Module):
    """Flow time t in [0, 1] -> (B, dim): DiT cos/sin features of 1000 t, then Linear-SiLU-Linear.

    The factor 1000 is agomni's choice (DiT's timestep range, as F5-TTS does); MMAudio v1 feeds t
    unscaled with 256 features.
    """

    time_scale = 1000.0

    def __init__(self, dim: int, frequency_dim: int = 256):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.reset_frequencies()

    def reset_frequencies(self) -> None:
        """(Re)build the float32 frequency table on the module's device (after a cast to bf16, too)."""
        table = sinusoidal_frequencies(self.frequency_dim).to(self.mlp[0].weight.device)
        self.register_buffer("frequencies", table, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        features = sinusoidal_features(
            t.float() * self.time_scale, self.frequency_dim, frequencies=self.frequencies
        )
        return self.mlp(features.to(self.mlp[0].weight.dtype))
