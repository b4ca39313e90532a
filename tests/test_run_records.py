"""items.jsonl and RunFolder: every scored folder records, per item and side, the file scored, its
SHA-256 and each network's cache entry; the report reads per-item embeddings through them alone."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from agomni.errors import ResultsError, UsageError
from agomni.evaluate import EvalRequest, evaluate
from agomni.report.embeddings import scored_rows
from agomni.results import ITEMS_FILE, RunFolder, read_items
from tests.eval_fixtures import write_clip, write_sets

N = 6


def _eval(pred: Path, ref: Path, out: Path, cache: Path, metrics=("fd_offline", "fd_mfcc_stats")):
    return evaluate(
        EvalRequest(
            pred_dir=pred,
            ref_dir=ref,
            metrics=metrics,
            out=out,
            cache_dir=cache,
            allow_missing=True,
            progress=False,
        )
    )


def test_items_jsonl_names_each_file_its_hash_and_its_cache_entries(tmp_path) -> None:
    pred, ref = write_sets(tmp_path, N, pred_ids=[f"item{i:02d}" for i in range(N - 1)])
    (pred / "item00.wav").write_bytes(b"not audio")  # an item whose generated file cannot be decoded
    outcome = _eval(pred, ref, tmp_path / "out", tmp_path / "cache")
    records = read_items(tmp_path / "out" / ITEMS_FILE)
    by_id = {r.id: r for r in records}
    assert [r.id for r in records] == [c.id for c in outcome.results.coverage]
    assert {i: r.status for i, r in by_id.items()} == {c.id: c.status for c in outcome.results.coverage}
    assert by_id["item00"].status == "error" and by_id[f"item{N - 1:02d}"].status == "missing"
    assert set(by_id[f"item{N - 1:02d}"].files) == {"ref"}  # the generated side is absent
    networks = set()
    for record in records:
        for side, scored in record.files.items():
            path = Path(scored.path)
            assert path.parent == (pred if side == "pred" else ref)
            assert scored.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
            if record.status != "ok":
                continue
            for label, entry in scored.networks.items():
                networks.add(label)
                stored = tmp_path / "cache" / "embeddings" / entry.cache_key[:2] / f"{entry.cache_key}.json"
                key = json.loads(stored.read_text())["key"]
                assert key["audio_sha256"] == entry.audio_sha256
                assert (
                    hashlib.sha256(
                        json.dumps(key, sort_keys=True, separators=(",", ":")).encode("ascii")
                    ).hexdigest()
                    == entry.cache_key
                )
    assert networks == set(outcome.results.provenance.preprocessing["embedders"])


def test_a_rerun_from_the_cache_records_the_same_entries(tmp_path) -> None:
    pred, ref = write_sets(tmp_path, N)
    _eval(pred, ref, tmp_path / "a", tmp_path / "cache")
    second = _eval(pred, ref, tmp_path / "b", tmp_path / "cache")
    assert (
        second.results.provenance.preprocessing["cache"]["embedding_hits"] == 2 * 2 * N
    )  # 2 networks x 2 sides
    first = (tmp_path / "a" / ITEMS_FILE).read_text()
    assert first == (tmp_path / "b" / ITEMS_FILE).read_text() and first.count("\n") == N


def test_the_report_recomputes_fd_from_the_recorded_entries_without_the_inputs_folders(tmp_path) -> None:
    pred, ref = write_sets(tmp_path, N)
    outcome = _eval(pred, ref, tmp_path / "out", tmp_path / "cache", metrics=("fd_offline",))
    for folder in (pred, ref):  # the report never decodes, hashes or pairs the scored files again
        for clip in folder.iterdir():
            clip.unlink()
    rows = scored_rows(tmp_path / "out", "fd_offline")
    generated = np.vstack([rows["pred"][i] for i in sorted(rows["pred"])])
    reference = np.vstack([rows["ref"][i] for i in sorted(rows["ref"])])
    mu_g, mu_r = generated.mean(0), reference.mean(0)
    cov_g, cov_r = np.cov(generated, rowvar=False), np.cov(reference, rowvar=False)
    eigen = np.linalg.eigvals(cov_g @ cov_r)
    expected = float(np.sum((mu_g - mu_r) ** 2) + np.trace(cov_g + cov_r) - 2 * np.sqrt(eigen).real.sum())
    assert outcome.results.metrics[0].value == pytest.approx(expected, rel=1e-6)


def test_a_changed_cache_entry_name_is_an_error_naming_the_item(tmp_path) -> None:
    pred, ref = write_sets(tmp_path, N)
    _eval(pred, ref, tmp_path / "out", tmp_path / "cache", metrics=("fd_offline",))
    path = tmp_path / "out" / ITEMS_FILE
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    entry = next(iter(first["files"]["pred"]["networks"].values()))
    entry["cache_key"] = "0" * 64
    path.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    with pytest.raises(ResultsError, match=r"item00.*another cache entry"):
        scored_rows(tmp_path / "out", "fd_offline")


def test_damaged_and_absent_records_are_errors(tmp_path) -> None:
    pred, ref = write_sets(tmp_path, N)
    write_clip(pred / "extra.wav", 5)
    _eval(pred, ref, tmp_path / "out", tmp_path / "cache", metrics=("fd_offline",))
    path = tmp_path / "out" / ITEMS_FILE
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(ResultsError, match=rf"line {N + 2}: not an item record"):
        RunFolder.open(tmp_path / "out").items()
    path.unlink()
    with pytest.raises(ResultsError, match="no per-item records"):
        RunFolder.open(tmp_path / "out").items()
    with pytest.raises(UsageError, match=r"no results\.json"):
        RunFolder.open(tmp_path)
