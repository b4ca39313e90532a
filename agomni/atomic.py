"""Atomic file writes: readers see the old file or the whole new one, never a part of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(target: str | Path, write: Callable[[Path], Any], *, durable: bool = False) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``target``, then rename it onto ``target``.

    The rename is atomic because both paths are in the same folder (created if missing). The file gets the
    permissions a plain ``open(target, "w")`` would (0666 less the process umask), not the 0600 of a
    temporary file, so shared caches and output folders stay readable. On any error the temporary file
    is removed and ``target`` is left as it was. ``durable=True`` also fsyncs the
    data before the rename, so a power loss cannot leave a renamed but empty file: use it for records
    that are expensive or impossible to rebuild (results, weights records, checkpoints), not for caches
    that detect and recompute a damaged entry.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def current_umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
