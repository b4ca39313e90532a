"""`agomni calibrate`: ground truth scored as generated on a small seed-tts-eval layout (real speech
recordings, FLAC and Ogg), the verdict per metric against the published ground-truth row."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from agomni.cli import main
from agomni.run.calibrate import Verdict, verdicts
from agomni.suites import get_suite, read_published
from tests.metrics.speech_fixtures import DATA, utterances


def _seed_tts_layout(root):
    """meta.lst with 3 items: prompt from one take of the voice, ground truth another (one Ogg file),
    and an item whose ground-truth file is absent (a coverage entry, not a crash)."""
    (root / "prompt-wavs").mkdir(parents=True)
    (root / "wavs").mkdir()
    texts = utterances()
    lines = []
    for utt, prompt, target, ext in (("u1", "f2_5", "f2_0", ".flac"), ("u2", "f2_6", "m1_1", ".ogg")):
        shutil.copy(DATA / f"{prompt}.flac", root / "prompt-wavs" / f"{prompt}.flac")
        audio, _ = sf.read(str(DATA / f"{target}.flac"), dtype="float32")
        sf.write(root / "wavs" / f"{utt}{ext}", audio, 16000)
        lines.append(f"{utt}|{texts[prompt][1]}|prompt-wavs/{prompt}.flac|{texts[target][1]}|wavs/{utt}{ext}")
    lines.append(f"u3|{texts['f2_7'][1]}|prompt-wavs/f2_5.flac|{texts['f2_7'][1]}|wavs/u3.flac")
    (root / "meta.lst").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.slow
def test_calibrate_random_weights_is_plumbing_only_and_offline_backends_not_the_recipe(tmp_path, capsys):
    root = _seed_tts_layout(tmp_path / "seed-tts-eval" / "en")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    out = tmp_path / "calib-random"
    argv = ["calibrate", "tts-seed-en", "--data-root", str(root), "--no-progress"]
    assert main([*argv, "--out", str(out), "--random-weights"]) == 0
    doc = json.loads((out / "calibration.json").read_text())
    assert doc["against"] == "Ground truth"
    by_metric = {v["metric"]: v for v in doc["verdicts"]}
    assert set(by_metric) == {"wer", "sim_o", "utmos"}  # utmos: the suite lists it, no published row
    assert by_metric["utmos"]["published"] is None
    assert {v["verdict"] for v in by_metric.values()} == {"plumbing only"}
    published = {r["metric"]: float(r["value"]) for r in read_published(get_suite("tts-seed-en"))[:2]}
    assert by_metric["wer"]["published"] == published["wer"] == 2.06
    assert by_metric["sim_o"]["published"] == published["sim_o"] == 0.73
    results = json.loads((out / "results.json").read_text())
    assert {c["id"]: c["status"] for c in results["coverage"]}["u2"] == "ok"  # the Ogg ground truth scored
    assert (
        "plumbing only" in (out / "calibration.md").read_text() and "plumbing only" in capsys.readouterr().out
    )
    # the offline recognisers (real weights, shipped with the packages) are not the published recipe
    out = tmp_path / "calib-offline"
    assert main([*argv, "--out", str(out)]) == 0
    doc = json.loads((out / "calibration.json").read_text())
    found = {v["metric"]: v for v in doc["verdicts"]}
    assert {found[m]["verdict"] for m in ("wer", "sim_o")} == {"not the published recipe"}
    assert found["utmos"]["verdict"] == "not computable here"  # an empty weights cache
    assert "agomni weights fetch utmos22-strong" in found["utmos"]["detail"]
    assert (
        "pocketsphinx" in found["wer"]["detail"].lower() and "resemblyzer" in found["sim_o"]["detail"].lower()
    )
    # ground truth through the recogniser: the words are mostly right, the same-voice pair is similar
    assert 0 <= found["wer"]["ours"] < 60 and found["sim_o"]["ours"] > 0.5
    assert all(p.read_bytes() == data for p, data in before.items())  # the test set's files untouched
    assert not any(p.suffix == ".wav" for p in root.rglob("*"))  # ground truth copied to the run only


def test_verdict_reproduced_and_outside_tolerance_on_a_run_with_real_looking_values(tmp_path, monkeypatch):
    """The pass/fail arithmetic: |ours - published| against the tolerance, per metric."""
    from agomni.results import Results, RunInfo, SetMetric, collect_provenance, write_results

    metrics = (
        SetMetric("wer", 2.2, "% WER", False, "seed-tts-eval", n=1088),
        SetMetric("sim_o", 0.70, "cosine", True, "seed-tts-eval", n=1088),
    )
    results = Results(RunInfo("gt", "2026-01-01T00:00:00Z", suite="tts-seed-en"), collect_provenance(seed=0))
    results = Results(results.run, results.provenance, {}, metrics, ())
    write_results(results, tmp_path / "results.json")
    rows = verdicts(tmp_path, {"wer": 2.06, "sim_o": 0.73}, {})
    assert rows == [
        Verdict("wer", "% WER", 2.06, 2.2, 0.3, "reproduced", "difference +0.14"),
        Verdict("sim_o", "cosine", 0.73, 0.70, 0.02, "outside tolerance", "difference -0.03"),
        Verdict("utmos", "MOS (1-5)", None, None, None, "not computable here", "no value in this run"),
    ]
    # a looser tolerance given on the command line turns it around
    assert verdicts(tmp_path, {"wer": 2.06, "sim_o": 0.73}, {"sim_o": 0.05})[1].verdict == "reproduced"
    assert np.isclose(rows[1].ours - rows[1].published, -0.03)


def test_calibrate_without_a_ground_truth_row_names_the_published_systems(tmp_path, capsys):
    assert main(["calibrate", "v2a-vggsound", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "no published ground-truth row" in err and "MMAudio S-16k (paper)" in err
