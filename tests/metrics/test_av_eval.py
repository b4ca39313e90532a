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

from agomni.cli import main
from agomni.metrics.av import score as av_score
from agomni.results import read_results
from tests.metrics.av_fixtures import tiny_scorer
from tests.metrics.talking_video import speech_like, syllable_envelope, talking_video_file


def test_eval_scores_audio_against_manifest_videos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(av_score, "build_scorer", tiny_scorer)
    videos, pred = tmp_path / "videos", tmp_path / "pred"
    videos.mkdir()
    pred.mkdir()
    talking_video_file(videos, "long.mp4", 8.0, 25, (96, 128), seed=1, audio=False)
    talking_video_file(videos, "short.mp4", 2.0, 25, (96, 128), seed=2, audio=False)
    for name, seconds in (("long", 8.0), ("short", 2.0), ("text-only", 2.0)):
        sf.write(
            pred / f"{name}.wav", speech_like(syllable_envelope(seconds, seed=3)), 16000, subtype="PCM_16"
        )
    manifest = tmp_path / "items.jsonl"
    lines = [json.dumps({"id": n, "task": "v2a", "video": f"videos/{n}.mp4"}) for n in ("long", "short")]
    lines.append(json.dumps({"id": "text-only", "task": "t2a", "text": "rain on a tin roof"}))
    manifest.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    args = ["eval", "--no-progress", "--random-weights", "--manifest", str(manifest), "--pred", str(pred)]
    assert main([*args, "--metrics", "desync,ib_score", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    results = read_results(out / "results.json")
    coverage = {c.id: c for c in results.coverage}
    assert [(c.status, sorted(c.unscored)) for c in coverage.values()] == [
        ("ok", []),
        ("ok", ["desync", "ib_score"]),
        ("ok", ["desync", "ib_score"]),
    ]
    assert coverage["short"].unscored["ib_score"] == "1 frames at 0.5 fps; IB-score over 8 s needs 4"
    assert coverage["text-only"].unscored == {
        "desync": "the manifest gives no video",
        "ib_score": "the manifest gives no video",
    }
    assert set(results.item_scores) == {"long"}
    assert "desync: 2 ok item(s) not scored (short: shorter than the 8 s DeSync needs" in printed
    assert "text-only: the manifest gives no video); each listed under 'unscored'" in printed
    report = tmp_path / "report"
    assert main(["report", str(out), "--out", str(report), "--format", "md,html,json"]) == 0
    md = (report / "report.md").read_text()
    assert "ok 3, missing 0, error 0; not scored by desync 2, ib_score 2" in md
    assert "- `text-only` ok, not scored by ib_score: the manifest gives no video" in md
    assert (
        "<td>short</td><td>ok</td><td>ib_score</td><td>1 frames at 0.5 fps"
        in (report / "index.html").read_text()
    )
    in_json = json.loads((report / "report.json").read_text())["coverage"]["run"]
    assert in_json["unscored_counts"] == {"desync": 2, "ib_score": 2}
    assert {"id": "short", "metric": "desync", "reason": coverage["short"].unscored["desync"]} in in_json[
        "unscored"
    ]
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
        {"id": "short", "reason": "1 frames at 0.5 fps; IB-score over 8 s needs 4", "side": "video"},
        {"id": "text-only", "reason": "the manifest gives no video", "side": "video"},
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
