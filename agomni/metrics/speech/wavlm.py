"""WavLM in agomni's own code, with the parameter names of Microsoft's checkpoints (unilm ``WavLM.py``).

Used by Audiobox Aesthetics (WavLM-Base-sized encoder) and as the WavLM-Large backbone of SIM-o
(`wavlm_ecapa`). Inference only (no masking, dropout or layer drop). Parts:

- feature extractor: 1-D convolutions (``conv_layers``: (channels, kernel, stride)), each followed by
  GELU; ``extractor_mode="default"`` puts a GroupNorm (one group per channel) after the first
  convolution, ``"layer_norm"`` a LayerNorm over channels after every convolution;
- LayerNorm over the 512 features, optional projection to the model width;
- convolutional relative positions: a grouped convolution (kernel ``conv_pos``, weight-normalised over
  dimension 2, the last output frame dropped for an even kernel) with GELU, added to the input;
- transformer layers (post-LayerNorm when ``layer_norm_first`` is False), whose attention adds a
  bucketed relative position bias (computed in the first layer, shared by all) scaled per head and
  frame by a gate computed from the layer input (``gru_rel_pos``).

Padding: ``padding_mask`` [B, samples] (True = padding) is reduced to frames (a frame is padding when
all its samples are); padded frames are zeroed before the positional convolution and ignored as keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class WavLMConfig:
    conv_layers: tuple[tuple[int, int, int], ...] = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2
    extractor_mode: str = "default"
    conv_bias: bool = False
    embed_dim: int = 768
    ffn_dim: int = 3072
    heads: int = 12
    layers: int = 12
    layer_norm_first: bool = False
    conv_pos: int = 128
    conv_pos_groups: int = 16
    num_buckets: int = 320
    max_distance: int = 800
    gru_rel_pos: bool = True


class _Transpose(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(-2, -1)


def _channel_layer_norm(channels: int) -> nn.Sequential:
    """LayerNorm over the channels of [B, C, T] (index 1 holds the parameters, as in the checkpoints)."""
    return nn.Sequential(_Transpose(), nn.LayerNorm(channels), _Transpose())


class FeatureExtractor(nn.Module):
    def __init__(self, cfg: WavLMConfig):
        super().__init__()
        self.conv_layers = nn.ModuleList()
        channels_in = 1
        for index, (channels, kernel, stride) in enumerate(cfg.conv_layers):
            conv = nn.Conv1d(channels_in, channels, kernel, stride=stride, bias=cfg.conv_bias)
            if cfg.extractor_mode == "layer_norm":
                block = [conv, nn.Identity(), _channel_layer_norm(channels), nn.GELU()]
            elif index == 0:
                block = [conv, nn.Identity(), nn.GroupNorm(channels, channels, affine=True), nn.GELU()]
            else:
                block = [conv, nn.Identity(), nn.GELU()]
            self.conv_layers.append(nn.Sequential(*block))
            channels_in = channels

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = wav[:, None]
        for block in self.conv_layers:
            x = block(x)
        return x


class PositionalConv(nn.Module):
    """Weight-normalised grouped convolution (``weight_g`` / ``weight_v`` as in the checkpoints)."""

    def __init__(self, width: int, kernel: int, groups: int):
        super().__init__()
        self.kernel, self.groups = kernel, groups
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.empty(width, width // groups, kernel).normal_(0, 0.02))
        self.bias = nn.Parameter(torch.zeros(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))
        y = F.conv1d(x, weight, self.bias, padding=self.kernel // 2, groups=self.groups)
        return F.gelu(y[..., :-1] if self.kernel % 2 == 0 else y)


class RelativeAttention(nn.Module):
    def __init__(self, cfg: WavLMConfig, has_bias: bool):
        super().__init__()
        width, self.heads = cfg.embed_dim, cfg.heads
        self.num_buckets, self.max_distance = cfg.num_buckets, cfg.max_distance
        self.k_proj, self.v_proj = nn.Linear(width, width), nn.Linear(width, width)
        self.q_proj, self.out_proj = nn.Linear(width, width), nn.Linear(width, width)
        if has_bias:
            self.relative_attention_bias = nn.Embedding(cfg.num_buckets, cfg.heads)
        self.gru_rel_pos = cfg.gru_rel_pos
        if cfg.gru_rel_pos:
            self.grep_linear = nn.Linear(width // cfg.heads, 8)
            self.grep_a = nn.Parameter(torch.ones(1, cfg.heads, 1, 1))

    def buckets(self, length: int) -> torch.Tensor:
        """T5-style bidirectional buckets of key position minus query position, [T, T]."""
        relative = torch.arange(length)[None, :] - torch.arange(length)[:, None]
        half = self.num_buckets // 2
        bucket = (relative > 0).long() * half
        distance = relative.abs()
        exact = half // 2
        large = (
            exact
            + (
                torch.log(distance.float() / exact) / math.log(self.max_distance / exact) * (half - exact)
            ).long()
        )
        large = torch.clamp(large, max=half - 1)
        return bucket + torch.where(distance < exact, distance, large)

    def position_bias(self, length: int) -> torch.Tensor:
        """[heads, T, T]."""
        bucket = self.buckets(length).to(self.relative_attention_bias.weight.device)
        return self.relative_attention_bias(bucket).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
        batch, length, width = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, -1).transpose(1, 2)

        mask = bias[None].expand(batch, -1, -1, -1)
        if self.gru_rel_pos:
            gates = torch.sigmoid(self.grep_linear(split(x)).view(batch, self.heads, length, 2, 4).sum(-1))
            gate_a, gate_b = gates.chunk(2, dim=-1)
            mask = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * mask
        if key_padding is not None:
            mask = mask.masked_fill(key_padding[:, None, None, :], float("-inf"))
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, width))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: WavLMConfig, has_bias: bool):
        super().__init__()
        self.layer_norm_first = cfg.layer_norm_first
        self.self_attn = RelativeAttention(cfg, has_bias)
        self.self_attn_layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.fc1 = nn.Linear(cfg.embed_dim, cfg.ffn_dim)
        self.fc2 = nn.Linear(cfg.ffn_dim, cfg.embed_dim)
        self.final_layer_norm = nn.LayerNorm(cfg.embed_dim)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
        if self.layer_norm_first:
            x = x + self.self_attn(self.self_attn_layer_norm(x), bias, key_padding)
            return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))
        x = self.self_attn_layer_norm(x + self.self_attn(x, bias, key_padding))
        return self.final_layer_norm(x + self.fc2(F.gelu(self.fc1(x))))


class Encoder(nn.Module):
    def __init__(self, cfg: WavLMConfig):
        super().__init__()
        self.pos_conv = nn.ModuleList([PositionalConv(cfg.embed_dim, cfg.conv_pos, cfg.conv_pos_groups)])
        self.layers = nn.ModuleList(EncoderLayer(cfg, has_bias=i == 0) for i in range(cfg.layers))
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.layer_norm_first = cfg.layer_norm_first


class WavLM(nn.Module):
    """WavLM encoder; ``hidden_states`` returns the input to the first layer and every layer's output."""

    def __init__(self, cfg: WavLMConfig):
        super().__init__()
        self.cfg = cfg
        self.feature_extractor = FeatureExtractor(cfg)
        features = cfg.conv_layers[-1][0]
        self.layer_norm = nn.LayerNorm(features)
        self.post_extract_proj = nn.Linear(features, cfg.embed_dim) if features != cfg.embed_dim else None
        self.mask_emb = nn.Parameter(
            torch.zeros(cfg.embed_dim)
        )  # training only; kept for the checkpoint keys
        self.encoder = Encoder(cfg)

    @staticmethod
    def frame_padding(padding_mask: torch.Tensor, frames: int) -> torch.Tensor:
        """[B, samples] -> [B, frames]: a frame is padding when all its samples are."""
        extra = padding_mask.shape[1] % frames
        if extra:
            padding_mask = padding_mask[:, :-extra]
        return padding_mask.view(padding_mask.shape[0], frames, -1).all(-1)

    def hidden_states(
        self, wav: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """([B, frames, width] before the first layer and after each, frame padding mask or None).

        For ``layer_norm_first`` models the encoder's final LayerNorm is not applied to these states (as
        in the reference implementation when layer outputs are requested)."""
        x = self.layer_norm(self.feature_extractor(wav).transpose(1, 2))
        frame_mask = None if padding_mask is None else self.frame_padding(padding_mask, x.shape[1])
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        if frame_mask is not None:
            x = x.masked_fill(frame_mask[..., None], 0.0)
        x = x + self.encoder.pos_conv[0](x.transpose(1, 2)).transpose(1, 2)
        if not self.cfg.layer_norm_first:
            x = self.encoder.layer_norm(x)
        bias = self.encoder.layers[0].self_attn.position_bias(x.shape[1])
        states = [x]
        for layer in self.encoder.layers:
            x = layer(x, bias, frame_mask)
            states.append(x)
        return states, frame_mask
