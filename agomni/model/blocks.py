"""Transformer blocks of the reference MMDiT: per-stream halves, joint-attention blocks, the final layer.

Structure follows MMAudio's `transformer_layers.py` (DiT/SD3 style): LayerNorm without affine +
adaLN modulation (shift/scale/gate, 6 chunks), a qkv Linear with per-head RMSNorm on q and k, RoPE
on temporal streams only (see rope.py), one scaled-dot-product attention over the concatenated
streams, then a projection + (Conv)MLP per stream. Temporal streams use kernel-3 convolutions for
the output projection and the MLP, the text stream Linear/MLP. In the last joint block the
non-audio streams only supply keys and values (no queries, no output layers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import MLP, AdaLN, ChannelLastConv1d, ConvMLP, modulate
from .rope import apply_rope


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None
) -> torch.Tensor:
    """SDPA over (B, heads, N, head_dim) tensors; key_mask (B, N_k) bool, True = attend. -> (B, N_q, dim)."""
    mask = None if key_mask is None else key_mask[:, None, None, :]
    out = F.scaled_dot_product_attention(q.contiguous(), k.contiguous(), v.contiguous(), attn_mask=mask)
    return out.transpose(1, 2).flatten(2)


class StreamBlock(nn.Module):
    """One stream's share of a transformer block (also used alone as an audio-only single block).

    kernel_size 1 means Linear projection + MLP (text); > 1 means temporal convs (audio, video, LT).
    kv_only: the stream only supplies keys/values (last joint block); it has no output layers.
    """

    def __init__(
        self, dim: int, num_heads: int, *, mlp_ratio: float, multiple_of: int, kernel_size: int, kv_only: bool
    ):
        super().__init__()
        self.num_heads = num_heads
        self.kv_only = kv_only
        head_dim = dim // num_heads
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.adaln = AdaLN(dim, 2 if kv_only else 6)
        if kv_only:
            self.kv = nn.Linear(dim, 2 * dim)
        else:
            self.qkv = nn.Linear(dim, 3 * dim)
            self.q_norm = nn.RMSNorm(head_dim)
            hidden = int(dim * mlp_ratio)
            if kernel_size == 1:
                self.proj = nn.Linear(dim, dim)
                self.ffn = MLP(dim, hidden, multiple_of)
            else:
                self.proj = ChannelLastConv1d(dim, dim, kernel_size)
                self.ffn = ConvMLP(dim, hidden, multiple_of, kernel_size)
            self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.k_norm = nn.RMSNorm(head_dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def pre_attention(
        self, x: torch.Tensor, c: torch.Tensor, rope: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        """x (B, N, dim), c (B, 1 or N, dim) -> q (None if kv_only), k, v as (B, heads, N, hd), modulation."""
        mods = self.adaln(c)
        h = modulate(self.norm1(x), mods[0], mods[1])
        if self.kv_only:
            k, v = (self._heads(t) for t in self.kv(h).chunk(2, dim=-1))
            q = None
        else:
            q, k, v = (self._heads(t) for t in self.qkv(h).chunk(3, dim=-1))
            q = self.q_norm(q)
        k = self.k_norm(k)
        if rope is not None:
            k = apply_rope(k, rope)
            q = None if q is None else apply_rope(q, rope)
        return q, k, v, mods[2:]

    def post_attention(self, x: torch.Tensor, attn_out: torch.Tensor, mods: tuple[torch.Tensor, ...]):
        """Gated residual projection of the attention output, then gated residual (Conv)MLP."""
        gate_attn, shift_ffn, scale_ffn, gate_ffn = mods
        x = x + self.proj(attn_out) * gate_attn
        return x + self.ffn(modulate(self.norm2(x), shift_ffn, scale_ffn)) * gate_ffn

    def forward(self, x: torch.Tensor, c: torch.Tensor, rope: torch.Tensor | None) -> torch.Tensor:
        """Self-attention block on one stream (the audio-only single blocks)."""
        q, k, v, mods = self.pre_attention(x, c, rope)
        return self.post_attention(x, attention(q, k, v, None), mods)


CONTEXT_STREAMS = ("video", "lt", "text")
TEMPORAL_KERNEL = 3


class JointBlock(nn.Module):
    """Joint attention of the audio stream with the video, LT and text streams (any subset present).

    Keys are concatenated as [audio | video | lt | text] in that order (absent streams omitted); the
    caller's key mask follows the same order.
    """

    def __init__(self, dim: int, num_heads: int, *, mlp_ratio: float, multiple_of: int, last: bool):
        super().__init__()
        self.last = last

        def stream(kernel_size: int, kv_only: bool) -> StreamBlock:
            return StreamBlock(
                dim,
                num_heads,
                mlp_ratio=mlp_ratio,
                multiple_of=multiple_of,
                kernel_size=kernel_size,
                kv_only=kv_only,
            )

        self.audio = stream(TEMPORAL_KERNEL, kv_only=False)
        self.video = stream(TEMPORAL_KERNEL, kv_only=last)
        self.lt = stream(TEMPORAL_KERNEL, kv_only=last)
        self.text = stream(1, kv_only=last)

    def forward(
        self,
        audio: torch.Tensor,
        context: dict[str, torch.Tensor],
        audio_c: torch.Tensor,
        global_c: torch.Tensor,
        ropes: dict[str, torch.Tensor | None],
        key_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """audio (B, N, D) with per-token condition audio_c (B, N, D); context streams (B, L_s, D) with
        global_c (B, 1, D); ropes: per-stream tables (None = no rotation); key_mask (B, N + sum L_s).
        Returns the new audio and context streams (empty context after the last block)."""
        qa, ka, va, audio_mods = self.audio.pre_attention(audio, audio_c, ropes["audio"])
        qs, ks, vs, mods = [qa], [ka], [va], {}
        for name, x in context.items():
            q, k, v, mods[name] = getattr(self, name).pre_attention(x, global_c, ropes.get(name))
            qs.append(q)
            ks.append(k)
            vs.append(v)
        k_all, v_all = torch.cat(ks, dim=2), torch.cat(vs, dim=2)
        q_all = qa if self.last else torch.cat(qs, dim=2)
        out = attention(q_all, k_all, v_all, key_mask)
        n_audio = audio.shape[1]
        audio = self.audio.post_attention(audio, out[:, :n_audio], audio_mods)
        if self.last:
            return audio, {}
        new_context, start = {}, n_audio
        for name, x in context.items():
            end = start + x.shape[1]
            new_context[name] = getattr(self, name).post_attention(x, out[:, start:end], mods[name])
            start = end
        return audio, new_context


class FinalLayer(nn.Module):
    """adaLN (shift, scale) + LayerNorm, then Conv1d k=7 to the latent channels: (B, N, D) -> (B, N, C)."""

    def __init__(self, dim: int, latent_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.adaln = AdaLN(dim, 2)
        self.conv = ChannelLastConv1d(dim, latent_dim, kernel_size=7)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaln(c)
        return self.conv(modulate(self.norm(x), shift, scale))
