"""`agomni run` with several seeds and samples, the folder: and python: adapters, and to_frame."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from agomni.cli import main
from agomni.results import read_results, to_frame
from tests.run.toy_fixtures import no_video_manifest

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "agomni/model/checkpoints/tiny-16k-toy.safetensors"


@pytest.fixture(scope="module")
def no_video(tmp_path_factory):
    return no_video_manifest(tmp_path_factory.mktemp("toy"))


def tone(item):
    """A python: generator: a tone whose pitch depends on the item id (16 kHz, 2 s)."""
    t = np.arange(32000) / 16000
    return 0.3 * np.sin(2 * np.pi * (200 + 20 * len(item.text or item.transcript or "")) * t), 16000


@pytest.mark.slow  # 2 seeds x 2 samples x 6 items of the tiny model at 2 steps, plus scoring (about 1 min)
def test_seeds_and_samples_give_per_replicate_results_and_mean_std(tmp_path, no_video):
    out = tmp_path / "run"
    argv = ["run", "smoke", "--generator", f"checkpoint:{CHECKPOINT}", "--manifest", str(no_video)]
    argv += ["--out", str(out), "--seeds", "0,1", "--num-samples", "2", "--steps", "2", "--no-progress"]
    assert main([*argv, "--metrics", "fd_offline", "--format", "md,csv"]) == 0
    replicates = [read_results(out / f"seed-{s}/sample-{k}/results.json") for s in (0, 1) for k in (0, 1)]
    combined = read_results(out / "results.json")
    assert combined.random_weights  # the toy model's stand-in conditioners label every output
    for metric in combined.metrics:
        values = [next(m.value for m in r.metrics if m.name == metric.name) for r in replicates]
        # Seeds and samples change the audio; the validation loss is of the checkpoint, the same for all.
        assert len(set(values)) == (1 if metric.name == "fm_validation_loss" else 4)
        assert metric.value == pytest.approx(np.mean(values), rel=1e-12)
        assert metric.spread.value == pytest.approx(np.std(values, ddof=1), rel=1e-12)
        assert metric.spread.kind == "std over 4 replicates (seeds x samples)"
    seed0 = sf.read(out / "seed-0/sample-0/t2a-heldout-000.wav")[0]
    assert not np.array_equal(seed0, sf.read(out / "seed-1/sample-0/t2a-heldout-000.wav")[0])
    assert not np.array_equal(seed0, sf.read(out / "seed-0/sample-1/t2a-heldout-000.wav")[0])
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("system,metric,value,unit,direction,task")
    assert len([r for r in rows if ",all tasks," in r]) == len(combined.metrics)  # per task, then all


def test_python_and_folder_generators_and_the_frame_view(tmp_path, no_video):
    made = tmp_path / "python"
    base = ["run", "smoke", "--manifest", str(no_video), "--no-progress", "--format", "json"]
    assert main([*base, "--generator", "python:tests.run.test_runner:tone", "--out", str(made)]) == 0
    files = made / "seed-0" / "sample-0"
    assert main([*base, "--generator", f"folder:{files}", "--out", str(tmp_path / "folder")]) == 0
    a, b = read_results(made / "results.json"), read_results(tmp_path / "folder" / "results.json")
    assert [(m.name, m.value) for m in a.metrics] == [(m.name, m.value) for m in b.metrics]
    assert {m.name for m in a.metrics} == {"fd_offline", "kad_offline"}
    assert not a.random_weights
    assert json.loads((made / "run.json").read_text())["generator"]["kind"] == "python"

    frame = to_frame(made)
    set_rows = frame[frame.level == "set"].set_index("metric")
    for m in a.metrics:
        assert set_rows.loc[m.name, "value"] == m.value and set_rows.loc[m.name, "unit"] == m.unit
        assert bool(set_rows.loc[m.name, "higher_is_better"]) is m.higher_is_better
    assert len(frame) == len(a.metrics) + sum(len(s) for s in a.item_scores.values())
    report = json.loads((made / "report.json").read_text())
    assert [r["metric"] for r in report["rows"]] == [m.name for m in a.metrics]
    assert report["coverage"]["python"]["counts"] == {"ok": 6, "missing": 0, "error": 0}
    assert report["not_computed"] == []  # the smoke suite's metrics need no weights


def test_skipped_metrics_name_the_fetch_command(tmp_path, monkeypatch):
    from agomni.run.runner import plan_metrics
    from agomni.suites import get_suite

    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "empty-home"))
    run, skipped = plan_metrics(get_suite("v2a-vggsound"), None)
    assert run == []
    by_name = {s.name: s for s in skipped}
    assert by_name["fd_panns"].command == "agomni weights fetch panns-cnn14-16k"
    assert by_name["desync"].command == "agomni weights fetch synchformer-24-01-04T16-39-21"


def test_combined_replicates_list_every_metric_an_item_missed_in_any_replicate(tmp_path):
    from agomni.results import CoverageEntry, Results, RunInfo, SetMetric, collect_provenance, write_results
    from agomni.run.runner import combine

    provenance = collect_provenance(
        device="cpu",
        seed=0,
        checkpoints={},
        preprocessing={},
        manifest_sha256=None,
        timings={},
        random_weights=False,
    )

    def replicate(lse_b: float | None) -> Results:
        scores = {"a": {"lse_c": 7.0, "ib_score": 30.0}, "b": {"ib_score": 20.0}}
        unscored = {}
        if lse_b is None:
            unscored = {"lse_c": "no face found in any of the 50 frames"}
        else:
            scores["b"]["lse_c"] = lse_b
        coverage = (CoverageEntry("a", "ok"), CoverageEntry("b", "ok", unscored=unscored))
        metrics = (SetMetric("lse_c", 7.0, "SyncNet confidence", True, "syncnet", 1),)
        return Results(RunInfo("r", "2026-01-31T12:00:00Z"), provenance, scores, metrics, coverage)

    combined = combine(
        [replicate(5.0), replicate(None)],
        ["seed-0/sample-0", "seed-1/sample-0"],
        RunInfo("r", "2026-01-31T12:00:00Z"),
    )
    assert combined.coverage[0].unscored == {}
    assert combined.coverage[1].unscored == {
        "lse_c": "seed-1/sample-0: no face found in any of the 50 frames"
    }
    assert combined.item_scores == {"a": {"lse_c": 7.0, "ib_score": 30.0}, "b": {"ib_score": 20.0}}
    assert read_results(write_results(combined, tmp_path / "results.json")) == combined  # schema rules hold


def test_speech_suites_run_their_offline_backends_and_name_the_fetch_commands(tmp_path, monkeypatch):
    """tts-seed-en runs WER / SIM-o with the offline backends on an empty weights cache; Whisper asked for,
    UTMOS or Audiobox Aesthetics is skipped with the command that fetches its checkpoint."""
    from agomni.run.runner import plan_metrics
    from agomni.suites import get_suite

    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "empty-home"))
    utmos = ("utmos", "agomni weights fetch utmos22-strong")
    for suite in ("tts-seed-en", "tts-librispeech-pc"):
        run, skipped = plan_metrics(get_suite(suite), None)
        assert run == ["wer", "sim_o"] and [(s.name, s.command) for s in skipped] == [utmos]
    run, skipped = plan_metrics(get_suite("tts-seed-en"), None, ("whisper-large-v3",))
    assert run == ["sim_o"] and [(s.name, s.command) for s in skipped] == [
        ("wer", "agomni weights fetch whisper-large-v3"),
        utmos,
    ]
    run, skipped = plan_metrics(get_suite("tts-seed-en"), None, ("wavlm-ecapa",))
    assert run == ["wer"] and [(s.name, s.command) for s in skipped] == [
        ("sim_o", "agomni weights fetch wavlm-large-ecapa-sv"),
        utmos,
    ]
    assert plan_metrics(get_suite("tts-seed-en"), None, ("wavlm-ecapa",), random_weights=True) == (
        ["wer", "sim_o", "utmos"],
        [],
    )
    run, skipped = plan_metrics(get_suite("t2song"), None)
    assert {"per", "f0_stability", "fd_clap_music"} - {s.name for s in skipped} <= set(run)
    audiobox = {s.name: s.command for s in skipped if s.name.startswith("audiobox_")}
    assert audiobox == {
        f"audiobox_{axis}": "agomni weights fetch audiobox-aesthetics" for axis in ("ce", "cu", "pc", "pq")
    }


def test_profile_stages_writes_each_replicates_breakdown(tmp_path, no_video, capsys):
    out = tmp_path / "run"
    argv = [
        "run",
        "smoke",
        "--manifest",
        str(no_video),
        "--no-progress",
        "--format",
        "json",
        "--out",
        str(out),
    ]
    argv += [
        "--generator",
        "python:tests.run.test_runner:tone",
        "--metrics",
        "fd_offline",
        "--profile-stages",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    folder = out / "seed-0" / "sample-0"
    timings = read_results(folder / "results.json").provenance.timings
    written = json.loads((folder / "timings.json").read_text())
    # the generator's seconds come before the evaluation's total: the whole is their sum
    assert written["total_s"] == pytest.approx(timings["total"] + timings["generate"], rel=1e-12)
    assert {r["stage"]: r["seconds"] for r in written["stages"]} == {
        k: v for k, v in timings.items() if k != "total"
    }
    stages = sum(r["seconds"] for r in written["stages"])
    assert written["untimed_s"] == pytest.approx(written["total_s"] - stages, abs=1e-9)
    assert "embed:mel-stats@agomni-offline" in timings and "generate" in timings
    assert "stage profile (wall-clock seconds, each stage's own time):" in printed
    assert "embed:mel-stats@agomni-offline" in printed
