"""`agomni train CONFIG [--out DIR] [--resume] [--max-steps N] [--device DEV]`.

Single process, or data parallel under torchrun (``torchrun --nproc-per-node 2 -m agomni.cli train ...``):
WORLD_SIZE > 1 initialises torch.distributed (NCCL on CUDA, gloo on CPU).
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from ... import __version__, distributed
from ...errors import UsageError
from .config import load_train_config
from .loop import train_model
from .prepare import prepare_run


def git_commit() -> str | None:
    """The checkout's HEAD commit, with "-dirty" when files under agomni/ differ from it (untracked ones
    included), or None outside git."""
    root = Path(__file__).resolve().parents[3]

    def git(*args: str) -> str:
        run = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=10
        )
        return run.stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--", "agomni")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")


def _device(requested: str | None) -> torch.device:
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if requested is None:
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {requested}: no CUDA device is available")
        if device.index is None:
            device = torch.device("cuda", local)
    return device


def cli_train(args: argparse.Namespace) -> int:
    """Run `agomni train` (module docstring); the output folder defaults to runs/<config stem>."""
    cfg = load_train_config(args.config)
    if getattr(args, "max_steps", None) is not None:
        if args.max_steps < 1:
            raise UsageError(f"--max-steps must be >= 1, got {args.max_steps}")
        cfg = cfg.with_max_steps(args.max_steps)
    out = Path(getattr(args, "out", None) or Path("runs") / Path(args.config).stem)
    device = _device(getattr(args, "device", None))
    shard = distributed.start(str(device))
    try:
        log = functools.partial(print, flush=True) if shard.main else (lambda message: None)
        prepared = prepare_run(cfg, out, log)
        run_info: dict[str, Any] = {
            "training_command": " ".join(["agomni", *sys.argv[1:]]) if sys.argv else "agomni train",
            "git_commit": git_commit(),
            "agomni_version": __version__,
            "torch_version": torch.__version__,
            "device": str(device),
            "world_size": shard.world,
        }
        summary = train_model(
            cfg,
            prepared,
            out,
            resume=bool(getattr(args, "resume", False)),
            device=device,
            run_info=run_info,
            log=log,
        )
        log(f"done: step {summary['step']}; checkpoints in {out / 'checkpoints'}; log {summary['log']}")
    finally:
        distributed.stop()
    return 0
