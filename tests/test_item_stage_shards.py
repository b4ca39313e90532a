"""The per-item stages sharded and resumed like the embedders: a speech metric (WER, pocketsphinx on the
committed utterances) and an audio-visual one (IB-score, the one-block test towers) scored by two gloo
processes equal one process, and a rerun reads every item's outcome from the stage cache without one
network call (recogniser and ImageBind calls counted in every process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from agomni.evaluate import EvalRequest, evaluate, item_stages
from agomni.metrics.av import score as av_score
from agomni.metrics.av.ib_score import IBScorer
from agomni.metrics.speech.asr import PocketSphinxASR
from agomni.results import read_results
from tests.metrics.av_fixtures import tiny_scorer
from tests.stage_fixtures import write_v2s_set

ITEMS = ("f2_0", "f2_1", "f2_2", "m1_0", "m1_1")
METRICS = ("wer", "ib_score")


def _data(root: Path) -> tuple[Path, Path]:
    return write_v2s_set(root, ITEMS)


def _worker(rank: int, world: int, init_file: str, root: str, cache: str, out: str) -> None:
    """One process of an evaluation: its results under ``out/rank<r>`` and its network calls counted."""
    torch.set_num_threads(1)  # every process does the same float reductions, whatever the process count
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    os.environ["AGOMNI_HOME"] = str(Path(root) / "home")
    calls = {"transcribe": 0, "ib_pairs": 0, "ib_builds": 0}
    transcribe, score_pair = PocketSphinxASR.transcribe, IBScorer.score_pair

    def counted_transcribe(self, audio, language):
        calls["transcribe"] += 1
        return transcribe(self, audio, language)

    def counted_pair(self, item, pair):
        calls["ib_pairs"] += 1
        return score_pair(self, item, pair)

    def counted_build(metric, **options):
        calls["ib_builds"] += 1
        return tiny_scorer(metric, **options)

    PocketSphinxASR.transcribe = counted_transcribe
    IBScorer.score_pair = counted_pair
    av_score.build_scorer = counted_build
    try:
        folder = Path(out) / f"rank{rank}"
        evaluate(
            EvalRequest(
                pred_dir=Path(root) / "pred",
                manifest=Path(root) / "items.jsonl",
                metrics=METRICS,
                random_weights=True,
                cache_dir=Path(cache),
                out=folder,
                progress=False,
            )
        )
        (folder / "calls.json").write_text(json.dumps(calls))
    finally:
        if world > 1:
            dist.destroy_process_group()


def _evaluate(tmp_path: Path, world: int, cache: str, out: str) -> list[tuple[object, dict[str, int]]]:
    args = (world, str(tmp_path / f"init-{out}"), str(tmp_path), str(tmp_path / cache), str(tmp_path / out))
    mp.spawn(_worker, args=args, nprocs=world, join=True)
    return [
        (
            read_results(tmp_path / out / f"rank{r}" / "results.json"),
            json.loads((tmp_path / out / f"rank{r}" / "calls.json").read_text()),
        )
        for r in range(world)
    ]


def _values(results) -> dict[str, float]:
    """Every number of the results: set values and counts, and each item's value, by a flat name."""
    values = {m.name: m.value for m in results.metrics} | {f"{m.name} n": m.n for m in results.metrics}
    return values | {f"{i} {m}": v for i, s in results.item_scores.items() for m, v in s.items()}


