"""PAAPI rotations against a direct complex-number RoPE computation in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agomni.model import model_config
from agomni.model.rope import (
    apply_rope,
    audio_positions,
    rope_table,
    rotate_pairs,
    video_positions,
)

from .mmdit_tiny import random_inputs, random_latent, random_tiny


def numpy_rope(x: np.ndarray, positions: np.ndarray, theta: float = 10000.0) -> np.ndarray:
    """RoPE as complex multiplication: pair (2j, 2j+1) times exp(i * pos * theta^(-2j/d))."""
    d = x.shape[-1]
    z = x[..., 0::2] + 1j * x[..., 1::2]
    angle = positions[:, None] * theta ** (-np.arange(0, d, 2) / d)[None, :]
    r = z * np.exp(1j * angle)
    out = np.empty_like(x)
    out[..., 0::2], out[..., 1::2] = r.real, r.imag
    return out


def test_apply_rope_matches_complex_rotation():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 40, 64)).astype(np.float32)
    pos = rng.uniform(0, 500, 40)
    got = apply_rope(torch.from_numpy(x), rope_table(torch.from_numpy(pos), 64)).numpy()
    np.testing.assert_allclose(got, numpy_rope(x.astype(np.float64), pos), atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_compiled_and_eager_rotations_are_identical(dtype):
    # apply_rope's complex product (eager) and rotate_pairs (what torch.compile traces) give the same bits
    x = torch.randn(3, 2, 50, 32, generator=torch.Generator().manual_seed(5)).to(dtype)
    table = rope_table(torch.linspace(0, 400, 50, dtype=torch.float64), 32)
    torch.testing.assert_close(apply_rope(x, table), rotate_pairs(x, table), atol=0, rtol=0)
    expected = numpy_rope(x.double().numpy(), np.linspace(0, 400, 50))
    np.testing.assert_allclose(
        apply_rope(x, table).double().numpy(), expected, atol=1e-4 if dtype == torch.float32 else 0.05
    )


def test_streams_at_the_same_time_share_a_rotation():
    seq = model_config(
        "S-16k"
    ).sequence  # 31.25 latent fps, 8 fps video: video frame 32 = 4 s = audio frame 125
    x = np.random.default_rng(1).standard_normal((1, 1, 1, 64)).astype(np.float32)
    xt = torch.from_numpy(x)
    audio, video = (rope_table(p(seq), 64) for p in (audio_positions, video_positions))
    at_video = apply_rope(xt, video[32:33])
    at_audio = apply_rope(xt, audio[125:126])
    assert torch.equal(at_video, at_audio)
    np.testing.assert_allclose(
        at_audio.numpy(), numpy_rope(x.astype(np.float64), np.array([125.0])), atol=1e-4
    )
    a_frame_later = apply_rope(xt, audio[126:127])
    assert (a_frame_later - at_video).abs().max() > 1e-2


def test_video_positions_are_timestamps_in_latent_frames():
    for name in ("S-16k", "L-44k"):
        seq = model_config(name).sequence
        pos = video_positions(seq).numpy()
        np.testing.assert_allclose(pos, np.arange(64) / 8.0 * seq.sample_rate / seq.mel_hop / 2)
        x = np.random.default_rng(2).standard_normal((1, 1, 64, 64))
        got = apply_rope(torch.from_numpy(x).float(), rope_table(video_positions(seq), 64)).numpy()
        np.testing.assert_allclose(got, numpy_rope(x, np.arange(64) * seq.latent_fps / 8.0), atol=1e-4)


def test_network_tables_are_the_paapi_tables_and_not_saved():
    model = random_tiny(duration_s=8.0)
    hd = model.config.head_dim
    x = np.random.default_rng(3).standard_normal((1, 1, 64, hd))
    got = apply_rope(torch.from_numpy(x).float(), model.rope_video).numpy()
    np.testing.assert_allclose(got, numpy_rope(x, np.arange(64) * 31.25 / 8), atol=1e-4)
    assert not any("rope" in k for k in model.state_dict())


def test_text_gets_no_position():
    # Without RoPE (and with per-token Linear/MLP), the order of text tokens cannot matter to the audio.
    model = random_tiny()
    inputs = random_inputs(model, 2)
    latent = random_latent(model, 2)
    t = torch.tensor([0.3, 0.7])
    base = model(latent, t, **inputs)
    perm = torch.randperm(inputs["text_f"].shape[1], generator=torch.Generator().manual_seed(0))
    shuffled = model(latent, t, **{**inputs, "text_f": inputs["text_f"][:, perm]})
    torch.testing.assert_close(shuffled, base, atol=1e-5, rtol=0)
    # ... whereas the order of the (positioned, temporal) video tokens does matter.
    flipped = model(latent, t, **{**inputs, "clip_f": inputs["clip_f"].flip(1)})
    assert (flipped - base).abs().max() > 1e-3
