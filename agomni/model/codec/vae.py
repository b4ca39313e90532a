"""1D convolutional VAE on log-mel: mel [B, n_mels, T] <-> latent [B, C_latent, T / 2].

Structure follows MMAudio's mel VAE (``mmaudio/ext/autoencoder/vae.py``: ``VAE_16k`` =
``VAE(data_dim=80, embed_dim=20, hidden_dim=384)``, ``VAE_44k`` = ``VAE(data_dim=128, embed_dim=40,
hidden_dim=512)``; ``Encoder1D``/``Decoder1D`` with ``ch_mult=(1, 2, 4)``, 2 residual blocks per
level, one 2x time downsampling after the first level, a self-attention block in the middle, and a
per-mel-bin normalisation ``(mel - mean) / std`` before encoding, undone after decoding).

Ours (documented differences): plain ``Conv1d`` + ``GroupNorm`` + SiLU residual blocks instead of
MMAudio's magnitude-preserving EDM2 layers, average-pool downsampling and nearest-neighbour
upsampling each followed by a k=3 conv, no activation clipping. The per-bin mean/std are persistent
buffers that a checkpoint supplies (0 and 1 with random weights); MMAudio's data statistics are not
copied here. Sizes (mel bins, latent channels, hidden width, levels) match MMAudio's presets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from agomni.errors import UsageError

LOGVAR_RANGE = (-30.0, 20.0)  # clamp of the posterior log-variance, as MMAudio's DiagonalGaussianDistribution


@dataclass(frozen=True)
class VAEConfig:
    """Widths of the mel VAE. ``hidden * m`` for each ``m`` in ``channel_mult`` must divide by ``groups``."""

    mel_channels: int
    latent_channels: int
    hidden: int
    channel_mult: tuple[int, ...] = (1, 2, 4)
    res_blocks: int = 2
    groups: int = 32

    def __post_init__(self) -> None:
        if not self.channel_mult or self.res_blocks < 1:
            raise UsageError(f"VAE needs at least one level and one residual block: {self}")
        bad = [self.hidden * m for m in self.channel_mult if (self.hidden * m) % self.groups]
        if bad:
            raise UsageError(f"VAE widths {bad} do not divide into {self.groups} GroupNorm groups")

    @property
    def time_downsample(self) -> int:
        """Mel frames per latent frame."""
        return 2


VAE_16K = VAEConfig(mel_channels=80, latent_channels=20, hidden=384)
VAE_44K = VAEConfig(mel_channels=128, latent_channels=40, hidden=512)


@dataclass(frozen=True)
class DiagonalGaussian:
    """Posterior q(z | mel): ``mean`` and ``std`` share one shape; ``sample`` draws mean + std * eps."""

    mean: torch.Tensor
    std: torch.Tensor

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn(
            self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
        )
        return self.mean + self.std * eps

    def kl_to_standard_normal(self) -> torch.Tensor:
        """Elementwise KL(q || N(0, 1)) in nats: 0.5 * (mean^2 + var - 1 - log var)."""
        var = self.std.square()
        return 0.5 * (self.mean.square() + var - 1.0 - torch.log(var))


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> Conv(k=3), twice, plus a (1x1-projected where widths differ) skip."""

    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv1d(c_in, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        h = self.conv2(nn.functional.silu(self.norm2(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over time on [B, C, T], pre-GroupNorm, residual."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.norm(x)).transpose(1, 2).chunk(3, dim=-1)  # [B, T, C] each
        h = nn.functional.scaled_dot_product_attention(q, k, v)
        return x + self.out(h.transpose(1, 2))


class Middle(nn.Module):
    """ResBlock -> SelfAttention -> ResBlock at the lowest time resolution."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.block1 = ResBlock(channels, channels, groups)
        self.attn = SelfAttention(channels, groups)
        self.block2 = ResBlock(channels, channels, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block2(self.attn(self.block1(x)))


class Encoder(nn.Module):
    """Normalised mel [B, n_mels, T] -> moments [B, 2 * C_latent, T // 2] (mean, log-variance)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        widths = [cfg.hidden * m for m in cfg.channel_mult]
        self.conv_in = nn.Conv1d(cfg.mel_channels, cfg.hidden, 3, padding=1)
        self.levels = nn.ModuleList()
        c = cfg.hidden
        for w in widths:
            blocks = []
            for _ in range(cfg.res_blocks):
                blocks.append(ResBlock(c, w, cfg.groups))
                c = w
            self.levels.append(nn.Sequential(*blocks))
        self.down = nn.Conv1d(widths[0], widths[0], 3, padding=1)
        self.middle = Middle(c, cfg.groups)
        self.norm_out = nn.GroupNorm(cfg.groups, c)
        self.conv_out = nn.Conv1d(c, 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for i, level in enumerate(self.levels):
            h = level(h)
            if i == 0:
                h = self.down(nn.functional.avg_pool1d(h, kernel_size=2, stride=2))
        h = self.middle(h)
        return self.conv_out(nn.functional.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """Latent [B, C_latent, T'] -> normalised mel [B, n_mels, 2 * T']."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        widths = [cfg.hidden * m for m in cfg.channel_mult]
        c = widths[-1]
        self.conv_in = nn.Conv1d(cfg.latent_channels, c, 3, padding=1)
        self.middle = Middle(c, cfg.groups)
        self.levels = nn.ModuleList()
        for level, w in reversed(list(enumerate(widths))):
            if level == 0:
                self.up = nn.Conv1d(c, c, 3, padding=1)  # upsampling conv before the mel-rate level
            blocks = []
            for _ in range(cfg.res_blocks + 1):
                blocks.append(ResBlock(c, w, cfg.groups))
                c = w
            self.levels.append(nn.Sequential(*blocks))
        self.norm_out = nn.GroupNorm(cfg.groups, c)
        self.conv_out = nn.Conv1d(c, cfg.mel_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.middle(self.conv_in(z))
        last = len(self.levels) - 1
        for i, level in enumerate(self.levels):
            if i == last:  # the level that runs at mel resolution
                h = self.up(nn.functional.interpolate(h, scale_factor=2.0, mode="nearest"))
            h = level(h)
        return self.conv_out(nn.functional.silu(self.norm_out(h)))


class MelVAE(nn.Module):
    """Log-mel VAE: ``encode`` mel [B, n_mels, T] -> :class:`DiagonalGaussian` over [B, C_latent, T // 2];
    ``decode`` latent [B, C_latent, T'] -> log-mel [B, n_mels, 2 T'].

    ``mel_mean``/``mel_std`` [n_mels] are the per-bin normalisation statistics (persistent buffers).
    """

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mel_mean", torch.zeros(cfg.mel_channels))
        self.register_buffer("mel_std", torch.ones(cfg.mel_channels))
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def encode(self, mel: torch.Tensor) -> DiagonalGaussian:
        if mel.ndim != 3 or mel.shape[1] != self.cfg.mel_channels:
            raise UsageError(
                f"VAE encode expects mel [batch, {self.cfg.mel_channels}, frames], got {tuple(mel.shape)}"
            )
        if mel.shape[-1] % self.cfg.time_downsample:
            raise UsageError(
                f"VAE encode needs an even number of mel frames (2 per latent frame), got {mel.shape[-1]}"
            )
        x = (mel - self.mel_mean[:, None]) / self.mel_std[:, None]
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return DiagonalGaussian(mean=mean, std=torch.exp(0.5 * logvar.clamp(*LOGVAR_RANGE)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 3 or z.shape[1] != self.cfg.latent_channels:
            raise UsageError(
                f"VAE decode expects latent [batch, {self.cfg.latent_channels}, frames], got {tuple(z.shape)}"
            )
        return self.decoder(z) * self.mel_std[:, None] + self.mel_mean[:, None]
