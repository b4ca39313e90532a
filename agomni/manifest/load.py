"""Load a valid manifest into frozen items with absolute paths, or fail with every problem listed."""

from __future__ import annotations

import copy
import hashlib
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import ManifestError
from .fields import PATH_FIELDS, TASKS
from .validate import scan_manifest


@dataclass(frozen=True)
class Item:
    """One manifest item. Path fields are absolute, symlink-resolved paths (resolved against `data_root`
    when the item names one, else against the manifest's folder); `duration` is in seconds;
    absent optional fields are None; `meta` is a read-only view of the item's free-form object."""

    id: str
    task: str
    line: int
    text: str | None = None
    transcript: str | None = None
    lyrics: str | None = None
    language: str | None = None
    video: Path | None = None
    reference_audio: Path | None = None
    prompt_audio: Path | None = None
    prompt_text: str | None = None
    duration: float | None = None
    data_root: Path | None = None
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)


@dataclass(frozen=True)
class Manifest:
    """A loaded manifest: its absolute `path`, the folder its paths are relative to (`root`), the
    SHA-256 of its bytes (for provenance) and its items in file order."""

    path: Path
    root: Path
    sha256: str
    items: tuple[Item, ...]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self.items)

    def task_counts(self) -> dict[str, int]:
        """Items per task, in the order tasks are defined, only tasks that occur."""
        counts = Counter(item.task for item in self.items)
        return {task: counts[task] for task in TASKS if counts[task]}


def load_manifest(path: str | Path) -> Manifest:
    """Read, check (files included) and load the manifest at `path`.

    Raises ManifestError(path, [one line per problem]) if `validate_manifest` finds any problem; the
    file is read once, so the items and the hash describe the same bytes.
    """
    scan = scan_manifest(path, check_files=True)
    if scan.problems or scan.data is None:
        raise ManifestError(path, [str(problem) for problem in scan.problems])
    absolute = Path(os.path.abspath(path))
    root = absolute.parent
    items = tuple(_item(lineno, obj, root) for lineno, obj in scan.records)
    return Manifest(absolute, root, hashlib.sha256(scan.data).hexdigest(), items)


def _item(lineno: int, obj: dict[str, Any], root: Path) -> Item:
    values = dict(obj)
    if "data_root" in values:
        values["data_root"] = root = Path(values["data_root"]).resolve()
    for name in PATH_FIELDS:
        if name in values:
            values[name] = (root / values[name]).resolve()
    if "duration" in values:
        values["duration"] = float(values["duration"])
    values["meta"] = MappingProxyType(copy.deepcopy(values.get("meta", {})))
    return Item(line=lineno, **values)
