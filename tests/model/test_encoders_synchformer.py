"""Synchformer (MotionFormer divided space-time) video features.

No PyPI package ships Synchformer, so the network is checked against an independent NumPy
re-derivation written token by token from the recipe (explicit patch dot products, the allowed key set
of every query, loops instead of reshapes), with random weights on a reduced width/depth; the
preprocessing against torchvision v2 as MMAudio applies it; the segmenting, shapes (8 s -> 24 x 8 =
192 tokens), determinism and strict loading directly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import erf

from agomni.errors import OfflineError, UsageError, WeightsError
from agomni.io import load_video
from agomni.model.config import SequenceConfig
from agomni.model.encoders.synchformer import (
    MotionFormer,
    MotionFormerConfig,
    SynchformerEncoder,
    motionformer_state,
    sync_preprocess,
)
from agomni.weights import load_strict

from .encoder_fixtures import make_textured_video

TINY = MotionFormerConfig(
    image_size=32, patch_size=16, frames=16, time_patch=2, embed_dim=16, depth=2, heads=2
)


def _random_model(config: MotionFormerConfig = TINY, seed: int = 0) -> MotionFormer:
    model = MotionFormer(config).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model


# ---- the NumPy re-derivation -------------------------------------------------------------------
def _ln(x, w, b, eps=1e-6):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu(x):
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def _softmax(s):
    e = np.exp(s - s.max())
    return e / e.sum()


def _attend(q, k, v, allowed, heads):
    """q, k, v (N, D) already projected; `allowed[i]` = key indices of query i; q scaled by d^-0.5."""
    n, dim = q.shape
    d = dim // heads
    out = np.zeros((n, dim))
    for i in range(n):
        for h in range(heads):
            sl = slice(h * d, (h + 1) * d)
            w = _softmax(np.array([q[i, sl] @ k[j, sl] for j in allowed[i]]) / np.sqrt(d))
            out[i, sl] = sum(wj * v[j, sl] for wj, j in zip(w, allowed[i], strict=True))
    return out


def _divided(x, p, name, over, frames, patches, heads):
    qkv = x @ p[f"{name}.qkv.weight"].T + p[f"{name}.qkv.bias"]
    dim = x.shape[1]
    q, k, v = qkv[:, :dim], qkv[:, dim : 2 * dim], qkv[:, 2 * dim :]
    allowed = [list(range(len(x)))]
    for i in range(1, len(x)):
        f, s = divmod(i - 1, patches)
        group = (
            [1 + ff * patches + s for ff in range(frames)]
            if over == "time"
            else [1 + f * patches + ss for ss in range(patches)]
        )
        allowed.append([0, *group])
    return _attend(q, k, v, allowed, heads) @ p[f"{name}.proj.weight"].T + p[f"{name}.proj.bias"]


def _reference_forward(segment: np.ndarray, p: dict, config: MotionFormerConfig) -> np.ndarray:
    """One segment (3, frames, H, W) -> (time_tokens, D), from the recipe in the module docstring."""
    grid, ps, tp, t_tokens = config.grid, config.patch_size, config.time_patch, config.time_tokens
    patches = grid * grid
    w3 = p["patch_embed_3d.proj.weight"].reshape(config.embed_dim, -1)
    tokens = [p["cls_token"][0, 0] + p["pos_embed"][0, 0]]
    for t in range(t_tokens):
        for r in range(grid):
            for c in range(grid):
                cube = segment[:, t * tp : (t + 1) * tp, r * ps : (r + 1) * ps, c * ps : (c + 1) * ps]
                emb = w3 @ cube.ravel() + p["patch_embed_3d.proj.bias"]
                tokens.append(emb + p["pos_embed"][0, 1 + r * grid + c] + p["temp_embed"][0, t])
    x = np.stack(tokens)
    for i in range(config.depth):
        b = f"blocks.{i}"
        x = x + _divided(
            _ln(x, p[f"{b}.norm3.weight"], p[f"{b}.norm3.bias"]),
            p,
            f"{b}.timeattn",
            "time",
            t_tokens,
            patches,
            config.heads,
        )
        x = x + _divided(
            _ln(x, p[f"{b}.norm1.weight"], p[f"{b}.norm1.bias"]),
            p,
            f"{b}.attn",
            "space",
            t_tokens,
            patches,
            config.heads,
        )
        h = _gelu(
            _ln(x, p[f"{b}.norm2.weight"], p[f"{b}.norm2.bias"]) @ p[f"{b}.mlp.fc1.weight"].T
            + p[f"{b}.mlp.fc1.bias"]
        )
        x = x + h @ p[f"{b}.mlp.fc2.weight"].T + p[f"{b}.mlp.fc2.bias"]
    x = _ln(x[1:], p["norm.weight"], p["norm.bias"])
    a = "spatial_attn_agg"
    out = []
    for t in range(t_tokens):
        seq = np.concatenate([p[f"{a}.cls_token"][0], x[t * patches : (t + 1) * patches]])
        y = _ln(seq, p[f"{a}.norm1.weight"], p[f"{a}.norm1.bias"])
        qkv = y @ p[f"{a}.self_attn.in_proj_weight"].T + p[f"{a}.self_attn.in_proj_bias"]
        dim = y.shape[1]
        full = [list(range(len(seq)))] * len(seq)
        att = _attend(qkv[:, :dim], qkv[:, dim : 2 * dim], qkv[:, 2 * dim :], full, config.heads)
        seq = seq + att @ p[f"{a}.self_attn.out_proj.weight"].T + p[f"{a}.self_attn.out_proj.bias"]
        y = _ln(seq, p[f"{a}.norm2.weight"], p[f"{a}.norm2.bias"])
        seq = (
            seq
            + _gelu(y @ p[f"{a}.linear1.weight"].T + p[f"{a}.linear1.bias"]) @ p[f"{a}.linear2.weight"].T
            + p[f"{a}.linear2.bias"]
        )
        out.append(seq[0])
    return np.stack(out)


# ---- tests --------------------------------------------------------------------------------------
def test_motionformer_matches_numpy_rederivation():
    model = _random_model()
    params = {k: v.double().numpy() for k, v in model.state_dict().items()}
    segments = torch.rand(2, 3, TINY.frames, TINY.image_size, TINY.image_size) * 2 - 1
    with torch.inference_mode():
        got = model(segments).numpy()
    assert got.shape == (2, TINY.time_tokens, TINY.embed_dim)
    for i in range(2):
        expected = _reference_forward(segments[i].double().numpy(), params, TINY)
        assert np.abs(got[i] - expected).max() / np.abs(expected).max() < 1e-4


def test_preprocessing_matches_torchvision_as_mmaudio_applies_it(tmp_path):
    v2 = pytest.importorskip("torchvision.transforms.v2")
    frames, _ = load_video(make_textured_video(tmp_path / "v.mp4", 0.4, size=(48, 70)), fps=25.0)
    for size in (32, 40):
        transform = v2.Compose(
            [
                v2.Resize(size, interpolation=v2.InterpolationMode.BICUBIC),
                v2.CenterCrop(size),
                v2.ToImage(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]),
            ]
        )
        expected = transform(frames)
        got = sync_preprocess(frames.float() / 255.0, size)
        assert got.shape == expected.shape == (len(frames), 3, size, size)
        assert torch.allclose(got, expected, atol=1e-6)
        tall = frames.transpose(-1, -2)  # portrait: the other side is the shorter one
        assert torch.allclose(sync_preprocess(tall.float() / 255.0, size), transform(tall), atol=1e-6)


def test_eight_seconds_give_24_segments_of_8_tokens_deterministically():
    sequence = SequenceConfig(duration_s=8.0, sample_rate=16_000, mel_hop=256)
    encoder = SynchformerEncoder(_random_model(), random_weights=True, batch_segments=5)
    g = torch.Generator().manual_seed(1)
    frames = torch.rand(1, 201, 3, 36, 48, generator=g)  # 25 fps, a little more than 8 s
    features = encoder.encode_sync(frames, 25.0, sequence)
    assert features.shape == (1, 192, TINY.embed_dim) == (1, sequence.sync_len, encoder.sync_dim)
    assert torch.equal(features, encoder.encode_sync(frames, 25.0, sequence))
    # segment s covers input frames 8 s .. 8 s + 15: recompute two of them directly
    pixels = sync_preprocess(frames[0, :200], TINY.image_size)
    for s in (0, 23):
        segment = pixels[8 * s : 8 * s + 16].transpose(0, 1)[None]
        with torch.inference_mode():
            direct = encoder.model(segment)[0]
        assert torch.allclose(features[0, 8 * s : 8 * s + 8], direct, rtol=1e-4, atol=1e-5)
    with pytest.raises(UsageError, match="do not reach"):
        encoder.encode_sync(frames[:, :150], 25.0, sequence)
    other = SequenceConfig(duration_s=8.0, sample_rate=16_000, mel_hop=256, sync_frames_per_segment=8)
    with pytest.raises(UsageError, match="8-frame segments"):
        encoder.encode_sync(frames, 25.0, other)


def test_strict_loading_lists_keys():
    state = {f"vfeat_extractor.{k}": v for k, v in _random_model().state_dict().items()}
    state["afeat_extractor.blocks.0.norm1.weight"] = torch.ones(3)  # audio branch: ignored, as upstream
    load_strict(MotionFormer(TINY), motionformer_state(state, "ckpt"), where="ckpt")
    del state["vfeat_extractor.blocks.1.timeattn.qkv.bias"]
    state["vfeat_extractor.temp_attn_agg.cls_token"] = torch.ones(1, 1, 16)
    with pytest.raises(WeightsError) as info:
        load_strict(MotionFormer(TINY), motionformer_state(state, "ckpt"), where="ckpt")
    assert "missing keys (1): blocks.1.timeattn.qkv.bias" in str(info.value)
    assert "unexpected keys (1): temp_attn_agg.cls_token" in str(info.value)
    with pytest.raises(WeightsError, match=r"no 'vfeat_extractor\.' keys"):
        motionformer_state({"blocks.0.norm1.weight": torch.ones(3)}, "ckpt")


def test_offline_without_cached_weights_raises_offline_error(monkeypatch, tmp_path):
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path))
    monkeypatch.setenv("AGOMNI_OFFLINE", "1")
    with pytest.raises(OfflineError, match="agomni weights import synchformer-24-01-04T16-39-21"):
        SynchformerEncoder.from_registry()
