import subprocess
import sys

import pytest

from agomni.cli import _HANDLERS, build_parser, main

MINIMAL_ARGV = {
    "eval": ["eval", "--pred", "x"],
    "generate": ["generate", "--checkpoint", "c", "--suite", "s", "--out", "o"],
    "report": ["report", "run"],
    "compare": ["compare", "a", "b"],
    "train": ["train", "cfg.json"],
    "profile": ["profile", "--size", "tiny"],
}


def test_every_architecture_command_is_defined():
    commands = {
        "eval",
        "generate",
        "run",
        "report",
        "compare",
        "profile",
        "weights",
        "train",
        "suites",
        "validate",
    }
    parser_commands = set(build_parser()._subparsers._group_actions[0].choices)
    assert commands <= parser_commands
    assert parser_commands == set(_HANDLERS)


@pytest.mark.parametrize("command", ["report", "compare"])
def test_report_and_compare_never_exit_3(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the minimal arguments name run folders that do not exist here
    assert main(MINIMAL_ARGV[command]) == 2
    err = capsys.readouterr().err
    assert "no results.json" in err and "not available" not in err and "Traceback" not in err


def test_console_entry_prints_one_line_not_a_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "agomni.cli", "validate", str(tmp_path / "absent.jsonl")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "absent.jsonl" in proc.stderr + proc.stdout
