"""Provenance of a run: which code, packages, machine, device, seed, checkpoints, preprocessing and
manifest produced the numbers, how long each stage took, and whether random weights were involved."""

from __future__ import annotations

import copy
import platform
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import UsageError
from .record import Record
from .settings import EvalSettings

# Distributions whose versions can change a number agomni prints (decoding, resampling, networks,
# metric backbones). Each is recorded with its installed version, or None when not installed.
PROVENANCE_PACKAGES: tuple[str, ...] = (
    "torch",
    "torchaudio",
    "torchvision",
    "numpy",
    "scipy",
    "pandas",
    "soundfile",
    "av",
    "soxr",
    "safetensors",
    "huggingface-hub",
    "jiwer",
    "jsonschema",
    "transformers",
    "timm",
    "librosa",
    "resampy",
    "onnxruntime",
    "opencv-python",
    "speechbrain",
    "laion-clap",
    "panns-inference",
    "hear21passt",
    "torchvggish",
    "resemblyzer",
    "pocketsphinx",
    "torchcrepe",
    "speechmos",
    "syncnet-python",
)
# How a checkpoint's bytes were trusted: its SHA-256 matched the registry's pin; it was recorded on
# first use (trust on first use); or no checkpoint was loaded and the network kept random weights.
CHECKPOINT_TRUST: tuple[str, ...] = ("pinned", "tofu", "random-weights")
_SOURCE_DIR = Path(__file__).resolve().parents[2]  # the folder holding the agomni package


@dataclass(frozen=True)
class GitInfo(Record):
    """The git commit of the agomni source tree and whether the tree had uncommitted changes
    (tracked or untracked, not ignored); when there is no commit, `dirty` is None and `reason` says why."""

    commit: str | None
    dirty: bool | None
    reason: str | None = None


@dataclass(frozen=True)
class CheckpointRecord(Record):
    """A checkpoint's SHA-256 (hex; None allowed only for random weights) and its `trust`, one of
    CHECKPOINT_TRUST."""

    sha256: str | None
    trust: str


@dataclass(frozen=True)
class Provenance(Record):
    """Everything needed to say where a run's numbers came from. `timings` maps stage -> seconds;
    `random_weights` is True whenever any network with random weights was involved."""

    agomni_version: str
    git: GitInfo
    packages: dict[str, str | None]
    python: str
    platform: str
    device: str
    seed: int | None = None
    checkpoints: dict[str, CheckpointRecord] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    manifest_sha256: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    random_weights: bool = False

    @property
    def settings(self) -> EvalSettings:
        """``preprocessing`` as typed fields (`agomni.results.settings`)."""
        return EvalSettings.from_dict(self.preprocessing)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        checkpoints = {name: CheckpointRecord.from_dict(rec) for name, rec in data["checkpoints"].items()}
        return cls(
            **{**copy.deepcopy(dict(data)), "git": GitInfo.from_dict(data["git"]), "checkpoints": checkpoints}
        )


def collect_provenance(
    *,
    device: str = "cpu",
    seed: int | None = None,
    checkpoints: Mapping[str, CheckpointRecord] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    manifest_sha256: str | None = None,
    timings: Mapping[str, float] | None = None,
    random_weights: bool = False,
    packages: tuple[str, ...] = PROVENANCE_PACKAGES,
    source_dir: str | Path | None = None,
) -> Provenance:
    """Build the provenance block for a run on this machine.

    Collects the agomni version, the git state of `source_dir` (default: the tree agomni is imported
    from), the installed version of each of `packages` (None when not installed), Python and
    platform strings, and `device` described ("cuda:0 (NVIDIA H100 ...)" for CUDA). `random_weights`
    is set when the caller says so or any checkpoint's trust is "random-weights".
    """
    records = dict(checkpoints or {})
    return Provenance(
        agomni_version=__version__,
        git=git_info(_SOURCE_DIR if source_dir is None else Path(source_dir)),
        packages=installed_versions(packages),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        platform=platform.platform(),
        device=describe_device(device),
        seed=seed,
        checkpoints=records,
        preprocessing=copy.deepcopy(dict(preprocessing or {})),
        manifest_sha256=manifest_sha256,
        timings=dict(timings or {}),
        random_weights=random_weights or any(r.trust == "random-weights" for r in records.values()),
    )


def installed_versions(packages: tuple[str, ...]) -> dict[str, str | None]:
    """Distribution name -> installed version (importlib.metadata), None when not installed."""
    found: dict[str, str | None] = {}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def git_info(source_dir: Path) -> GitInfo:
    """HEAD commit and dirtiness of the git checkout whose top level is `source_dir`.

    A `source_dir` inside some other repository (agomni installed into a project's virtualenv) is
    not agomni's checkout: that gives commit None with the reason, as do a missing git executable
    and a failing git command.
    """
    git = shutil.which("git")
    if git is None:
        return GitInfo(None, None, "git executable not found on PATH")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [git, "-C", str(source_dir), *args], capture_output=True, text=True, timeout=30, check=False
        )

    top = run("rev-parse", "--show-toplevel")
    if top.returncode != 0:
        detail = top.stderr.strip().splitlines()[-1] if top.stderr.strip() else "git failed"
        return GitInfo(None, None, f"{source_dir} is not a git checkout ({detail})")
    if Path(top.stdout.strip()).resolve() != source_dir.resolve():
        return GitInfo(None, None, f"{source_dir} is inside another git repository ({top.stdout.strip()})")
    head = run("rev-parse", "--verify", "HEAD")
    if head.returncode != 0:
        return GitInfo(None, None, f"no commit in {source_dir}: {head.stderr.strip() or 'git failed'}")
    status = run("status", "--porcelain", "--untracked-files=normal")
    if status.returncode != 0:
        return GitInfo(None, None, f"git status failed in {source_dir}: {status.stderr.strip()}")
    return GitInfo(head.stdout.strip(), bool(status.stdout.strip()))


def describe_device(device: str) -> str:
    """ "cpu", or "cuda:N (GPU name)" for a CUDA device (raises UsageError when CUDA is not available);
    any other device string is returned as given."""
    device = str(device)
    if not device.startswith("cuda"):
        return device
    import torch  # only here: CPU runs need not import torch for provenance

    if not torch.cuda.is_available():
        raise UsageError(f"device {device!r} requested but CUDA is not available on this machine")
    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
