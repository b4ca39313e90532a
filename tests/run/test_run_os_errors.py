"""`agomni run` on storage it cannot use: a read-only --out, a full disk, an unreadable reference folder.
Each ends with one sentence naming the path and what to do, never a traceback.

Permissions do not bind root, so as root the run is started without the capabilities that bypass them
(`setpriv --bounding-set -dac_override,-dac_read_search`); as another user, plain modes suffice.
"""

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agomni.cli import main
from tests.run.toy_fixtures import no_video_manifest

ROOT = Path(__file__).resolve().parents[2]
TONE = "python:tests.run.test_resume_checks:tone"
NO_BYPASS = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


@pytest.fixture(scope="module")
def no_video(tmp_path_factory):
    return no_video_manifest(tmp_path_factory.mktemp("toy"))


def run_bound_by_permissions(*args: str) -> subprocess.CompletedProcess:
    """`agomni run smoke ARGS` in a process that file permissions apply to (module docstring)."""
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv is not installed: permissions cannot bind this process")
        probe = subprocess.run([*NO_BYPASS, "true"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip(f"running as root and setpriv cannot drop capabilities here: {probe.stderr!r}")
        prefix = NO_BYPASS
    argv = [*prefix, sys.executable, "-m", "agomni.cli", "run", "smoke", "--no-progress", "--format", "json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*argv, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow  # starts agomni in a child process (imports torch: 5-30 s)
@pytest.mark.parametrize("below", [False, True])
def test_read_only_out_is_one_sentence_before_any_work(tmp_path, no_video, below):
    read_only = tmp_path / "shared"
    read_only.mkdir()
    read_only.chmod(0o555)
    out = read_only / "run" if below else read_only
    done = run_bound_by_permissions("--manifest", str(no_video), "--out", str(out), "--generator", TONE)
    assert done.returncode == 2, done.stderr
    assert f"agomni run: error: --out {out}: cannot write there (Permission denied)" in done.stderr
    assert "choose a folder you can write to" in done.stderr and "Traceback" not in done.stderr
    assert list(read_only.iterdir()) == []


@pytest.mark.slow  # starts agomni in a child process (imports torch: 5-30 s)
def test_unreadable_reference_folder_is_one_sentence(tmp_path, no_video):
    copy = tmp_path / "toy"
    shutil.copytree(no_video.parent, copy)
    (copy / "heldout").chmod(0o600)  # readable and writable by its owner, but not searchable
    try:
        done = run_bound_by_permissions(
            "--manifest", str(copy / no_video.name), "--out", str(tmp_path / "run"), "--generator", TONE
        )
    finally:
        (copy / "heldout").chmod(0o755)
    assert done.returncode == 1, done.stderr
    assert f"permission denied for {copy / 'heldout'}" in done.stderr, done.stderr
    assert "make it readable" in done.stderr and "Traceback" not in done.stderr


def test_full_disk_is_one_sentence(tmp_path, no_video, monkeypatch, capsys):
    """A 300 kB tmpfs where mounting is allowed; elsewhere the audio writer raises ENOSPC."""
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(small)], capture_output=True
    )
    if mounted.returncode != 0:

        def full(path, *args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

        monkeypatch.setattr("agomni.run.generators.sf.write", full)
    try:
        argv = ["run", "smoke", "--manifest", str(no_video), "--out", str(small / "run"), "--no-progress"]
        code = main([*argv, "--format", "json", "--metrics", "fd_offline", "--generator", TONE])
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", str(small)], check=True)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "agomni run: error: cannot write " in err
    assert "free some space or choose another --out" in err
