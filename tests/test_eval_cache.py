"""`agomni eval` with the embedding cache: a re-run embeds nothing; a change of any key part recomputes
exactly what it affects (embedder calls are counted)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from agomni.evaluate import EvalRequest, evaluate
from agomni.evaluate.registry import METRICS, EmbedderSpec, MetricEntry
from tests.eval_fixtures import CountingEmbedder, write_clip, write_sets

N = 6
COUNTING = EmbedderSpec("counting-mel-stats", "tests.eval_fixtures", "counting_embedder", weights=False)
SEEDED = EmbedderSpec("counting-mel-stats", "tests.eval_fixtures", "seeded_counting_embedder")


@pytest.fixture
def counting(monkeypatch):
    monkeypatch.setitem(METRICS, "fd_counting", MetricEntry("fd_counting", "fd", COUNTING, "agomni-offline"))
    monkeypatch.setitem(METRICS, "fd_seeded", MetricEntry("fd_seeded", "fd", SEEDED, "agomni-offline"))
    monkeypatch.setitem(METRICS, "kl_counting", MetricEntry("kl_counting", "kl", COUNTING, "agomni-offline"))
    monkeypatch.setattr(CountingEmbedder, "clips_embedded", 0)
    return CountingEmbedder


def run(pred: Path, ref: Path, cache: Path, metric: str = "fd_counting", **options) -> tuple[float, int]:
    """(FD value, clips embedded during this run)."""
    before = CountingEmbedder.clips_embedded
    outcome = evaluate(
        EvalRequest(pred_dir=pred, ref_dir=ref, metrics=(metric,), cache_dir=cache, progress=False, **options)
    )
    return outcome.results.metrics[0].value, CountingEmbedder.clips_embedded - before


def test_rerun_embeds_nothing_and_gives_the_same_number(tmp_path, counting) -> None:
    pred, ref = write_sets(tmp_path, N)
    value, embedded = run(pred, ref, tmp_path / "cache")
    assert embedded == 2 * N
    again, embedded = run(pred, ref, tmp_path / "cache")
    assert embedded == 0 and again == value
    assert len(list((tmp_path / "cache" / "embeddings").rglob("*.npz"))) == 2 * N


def test_changed_audio_recomputes_only_that_clip(tmp_path, counting) -> None:
    pred, ref = write_sets(tmp_path, N)
    run(pred, ref, tmp_path / "cache")
    write_clip(pred / "item03.wav", 99, base_hz=800.0)
    _, embedded = run(pred, ref, tmp_path / "cache")
    assert embedded == 1


def test_same_content_in_other_folders_and_formats_is_a_hit(tmp_path, counting) -> None:
    pred, ref = write_sets(tmp_path, N)
    run(pred, ref, tmp_path / "cache")
    copies = tmp_path / "copies"
    copies.mkdir()
    for i, path in enumerate(sorted(pred.iterdir())):
        if i % 2:
            shutil.copy(path, copies / path.name)
        else:  # FLAC of the same 16-bit samples: other bytes, same decoded audio
            data, rate = sf.read(path, dtype="int16")
            sf.write(copies / f"{path.stem}.flac", data, rate, subtype="PCM_16")
    _, embedded = run(copies, ref, tmp_path / "cache")
    assert embedded == 0


def test_changed_preprocessing_recomputes(tmp_path, counting) -> None:
    pred, ref = write_sets(tmp_path, N)
    run(pred, ref, tmp_path / "cache")
    _, embedded = run(pred, ref, tmp_path / "cache", profile="stable-audio-metrics")  # soxr-hq resampler
    assert embedded == 2 * N
    _, embedded = run(pred, ref, tmp_path / "cache", profile="stable-audio-metrics")
    assert embedded == 0


def test_changed_embedder_config_recomputes(tmp_path, counting, monkeypatch) -> None:
    pred, ref = write_sets(tmp_path, N)
    run(pred, ref, tmp_path / "cache")
    monkeypatch.setattr(CountingEmbedder, "version", "2")
    _, embedded = run(pred, ref, tmp_path / "cache")
    assert embedded == 2 * N


def test_changed_checkpoint_recomputes_and_is_labelled_random(tmp_path, counting) -> None:
    pred, ref = write_sets(tmp_path, N)
    _, embedded = run(pred, ref, tmp_path / "cache", metric="fd_seeded", seed=0)
    assert embedded == 2 * N
    _, embedded = run(pred, ref, tmp_path / "cache", metric="fd_seeded", seed=0)
    assert embedded == 0
    _, embedded = run(pred, ref, tmp_path / "cache", metric="fd_seeded", seed=1)
    assert embedded == 2 * N
    outcome = evaluate(
        EvalRequest(
            pred_dir=pred, ref_dir=ref, metrics=("fd_seeded",), cache_dir=tmp_path / "c2", progress=False
        )
    )
    provenance = outcome.results.provenance
    assert provenance.random_weights and not outcome.comparable_with_published
    assert [r.trust for r in provenance.checkpoints.values()] == ["random-weights"]


def test_interrupted_run_resumes_without_recomputing_what_is_stored(tmp_path, counting) -> None:
    pred, ref = write_sets(tmp_path, N)
    run(pred, ref, tmp_path / "cache")
    stored = sorted((tmp_path / "cache" / "embeddings").rglob("*.npz"))
    for path in stored[:3]:  # as if the run had stopped before writing these
        path.unlink()
    _, embedded = run(pred, ref, tmp_path / "cache")
    assert embedded == 3


def test_no_cache_embeds_every_time_and_writes_nothing(tmp_path, counting) -> None:
    pred, ref = write_sets(tmp_path, N)
    for _ in range(2):
        _, embedded = run(pred, ref, tmp_path / "cache", use_cache=False)
        assert embedded == 2 * N
    assert not (tmp_path / "cache").exists()


def test_embeddings_and_logits_share_one_forward_pass_and_one_cache_entry(tmp_path, counting) -> None:
    pred, ref = write_sets(tmp_path, N)
    request = EvalRequest(
        pred_dir=pred,
        ref_dir=ref,
        metrics=("fd_counting", "kl_counting"),
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    first = evaluate(request)
    assert CountingEmbedder.clips_embedded == 2 * N  # one pass per file for both heads
    entries = sorted((tmp_path / "cache" / "embeddings").rglob("*.npz"))
    assert len(entries) == 2 * N  # one entry per clip holds both heads
    with np.load(entries[0]) as stored:
        assert sorted(stored.files) == ["embed", "logits"]
    fd_only, embedded = run(pred, ref, tmp_path / "cache")
    assert embedded == 0 and fd_only == first.results.metrics[0].value
