"""`command:` adapter: every way one item's command can fail is a coverage entry; the run goes on."""

import sys
from pathlib import Path

import pytest

from agomni.errors import UsageError
from agomni.manifest import load_manifest
from agomni.results import read_results
from agomni.run import GenSettings, RunRequest, run_suite
from agomni.run.generators import parse_generator
from agomni.toycorpus import build_corpus

SCRIPT = """
import sys, time
import numpy as np, soundfile as sf
item, out = sys.argv[1], sys.argv[2]
task = item.split("-")[0]
if task == "t2a":
    print("model crashed", file=sys.stderr)
    sys.exit(3)
if task == "v2a":
    time.sleep(60)
if task == "tts":
    sys.exit(0)
rate = 8000 if task == "v2s" else 16000
rng = np.random.default_rng(len(item) + len(task))
sf.write(out, rng.normal(0, 0.1, 2 * rate).astype("float32"), rate)
"""


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    return build_corpus(root, n_train=1, n_heldout=1)["heldout"]


def test_each_failure_is_a_coverage_entry_with_the_item_and_reason(tmp_path, heldout):
    script = tmp_path / "gen.py"
    script.write_text(SCRIPT)
    request = RunRequest(
        suite="smoke",
        out=tmp_path / "run",
        generator=f"command:{sys.executable} {script} {{id}} {{out}}",
        manifest=heldout,
        metrics=("fd_offline",),
        settings=GenSettings(timeout_s=3, progress=False),
    )
    results = read_results(run_suite(request))
    coverage = {c.id: c for c in results.coverage}
    assert coverage["t2a-heldout-000"].status == "error"
    assert "exited with status 3" in coverage["t2a-heldout-000"].reason
    assert "model crashed" in coverage["t2a-heldout-000"].reason
    assert "timed out after 3 s" in coverage["v2a-heldout-000"].reason
    assert "wrote no file" in coverage["tts-heldout-000"].reason
    assert (
        "8000 Hz" in coverage["v2s-heldout-000"].reason and "16000 Hz" in coverage["v2s-heldout-000"].reason
    )
    assert [c.status for c in results.coverage].count("ok") == 2  # the song items were scored
    (metric,) = results.metrics
    assert metric.name == "fd_offline" and metric.n == 2


def test_template_fields_are_shell_quoted(heldout):
    item = next(i for i in load_manifest(heldout) if i.text)
    gen = parse_generator("command:echo {text} > {out}", GenSettings())
    command = gen.command(item, Path("/tmp/x y.wav"))
    assert "'/tmp/x y.wav'" in command and f"'{item.text}'" in command


def test_unknown_template_field_and_kind_are_usage_errors():
    with pytest.raises(UsageError, match=r"unknown field.*prompt"):
        parse_generator("command:gen {prompt} {out}", GenSettings())
    with pytest.raises(UsageError, match="checkpoint, folder, python, command"):
        parse_generator("script:gen.sh", GenSettings())
