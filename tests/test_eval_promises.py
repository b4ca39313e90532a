"""The promises `agomni eval` makes to a hostile user, end to end through the CLI: incomplete sets are
never scored silently, cached values are verified before use, and input or environment problems are
one sentence (exit 2) naming the path and what to do, checked before any work."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from agomni.cli import main
from agomni.errors import PairingError
from agomni.evaluate.inputs import collect_inputs
from agomni.evaluate.registry import METRICS, EmbedderSpec, MetricEntry
from agomni.io.container import file_sha256
from agomni.results import read_results
from tests.eval_fixtures import write_sets
from tests.test_eval_cli import embed_folder, eval_cli, fd_reference

N = 8


def fd_of(pred: Path, ref: Path, ids: list[str]) -> float:
    """FD of mel-stats embeddings of ``ids`` on each side (soundfile decode, scipy sqrtm)."""
    skip = tuple(p.stem for p in pred.glob("*.wav") if p.stem not in ids)
    skip += tuple(p.stem for p in ref.glob("*.wav") if p.stem not in ids)
    return fd_reference(embed_folder(ref, skip), embed_folder(pred, skip))


IDS = [f"item{i:02d}" for i in range(N)]


def test_a_missing_generated_file_is_an_error_even_for_set_metrics(tmp_path, capsys) -> None:
    """The README repro: one generated file removed, FD only. It must not score 7 against 8 in silence."""
    pred, ref = write_sets(tmp_path, N)
    (pred / "item00.wav").unlink()
    args = ("--pred", str(pred), "--ref", str(ref), "--metrics", "fd-mel-stats", "--out", str(tmp_path / "r"))
    assert eval_cli(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert "'item00'" in err and "--allow-missing" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists() or not (tmp_path / "r" / "results.json").exists()

    assert eval_cli(tmp_path, *args, "--allow-missing") == 0
    results = read_results(tmp_path / "r" / "results.json")
    coverage = {c.id: c for c in results.coverage}
    assert coverage["item00"].status == "missing" and "no generated file" in coverage["item00"].reason
    assert results.metrics[0].value == pytest.approx(fd_of(pred, ref, IDS[1:]), rel=1e-6)  # pairs only
    assert results.metrics[0].n == N - 1


def test_a_metric_value_does_not_depend_on_the_other_metrics_requested(tmp_path, monkeypatch) -> None:
    spec = EmbedderSpec("mel-stats", "agomni.metrics.embedders.offline", "offline_embedder", {"name": "mel-stats"}, weights=False)  # fmt: skip
    monkeypatch.setitem(METRICS, "kad_other", MetricEntry("kad_other", "kad", spec, "agomni-offline"))
    pred, ref = write_sets(tmp_path, N, pred_ids=[*IDS[1:], "extra"])
    values = []
    for metrics in ("fd_offline", "fd_offline,kad_other"):
        out = tmp_path / metrics
        args = ("--pred", str(pred), "--ref", str(ref), "--metrics", metrics, "--out", str(out))
        assert eval_cli(tmp_path, *args, "--allow-missing") == 0
        values.append(read_results(out / "results.json").metrics[0].value)
    assert values[0] == values[1] == pytest.approx(fd_of(pred, ref, IDS[1:]), rel=1e-6)


@pytest.mark.parametrize("entry", ["notes.txt", "subfolder.wav", "broken.wav"])
def test_every_folder_entry_not_used_is_an_error_or_a_coverage_entry(tmp_path, capsys, entry) -> None:
    pred, ref = write_sets(tmp_path, N)
    path = pred / entry
    if entry == "notes.txt":
        path.write_text("prompt")
    elif entry == "subfolder.wav":
        path.mkdir()
    else:
        path.symlink_to(tmp_path / "nowhere.wav")
    args = ("--pred", str(pred), "--ref", str(ref), "--metrics", "fd_offline", "--out", str(tmp_path / "r"))
    assert eval_cli(tmp_path, *args) == 2
    assert f"pred/{entry}" in capsys.readouterr().err
    assert eval_cli(tmp_path, *args, "--allow-missing") == 0
    coverage = {c.id: c for c in read_results(tmp_path / "r" / "results.json").coverage}
    assert coverage[f"pred/{entry}"].status == "error" and "not used" in coverage[f"pred/{entry}"].reason
    assert sum(c.status == "ok" for c in coverage.values()) == N


def test_ref_superset_says_the_reference_folder_holds_more(tmp_path, capsys) -> None:
    pred, ref = write_sets(tmp_path, N, pred_ids=IDS[:6])
    (ref / "prompts.txt").write_text("a prompt per line")
    args = ("--pred", str(pred), "--ref", str(ref), "--metrics", "fd_offline", "--out", str(tmp_path / "r"))
    assert eval_cli(tmp_path, *args) == 2
    capsys.readouterr()
    assert eval_cli(tmp_path, *args, "--ref-superset", "--profile", "fadtk") == 0
    results = read_results(tmp_path / "r" / "results.json")
    assert [c.id for c in results.coverage] == IDS[:6]
    details = results.provenance.preprocessing["metrics"]["fd_offline"]
    assert (details["n_generated_items"], details["n_reference_items"]) == (6, N)  # fadtk: whole sets
    assert results.provenance.preprocessing["inputs"]["reference_only_ids"] == IDS[6:]
    assert "6 generated and 8 reference items" in capsys.readouterr().out


def _tamper_arrays(cache: Path) -> int:
    """Scale every cached array by 1.5 in place (same shape and dtype, other values); how many files."""
    files = sorted((cache / "embeddings").rglob("*.np[yz]"))
    for path in files:
        if path.suffix == ".npy":
            np.save(path.open("wb"), np.load(path) * np.float32(1.5))
        else:
            with np.load(path) as stored:
                arrays = {k: stored[k] * np.float32(1.5) for k in stored.files}
            with path.open("wb") as handle:
                np.savez(handle, **arrays)
    return len(files)


def test_changed_cached_values_are_rejected_named_and_recomputed(tmp_path) -> None:
    pred, ref = write_sets(tmp_path, N)
    args = ("--pred", str(pred), "--ref", str(ref), "--metrics", "fd_offline", "--out", str(tmp_path / "r"))
    assert eval_cli(tmp_path, *args) == 0
    first = read_results(tmp_path / "r" / "results.json").metrics[0].value
    assert _tamper_arrays(tmp_path / "cache") == 2 * N
    assert eval_cli(tmp_path, *args, "--overwrite") == 0
    results = read_results(tmp_path / "r" / "results.json")
    assert results.metrics[0].value == first
    rejected = results.provenance.preprocessing["cache"]["rejected_entries"]
    assert len(rejected) == 2 * N and all("differs from its record" in line for line in rejected)


def test_an_audio_index_entry_pointing_at_another_files_audio_is_not_trusted(tmp_path) -> None:
    pred, ref = write_sets(tmp_path, N)
    args = ("--pred", str(pred), "--ref", str(ref), "--metrics", "fd_offline", "--out", str(tmp_path / "r"))
    assert eval_cli(tmp_path, *args) == 0
    first = read_results(tmp_path / "r" / "results.json").metrics[0].value
    entries = {}
    for path in (tmp_path / "cache" / "audio-index").rglob("*.json"):
        entries[json.loads(path.read_text())["key"]["file_sha256"]] = path
    victim, other = entries[file_sha256(pred / "item01.wav")], entries[file_sha256(pred / "item02.wav")]
    data = json.loads(victim.read_text())
    data["audio"]["audio_sha256"] = json.loads(other.read_text())["audio"]["audio_sha256"]
    victim.write_text(json.dumps(data))
    assert eval_cli(tmp_path, *args, "--overwrite") == 0
    results = read_results(tmp_path / "r" / "results.json")
    assert results.metrics[0].value == first
    assert any(str(victim) in line for line in results.provenance.preprocessing["cache"]["rejected_entries"])


def test_a_full_disk_while_caching_warns_and_the_run_goes_on(tmp_path, capsys, monkeypatch) -> None:
    pred, ref = write_sets(tmp_path, N)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("agomni.metrics.cache.atomic_write", disk_full)
    args = ("--pred", str(pred), "--ref", str(ref), "--metrics", "fd_offline", "--out", str(tmp_path / "r"))
    assert eval_cli(tmp_path, *args) == 0
    assert "No space left on device" in capsys.readouterr().err
    results = read_results(tmp_path / "r" / "results.json")
    assert results.metrics[0].value == pytest.approx(fd_of(pred, ref, IDS), rel=1e-6)
    assert "No space left" in results.provenance.preprocessing["cache"]["write_error"]


def test_destinations_are_checked_before_any_work(tmp_path, capsys) -> None:
    pred, ref = write_sets(tmp_path, 3)
    base = ("--pred", str(pred), "--ref", str(ref), "--metrics", "fd_offline")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for option, value, expected in (
        ("--out", a_file, "is a file"),
        ("--out", a_file / "run", "not writable"),
        ("--cache-dir", a_file / "cache", "not writable"),
    ):
        assert main(["eval", "--no-progress", *base, option, str(value)]) == 2
        err = capsys.readouterr().err
        assert expected in err and str(value) in err and "Traceback" not in err
    out = tmp_path / "run"
    assert eval_cli(tmp_path, *base, "--out", str(out)) == 0
    assert eval_cli(tmp_path, *base, "--out", str(out)) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert eval_cli(tmp_path, *base, "--out", str(out), "--overwrite") == 0


def test_results_that_cannot_be_written_are_a_clear_error_and_nothing_partial(tmp_path, capsys, monkeypatch):
    pred, ref = write_sets(tmp_path, 3)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("agomni.results.store.atomic_write", disk_full)
    out = tmp_path / "run"
    assert (
        eval_cli(
            tmp_path, "--pred", str(pred), "--ref", str(ref), "--metrics", "fd_offline", "--out", str(out)
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "No space left on device" in err and str(out / "results.json") in err and "Traceback" not in err
    assert not (out / "results.json").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_files_and_folders_are_one_sentence(tmp_path, capsys) -> None:
    pred, ref = write_sets(tmp_path, 3)
    (pred / "item01.wav").chmod(0)
    args = ("--pred", str(pred), "--ref", str(ref), "--metrics", "fd_offline")
    assert eval_cli(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert "permission" in err.lower() and "corrupt" not in err and "Traceback" not in err
    (pred / "item01.wav").chmod(0o644)
    ref.chmod(0)
    assert eval_cli(tmp_path, *args) == 2
    assert "cannot be listed" in capsys.readouterr().err
    ref.chmod(0o755)


@pytest.mark.parametrize("use_cache", [True, False])
def test_a_permission_problem_is_not_reported_as_a_corrupt_file(tmp_path, capsys, monkeypatch, use_cache):
    """As any user would meet it (simulated: the tests may run as root, who reads everything)."""
    pred, ref = write_sets(tmp_path, 3)
    locked = pred / "item01.wav"
    real_open = Path.open

    def guarded_open(self, *args, **kwargs):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded_open)
    cache = [] if use_cache else ["--no-cache"]
    assert eval_cli(tmp_path, "--pred", str(pred), "--ref", str(ref), "--metrics", "fd_offline", *cache) == 2
    err = capsys.readouterr().err
    assert (
        str(locked) in err and "permission denied" in err and "corrupt" not in err and "Traceback" not in err
    )


def test_a_run_folder_scored_again_does_not_count_its_own_results_as_unused(tmp_path):
    """The results file a run writes into the scored folder (as `agomni run` resumes) is this run's own
    output; any other stray file still is an error."""

    pred, ref = tmp_path / "pred", tmp_path / "ref"
    for folder in (pred, ref):
        folder.mkdir()
        for name in ("a.wav", "b.wav"):
            (folder / name).write_bytes(b"\x00")
    (pred / "results.json").write_text("{}")
    args = {
        "pred_dir": pred,
        "ref_dir": ref,
        "manifest": None,
        "need_reference": True,
        "allow_missing": False,
    }
    inputs = collect_inputs(**args, own_files=(pred / "results.json",))
    assert [i.id for i in inputs.items] == ["a", "b"] and inputs.unused == ()
    with pytest.raises(PairingError, match=r"results\.json"):
        collect_inputs(**args)
