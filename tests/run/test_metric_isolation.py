"""Every run ends in results and a report: a metric that cannot be computed becomes a "not computed" entry
(kind, side, per-reason counts, first items, what to do) and every other metric is still computed, written
and reported; exit status 4 says so, ``--strict`` keeps the fail-fast.

The cases a new user meets with a small VGGSound-layout folder (the importer's ``vggsound.csv`` +
``video/<id>_<start>.mp4``, 2-second clips): videos without an audio track (no reference audio), fewer
items than IS has splits, clips shorter than IB-score's and DeSync's 8 s windows. Networks have seeded
random weights (PANNs) or are the one-block test networks (Synchformer, ImageBind:
`tests.metrics.av_fixtures`), so the numbers test the plumbing only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from agomni.cli import main
from agomni.errors import EXIT_NOT_COMPUTED
from agomni.metrics import frechet
from agomni.metrics.av import score as av_score
from agomni.metrics.av.desync import DeSyncScorer
from agomni.metrics.av.ib_score import IBScorer
from agomni.metrics.embedders.vggish import VGGishEmbedder
from agomni.results import read_results
from tests.media_fixtures import make_video_file
from tests.metrics.av_fixtures import tiny_scorer
from tests.run.toy_fixtures import no_video_manifest

SECONDS = 2.0
RATE = 16000


@pytest.fixture(autouse=True)
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "agomni-home"))
    monkeypatch.setattr(av_score, "build_scorer", tiny_scorer)


def _tone(i: int, shift: float = 0.0) -> np.ndarray:
    t = np.arange(int(SECONDS * RATE)) / RATE
    noise = np.random.default_rng(i).standard_normal(t.size)
    return (0.3 * np.sin(2 * np.pi * (220 + 40 * i + shift) * t) + 0.05 * noise).astype(np.float32)


def vggsound_root(root: Path, n: int, *, audio_track: bool) -> tuple[Path, Path]:
    """A data root in the VGGSound layout with `n` 2-second test clips (with or without their audio
    track), and a folder of generated audio named by item id."""
    data, gen = root / "data", root / "gen"
    (data / "video").mkdir(parents=True)
    gen.mkdir()
    rows = []
    for i in range(n):
        ytid, start = f"clip{i:02d}", 10 + i
        item = f"{ytid}_{start:06d}"
        rows.append(f"{ytid},{start},dog barking,test")
        audio = _tone(i, shift=5.0)[None] if audio_track else None
        colours = [((37 * i + 8 * k) % 256, 90, (200 - 3 * k) % 256) for k in range(int(SECONDS * 10))]
        make_video_file(data / "video" / f"{item}.mp4", colours, fps=10, audio=audio, audio_rate=RATE)
        sf.write(gen / f"{item}.wav", _tone(i), RATE, subtype="PCM_24")
    (data / "vggsound.csv").write_text("\n".join(rows) + "\n")
    return data, gen


def run(root: Path, data: Path, gen: Path, metrics: str, out: str = "run", *extra: str) -> int:
    return main(
        [
            "run",
            "v2a-vggsound",
            "--generator",
            f"folder:{gen}",
            "--data-root",
            str(data),
            "--random-weights",
            "--metrics",
            metrics,
            "--out",
            str(root / out),
            "--no-progress",
            "--format",
            "md,html,json",
            *extra,
        ]
    )


@pytest.mark.slow
def test_short_clips_give_fd_kl_is_and_explain_ib_score_and_desync(tmp_path: Path) -> None:
    data, gen = vggsound_root(tmp_path, 12, audio_track=True)
    status = run(tmp_path, data, gen, "fd_panns,kl_panns,is_panns,ib_score,desync")
    assert status == EXIT_NOT_COMPUTED
    results = read_results(tmp_path / "run" / "results.json")
    assert {m.name: m.n for m in results.metrics} == {"fd_panns": 12, "kl_panns": 12, "is_panns": 12}
    missing = {n.name: n for n in results.not_computed}
    assert set(missing) == {"ib_score", "desync"}
    ib = missing["ib_score"]
    assert (ib.kind, ib.side) == ("no-items", "video")
    assert ib.counts == {"1 frames at 0.5 fps; IB-score over 8 s needs 4": 12}
    assert ib.items == tuple(f"clip{i:02d}_{10 + i:06d}" for i in range(5))
    assert "as long as the metric needs" in ib.hint
    assert (missing["desync"].kind, missing["desync"].side) == ("no-items", "video")
    assert sum(missing["desync"].counts.values()) == 12

    # the computed metrics equal their values when each runs alone
    for name in ("fd_panns", "kl_panns", "is_panns"):
        assert run(tmp_path, data, gen, name, f"alone-{name}") == 0
        alone = read_results(tmp_path / f"alone-{name}" / "results.json")
        assert alone.not_computed == ()
        assert next(m.value for m in results.metrics if m.name == name) == pytest.approx(
            alone.metrics[0].value, rel=1e-12
        )

    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Not computed" in report
    assert "| run | ib_score | no-items: none of 12 item(s) could be scored (video side) | video |" in report
    assert "12: 1 frames at 0.5 fps; IB-score over 8 s needs 4" in report
    html = (tmp_path / "run" / "index.html").read_text()
    assert "<h2>Not computed</h2>" in html
    listed = json.loads((tmp_path / "run" / "report.json").read_text())["not_computed"]
    assert {x["name"] for x in listed} == {"ib_score", "desync"}


def test_fewer_items_than_is_splits_keeps_fd_and_kl(tmp_path: Path) -> None:
    data, gen = vggsound_root(tmp_path, 6, audio_track=True)
    assert run(tmp_path, data, gen, "fd_panns,kl_panns,is_panns") == EXIT_NOT_COMPUTED
    results = read_results(tmp_path / "run" / "results.json")
    assert [m.name for m in results.metrics] == ["fd_panns", "kl_panns"]
    (entry,) = results.not_computed
    assert (entry.name, entry.kind, entry.side) == ("is_panns", "too-few-items", "generated")
    assert "needs at least 10 generated items, got 6" in entry.reason
    assert "av-benchmark's compute_isc returns NaN" in entry.reason
    # --strict: today's fail-fast, no results
    assert run(tmp_path, data, gen, "fd_panns,kl_panns,is_panns", "strict", "--strict") == 2
    assert not (tmp_path / "strict" / "results.json").exists()


@pytest.mark.slow
def test_videos_without_audio_track_explain_the_reference_side(tmp_path: Path) -> None:
    data, gen = vggsound_root(tmp_path, 12, audio_track=False)
    assert run(tmp_path, data, gen, "fd_panns,kl_panns,ib_score") == EXIT_NOT_COMPUTED
    results = read_results(tmp_path / "run" / "results.json")
    assert results.metrics == ()
    missing = {n.name: n for n in results.not_computed}
    for name in ("fd_panns", "kl_panns"):
        assert (missing[name].kind, missing[name].side) == ("no-items", "reference")
        assert sum(missing[name].counts.values()) == 12
        assert "reference audio" in missing[name].hint
    assert (missing["ib_score"].kind, missing["ib_score"].side) == ("no-items", "generated")
    assert (tmp_path / "run" / "report.md").is_file()


def test_a_network_failing_inside_its_stage_leaves_the_others(tmp_path: Path, monkeypatch) -> None:
    data, gen = vggsound_root(tmp_path, 3, audio_track=True)

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(frechet, "frechet_distance", broken)
    assert run(tmp_path, data, gen, "fd_panns,kl_panns") == EXIT_NOT_COMPUTED
    results = read_results(tmp_path / "run" / "results.json")
    assert [m.name for m in results.metrics] == ["kl_panns"]
    (entry,) = results.not_computed
    assert (entry.name, entry.kind) == ("fd_panns", "exception")
    assert entry.reason == "RuntimeError: CUDA error: an illegal memory access was encountered"


def test_a_network_raising_while_embedding_leaves_the_other_networks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data, gen = vggsound_root(tmp_path, 3, audio_track=True)

    def raising(self, batch):
        raise RuntimeError("out of memory while embedding")

    monkeypatch.setattr(VGGishEmbedder, "outputs", raising)
    assert run(tmp_path, data, gen, "fd_vggish,kl_panns") == EXIT_NOT_COMPUTED
    results = read_results(tmp_path / "run" / "results.json")
    assert [m.name for m in results.metrics] == ["kl_panns"]
    (entry,) = results.not_computed
    assert (entry.name, entry.kind, entry.reason) == (
        "fd_vggish",
        "exception",
        "RuntimeError: out of memory while embedding",
    )
    assert capsys.readouterr().err.count("Traceback") == 1


def test_eval_lists_a_network_whose_weights_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGOMNI_OFFLINE", "1")
    _, gen = vggsound_root(tmp_path, 3, audio_track=True)
    ref = tmp_path / "ref"
    ref.mkdir()
    for i, path in enumerate(sorted(gen.glob("*.wav"))):
        sf.write(ref / path.name, _tone(i, shift=9.0), RATE)
    argv = ["eval", "--pred", str(gen), "--ref", str(ref), "--metrics", "fd_offline,fd_vggish"]
    status = main([*argv, "--profile", "agomni-offline", "--out", str(tmp_path / "ev"), "--no-progress"])
    assert status == EXIT_NOT_COMPUTED
    results = read_results(tmp_path / "ev" / "results.json")
    assert [m.name for m in results.metrics] == ["fd_offline"]
    (entry,) = results.not_computed
    assert (entry.name, entry.kind) == ("fd_vggish", "weights")
    assert "offline mode" in entry.reason
    out = capsys.readouterr().out
    assert "fd_vggish: NOT COMPUTED (weights)" in out
    # alone, fd_offline gives the same number
    assert main([*argv[:-1], "fd_offline", "--out", str(tmp_path / "alone"), "--no-progress"]) == 0
    alone = read_results(tmp_path / "alone" / "results.json").metrics[0].value
    assert results.metrics[0].value == pytest.approx(alone, rel=1e-12)


def test_a_killed_run_keeps_finished_stage_metrics_and_the_rerun_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ib_score finishes, then the run is interrupted inside DeSync; the rerun reads ib_score back (no
    ImageBind call) and computes only DeSync, with the same ib_score as a fresh run."""
    monkeypatch.setattr(f"{__name__}.SECONDS", 8.0)
    data, gen = vggsound_root(tmp_path, 2, audio_track=True)
    calls = {"ib": 0}
    ib_pair = IBScorer.score_pair

    def counted(self, item, pair):
        calls["ib"] += 1
        return ib_pair(self, item, pair)

    def killed(self, item, pair):
        raise KeyboardInterrupt

    monkeypatch.setattr(IBScorer, "score_pair", counted)
    monkeypatch.setattr(DeSyncScorer, "score_pair", killed)
    assert run(tmp_path, data, gen, "ib_score,desync") == 130  # Ctrl-C
    assert calls["ib"] == 2 and not (tmp_path / "run" / "results.json").exists()
    monkeypatch.undo()
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "agomni-home"))
    monkeypatch.setattr(av_score, "build_scorer", tiny_scorer)
    monkeypatch.setattr(IBScorer, "score_pair", counted)
    capsys.readouterr()
    assert run(tmp_path, data, gen, "ib_score,desync") == 0
    assert calls["ib"] == 2  # read back, not recomputed
    assert "ib_score: read from the stage cache" in capsys.readouterr().err
    resumed = read_results(tmp_path / "run" / "results.json")
    assert resumed.provenance.preprocessing["cache"]["stage_hits"] == ["ib_score"]
    assert run(tmp_path, data, gen, "ib_score", "fresh") == 0
    fresh = read_results(tmp_path / "fresh" / "results.json")
    assert calls["ib"] == 4
    assert resumed.metrics[0].value == fresh.metrics[0].value
    assert {i: s["ib_score"] for i, s in resumed.item_scores.items()} == {
        i: s["ib_score"] for i, s in fresh.item_scores.items()
    }
    assert [m.name for m in resumed.metrics] == ["ib_score", "desync"]


