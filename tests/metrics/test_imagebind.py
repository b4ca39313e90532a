"""IB-score: ImageBind towers in the imagebind_huge.pth layout, the reference preprocessing by hand, and
per-item results or reasons on generated files.

The ``imagebind`` reference package cannot be compared here: PyPI's ``imagebind`` (0.0.1.dev0) is an
empty placeholder and the real package installs only from GitHub, which this project's CI cannot reach.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchaudio

from agomni.io.audio import load_audio
from agomni.io.video import load_video
from agomni.metrics.av.ib_score import (
    MEL_MEAN,
    MEL_STD,
    IBScorer,
    audio_clips,
    clip_times,
    crop_offsets,
    video_clips,
)
from agomni.metrics.av.imagebind import (
    IMAGEBIND_HUGE,
    ImageBindConfig,
    ImageBindTowers,
    TowerConfig,
    tower_state,
)
from tests.metrics.talking_video import talking_video_file


def _expected_layout() -> dict[str, tuple[int, ...]]:
    """imagebind_huge.pth's vision and audio tensors, written out from facebookresearch/ImageBind's source."""
    out: dict[str, tuple[int, ...]] = {
        "modality_preprocessors.vision.cls_token": (1, 1, 1280),
        "modality_preprocessors.vision.rgbt_stem.proj.1.weight": (1280, 3, 2, 14, 14),
        "modality_preprocessors.vision.pos_embedding_helper.pos_embed": (1, 257, 1280),
        "modality_preprocessors.audio.cls_token": (1, 1, 768),
        "modality_preprocessors.audio.rgbt_stem.proj.weight": (768, 1, 16, 16),
        "modality_preprocessors.audio.rgbt_stem.norm_layer.weight": (768,),
        "modality_preprocessors.audio.rgbt_stem.norm_layer.bias": (768,),
        "modality_preprocessors.audio.pos_embedding_helper.pos_embed": (1, 229, 768),
        "modality_trunks.vision.pre_transformer_layer.0.weight": (1280,),
        "modality_trunks.vision.pre_transformer_layer.0.bias": (1280,),
    }
    for tower, dim, depth in (("vision", 1280, 32), ("audio", 768, 12)):
        for i in range(depth):
            p = f"modality_trunks.{tower}.blocks.{i}."
            out |= {p + "attn.in_proj_weight": (3 * dim, dim), p + "attn.in_proj_bias": (3 * dim,)}
            out |= {p + "attn.out_proj.weight": (dim, dim), p + "attn.out_proj.bias": (dim,)}
            if tower == "audio":
                out |= {p + "attn.bias_k": (1, 1, dim), p + "attn.bias_v": (1, 1, dim)}
            for norm in ("norm_1", "norm_2"):
                out |= {p + f"{norm}.weight": (dim,), p + f"{norm}.bias": (dim,)}
            out |= {p + "mlp.fc1.weight": (4 * dim, dim), p + "mlp.fc1.bias": (4 * dim,)}
            out |= {p + "mlp.fc2.weight": (dim, 4 * dim), p + "mlp.fc2.bias": (dim,)}
        h = f"modality_heads.{tower}."
        out |= {h + "0.weight": (dim,), h + "0.bias": (dim,), h + "2.weight": (1024, dim)}
    return out


def test_layout_is_imagebind_huge() -> None:
    with torch.device("meta"):
        towers = ImageBindTowers(IMAGEBIND_HUGE)
    assert {k: tuple(v.shape) for k, v in towers.state_dict().items()} == _expected_layout()


def test_tower_state_drops_the_other_modalities() -> None:
    state = {
        "modality_trunks.vision.blocks.0.norm_1.weight": torch.ones(1),
        "modality_trunks.audio.blocks.0.norm_1.weight": torch.ones(1),
        "modality_trunks.text.blocks.0.norm_1.weight": torch.ones(1),
        "modality_preprocessors.imu.cls_token": torch.ones(1),
        "modality_postprocessors.audio.1.log_logit_scale": torch.ones(()),
        "modality_heads.depth.2.weight": torch.ones(1),
    }
    assert sorted(tower_state(state)) == [
        "modality_trunks.audio.blocks.0.norm_1.weight",
        "modality_trunks.vision.blocks.0.norm_1.weight",
    ]


def test_clip_times_by_hand() -> None:
    assert clip_times(8.0) == [(0, 2), (3, 5), (6, 8)]
    assert clip_times(10.0) == [(0, 2), (4, 6), (8, 10)]
    assert clip_times(5.0) == [(0, 2), (Fraction(3, 2), Fraction(7, 2)), (3, 5)]
    assert clip_times(1.5) == [(0, 2), (0, 2), (0, 2)]  # shorter than a clip: three clips from 0


def test_audio_clips_by_hand() -> None:
    t = torch.arange(128000) / 16000
    waveform = (0.2 * torch.sin(2 * torch.pi * 300 * t) + 0.05)[None]
    mels = audio_clips(waveform)
    assert mels.shape == (3, 1, 128, 204)
    second = waveform[:, 48000:80000]  # clip 2: 3 s .. 5 s
    fbank = torchaudio.compliance.kaldi.fbank(
        second - second.mean(),
        htk_compat=True,
        sample_frequency=16000,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=128,
        dither=0.0,
        frame_length=25,
        frame_shift=10,
    ).T  # (128, 198): 1 + (32000 - 400) // 160 frames
    torch.testing.assert_close(mels[1, 0, :, :198], (fbank - MEL_MEAN) / MEL_STD)
    torch.testing.assert_close(mels[1, 0, :, 198:], torch.full((128, 6), -MEL_MEAN / MEL_STD))


def test_crop_offsets_by_hand() -> None:
    assert crop_offsets(224, 398) == [(0, 0), (0, 87), (0, 174)]  # ceil(174 / 2) = 87
    assert crop_offsets(399, 224) == [(0, 0), (88, 0), (175, 0)]  # ceil(175 / 2) = 88
    assert crop_offsets(224, 224) == [(0, 0), (0, 0), (0, 0)]


def test_video_clips_pairs_frames_per_crop() -> None:
    frames = torch.randint(0, 256, (4, 3, 224, 300), dtype=torch.uint8)
    clips = video_clips(frames)
    assert clips.shape == (9, 3, 2, 224, 224)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073])[:, None, None]
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711])[:, None, None]
    normalised = (frames.float() / 255 - mean) / std
    # clip 4 = frame pair (1, 2), crop 1 (centre: columns 38 .. 261)
    torch.testing.assert_close(clips[4, :, 0], normalised[1, :, :, 38:262])
    torch.testing.assert_close(clips[4, :, 1], normalised[2, :, :, 38:262])
    torch.testing.assert_close(clips[8, :, 1], normalised[3, :, :, 76:300])


TINY = ImageBindConfig(
    vision=TowerConfig(dim=32, depth=1, heads=2, pre_norm=True, bias_kv=False),
    audio=TowerConfig(dim=32, depth=2, heads=2, pre_norm=False, bias_kv=True),
    out_dim=16,
)


@pytest.fixture(scope="module")
def tiny_scorer() -> IBScorer:
    torch.manual_seed(0)
    towers = ImageBindTowers(TINY)
    with torch.no_grad():
        for name, value in towers.named_parameters():
            if "token" in name or "pos_embed" in name or "bias_" in name:
                value.normal_(0, 1)
    return IBScorer(towers, random_weights=True)


@torch.no_grad()
def test_clip_mean_of_normalised_outputs(tiny_scorer: IBScorer) -> None:
    clips = torch.randn(1, 3, 3, 2, 224, 224)
    together = tiny_scorer.towers.embed_vision(clips)
    one_by_one = torch.stack([tiny_scorer.towers.embed_vision(clips[:, k : k + 1]) for k in range(3)])
    torch.testing.assert_close(together, one_by_one.mean(dim=0))
    torch.testing.assert_close(one_by_one.norm(dim=-1), torch.ones(3, 1))
    mels = torch.randn(1, 2, 1, 128, 204)
    assert float(tiny_scorer.towers.embed_audio(mels[:, :1]).norm()) == pytest.approx(20.0, rel=1e-5)


def _video(
    folder: Path, name: str, seconds: float, fps: float, size: tuple[int, int], audio: bool = True
) -> Path:
    return talking_video_file(folder, name, seconds, fps, size, seed=8, audio=audio)


@pytest.mark.slow
def test_tiny_towers_score_files_or_report_why_not(tiny_scorer: IBScorer, tmp_path: Path) -> None:
    path = _video(tmp_path, "ok.mp4", 8.0, 25, (96, 128))
    ok = tiny_scorer.score(path, "ok")
    assert ok.error is None, ok.error
    assert ok.video_clips == 9 and ok.audio_clips == 3 and -1.0 <= ok.cosine <= 1.0
    assert any("random weights" in n for n in ok.notes)
    other = tiny_scorer.score(_video(tmp_path, "other.mp4", 8.0, 30, (180, 100)), "portrait-30fps")
    assert other.error is None and other.cosine != pytest.approx(ok.cosine)
    short = tiny_scorer.score(_video(tmp_path, "short.mp4", 2.0, 25, (96, 128)), "short")
    assert short.error == "1 frames at 0.5 fps; IB-score over 8 s needs 4"
    mute = tiny_scorer.score(_video(tmp_path, "mute.mp4", 8.0, 25, (96, 128), audio=False), "mute")
    assert mute.error is not None and "audio" in mute.error
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(path.read_bytes()[:2000])
    broken = tiny_scorer.score(corrupt, "broken")
    assert broken.error is not None and "corrupt.mp4" in broken.error
    # the item's cosine is the cosine of the two embeddings
    frames, _ = load_video(path, fps=0.5, size=224)
    waveform, _ = load_audio(path, sample_rate=16000, downmix="first", resampler="torchaudio-sinc-functional")
    vision, sound = tiny_scorer.embed(frames[:4], waveform)
    assert ok.cosine == pytest.approx(float(F.cosine_similarity(vision, sound, dim=0)), abs=1e-6)
