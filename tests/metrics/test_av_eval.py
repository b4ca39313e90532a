"""`agomni eval` with the audio-visual metrics: generated audio judged against each manifest item's video;
per-item values, item errors with their reasons, set values labelled, random weights stated.

The scorers are the tiny random-weight DeSync and IB-score networks (the full-size ones take minutes per
clip on a CPU); `build_scorer` is replaced for that, the rest of the path is the product's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from agomni.cli import main
from agomni.metrics.av import score as av_score
from agomni.metrics.av.desync import DeSyncScorer
from agomni.metrics.av.ib_score import IBScorer
from agomni.metrics.av.imagebind import ImageBindConfig, ImageBindTowers, TowerConfig
from agomni.metrics.av.synchformer_offsets import AudioTrunkConfig, SyncHeadConfig, Synchformer
from agomni.model.encoders.synchformer import MotionFormerConfig
from agomni.results import read_results
from tests.metrics.talking_video import speech_like, syllable_envelope, talking_video_file


def tiny_scorer(metric: str, *, random_weights: bool, seed: int, device: str) -> DeSyncScorer | IBScorer:
    assert random_weights
    torch.manual_seed(seed)
    if metric == "desync":
        model = Synchformer(
            MotionFormerConfig(embed_dim=32, depth=1, heads=2),
            AudioTrunkConfig(dim=32, depth=1, heads=2, mlp=64),
            SyncHeadConfig(layers=1, heads=2),
        )
        return DeSyncScorer(model, random_weights=True, device=device)
    tower = TowerConfig(dim=32, depth=1, heads=2, pre_norm=True, bias_kv=True)
    return IBScorer(
        ImageBindTowers(ImageBindConfig(vision=tower, audio=tower, out_dim=16)), random_weights=True
    )


@pytest.mark.slow
def test_eval_scores_audio_against_manifest_videos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(av_score, "build_scorer", tiny_scorer)
    videos, pred = tmp_path / "videos", tmp_path / "pred"
    videos.mkdir()
    pred.mkdir()
    talking_video_file(videos, "long.mp4", 8.0, 25, (96, 128), seed=1, audio=False)
    talking_video_file(videos, "short.mp4", 2.0, 25, (96, 128), seed=2, audio=False)
    for name, seconds in (("long", 8.0), ("short", 2.0)):
        sf.write(
            pred / f"{name}.wav", speech_like(syllable_envelope(seconds, seed=3)), 16000, subtype="PCM_16"
        )
    manifest = tmp_path / "items.jsonl"
    lines = [json.dumps({"id": n, "task": "v2a", "video": f"videos/{n}.mp4"}) for n in ("long", "short")]
    manifest.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    args = ["eval", "--no-progress", "--random-weights", "--manifest", str(manifest), "--pred", str(pred)]
    assert main([*args, "--metrics", "desync,ib_score", "--out", str(out)]) == 0
    results = read_results(out / "results.json")
    by_name = {m.name: m for m in results.metrics}
    assert set(by_name) == {"desync", "ib_score"}
    desync, ib = by_name["desync"], by_name["ib_score"]
    assert (desync.unit, desync.higher_is_better, desync.n) == ("s", False, 1)
    assert (ib.unit, ib.higher_is_better, ib.n) == ("cosine x100", True, 1)
    assert results.item_scores["long"]["desync"] == pytest.approx(desync.value)
    assert results.item_scores["long"]["ib_score"] == pytest.approx(ib.value)
    assert -100 <= ib.value <= 100 and round(desync.value * 10) == pytest.approx(desync.value * 10)
    details = results.provenance.preprocessing["metrics"]
    assert details["desync"]["errors"][0]["id"] == "short"
    assert "shorter than the 8 s DeSync needs" in details["desync"]["errors"][0]["reason"]
    assert details["ib_score"]["errors"] == [
        {"id": "short", "reason": "1 frames at 0.5 fps; IB-score over 8 s needs 4"}
    ]
    assert "x100" in details["ib_score"]["scale"]
    assert details["desync"]["random_weights"] is True
    assert results.provenance.random_weights is True
    assert np.isfinite(desync.value)


def test_audio_visual_metrics_need_a_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pred = tmp_path / "pred"
    pred.mkdir()
    sf.write(pred / "a.wav", np.zeros(1600), 16000, subtype="PCM_16")
    code = main(["eval", "--no-progress", "--random-weights", "--pred", str(pred), "--metrics", "lse_c"])
    assert code == 2
    assert "pass --manifest (items with a 'video' field)" in capsys.readouterr().err