def test_videos_without_frames_and_a_stage_raising(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Videos whose stream holds no frame: the audio-visual metrics are not computed (video side, the
    decoder's reason counted) while KL on their audio tracks is; a network raising inside one per-item
    stage metric (DeSync) leaves the other (IB-score) computed."""
    data, gen = vggsound_root(tmp_path, 3, audio_track=True)
    for i, video in enumerate(sorted((data / "video").glob("*.mp4"))):
        make_video_file(video, [], fps=10, audio=_tone(i, shift=5.0)[None], audio_rate=RATE)
    assert run(tmp_path, data, gen, "kl_panns,ib_score") == EXIT_NOT_COMPUTED
    results = read_results(tmp_path / "run" / "results.json")
    assert [m.name for m in results.metrics] == ["kl_panns"]
    (entry,) = results.not_computed
    assert (entry.name, entry.kind, entry.side) == ("ib_score", "no-items", "video")
    assert sum(entry.counts.values()) == 3 and entry.items == tuple(sorted(p.stem for p in gen.glob("*.wav")))

    monkeypatch.setattr(f"{__name__}.SECONDS", 8.0)
    data, gen = vggsound_root(tmp_path / "long", 2, audio_track=True)

    def raising(self, item, pair):
        raise RuntimeError("MotionFormer: shapes do not match")

    monkeypatch.setattr(DeSyncScorer, "score_pair", raising)
    assert run(tmp_path / "long", data, gen, "desync,ib_score") == EXIT_NOT_COMPUTED
    results = read_results(tmp_path / "long" / "run" / "results.json")
    assert [m.name for m in results.metrics] == ["ib_score"]
    (entry,) = results.not_computed
    assert (entry.name, entry.kind) == ("desync", "exception")
    assert entry.reason == "RuntimeError: MotionFormer: shapes do not match"


def tone_item(item):
    """A python: generator: a tone whose pitch depends on the item id."""
    t = np.arange(int(SECONDS * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * (200 + 7 * sum(map(ord, item.id)) % 600) * t)).astype(np.float32), RATE


def test_run_lists_a_network_it_cannot_load_and_computes_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Offline, with no weights cached: VGGish cannot be loaded inside `agomni run` (kind "weights"),
    the offline metrics are computed, the report lists it and the exit status is 4."""
    monkeypatch.setenv("AGOMNI_OFFLINE", "1")
    manifest = no_video_manifest(tmp_path / "toy")
    argv = ["run", "smoke", "--manifest", str(manifest), "--no-progress", "--format", "md,json"]
    generator = ["--generator", f"python:{__name__}:tone_item"]
    out = tmp_path / "run"
    status = main([*argv, *generator, "--metrics", "fd_offline,fd_vggish,kad_offline", "--out", str(out)])
    assert status == EXIT_NOT_COMPUTED
    results = read_results(out / "results.json")
    assert [m.name for m in results.metrics] == ["fd_offline", "kad_offline"]
    (entry,) = results.not_computed
    assert (entry.name, entry.kind) == ("fd_vggish", "weights") and "offline mode" in entry.reason
    assert "fd_vggish not computed (weights)" in capsys.readouterr().err
    assert "| run | fd_vggish | weights: " in (out / "report.md").read_text()
    assert (
        main([*argv, *generator, "--metrics", "fd_offline,kad_offline", "--out", str(tmp_path / "alone")])
        == 0
    )
    alone = read_results(tmp_path / "alone" / "results.json")
    assert [(m.name, m.value) for m in alone.metrics] == [(m.name, m.value) for m in results.metrics]