@pytest.mark.slow  # pocketsphinx and the test towers on five 8 s items, three evaluations (about 40 s)
def test_two_ranks_equal_one_process_and_a_rerun_calls_no_network(tmp_path: Path) -> None:
    _data(tmp_path)
    ((one, one_calls),) = _evaluate(tmp_path, 1, "cache-one", "one")
    assert one_calls == {"transcribe": 5, "ib_pairs": 5, "ib_builds": 1}
    assert {m.name for m in one.metrics} == set(METRICS) and not one.not_computed
    per_item = {i: s for i, s in one.item_scores.items()}
    # the inputs differ, and so do their numbers: a blind fixture would make the comparison empty
    assert len({round(s["ib_score"], 9) for s in per_item.values()}) == len(ITEMS)
    assert len({round(s["wer"], 9) for s in per_item.values()}) > 1

    two = _evaluate(tmp_path, 2, "cache-two", "two")
    # each rank scored its own block of items (2 + 3), never the other's
    assert [c["transcribe"] for _, c in two] == [2, 3] and [c["ib_pairs"] for _, c in two] == [2, 3]
    for results, _ in two:  # every rank files the whole evaluation, equal to one process
        assert _values(results) == pytest.approx(_values(one), rel=1e-12, abs=0)
        wer = results.provenance.preprocessing["metrics"]["wer"]
        assert wer["corpus"] == pytest.approx(one.provenance.preprocessing["metrics"]["wer"]["corpus"])
        assert wer["items"] == one.provenance.preprocessing["metrics"]["wer"]["items"]
        cache = results.provenance.preprocessing["cache"]
        assert cache["stage_writes"] == {"wer": 5, "ib_score": 5} and cache["stage_hits"] == []

    resumed = _evaluate(tmp_path, 2, "cache-two", "resumed")
    for results, calls in resumed:  # read back: no recogniser, no ImageBind, not even built
        assert calls == {"transcribe": 0, "ib_pairs": 0, "ib_builds": 0}
        assert _values(results) == _values(two[0][0])
        cache = results.provenance.preprocessing["cache"]
        assert sorted(cache["stage_hits"]) == sorted(METRICS)
        assert cache["stage_item_hits"] == {"wer": 5, "ib_score": 5}


@pytest.mark.slow  # three evaluations of five items with the test towers
def test_a_run_killed_inside_a_stage_keeps_its_finished_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of two items: the run is interrupted on the fourth item, after the first chunk was stored;
    the rerun scores only the three items left, and equals a fresh run."""
    pred, manifest = _data(tmp_path)
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(item_stages, "CHUNK", 2)
    monkeypatch.setattr(av_score, "build_scorer", tiny_scorer)
    calls: list[str] = []
    kill = [True]
    score_pair = IBScorer.score_pair

    def interrupted(self, item, pair):
        calls.append(item.item_id)
        if len(calls) == 4 and kill and kill.pop():
            raise KeyboardInterrupt
        return score_pair(self, item, pair)

    monkeypatch.setattr(IBScorer, "score_pair", interrupted)

    def request(cache: str, out: str) -> EvalRequest:
        return EvalRequest(
            pred_dir=pred,
            manifest=manifest,
            metrics=("ib_score",),
            random_weights=True,
            cache_dir=tmp_path / cache,
            out=tmp_path / out,
            progress=False,
        )

    with pytest.raises(KeyboardInterrupt):
        evaluate(request("cache", "killed"))
    assert calls == list(ITEMS[:4])
    calls.clear()
    resumed = evaluate(request("cache", "resumed")).results
    assert calls == list(ITEMS[2:])  # the first chunk was read back
    assert resumed.provenance.settings.cache.stage_item_hits == {"ib_score": 2}
    calls.clear()
    fresh = evaluate(request("fresh-cache", "fresh")).results
    assert calls == list(ITEMS)
    assert _values(resumed) == _values(fresh)


@pytest.mark.slow  # pocketsphinx on five items, once in one process and once in two (about 1 min)
def test_agomni_eval_under_torchrun_equals_one_process(tmp_path: Path) -> None:
    """`torchrun -m agomni.cli eval`: each process transcribes its block, rank 0 writes the results."""
    pred, manifest = _data(tmp_path)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root), "AGOMNI_HOME": str(tmp_path / "h")}
    argv = ["-m", "agomni.cli", "eval", "--pred", str(pred), "--manifest", str(manifest), "--metrics", "wer"]
    argv += ["--no-progress", "--cache-dir"]
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    for name, prefix in (("one", []), ("two", torchrun)):
        done = subprocess.run(
            [sys.executable, *prefix, *argv, str(tmp_path / f"cache-{name}"), "--out", str(tmp_path / name)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.count("results: ") == 1  # one table: rank 0's
    one, two = read_results(tmp_path / "one/results.json"), read_results(tmp_path / "two/results.json")
    assert _values(two) == pytest.approx(_values(one), rel=1e-12, abs=0)
    assert one.provenance.settings.processes == 1 and two.provenance.settings.processes == 2
    assert two.provenance.settings.cache.stage_writes == {"wer": 5}  # both ranks' items counted
