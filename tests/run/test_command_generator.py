"""`command:` adapter: every way one item's command can fail is a coverage entry; the run goes on."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agomni.errors import UsageError
from agomni.manifest import Item
from agomni.results import read_results
from agomni.run import GenSettings, RunRequest, run_suite
from agomni.run.generators import Replicate, parse_generator
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


# Records the arguments it received (one JSON file per item, beside --out's folder), then writes a tone.
RECORDER = """
import json, sys
from pathlib import Path
import numpy as np, soundfile as sf
out, item_id, fields = sys.argv[1], sys.argv[2], sys.argv[3:]
Path(out).parent.joinpath(f"args-{item_id}.json").write_text(json.dumps(fields))
sf.write(out, 0.1 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * (200 + 10 * len(item_id))), 16000)
"""
FIELDS = ("text", "transcript", "lyrics", "video", "duration", "id")
QUOTES = ("{}", "'{}'", '"{}"')


def payloads(marker: Path) -> list[str]:
    """Texts that would create `marker` if any shell parsed them (whatever quotes surround them)."""
    cmd = f"touch {marker}"
    return [
        f"$({cmd})",
        f"`{cmd}`",
        f"a dog; {cmd}",
        f"x && {cmd}",
        f"rain\n{cmd}",
        f"' ; {cmd} ; '",
        f'" ; {cmd} ; "',
        f"'$({cmd})'",
        "*",
        "caf\u00e9 \u96e8\u306e\u97f3 \U0001f415 {out}",
    ]


@pytest.mark.parametrize("style", range(len(QUOTES)))
def test_no_field_reaches_a_shell_whatever_the_quotes(tmp_path, style):
    """Every placeholder inside no, single and double quotes: payloads run nothing and the program
    receives each field's exact text."""
    marker = tmp_path / "PWNED"
    script = tmp_path / "record.py"
    script.write_text(RECORDER)
    quoted = [QUOTES[(style + i) % len(QUOTES)].format("{" + name + "}") for i, name in enumerate(FIELDS)]
    template = f"{sys.executable} {script} {{out}} {{id}} " + " ".join(quoted)
    items = [
        Item(
            id=f"item-{i}",
            task="t2a",
            line=i + 1,
            text=payload,
            transcript=payload,
            lyrics=payload,
            video=tmp_path / f"clip {payload}.mp4",
            duration=1.5,
        )
        for i, payload in enumerate(payloads(marker))
    ]
    gen = parse_generator(f"command:{template}", GenSettings(progress=False))
    rep = Replicate(0, 0, tmp_path / "out")
    failures = gen.produce(items, [rep], lambda _: None)
    assert not marker.exists()
    assert failures == {rep.name: []}
    for item in items:
        received = json.loads((rep.folder / f"args-{item.id}.json").read_text())
        expected = [item.text, item.transcript, item.lyrics, str(item.video), "1.5", item.id]
        assert received == expected
        assert (rep.folder / f"{item.id}.wav").is_file()


def test_readme_shell_script_recipe_gets_the_exact_text(tmp_path):
    """The README's way to use a shell: `command:bash gen.sh {out} {text}` with "$2" in the script."""
    marker = tmp_path / "PWNED"
    writer = tmp_path / "tone.py"
    writer.write_text(RECORDER)
    script = tmp_path / "gen.sh"
    script.write_text(f'printf "%s" "$2" > "$1.txt"\nexec {sys.executable} {writer} "$1" x\n')
    items = [Item(id=f"i{k}", task="t2a", line=k, text=p) for k, p in enumerate(payloads(marker))]
    gen = parse_generator(f"command:bash {script} {{out}} {{text}}", GenSettings(progress=False))
    rep = Replicate(0, 0, tmp_path / "out")
    assert gen.produce(items, [rep], lambda _: None) == {rep.name: []}
    assert not marker.exists()
    for item in items:
        assert (rep.folder / f".{item.id}.command.wav.txt").read_text() == item.text


def test_failed_command_that_wrote_its_file_is_a_coverage_entry(tmp_path, heldout):
    """A command that writes {out} and then exits non-zero: that item is an error entry, its temporary
    file is gone, and the run scores the others."""
    script = tmp_path / "gen.py"
    script.write_text(
        "import sys\nimport numpy as np, soundfile as sf\n"
        "item, out = sys.argv[1], sys.argv[2]\n"
        "rng = np.random.default_rng(len(item))\n"
        "sf.write(out, rng.normal(0, 0.1, 32000).astype('float32'), 16000)\n"
        "sys.exit(1 if item.startswith('t2a') else 0)\n"
    )
    request = RunRequest(
        suite="smoke",
        out=tmp_path / "run",
        generator=f"command:{sys.executable} {script} {{id}} {{out}}",
        manifest=heldout,
        metrics=("fd_offline",),
        settings=GenSettings(progress=False),
    )
    results = read_results(run_suite(request))
    coverage = {c.id: c for c in results.coverage}
    assert coverage["t2a-heldout-000"].status == "error"
    assert "exited with status 1" in coverage["t2a-heldout-000"].reason
    assert [c.status for c in results.coverage].count("ok") == len(results.coverage) - 1
    folder = tmp_path / "run" / "seed-0" / "sample-0"
    assert not list(folder.glob(".*")) and not (folder / "t2a-heldout-000.wav").exists()


# Started as `agomni run` with a command: generator whose program starts a child and waits for it.
PARENT = """
import os, subprocess, sys, time
from pathlib import Path
pids = Path(sys.argv[1])
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
pids.write_text(f"{os.getpid()} {child.pid}")
child.wait()
"""


@pytest.mark.slow  # starts agomni in a child process (imports torch: 5-30 s)
def test_ctrl_c_during_a_command_stops_its_whole_process_group(tmp_path, heldout):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    pids = tmp_path / "pids"
    argv = [sys.executable, "-m", "agomni.cli", "run", "smoke", "--manifest", str(heldout), "--no-progress"]
    argv += ["--out", str(tmp_path / "run"), "--metrics", "fd_offline", "--format", "json"]
    argv += ["--generator", f"command:{sys.executable} {script} {pids} {{out}}"]
    # Ctrl-C's default disposition, as a terminal gives it: a test session started in the background
    # (`pytest &` without job control) passes SIGINT on ignored, and Python then keeps ignoring it
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 600  # generous: a loaded 2-core machine starts Python slowly
        while not (pids.is_file() and len(pids.read_text().split()) == 2):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        started = [int(p) for p in pids.read_text().split()]
        proc.send_signal(signal.SIGINT)  # what Ctrl-C delivers to agomni (the command has its own group)
        _, stderr = proc.communicate(timeout=300)
    finally:  # a failed wait leaves no agomni process running on
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    deadline = time.monotonic() + 120
    while any(alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in started)
    assert not list((tmp_path / "run" / "seed-0" / "sample-0").glob(".*.command.wav"))


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, killed and waiting for its reaper, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_template_that_does_not_split_or_names_no_program_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="bad template"):
        parse_generator("command:gen.sh 'unclosed {out}", GenSettings())
    with pytest.raises(UsageError, match=r"program 'no-such-program-x' not found.*bash SCRIPT"):
        parse_generator("command:no-such-program-x {out}", GenSettings())


def test_unknown_template_field_and_kind_are_usage_errors():
    with pytest.raises(UsageError, match=r"unknown field.*prompt"):
        parse_generator("command:gen {prompt} {out}", GenSettings())
    with pytest.raises(UsageError, match="checkpoint, folder, python, command"):
        parse_generator("script:gen.sh", GenSettings())
