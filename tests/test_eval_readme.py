"""The README's "Evaluating generated audio" commands run as written (offline) and give the documented
results; the FD is checked against numpy/scipy on the same clips."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import linalg

from agomni.metrics import offline_embedder

ROOT = Path(__file__).resolve().parents[1]
DEMO = "/tmp/agomni-eval-demo"


def readme_eval_commands() -> list[str]:
    """The first fenced bash block of the README section "Evaluating generated audio"."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Evaluating generated audio", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "the section has no ```bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_section_documents_the_flags() -> None:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Evaluating generated audio", 1)[1]
    for needle in ("--random-weights", "NOT comparable", "--allow-missing", "coverage", "--profile",
                   "av-benchmark", "stable-audio-metrics", "fadtk", "$AGOMNI_HOME/cache", "results.json",
                   "--ref-superset", "--overwrite"):  # fmt: skip
        assert needle in section, needle


def test_readme_eval_commands_run_offline(tmp_path: Path) -> None:
    commands = readme_eval_commands()
    assert commands[0].startswith("python benchmarks/make_clips.py")
    assert sum(c.startswith("agomni eval ") for c in commands) == 2
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AGOMNI_HOME": str(tmp_path / "home"),
        "AGOMNI_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    demo = tmp_path / "demo"
    for command in commands:
        argv = [part.replace(DEMO, str(demo)) for part in shlex.split(command)]
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (command, done.stdout, done.stderr)

    results = json.loads((demo / "run" / "results.json").read_text())
    metrics = {m["name"]: m for m in results["metrics"]}
    assert set(metrics) == {"fd_offline", "kad_offline"}
    assert [c["status"] for c in results["coverage"]] == ["ok"] * 8

    # fd_offline recomputed: mel-stats rows of both folders, FD with scipy's sqrtm.
    emb = offline_embedder("mel-stats")

    def rows(folder: Path) -> np.ndarray:
        out = []
        for path in sorted(folder.glob("*.wav")):
            data, rate = sf.read(path, dtype="float32")
            assert rate == emb.sample_rate
            out.append(emb.embed(np.asarray(data)[None])[0].numpy().astype(np.float64))
        return np.stack(out)

    a, b = rows(demo / "pred"), rows(demo / "ref")
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
    assert metrics["fd_offline"]["value"] == pytest.approx(expected, rel=1e-4)

    inf = json.loads((demo / "run-inf" / "results.json").read_text())
    assert inf["metrics"][0]["name"] == "fad_inf_mel_frames"
    assert inf["provenance"]["seed"] == 7
    assert inf["provenance"]["preprocessing"]["metrics"]["fad_inf_mel_frames"]["seed"] == 7
