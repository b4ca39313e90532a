"""`--profile-stages`: the stage timer's accounting (a fake clock, so every number is known in advance),
the table's arithmetic, and `agomni eval` end to end on generated clips with the offline embedder and a
random-weights PANNs network."""

from __future__ import annotations

import json
import re
import time

import pytest

from agomni.cli import main
from agomni.evaluate import pipeline
from agomni.evaluate.pipeline import Timings
from agomni.evaluate.stage_profile import breakdown, format_breakdown
from agomni.results import read_results
from tests.eval_fixtures import write_sets


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_nested_stages_count_their_own_seconds_only(monkeypatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(pipeline.time, "perf_counter", clock)
    timings = Timings()
    with timings.stage("outer"):
        clock.now += 1.0
        with timings.stage("inner"):
            clock.now += 2.0
            with timings.stage("innermost"):
                clock.now += 4.0
        clock.now += 8.0
        with timings.stage("inner"):
            clock.now += 16.0
    with timings.stage("outer"):
        clock.now += 32.0
    # outer: 1 + 8 + 32 of its own; inner: 2 + 16; innermost: 4; together the 63 s that passed
    assert dict(timings.seconds) == {"outer": 41.0, "inner": 18.0, "innermost": 4.0}
    assert sum(timings.seconds.values()) == clock.now - 100.0


def test_a_stage_that_raises_is_still_counted(monkeypatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(pipeline.time, "perf_counter", clock)
    timings = Timings()
    with pytest.raises(ValueError), timings.stage("outer"), timings.stage("inner"):
        clock.now += 3.0
        raise ValueError
    with timings.stage("after"):
        clock.now += 5.0
    assert dict(timings.seconds) == {"outer": 0.0, "inner": 3.0, "after": 5.0}


def test_breakdown_shares_and_untimed_rest() -> None:
    table = breakdown({"decode": 1.0, "embed:x@p": 3.0, "generate": 4.0, "total": 6.0})
    # generate runs before the evaluation, outside its total: the whole is 6 + 4 s
    assert table["total_s"] == 10.0
    assert [(r["stage"], r["seconds"], r["share"]) for r in table["stages"]] == [
        ("generate", 4.0, 0.4),
        ("embed:x@p", 3.0, 0.3),
        ("decode", 1.0, 0.1),
    ]
    assert table["untimed_s"] == pytest.approx(2.0)
    text = format_breakdown({"decode": 1.0, "total": 4.0})
    assert re.search(r"^decode\s+1\.000\s+25\.0%$", text, re.M)
    assert re.search(r"^untimed\s+3\.000\s+75\.0%$", text, re.M)
    assert re.search(r"^total\s+4\.000\s+100\.0%$", text, re.M)


def _printed_rows(printed: str) -> dict[str, tuple[float, float]]:
    """stage -> (seconds, share %) of the printed table."""
    body = printed.split("stage profile (wall-clock seconds, each stage's own time):\n", 1)[1]
    rows = {}
    for line in body.splitlines()[1:]:
        found = re.fullmatch(r"(\S+)\s+([0-9.]+)\s+([0-9.]+)%", line)
        if found is None:
            break
        rows[found[1]] = (float(found[2]), float(found[3]))
    return rows


@pytest.mark.slow  # PANNs' 2048-dimensional Frechet distance takes most of a minute on a 2-core machine
def test_eval_profile_stages_end_to_end(tmp_path, capsys) -> None:
    pred, ref = write_sets(tmp_path, 4)
    out = tmp_path / "run"
    argv = [
        "eval",
        "--pred",
        str(pred),
        "--ref",
        str(ref),
        "--metrics",
        "fd_offline,fd_panns",
        "--random-weights",
        "--profile-stages",
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
    ]
    start = time.perf_counter()
    assert main(argv) == 0
    measured = time.perf_counter() - start
    rows = _printed_rows(capsys.readouterr().out)

    total = rows.pop("total")[0]
    untimed = rows.pop("untimed")[0]
    assert total <= measured  # the run's own total lies inside the test's clock
    # the stages and the untimed rest add up to the total (to the table's rounding: 1 ms per row)
    assert sum(s for s, _ in rows.values()) + untimed == pytest.approx(total, abs=1e-3 * (len(rows) + 2))
    # the work is in named stages: the untimed rest (process bookkeeping, and in a long test session the
    # garbage collector's pauses) is below the largest of them (a share of the total failed under load)
    assert 0 <= untimed < max(s for s, _ in rows.values())
    assert sum(share for _, share in rows.values()) == pytest.approx(
        100 * (1 - untimed / total), abs=0.1 * len(rows)
    )
    for stage in ("decode", "resample", "hash_files", "hash_audio", "cache_io", "metrics", "load_embedders"):
        assert stage in rows
    # every requested network has its own row, with the time of its forward passes
    assert rows["embed:mel-stats@agomni-offline"][0] > 0
    assert rows["embed:panns@av-benchmark"][0] > 0

    results = read_results(out / "results.json")
    timings = results.provenance.timings
    written = json.loads((out / "timings.json").read_text())
    assert written["total_s"] == timings["total"]
    assert {r["stage"]: r["seconds"] for r in written["stages"]} == {
        k: v for k, v in timings.items() if k != "total"
    }
    assert written["untimed_s"] == pytest.approx(
        timings["total"] - sum(v for k, v in timings.items() if k != "total")
    )
