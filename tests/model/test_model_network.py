"""Network plumbing: durations, input validation, strict weight loading, stand-in conditioners."""

from __future__ import annotations

import re

import pytest
import torch

from agomni.errors import UsageError, WeightsError
from agomni.model import AgomniMMDiT, model_config
from agomni.model.conditioners import RandomTextConditioner, RandomVideoConditioner
from agomni.model.layers import ChannelLastConv1d, ConvMLP
from agomni.model.network import load_network_weights

from .mmdit_tiny import random_inputs, random_latent, random_tiny


@pytest.mark.parametrize("duration", [4.0, 10.0])
def test_other_durations_run(duration):
    model = random_tiny(duration_s=8.0)
    model.set_duration(duration)
    expected = model_config("tiny-16k", duration).sequence
    assert model.rope_audio.shape[0] == expected.latent_len and model.rope_video.shape[0] == expected.clip_len
    v = model(random_latent(model, 1), torch.tensor([0.5]), **random_inputs(model, 1))
    assert v.shape == (1, expected.latent_len, 20) and torch.isfinite(v).all()


def test_wrong_lengths_are_usage_errors_naming_the_input():
    model = random_tiny(duration_s=2.0)
    inputs = random_inputs(model, 1)
    inputs["clip_f"] = inputs["clip_f"][:, :-1]
    with pytest.raises(UsageError, match=r"clip_f has shape \(1, 15, 32\), expected \(1, 16, 32\)"):
        model.preprocess_conditions(**inputs)
    with pytest.raises(UsageError, match="batch_size"):
        model.preprocess_conditions()
    cond = model.empty_conditions(1)
    with pytest.raises(UsageError, match="latent has shape"):
        model.predict_flow(torch.zeros(1, 3, 20), torch.tensor([0.1]), cond)


def test_weights_round_trip_and_wrong_size_is_a_clear_error():
    model = random_tiny()
    fresh = AgomniMMDiT(model.config)
    load_network_weights(fresh, model.state_dict(), "in-memory")
    latent, inputs = random_latent(model, 1), random_inputs(model, 1)
    assert torch.equal(
        fresh(latent, torch.tensor([0.3]), **inputs), model(latent, torch.tensor([0.3]), **inputs)
    )
    other = AgomniMMDiT(model_config("tiny-44k"))
    with pytest.raises(
        WeightsError,
        match=r"ckpt\.safetensors \(model size tiny-16k\): the state dict does not fit AgomniMMDiT: "
        r".*shape mismatches \(\d+\): ",
    ):
        load_network_weights(fresh, other.state_dict(), "ckpt.safetensors")
    final = sorted(k for k in model.state_dict() if k.startswith("final."))
    partial = {k: v for k, v in model.state_dict().items() if k not in final}
    with pytest.raises(WeightsError, match=re.escape(f"missing keys ({len(final)}): {', '.join(final)}")):
        load_network_weights(fresh, partial, "partial.pt")


def test_zero_init_network_predicts_zero_flow():
    model = AgomniMMDiT(model_config("tiny-44k", 1.0))
    v = model(random_latent(model, 2), torch.tensor([0.1, 0.9]), **random_inputs(model, 2))
    assert torch.equal(v, torch.zeros_like(v))


def test_stand_in_conditioners_feed_the_network():
    model = random_tiny(duration_s=2.0)
    cfg, seq = model.config, model.sequence
    frames = torch.rand(2, 50, 3, 12, 12)  # 2 s at 25 fps
    video = RandomVideoConditioner(cfg.clip_dim, cfg.sync_dim).encode(frames, 25.0, seq)
    assert video.clip.shape == (2, seq.clip_len, cfg.clip_dim) and video.sync.shape == (
        2,
        seq.sync_len,
        cfg.sync_dim,
    )
    text = RandomTextConditioner(cfg.text_dim, cfg.text_len).encode(["rain", "dog bark"])
    assert text.shape == (2, cfg.text_len, cfg.text_dim)
    # Deterministic in the input: the same frames give the same features, others differ.
    again = RandomVideoConditioner(cfg.clip_dim, cfg.sync_dim).encode(frames, 25.0, seq)
    assert torch.equal(again.clip, video.clip) and not torch.equal(video.clip[0], video.clip[1])
    v = model(
        random_latent(model, 2), torch.tensor([0.2, 0.4]), clip_f=video.clip, sync_f=video.sync, text_f=text
    )
    assert torch.isfinite(v).all()
    with pytest.raises(UsageError, match="do not reach"):
        RandomVideoConditioner(cfg.clip_dim, cfg.sync_dim).encode(frames[:, :30], 25.0, seq)
    with pytest.raises(UsageError, match="prompt 1 is empty"):
        RandomTextConditioner(cfg.text_dim, cfg.text_len).encode(["ok", ""])
    with pytest.raises(UsageError, match="more than the 8 tokens"):
        RandomTextConditioner(cfg.text_dim, cfg.text_len).encode(["a much longer prompt"])


@pytest.mark.parametrize(("kernel", "length"), [(1, 5), (3, 63), (7, 2), (7, 40)])
def test_channel_last_conv_on_the_cpu_equals_torch_conv1d(kernel, length):
    """The CPU path (one matrix product over the unfolded windows) against torch's own conv1d, also for
    a non-contiguous input and sequences shorter than the kernel (float32 sums in another order: 1e-5)."""
    g = torch.Generator().manual_seed(kernel)
    conv = ChannelLastConv1d(12, 9, kernel)
    with torch.no_grad():
        for p in conv.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    x = torch.randn(3, 12, length, generator=g).transpose(1, 2)  # (B, N, C), not contiguous
    expected = torch.nn.functional.conv1d(x.transpose(1, 2), conv.weight, conv.bias, padding=kernel // 2)
    torch.testing.assert_close(conv(x), expected.transpose(1, 2), rtol=1e-5, atol=1e-5)


def test_conv_mlp_on_the_cpu_equals_torch_conv1d_swiglu():
    """ConvMLP's CPU path (w1 and w3 share one window copy) against the SwiGLU written with torch's conv1d."""
    g = torch.Generator().manual_seed(5)
    mlp = ConvMLP(16, 64, 8, kernel_size=3)
    with torch.no_grad():
        for p in mlp.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / 4)
        x = torch.randn(2, 16, 21, generator=g).transpose(1, 2)  # (B, N, C), not contiguous

        def conv(layer: ChannelLastConv1d, h: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.conv1d(h.transpose(1, 2), layer.weight, padding=1).transpose(1, 2)

        expected = conv(mlp.w2, torch.nn.functional.silu(conv(mlp.w1, x)) * conv(mlp.w3, x))
        torch.testing.assert_close(mlp(x), expected, rtol=1e-5, atol=1e-5)


def test_a_shared_latent_embedding_gives_the_same_velocity():
    """predict_flow with `embedded=embed_latent(x)` is the same computation as without (bit for bit); an
    embedding of the wrong shape is a usage error naming it."""
    model = random_tiny()
    cond = model.preprocess_conditions(**random_inputs(model, 2))
    latent, t = random_latent(model, 2), torch.tensor(0.3)
    with torch.no_grad():
        h = model.embed_latent(latent)
        assert torch.equal(
            model.predict_flow(latent, t, cond, embedded=h), model.predict_flow(latent, t, cond)
        )
        with pytest.raises(UsageError, match="embedded latent"):
            model.predict_flow(latent, t, cond, embedded=h[:, :-1])
