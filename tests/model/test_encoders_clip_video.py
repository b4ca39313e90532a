"""CLIP video encoder: equal to open_clip's CLIP.encode_image(normalize=True) with the same random
weights (tiny ViT, built offline), fed as MMAudio feeds it (torchvision v2 resize of the uint8 frames
decoded by agomni.io.load_video at 8 fps, OpenAI mean/std)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from agomni.errors import OfflineError, UsageError, WeightsError
from agomni.io import load_video
from agomni.model.config import SequenceConfig
from agomni.model.encoders.clip_video import (
    CLIP_MEAN,
    CLIP_STD,
    DFN5B_VIT_H_14_384,
    ClipVideoEncoder,
    ClipVisionConfig,
    ClipVisionTower,
    clip_tower_state,
)
from agomni.weights import load_strict

from .encoder_fixtures import make_textured_video

open_clip = pytest.importorskip("open_clip")
v2 = pytest.importorskip("torchvision.transforms.v2")

TINY = ClipVisionConfig(image_size=42, patch_size=14, width=32, layers=2, heads=4, output_dim=16)
SEQUENCE = SequenceConfig(duration_s=1.0, sample_rate=16_000, mel_hop=256)


def _reference_clip() -> torch.nn.Module:
    torch.manual_seed(0)
    model = open_clip.model.CLIP(
        embed_dim=TINY.output_dim,
        vision_cfg={
            "image_size": TINY.image_size,
            "layers": TINY.layers,
            "width": TINY.width,
            "head_width": TINY.width // TINY.heads,
            "patch_size": TINY.patch_size,
        },
        text_cfg={"context_length": 8, "vocab_size": 50, "width": 16, "heads": 2, "layers": 1},
        quick_gelu=True,
    ).eval()
    with torch.no_grad():  # LayerNorms start at 1/0 and biases at 0: randomise them too
        for p in model.visual.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def _encoder(reference: torch.nn.Module, config: ClipVisionConfig = TINY) -> ClipVideoEncoder:
    tower = ClipVisionTower(config)
    load_strict(tower, clip_tower_state(reference.state_dict(), "open_clip"), where="open_clip")
    return ClipVideoEncoder(tower, random_weights=True, batch_frames=3)


# 44 px into a tower built for 42 px mirrors MMAudio's 384 px frames into the 378 px DFN5B tower: same
# patch grid, the last pixel rows/columns reach no patch.
@pytest.mark.parametrize("size", [TINY.image_size, TINY.image_size + 2])
def test_matches_open_clip_with_mmaudio_preprocessing(tmp_path, size):
    reference = _reference_clip()
    config = dataclasses.replace(TINY, image_size=size)
    video = make_textured_video(tmp_path / "v.mp4", 1.2)
    frames, _ = load_video(video, fps=SEQUENCE.clip_fps)
    frames = frames[: SEQUENCE.clip_len]
    transform = v2.Compose(
        [
            v2.Resize((size, size), interpolation=v2.InterpolationMode.BICUBIC),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(CLIP_MEAN), std=list(CLIP_STD)),
        ]
    )
    with torch.inference_mode():
        expected = reference.encode_image(transform(frames), normalize=True)
    got = _encoder(reference, config).encode_clip(frames[None].float() / 255.0, SEQUENCE.clip_fps, SEQUENCE)
    assert got.shape == (1, SEQUENCE.clip_len, TINY.output_dim) and got.dtype == torch.float32
    err = (got[0] - expected).abs().max() / expected.abs().max()
    assert err < 1e-4
    assert torch.allclose(got.norm(dim=-1), torch.ones(1, SEQUENCE.clip_len), atol=1e-5)


def test_picks_the_frame_at_each_clip_time_from_a_25_fps_decode(tmp_path):
    encoder = _encoder(_reference_clip())
    frames, _ = load_video(make_textured_video(tmp_path / "v.mp4", 1.2), fps=25.0)
    got = encoder.encode_clip(frames[None].float() / 255.0, 25.0, SEQUENCE)
    index = [int(k / SEQUENCE.clip_fps * 25 + 1e-6) for k in range(SEQUENCE.clip_len)]  # 0, 3, 6, 9, ...
    expected = encoder.embed_images(frames[index].float() / 255.0)
    assert torch.equal(got[0], expected)
    with pytest.raises(UsageError, match="do not reach"):
        encoder.encode_clip(frames[None, :5].float() / 255.0, 25.0, SEQUENCE)
    with pytest.raises(UsageError, match="batch, time, 3, height, width"):
        encoder.encode_clip(frames.float(), 25.0, SEQUENCE)


def test_strict_loading_lists_keys():
    state = _reference_clip().state_dict()
    del state["visual.transformer.resblocks.1.mlp.c_fc.bias"]
    state["visual.head.weight"] = torch.ones(3)
    with pytest.raises(WeightsError) as info:
        load_strict(ClipVisionTower(TINY), clip_tower_state(state, "ckpt.bin"), where="ckpt.bin")
    assert "missing keys (1): transformer.resblocks.1.mlp.c_fc.bias" in str(info.value)
    assert "unexpected keys (1): head.weight" in str(info.value)
    bigger = ClipVisionConfig(image_size=56, patch_size=14, width=32, layers=2, heads=4, output_dim=16)
    with pytest.raises(WeightsError, match=r"shape mismatches \(\d+\): positional_embedding: checkpoint "):
        load_strict(ClipVisionTower(bigger), clip_tower_state(_reference_clip().state_dict(), "c"), where="c")


def test_offline_without_cached_weights_raises_offline_error(monkeypatch, tmp_path):
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path))
    monkeypatch.setenv("AGOMNI_OFFLINE", "1")
    with pytest.raises(OfflineError, match="agomni weights import dfn5b-clip-vit-h-14-384"):
        ClipVideoEncoder.from_registry()


def test_full_size_tower_has_open_clip_dfn5b_keys_and_shapes():
    with torch.device("meta"):  # no memory, no weights: names and shapes only
        reference = open_clip.model.CLIP(**open_clip.get_model_config("ViT-H-14-378-quickgelu"))
        ours = ClipVisionTower(DFN5B_VIT_H_14_384)
    expected = {k: tuple(v.shape) for k, v in clip_tower_state(reference.state_dict(), "open_clip").items()}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == expected
