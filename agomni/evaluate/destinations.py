"""Where `agomni eval` writes, checked before any work: the ``--out`` folder (results there are replaced
only with ``--overwrite``) and the ``--cache-dir`` folder must exist or be creatable, and be writable."""

from __future__ import annotations

import tempfile
from pathlib import Path

from agomni.errors import UsageError


def check_writable(folder: Path, what: str, option: str) -> None:
    """UsageError unless a file can be created in ``folder`` (made if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UsageError(
            f"{what} {folder} is not writable ({err.strerror or err}); choose another {option}"
        ) from err


def check_destinations(out: Path | None, results_file: str, overwrite: bool, cache_dir: Path | None) -> None:
    """UsageError naming the path and the option to change: ``out`` is a file, holds ``results_file``
    already (without ``overwrite``) or is not writable; ``cache_dir`` (None: not checked) not writable."""
    if out is not None:
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out} is a file, not a folder; choose a folder")
        if (out / results_file).exists() and not overwrite:
            raise UsageError(
                f"{out / results_file} already exists; pass --overwrite to replace it, or choose another --out"
            )
        check_writable(out, "output folder", "--out")
    if cache_dir is not None:
        check_writable(cache_dir, "cache folder", "--cache-dir (or pass --no-cache)")
