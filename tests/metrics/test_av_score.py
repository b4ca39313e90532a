"""The audio-visual scoring entry point: labels from metrics.json, per-item values, errors kept, scales."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agomni.errors import UsageError
from agomni.metrics.av.desync import DeSyncItem
from agomni.metrics.av.faces import HaarDetector
from agomni.metrics.av.ib_score import IBItem, IBScorer
from agomni.metrics.av.imagebind import ImageBindConfig, ImageBindTowers, TowerConfig
from agomni.metrics.av.lipsync import LipSyncItem, LipSyncScorer
from agomni.metrics.av.score import AVItem, build_scorer, config, outcomes, score_items
from agomni.metrics.item_outcomes import combine
from tests.metrics.talking_video import talking_video_file


def summarise(metric: str, items: list, labels: dict):
    """`metric`'s result over scored `items` as `agomni eval` files it."""
    return combine(metric, config(metric, labels), outcomes(metric, items))


def test_lse_c_and_lse_d_from_one_run() -> None:
    items = [
        LipSyncItem("a", lse_c=8.0, lse_d=6.0, offset_frames=1),
        LipSyncItem("b", lse_c=6.0, lse_d=7.0, offset_frames=0),
        LipSyncItem("c", error="no face found in any of the 50 frames"),
    ]
    lse_c = summarise("lse_c", items, {"detector": "s3fd"})
    lse_d = summarise("lse_d", items, {"detector": "s3fd"})
    assert (lse_c.value, lse_c.higher_is_better, lse_c.recipe) == (7.0, True, "syncnet")
    assert (lse_d.value, lse_d.higher_is_better, lse_d.unit) == (6.5, False, "SyncNet distance")
    assert lse_d.details["errors"] == [
        {"id": "c", "reason": "no face found in any of the 50 frames", "side": "generated"}
    ]
    assert lse_d.details["detector"] == "s3fd"


def test_desync_in_seconds_and_ib_score_scale_stated() -> None:
    desync = summarise("desync", [DeSyncItem("a", desync_s=0.4), DeSyncItem("b", desync_s=0.0)], {})
    assert (desync.value, desync.unit, desync.higher_is_better) == (pytest.approx(0.2), "s", False)
    ib = summarise(
        "ib_score", [IBItem("a", cosine=0.3322), IBItem("b", cosine=0.2), IBItem("c", error="x")], {}
    )
    assert ib.value == pytest.approx(26.61)
    assert ib.unit == "cosine x100" and "x100" in ib.details["scale"] and "x1" in ib.details["scale"]
    assert ib.details["per_item"] == {"a": pytest.approx(33.22), "b": pytest.approx(20.0)}


def test_build_scorer_checks_names_and_labels_random_weights() -> None:
    with pytest.raises(UsageError, match="unknown audio-visual metric"):
        build_scorer("lse")
    with pytest.raises(UsageError, match="unknown face detector"):
        build_scorer("lse_c", detector="yolo")
    scorer = build_scorer("lse_c", random_weights=True)
    assert isinstance(scorer, LipSyncScorer) and isinstance(scorer.detector, HaarDetector)
    assert scorer.config()["random_weights"] is True


@pytest.mark.slow
def test_decoding_in_worker_processes_gives_the_same_items(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tower = TowerConfig(dim=32, depth=1, heads=2, pre_norm=True, bias_kv=True)
    scorer = IBScorer(
        ImageBindTowers(ImageBindConfig(vision=tower, audio=tower, out_dim=16)), random_weights=True
    )
    good = talking_video_file(tmp_path, "good.mp4", 8.0, 25, (96, 128), seed=1)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(good.read_bytes()[:3000])
    items = [
        AVItem("a", good),
        AVItem("b", corrupt),
        AVItem("c", good, good),
        AVItem("d", tmp_path / "none.mp4"),
    ]
    inline = score_items(scorer, items, progress=False)
    pooled = score_items(scorer, items, workers=2, progress=False)
    assert [i.to_dict() for i in pooled] == [i.to_dict() for i in inline]
    assert [i.error is None for i in pooled] == [True, False, True, False]
