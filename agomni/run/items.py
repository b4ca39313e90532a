"""The items a run scores: a suite's test set turned into an agomni manifest, with what was found.

A suite names its importer (``"importer"`` in evaluation/suites/<name>.json) and the published item count
(``test_set.size``). `resolve_items` runs the importer on the user's data root (read only; the manifest
goes into the run folder, and `data_layout` says what the data root must hold) and returns the manifest
plus `ImportCoverage`: how many items the anchor's list names, how many were found locally, and one
(id, reason) for each listed item that was not. A run records every missing one in its coverage table,
so a run on fewer items never passes for a full one.

Importers (agomni.run.importers): ``toycorpus`` (the smoke suite: builds agomni's toy corpus, no data
root needed), ``seed-tts-eval``, ``f5-librispeech-pc``, ``vggsound-test``, ``audiocaps-test``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agomni.atomic import atomic_write
from agomni.errors import UsageError
from agomni.manifest import Manifest, load_manifest
from agomni.paths import evaluation_dir
from agomni.toycorpus import build_corpus

from .importers import IMPORTERS, ImportCoverage, import_test_set


@dataclass(frozen=True)
class SuiteRunSpec:
    """The run-side fields of a suite file: importer, its options, the default generators."""

    importer: str | None
    options: dict[str, Any] = field(default_factory=dict)
    generators: dict[str, str] = field(default_factory=dict)


def suite_run_spec(name: str) -> SuiteRunSpec:
    """``importer``, ``importer_options`` and ``default_generators`` of evaluation/suites/<name>.json."""
    path = evaluation_dir() / "suites" / f"{name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return SuiteRunSpec(
        data.get("importer"),
        dict(data.get("importer_options") or {}),
        dict(data.get("default_generators") or {}),
    )


TOY_LAYOUT = """\
nothing to prepare: `agomni run smoke` builds agomni's toy corpus (seed 0) into DATA_ROOT/toy, by default
RUN/data/toy; a --data-root that already holds toy/<split>/manifest.jsonl is read and never written"""
NO_IMPORTER_LAYOUT = """\
no importer: pass --manifest FILE listing the items (README, Manifests), with paths relative to its folder"""


def data_layout(suite_name: str) -> str:
    """What `--data-root` must hold for `suite_name` (its importer's layout text)."""
    spec = suite_run_spec(suite_name)
    if spec.importer is None:
        return NO_IMPORTER_LAYOUT
    if spec.importer == "toycorpus":
        return TOY_LAYOUT
    return IMPORTERS[spec.importer].layout


def toy_items(
    root: Path, options: dict[str, Any], published: int, dest: Path
) -> tuple[Manifest, ImportCoverage]:
    """The toy corpus (built under `root` unless there) and a subset manifest of its ``split``, written
    into folder `dest`: the first ``items_per_task`` items of each task in file order (all when absent)."""
    split = options.get("split", "heldout")
    manifest_path = root / split / "manifest.jsonl"
    if not manifest_path.is_file():
        try:
            build_corpus(root, seed=int(options.get("seed", 0)))
        except OSError as err:
            raise UsageError(f"{root}: cannot build the toy corpus there ({err}); {TOY_LAYOUT}") from err
    full = load_manifest(manifest_path)
    per_task = options.get("items_per_task")
    if per_task is None:
        return full, ImportCoverage("toycorpus", len(full), published)
    seen: Counter[str] = Counter()
    lines = []
    for item, line in zip(full.items, manifest_path.read_text(encoding="utf-8").splitlines(), strict=True):
        seen[item.task] += 1
        if seen[item.task] <= int(per_task):
            entry = {**json.loads(line), "data_root": str(manifest_path.parent.resolve())}
            lines.append(json.dumps(entry, ensure_ascii=False))
    subset = dest / f"{split}-{per_task}-per-task.jsonl"
    text = "\n".join(lines) + "\n"
    dest.mkdir(parents=True, exist_ok=True)
    atomic_write(subset, lambda tmp: tmp.write_text(text, encoding="utf-8"))  # other ranks may read it
    note = f"subset: the first {per_task} items of each task of the {split} split ({len(full)} items)"
    return load_manifest(subset), ImportCoverage("toycorpus", len(lines), published, notes=note)


def resolve_items(
    suite_name: str, published: int, data_root: Path | None, dest: Path
) -> tuple[Manifest, ImportCoverage]:
    """The manifest of a suite's items for this run, written into the run folder `dest` (module
    docstring); the toy corpus goes into ``data_root/toy``."""
    spec = suite_run_spec(suite_name)
    if spec.importer is None:
        raise UsageError(f"suite {suite_name!r} names no importer; pass --manifest FILE listing its items")
    if data_root is None:
        raise UsageError(
            f"suite {suite_name!r} reads the test set from your local copy: pass --data-root DIR "
            f"(importer {spec.importer}; `agomni suites {suite_name}` prints the layout it expects)"
        )
    if spec.importer == "toycorpus":
        return toy_items(data_root / "toy", spec.options, published, dest)
    return import_test_set(spec.importer, data_root, dest, published, suite_name)
