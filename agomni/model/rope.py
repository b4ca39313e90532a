"""PAAPI: phase-aligned anisotropic positional infusion (agomni's reading of the AudioGen-Omni paper).

Rotary position embedding (RoPE, theta 10000) applied only to the temporally structured streams
(audio latents, video, lyrics/transcription). Every such stream's position is its timestamp
expressed in audio-latent frames, so two tokens of different streams at the same time get the same
rotation whatever their frame rate ("phase-aligned"): audio frame i -> i, LT frame i -> i (the LT
stream is frame-aligned with audio), video frame i at `clip_fps` -> i * latent_fps / clip_fps.
The text stream has no time axis and gets no rotation.

"Anisotropic" here means the rotation acts along the time axis only: all head dimensions rotate by
time, none by any other axis (no spatial/channel position), and non-temporal streams are not
rotated at all. MMAudio's "aligned RoPE" scales video positions by N_audio / N_video; using the exact
rate ratio instead keeps the alignment exact for any duration.

Pairing convention: head dims (2j, 2j+1) form one complex number rotated by angle
position * theta ** (-2j / head_dim), as in MMAudio/Flux.

Tables are computed on the CPU (the caller moves them), also while a network is built on the meta
device, where torch's arange would first import its compiler stack (torch._dynamo, sympy: ~2 CPU s).
"""

from __future__ import annotations

import torch

from .config import SequenceConfig


def audio_positions(sequence: SequenceConfig) -> torch.Tensor:
    """Positions (audio-latent frames, float64) of the audio stream's tokens: 0, 1, ..., latent_len-1."""
    return torch.arange(sequence.latent_len, dtype=torch.float64, device="cpu")


def video_positions(sequence: SequenceConfig) -> torch.Tensor:
    """Positions of CLIP tokens: token i at time i / clip_fps s = frame i * latent_fps / clip_fps."""
    return torch.arange(sequence.clip_len, dtype=torch.float64, device="cpu") * (
        sequence.latent_fps / sequence.clip_fps
    )


def rope_table(positions: torch.Tensor, head_dim: int, theta: float = 10_000.0) -> torch.Tensor:
    """Cos/sin table for the given positions: (N, head_dim // 2, 2) float32, [..., 0] = cos, [..., 1] = sin.

    Angles are computed in float64 and rounded once, so long sequences keep their phase.
    """
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float64, device="cpu") / head_dim
    inv_freq = theta ** (-exponents)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    return torch.stack([angles.cos(), angles.sin()], dim=-1).to(torch.float32)


def apply_rope(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotate (B, heads, N, head_dim) queries/keys by a (N, head_dim // 2, 2) table; computed in fp32.

    Each pair (re, im) becomes (re cos - im sin, re sin + im cos). Eagerly this is one complex product
    (~8x fewer CPU seconds than the arithmetic on the interleaved real parts, whose stride-2 kernels
    dominate); inside ``torch.compile`` the real-part arithmetic (`rotate_pairs`), which the compiler
    fuses into its neighbours (it emits no code for complex numbers). Both give identical values."""
    if torch.compiler.is_compiling():
        return rotate_pairs(x, table)
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))
    return torch.view_as_real(pairs * torch.view_as_complex(table)).flatten(-2).to(x.dtype)


def rotate_pairs(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """`apply_rope` on real parts: (re cos - im sin, re sin + im cos) per head-dim pair, in fp32."""
    xf = x.float().unflatten(-1, (-1, 2))
    re, im = xf[..., 0], xf[..., 1]
    cos, sin = table[..., 0], table[..., 1]
    return torch.stack([re * cos - im * sin, re * sin + im * cos], dim=-1).flatten(-2).to(x.dtype)
