"""`agomni run` of the video suites (v2a-vggsound, v2s-lrs2, v2song) on a tiny folder of generated audio:
end to end with the metrics that can run here, every other metric a skipped entry saying why or which
`agomni weights fetch` command makes it computable, per-metric unscored items in the coverage.

No weights are in the cache (AGOMNI_HOME is empty), so the scored runs use ``--random-weights``; DeSync
and IB-score use the one-block test networks (`tests.metrics.av_fixtures`), LSE the full SyncNet with
random weights and the Haar face detector.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from agomni.cli import main
from agomni.metrics.av import score as av_score
from agomni.results import read_results
from tests.eval_fixtures import write_clip
from tests.metrics.av_fixtures import tiny_scorer
from tests.metrics.talking_video import speech_like, syllable_envelope, talking_video_file


@pytest.fixture(autouse=True)
def empty_weights_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "agomni-home"))


def video_items(root: Path, task: str, seconds: dict[str, float], **fields: str) -> Path:
    """Talking-face videos (no audio track) with a generated speech-like WAV per item in root/gen, and
    the manifest root/items.jsonl."""
    (root / "videos").mkdir(parents=True)
    (root / "gen").mkdir()
    lines = []
    for seed, (item, length) in enumerate(seconds.items()):
        talking_video_file(root / "videos", f"{item}.mp4", length, 25, (192, 192), seed=seed, audio=False)
        envelope = syllable_envelope(length, seed=seed)
        sf.write(root / "gen" / f"{item}.wav", speech_like(envelope), 16000, subtype="PCM_16")
        lines.append(json.dumps({"id": item, "task": task, "video": f"videos/{item}.mp4", **fields}))
    manifest = root / "items.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def run(suite: str, root: Path, *extra: str) -> int:
    argv = ["run", suite, "--generator", f"folder:{root / 'gen'}", "--manifest", str(root / "items.jsonl")]
    return main([*argv, "--out", str(root / "run"), "--no-progress", "--format", "md,json", *extra])


def test_v2a_vggsound_runs_desync_and_ib_score(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(av_score, "build_scorer", tiny_scorer)
    video_items(tmp_path, "v2a", {"long": 8.0, "short": 2.0})
    assert run("v2a-vggsound", tmp_path, "--random-weights", "--metrics", "desync,ib_score") == 0
    results = read_results(tmp_path / "run" / "results.json")
    assert results.random_weights
    assert {m.name: (m.unit, m.n) for m in results.metrics} == {
        "desync": ("s", 1),
        "ib_score": ("cosine x100", 1),
    }
    assert set(results.item_scores) == {"long"}
    coverage = {c.id: c for c in results.coverage}
    assert coverage["long"].unscored == {}
    assert coverage["short"].status == "ok"
    assert coverage["short"].unscored["ib_score"] == "1 frames at 0.5 fps; IB-score over 8 s needs 4"
    assert "shorter than the 8 s DeSync needs" in coverage["short"].unscored["desync"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "RANDOM WEIGHTS" in report
    assert "- `short` ok, not scored by desync: shorter than the 8 s DeSync needs" in report
    context = json.loads((tmp_path / "run" / "run.json").read_text())
    assert context["random_weights"] is True and context["metrics_run"] == ["desync", "ib_score"]


def test_without_weights_every_video_suite_metric_is_skipped_with_its_fetch_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video_items(tmp_path, "v2s", {"a": 2.0}, transcript="hello there")
    # WER's default recogniser (pocketsphinx) needs no weights: Whisper, asked for, does
    assert run("v2s-lrs2", tmp_path, "--speech-backend", "whisper-large-v3") == 2
    err = capsys.readouterr().err
    assert "skipped metric lse_c: weights not in the cache: syncnet-v2, s3fd-face" in err
    assert "(run: agomni weights fetch syncnet-v2 && agomni weights fetch s3fd-face)" in err
    assert "skipped metric wer: weights not in the cache: whisper-large-v3" in err
    assert "suite v2s-lrs2: no metric can be computed here; see the skipped list above" in err


@pytest.mark.slow  # the full-size SyncNet with random weights on 110 five-frame windows (about 30 s)
def test_v2s_lrs2_runs_lse_and_lists_the_clip_too_short_for_a_face_track(tmp_path: Path) -> None:
    video_items(tmp_path, "v2s", {"talk": 4.6, "brief": 2.0}, transcript="hello there")
    assert run("v2s-lrs2", tmp_path, "--random-weights", "--metrics", "lse_c,lse_d") == 0
    results = read_results(tmp_path / "run" / "results.json")
    assert {m.name for m in results.metrics} == {"lse_c", "lse_d"}
    assert all(m.n == 1 for m in results.metrics)
    assert set(results.item_scores["talk"]) == {"lse_c", "lse_d"}
    brief = next(c for c in results.coverage if c.id == "brief")
    assert brief.status == "ok" and set(brief.unscored) == {"lse_c", "lse_d"}
    assert "not more than the minimum 100 detections (4.0 s at 25 fps)" in brief.unscored["lse_c"]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["coverage"]["run"]["unscored_counts"] == {"lse_c": 1, "lse_d": 1}


@pytest.mark.slow  # the full-size CLAP audio tower with random weights (about 40 s on 2 CPU cores)
def test_v2song_runs_the_available_metric_and_skips_the_rest(tmp_path: Path) -> None:
    video_items(tmp_path, "v2song", {"s0": 2.0, "s1": 2.0, "s2": 2.0}, lyrics="la la la")
    lines = []
    for seed, line in enumerate((tmp_path / "items.jsonl").read_text().splitlines()):
        item = json.loads(line)
        write_clip(tmp_path / "refs" / f"{item['id']}.wav", 20 + seed, seconds=2.0, base_hz=200)
        lines.append(json.dumps({**item, "reference_audio": f"refs/{item['id']}.wav"}))
    (tmp_path / "items.jsonl").write_text("\n".join(lines) + "\n")
    # the suite's speech metrics (per, audiobox_*, f0_stability) run through the speech stage, tested in
    # tests/metrics/test_speech_eval.py; here the set metrics and CLAP
    assert run("v2song", tmp_path, "--random-weights", "--metrics", "fd_clap_music,clap") == 0
    results = read_results(tmp_path / "run" / "results.json")
    assert [(m.name, m.unit, m.n) for m in results.metrics] == [("fd_clap_music", "FD", 3)]
    assert [c.status for c in results.coverage] == ["ok"] * 3
    skipped = {
        s["name"]: s for s in json.loads((tmp_path / "run" / "run.json").read_text())["metrics_skipped"]
    }
    assert set(skipped) == {"clap"}
    assert all(s["reason"].startswith("not available in this version: ") for s in skipped.values())
