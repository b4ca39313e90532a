"""kill -9 during generation and again during scoring, then re-run: identical numbers, nothing redone."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from agomni.results import read_results
from tests.run.toy_fixtures import no_video_manifest

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "agomni/model/checkpoints/tiny-16k-toy.safetensors"
# Runs `agomni run` in a child process that SIGKILLs itself after the N-th call of a patched function.
KILLER = """
import os, signal, sys
import importlib
target = importlib.import_module("{module}")
for name in "{path}".split("."):
    target = getattr(target, name) if name else target
calls = [0]
original = target.{attr}
def patched(*args, **kwargs):
    result = original(*args, **kwargs)
    calls[0] += 1
    if calls[0] == {after}:
        os.kill(os.getpid(), signal.SIGKILL)
    return result
target.{attr} = patched
from agomni.cli import main
sys.exit(main(sys.argv[1:]))
"""


def agomni_run(out, manifest, kill=None):
    argv = ["run", "smoke", "--generator", f"checkpoint:{CHECKPOINT}", "--manifest", str(manifest)]
    argv += ["--out", str(out), "--steps", "2", "--no-progress", "--format", "json"]
    code = "from agomni.cli import main; import sys; sys.exit(main(sys.argv[1:]))"
    if kill is not None:
        module, path, attr, after = kill
        code = KILLER.format(module=module, path=path, attr=attr, after=after)
    env_path = {"PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env={**os.environ, **env_path}
    )


@pytest.mark.slow  # three interrupted/resumed runs and one clean run of the tiny model (about 1-3 min on 2 cores)
def test_kill_9_during_generation_and_scoring_then_resume_gives_identical_results(tmp_path):
    manifest = no_video_manifest(tmp_path / "toy")  # 6 items
    resumed = tmp_path / "resumed"
    killed = agomni_run(resumed, manifest, kill=("agomni.run.generators", "", "write_output", 3))
    assert killed.returncode == -9, killed.stderr
    assert len(list((resumed / "seed-0" / "sample-0").glob("*.wav"))) == 3
    killed = agomni_run(resumed, manifest, kill=("agomni.metrics.cache", "EmbeddingCache", "put", 5))
    assert killed.returncode == -9, killed.stderr
    assert not (resumed / "results.json").exists()
    finished = agomni_run(resumed, manifest)
    assert finished.returncode == 0, finished.stderr
    clean = agomni_run(tmp_path / "clean", manifest)
    assert clean.returncode == 0, clean.stderr

    log = (resumed / "log.txt").read_text()
    assert "generate seed 0: 3 of 6 items already done (not recomputed), 3 to generate" in log
    assert "generate seed 0: 6 of 6 items already done (not recomputed), 0 to generate" in log
    # The killed scoring had stored 5 embeddings (its 5th put completed before the kill): read, not redone.
    assert "scored seed-0/sample-0: 5 embeddings read from the cache (not recomputed), 7 computed" in log
    a, b = read_results(resumed / "results.json"), read_results(tmp_path / "clean" / "results.json")
    assert [(m.name, m.value) for m in a.metrics] == [(m.name, m.value) for m in b.metrics]
    assert {m.name for m in a.metrics} == {"fd_offline", "kad_offline", "fm_validation_loss"}
    assert a.item_scores == b.item_scores
    for wav in (tmp_path / "clean" / "seed-0" / "sample-0").glob("*.wav"):  # samples equal (the header's
        clean_samples, _ = sf.read(wav, dtype="float32")  # PEAK chunk holds a write time, so not bytes)
        resumed_samples, _ = sf.read(resumed / "seed-0" / "sample-0" / wav.name, dtype="float32")
        assert np.array_equal(clean_samples, resumed_samples)
