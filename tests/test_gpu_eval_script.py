"""benchmarks/gpu_eval.py with tiny CPU settings: it writes its JSON and markdown, every number is
consistent with the others it reports, and the budget stops measurements from starting."""

from __future__ import annotations

import json

import pytest

from benchmarks import gpu_eval

TINY = [
    "--device", "cpu", "--networks", "panns", "--batches", "1,2", "--seconds", "2", "--repeats", "1",
    "--suites", "v2a-vggsound", "--suite-metrics", "kl_panns", "--suite-items", "2", "--suite-seconds", "2",
]  # fmt: skip


@pytest.mark.slow  # about 35 CPU seconds: a random-weights PANNs network built twice, one tiny suite run
def test_tiny_cpu_run_writes_consistent_numbers(tmp_path) -> None:
    gpu_eval.main([str(tmp_path), *TINY])
    record = json.loads((tmp_path / "gpu_eval.json").read_text())
    rows = record["networks"]
    assert [(r["network"], r["batch"]) for r in rows] == [("panns", 1), ("panns", 2)]
    for row in rows:
        # one timed call of `batch` clips: clips/s x seconds per call = the batch
        assert row["clips_per_s"] * row["seconds_per_call"] == pytest.approx(row["batch"], rel=1e-9)
        assert row["peak_gib"] is None  # device memory is CUDA's only
    modes = {(r["mode"], r.get("head")) for r in record["precision"]}
    assert modes == {("bf16", "embed"), ("bf16", "logits"), ("tf32", None)}
    for row in record["precision"]:
        if row["mode"] == "bf16":
            # bfloat16 keeps 8 significant bits: the outputs move, by far less than their own size
            assert 0 < row["relative_to_max_abs"] < 0.2
    (suite,) = record["suites"]
    assert suite["metrics"] == ["kl_panns"] and suite["not_computed"] == []
    assert suite["clips_per_s"] == pytest.approx(2 / suite["wall_s"])
    assert suite["timings_s"]["total"] <= suite["wall_s"]
    assert "embed:panns@av-benchmark" in suite["timings_s"]
    text = (tmp_path / "gpu_eval.md").read_text()
    assert "RANDOM WEIGHTS" in text and "| panns | 2 |" in text and "| v2a-vggsound | 2 |" in text


def test_spent_budget_starts_nothing(tmp_path) -> None:
    record = gpu_eval.main([str(tmp_path), *TINY, "--budget-s", "0"])
    assert record["networks"] == [{"network": "panns", "batch": "-", "skipped": "budget spent"}]
    assert record["precision"] == [{"network": "panns", "mode": "-", "skipped": "budget spent"}]
    assert record["suites"] == [{"suite": "v2a-vggsound", "skipped": "budget spent"}]
    assert "skipped: budget spent" in (tmp_path / "gpu_eval.md").read_text()
