"""`agomni run smoke` sharded over two torchrun processes (gloo) equals one process."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from agomni.results import read_results

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "agomni/model/checkpoints/tiny-16k-toy.safetensors"


def _run(prefix: list[str], out: Path, data: Path) -> str:
    argv = ["run", "smoke", "--generator", f"checkpoint:{CHECKPOINT}", "--steps", "2", "--no-progress"]
    argv += ["--format", "json", "--data-root", str(data), "--out", str(out)]
    # torchrun gives each process one thread; the single process gets the same, so that both do the
    # same floating-point reductions (thread count changes a float sum's order, not sharding).
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [*prefix, "-m", "agomni.cli", *argv], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


@pytest.mark.slow  # the 72 held-out items of the toy model at 2 steps, once per process count (about 70 s)
def test_two_processes_equal_one(tmp_path):
    data = tmp_path / "data"
    _run([sys.executable], tmp_path / "one", data)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    log = _run(torchrun, tmp_path / "two", data)

    # each rank generated and embedded its half; rank 0 alone wrote the results
    assert "rank 0/2: generate seed 0: 0 of 36 items already done (not recomputed), 36 to generate" in log
    assert "rank 1/2: generate seed 0: 0 of 36 items already done (not recomputed), 36 to generate" in log
    assert "rank 1/2: wrote" not in log

    one, two = read_results(tmp_path / "one/results.json"), read_results(tmp_path / "two/results.json")
    assert [(c.id, c.status) for c in one.coverage] == [(c.id, c.status) for c in two.coverage]
    assert len(one.coverage) == 72 and all(c.status == "ok" for c in one.coverage)
    assert (
        [m.name for m in one.metrics]
        == [m.name for m in two.metrics]
        == [
            "fd_offline",
            "kad_offline",
            "fm_validation_loss",
        ]
    )
    for a, b in zip(one.metrics, two.metrics, strict=True):
        assert b.value == pytest.approx(a.value, rel=1e-9, abs=0), a.name
        assert (a.n, a.unit) == (b.n, b.unit)
    assert one.item_scores.keys() == two.item_scores.keys()
    for item, scores in one.item_scores.items():
        for name, value in scores.items():
            assert two.item_scores[item][name] == pytest.approx(value, rel=1e-9, abs=0), (item, name)
    assert two.provenance.preprocessing["processes"] == 2 and one.provenance.preprocessing["processes"] == 1

    # the generated audio is the same file by file: sharding does not change what an item gets
    for wav in sorted((tmp_path / "one/seed-0/sample-0").glob("*.wav")):
        twin = tmp_path / "two/seed-0/sample-0" / wav.name
        assert np.array_equal(sf.read(wav)[0], sf.read(twin)[0]), wav.name
