"""collect_provenance: real installed versions, the real git commit, the random-weights flag."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy
import pytest
import scipy

import agomni
from agomni.errors import UsageError
from agomni.results import (
    PROVENANCE_PACKAGES,
    CheckpointRecord,
    Results,
    RunInfo,
    collect_provenance,
    read_results,
    write_results,
)

REPO = Path(agomni.__file__).resolve().parents[1]


def test_package_versions_are_the_installed_ones():
    provenance = collect_provenance()
    assert set(provenance.packages) == set(PROVENANCE_PACKAGES)
    assert provenance.packages["numpy"] == numpy.__version__
    assert provenance.packages["scipy"] == scipy.__version__
    for name in PROVENANCE_PACKAGES:
        try:
            expected = metadata.distribution(name).version
        except metadata.PackageNotFoundError:
            expected = None
        assert provenance.packages[name] == expected, name
    assert provenance.agomni_version == agomni.__version__ == metadata.version("agomni")
    assert (
        provenance.python == f"{platform.python_implementation()} {'.'.join(map(str, sys.version_info[:3]))}"
    )
    assert provenance.platform == platform.platform()
    assert provenance.device == "cpu"


def test_uninstalled_package_is_recorded_as_none():
    provenance = collect_provenance(packages=("numpy", "agomni-no-such-distribution"))
    assert provenance.packages == {"numpy": numpy.__version__, "agomni-no-such-distribution": None}


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git executable")
def test_git_commit_is_head_of_the_source_tree():
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip(f"agomni is not imported from a git checkout here: {head.stderr.strip()}")
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=True
    )
    git = collect_provenance().git
    assert git.commit == head.stdout.strip()
    assert git.dirty == bool(status.stdout.strip())
    assert git.reason is None


def test_git_outside_a_checkout_gives_reason(tmp_path):
    git = collect_provenance(source_dir=tmp_path).git
    assert (git.commit, git.dirty) == (None, None)
    assert git.reason is not None and str(tmp_path) in git.reason


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git executable")
def test_git_inside_another_repository_is_not_agomnis(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "site-packages").mkdir()
    git = collect_provenance(source_dir=tmp_path / "site-packages").git
    assert git.commit is None
    assert "inside another git repository" in git.reason


def test_random_weights_flag_follows_checkpoints_and_caller():
    pinned = {"vae": CheckpointRecord("a" * 64, "pinned")}
    assert collect_provenance(checkpoints=pinned).random_weights is False
    mixed = {**pinned, "clap": CheckpointRecord(None, "random-weights")}
    assert collect_provenance(checkpoints=mixed).random_weights is True
    assert collect_provenance(random_weights=True).random_weights is True


def test_collected_provenance_writes_and_reads_back(tmp_path):
    provenance = collect_provenance(
        seed=7,
        checkpoints={"clap": CheckpointRecord(None, "random-weights")},
        preprocessing={"sample_rate": 48000},
        manifest_sha256="b" * 64,
        timings={"embed": 0.5},
    )
    results = Results(RunInfo("r", "2026-01-01T00:00:00Z"), provenance)
    assert results.random_weights is True
    assert read_results(write_results(results, tmp_path / "results.json")) == results


def test_cuda_device_unavailable_is_a_usage_error():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        assert collect_provenance(device="cuda").device == f"cuda:0 ({torch.cuda.get_device_name(0)})"
    else:
        with pytest.raises(UsageError, match="CUDA is not available"):
            collect_provenance(device="cuda:0")
