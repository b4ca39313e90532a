"""A scored folder on disk: its layout, its per-item records (``items.jsonl``) and how to load it.

Layout (`agomni eval --out OUT` writes the first two; `agomni run RUN` writes all of them):
- ``results.json``: the results (`agomni.results.schema`);
- ``items.jsonl``: one JSON object per line and item: id, coverage status, and per side (``pred``,
  ``ref``) the file scored, the SHA-256 of its bytes (null with ``--no-cache``, which hashes nothing) and,
  per network that embedded it, the SHA-256 of its prepared audio and the content-keyed cache entry
  (`agomni.metrics.cache.EmbeddingKey.digest`) that holds its outputs. A run folder's top-level file
  holds every replicate's lines, each naming its replicate;
- ``run.json``: what `agomni run` was asked (suite, generator, seeds, samples, manifest relative to the
  folder, import coverage, metrics run and skipped);
- ``seed-<s>/sample-<k>/``: one replicate: its generated files, ``results.json`` and ``items.jsonl``;
- ``cache/``: the run's content-keyed cache; ``log.txt``: what each step did.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agomni.atomic import atomic_write

from ..errors import ResultsError, UsageError
from .record import Record
from .schema import Results
from .store import read_results

RESULTS_FILE = "results.json"
ITEMS_FILE = "items.jsonl"
RUN_FILE = "run.json"
LOG_FILE = "log.txt"
CACHE_DIR = "cache"
SIDES = ("pred", "ref")


@dataclass(frozen=True)
class NetworkOutput(Record):
    """Where one network's outputs for one file live: the prepared audio's hash and the cache entry."""

    audio_sha256: str
    cache_key: str


@dataclass(frozen=True)
class ItemFile(Record):
    """One side of an item as scored: the file, its bytes' hash, and each network's output entry."""

    path: str
    file_sha256: str | None
    networks: dict[str, NetworkOutput] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemFile:
        return cls(
            str(data["path"]),
            data.get("file_sha256"),
            {label: NetworkOutput(**out) for label, out in data.get("networks", {}).items()},
        )


@dataclass(frozen=True)
class ItemRecord:
    """One line of ``items.jsonl``: an item's coverage status and the files it was scored on."""

    id: str
    status: str  # a coverage status (agomni.results.COVERAGE_STATUSES)
    files: dict[str, ItemFile] = field(default_factory=dict)  # side ("pred"/"ref") -> file
    replicate: str | None = None  # in a run folder's top-level file: which replicate ("seed-0/sample-0")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.replicate is not None:
            data["replicate"] = self.replicate
        data["files"] = {side: f.to_dict() for side, f in self.files.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemRecord:
        files = {side: ItemFile.from_dict(f) for side, f in data.get("files", {}).items()}
        return cls(str(data["id"]), str(data["status"]), files, data.get("replicate"))


def write_items(records: list[ItemRecord] | tuple[ItemRecord, ...], path: str | Path) -> Path:
    """Write ``records`` as JSON lines, atomically."""

    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record.to_dict(), ensure_ascii=False, sort_keys=False) + "\n")

    return atomic_write(path, write, durable=True)


def read_items(path: str | Path) -> list[ItemRecord]:
    """The records of an ``items.jsonl`` file; a malformed line is an error naming its line number."""
    path = Path(path)
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ResultsError(path, [f"cannot read ({err.strerror or err})"]) from err
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(ItemRecord.from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ResultsError(path, [f"line {number}: not an item record ({err})"]) from err
    return records


@dataclass(frozen=True)
class RunFolder:
    """A folder written by `agomni run` or `agomni eval` (module docstring)."""

    path: Path

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """The folder holding ``path`` (a folder, or its results.json); an error when it has no results."""
        folder = Path(path)
        if folder.is_file() and folder.name == RESULTS_FILE:
            folder = folder.parent
        if not (folder / RESULTS_FILE).is_file():
            raise UsageError(f"{path}: no {RESULTS_FILE} (not a run folder of `agomni run` or `agomni eval`)")
        return cls(folder)

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS_FILE

    @property
    def items_path(self) -> Path:
        return self.path / ITEMS_FILE

    @property
    def run_path(self) -> Path:
        return self.path / RUN_FILE

    @property
    def log_path(self) -> Path:
        return self.path / LOG_FILE

    @property
    def cache_dir(self) -> Path:
        return self.path / CACHE_DIR

    def results(self) -> Results:
        return read_results(self.results_path)

    def context(self) -> dict[str, Any]:
        """run.json ({} for a folder written by `agomni eval` or a replicate folder)."""
        if not self.run_path.is_file():
            return {}
        try:
            return json.loads(self.run_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ResultsError(self.run_path, [f"cannot read ({err})"]) from err

    def write_context(self, context: dict[str, Any]) -> Path:
        return atomic_write(
            self.run_path, lambda tmp: tmp.write_text(json.dumps(context, indent=1) + "\n", encoding="utf-8")
        )

    def manifest_path(self) -> Path | None:
        """The manifest the run scored (run.json stores it relative to the folder); None without run.json."""
        relative = self.context().get("manifest")
        return None if relative is None else Path(os.path.normpath(self.path.resolve() / relative))

    def replicate(self, seed: int, sample: int) -> RunFolder:
        return RunFolder(self.path / f"seed-{seed}" / f"sample-{sample}")

    def first_replicate(self) -> RunFolder | None:
        """The first replicate of an `agomni run` folder; None for an `agomni eval` folder."""
        seeds = self.context().get("seeds")
        return self.replicate(seeds[0], 0) if seeds else None

    def items(self) -> dict[str, ItemRecord]:
        """Item id -> its record, from ``items.jsonl`` (the first replicate's lines in a run folder)."""
        if not self.items_path.is_file():
            raise ResultsError(
                self.items_path,
                [f"missing: {self.path} has no per-item records; score it again with this version"],
            )
        records: dict[str, ItemRecord] = {}
        for record in read_items(self.items_path):
            records.setdefault(record.id, record)
        return records

    def scored_files(self, side: str = "pred") -> dict[str, Path]:
        """Item id -> the ``side`` file each item was scored on (items with such a file only)."""
        return {i: Path(r.files[side].path) for i, r in self.items().items() if side in r.files}
