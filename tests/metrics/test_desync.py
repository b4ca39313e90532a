"""DeSync: Synchformer's audio branch equal to transformers' ASTModel, the official state-dict layout,
the reference preprocessing and windowing, and offset decoding, against hand-computed expectations."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio

from agomni.metrics.av.desync import (
    MEL_MEAN,
    MEL_STD,
    OFFSET_GRID,
    DeSyncScorer,
    audio_segments,
    log_mel_segments,
    window_offsets,
)
from agomni.metrics.av.synchformer_offsets import AstTrunk, AudioTrunkConfig, SyncHeadConfig, Synchformer
from agomni.model.encoders.synchformer import MotionFormerConfig
from tests.metrics.talking_video import talking_video_file

transformers = pytest.importorskip("transformers")

TINY_VIDEO = MotionFormerConfig(embed_dim=32, depth=1, heads=2)
TINY_AUDIO = AudioTrunkConfig(dim=32, depth=1, heads=2, mlp=64)
TINY_HEAD = SyncHeadConfig(layers=1, heads=2)


def _tiny_ast_config() -> transformers.ASTConfig:
    return transformers.ASTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_length=66
    )


# transformers 5 renamed the AST block's tensors; the checkpoint keeps the transformers 4 names that
# av-benchmark's vendored ``hf_src/modeling_ast.py`` uses (encoder.layer.<i>.attention.attention.query ...).
_HF5_TO_CHECKPOINT = {
    "attention.q_proj": "attention.attention.query",
    "attention.k_proj": "attention.attention.key",
    "attention.v_proj": "attention.attention.value",
    "attention.o_proj": "attention.output.dense",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}


def checkpoint_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, value in state.items():
        if key.startswith("layers."):
            key = "encoder.layer." + key.removeprefix("layers.")
            for new, old in _HF5_TO_CHECKPOINT.items():
                key = key.replace(new, old)
        renamed[key] = value
    return renamed


def test_audio_trunk_equals_transformers_ast() -> None:
    torch.manual_seed(0)
    reference = transformers.ASTModel(_tiny_ast_config()).eval()
    with torch.no_grad():  # non-zero tokens and positions (HF initialises some to zero)
        for name, value in reference.named_parameters():
            if "token" in name or "position" in name:
                value.normal_(0, 0.5)
    ours = AstTrunk(AudioTrunkConfig(dim=32, depth=2, heads=2, mlp=64)).eval()
    ours.load_state_dict(checkpoint_names(reference.state_dict()), strict=True)
    spectrogram = torch.randn(3, 66, 128)
    with torch.no_grad():
        expected = reference(spectrogram).last_hidden_state
        got = ours(spectrogram)
    assert got.shape == (3, 74, 32)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_state_dict_layout_is_the_published_one() -> None:
    with torch.device("meta"):
        model = Synchformer()
        reference_ast = transformers.ASTModel(transformers.ASTConfig(max_length=66))
    state = model.state_dict()
    ast = {k.removeprefix("afeat_extractor.ast."): v.shape for k, v in state.items() if ".ast." in k}
    assert ast == {k: v.shape for k, v in checkpoint_names(reference_ast.state_dict()).items()}
    assert ast["embeddings.position_embeddings"] == (1, 74, 768)  # 12 x 6 patches + 2 (patched to 66 frames)
    head = {
        k.removeprefix("transformer."): tuple(v.shape)
        for k, v in state.items()
        if k.startswith("transformer.")
    }
    expected = {"OFF_tok": (1, 1, 768), "MOD_tok": (1, 1, 768), "pos_emb_cfg.pos_emb": (1, 198, 768)}
    for norm in ("vis_in_lnorm", "aud_in_lnorm", "ln_f"):
        expected |= {f"{norm}.weight": (768,), f"{norm}.bias": (768,)}
    for i in range(3):
        for part in ("key", "query", "value", "proj"):
            expected |= {f"blocks.{i}.attn.{part}.weight": (768, 768), f"blocks.{i}.attn.{part}.bias": (768,)}
        for norm in ("ln1", "ln2"):
            expected |= {f"blocks.{i}.{norm}.weight": (768,), f"blocks.{i}.{norm}.bias": (768,)}
        expected |= {f"blocks.{i}.mlp.0.weight": (3072, 768), f"blocks.{i}.mlp.0.bias": (3072,)}
        expected |= {f"blocks.{i}.mlp.2.weight": (768, 3072), f"blocks.{i}.mlp.2.bias": (768,)}
    expected |= {"off_head.weight": (21, 768), "off_head.bias": (21,)}
    assert head == expected
    aggregator = {k for k in state if k.startswith("afeat_extractor.freq_attn_agg.")}
    assert "afeat_extractor.freq_attn_agg.cls_token" in aggregator
    assert "afeat_extractor.freq_attn_agg.self_attn.in_proj_weight" in aggregator
    assert {k.split(".")[0] for k in state} == {
        "vfeat_extractor",
        "afeat_extractor",
        "vproj",
        "aproj",
        "transformer",
    }
    assert state["vproj.weight"].shape == state["aproj.weight"].shape == (768, 768)


def test_audio_segments_of_8_seconds() -> None:
    waveform = torch.arange(128000, dtype=torch.float32)[None]
    segments = audio_segments(waveform)
    assert segments.shape == (1, 24, 10240)  # (128000 - 10240) // 5120 + 1
    assert segments[0, 0, 0] == 0 and segments[0, 1, 0] == 5120 and segments[0, 23, -1] == 127999


def test_log_mel_by_hand() -> None:
    t = torch.arange(10240) / 16000
    segment = (0.3 * torch.sin(2 * torch.pi * 440 * t))[None, None]
    mel = log_mel_segments(segment)
    assert mel.shape == (1, 1, 66, 128)
    # frame 65 is padding: log-mel 0 -> (0 - mean) / (2 std)
    torch.testing.assert_close(mel[0, 0, 65], torch.full((128,), -MEL_MEAN / (2 * MEL_STD)))
    # frame 10 by hand: Hann(400) centred in 1024, |rfft|^2, HTK mel filters 0-8 kHz, log(x + 1e-6)
    x = segment[0, 0].double().numpy()
    start = 10 * 160 - 512 + 312  # centred frames start at hop * k - n_fft / 2; the window sits at 312..711
    window = np.sin(np.pi * np.arange(400) / 400) ** 2  # torch.hann_window(400), periodic
    power = np.abs(np.fft.rfft(x[start : start + 400] * window, 1024)) ** 2
    filters = torchaudio.functional.melscale_fbanks(513, 0.0, 8000.0, 128, 16000).double().numpy()
    expected = (np.log(power @ filters + 1e-6) - MEL_MEAN) / (2 * MEL_STD)
    np.testing.assert_allclose(mel[0, 0, 10].double().numpy(), expected, rtol=1e-3, atol=1e-3)


class PlantedHead:
    """Stands in for Synchformer's offset head: returns logits peaking at a class chosen per window,
    identified by the first visual feature value (the segment index planted below)."""

    head_config = SyncHeadConfig()

    def __init__(self, classes: dict[int, int]):
        self.classes = classes
        self.windows: list[tuple[list[int], list[int]]] = []

    def offset_logits(self, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(visual.shape[0], 21)
        for row in range(visual.shape[0]):  # each row is one window (the scorer batches windows)
            self.windows.append((visual[row, :, 0, 0].long().tolist(), audio[row, :, 0, 0].long().tolist()))
            logits[row, self.classes[int(visual[row, 0, 0, 0])]] = 5.0
        return logits


def test_windows_and_offset_decoding_by_hand() -> None:
    visual = torch.arange(24.0)[None, :, None, None].expand(1, 24, 8, 4)
    audio = torch.arange(24.0)[None, :, None, None].expand(1, 24, 6, 4)
    head = PlantedHead({0: 13, 10: 3})  # first window -> class 13, last window (starts at segment 10) -> 3
    offsets = window_offsets(head, visual, audio)
    assert head.windows[0] == (list(range(14)), list(range(14)))  # segments 0-13: 0 .. 4.8 s
    assert head.windows[1] == (list(range(10, 24)), list(range(10, 24)))  # segments 10-23: 3.2 .. 8 s
    torch.testing.assert_close(offsets, torch.tensor([[0.6, -1.4]]))  # -2 + 0.2 k
    assert float(offsets.abs().mean()) == pytest.approx(1.0)
    assert OFFSET_GRID.shape == (21,) and float(OFFSET_GRID[10]) == 0.0


@pytest.fixture(scope="module")
def tiny_scorer() -> DeSyncScorer:
    torch.manual_seed(0)
    model = Synchformer(TINY_VIDEO, TINY_AUDIO, TINY_HEAD)
    with torch.no_grad():
        for name, value in model.named_parameters():
            if "token" in name or "pos" in name or "tok" in name:
                value.normal_(0, 1)
    return DeSyncScorer(model, random_weights=True)


def _video(
    folder: Path, name: str, seconds: float, fps: float, size: tuple[int, int], audio: bool = True
) -> Path:
    return talking_video_file(folder, name, seconds, fps, size, seed=4, audio=audio)


@pytest.mark.slow
def test_tiny_synchformer_scores_files_or_reports_why_not(tiny_scorer: DeSyncScorer, tmp_path: Path) -> None:
    ok = tiny_scorer.score(_video(tmp_path, "ok.mp4", 8.0, 25, (96, 128)), "ok")
    assert ok.error is None, ok.error
    assert all(round(v * 10) / 10 == pytest.approx(v) and -2 <= v <= 2 for v in ok.offsets_s)
    assert ok.desync_s == pytest.approx((abs(ok.offsets_s[0]) + abs(ok.offsets_s[1])) / 2)
    assert any("random weights" in n for n in ok.notes)

    at30 = tiny_scorer.score(_video(tmp_path, "30fps.mp4", 8.0, 30, (96, 128)), "30fps")
    assert at30.error is None and at30.source_fps == 30

    portrait = tiny_scorer.score(_video(tmp_path, "portrait.mp4", 8.0, 25, (192, 108)), "portrait")
    assert portrait.error is None

    short = tiny_scorer.score(_video(tmp_path, "short.mp4", 2.0, 25, (96, 128)), "short")
    assert short.error is not None and "shorter than the 8 s DeSync needs: 50 frames" in short.error

    silent_film = tiny_scorer.score(_video(tmp_path, "mute.mp4", 8.0, 25, (96, 128), audio=False), "mute")
    assert silent_film.error is not None and "audio" in silent_film.error

    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    broken = tiny_scorer.score(corrupt, "broken")
    assert broken.error is not None and "corrupt.mp4" in broken.error


def test_visual_branch_is_the_model_stream(tiny_scorer: DeSyncScorer) -> None:
    """The visual features are the reference model's Synchformer stream, reshaped per segment."""
    frames = torch.randint(0, 256, (200, 3, 224, 298), dtype=torch.uint8)
    waveform = torch.randn(128000) * 0.1
    visual, audio = tiny_scorer.features(frames, waveform)
    stream = tiny_scorer.video.encode_sync(frames[None].float() / 255.0, 25, tiny_scorer.sequence)
    assert visual.shape == (1, 24, 8, 32) and audio.shape == (1, 24, 6, 32)
    torch.testing.assert_close(visual.flatten(1, 2), stream)
    assert types.SimpleNamespace(**tiny_scorer.config()).duration_s == 8.0
