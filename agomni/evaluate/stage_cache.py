"""The per-item stages' item outcomes, kept on disk so that no item is scored twice.

Once a per-item stage (`agomni.evaluate.item_stages`) has scored its part of the items for a metric, the
metric's configuration and each item's outcome (`agomni.metrics.item_outcomes`: value or reason, flags,
transcript and counts ...) are written under ``<cache root>/stages/<first 2 hex>/<digest>.json``, one file
per metric configuration and one per (metric, item). A run killed or failing later (in another metric, in
the report), or a rerun with more items, reads them back and says so on stderr and in the results'
provenance (``cache.stage_hits``: metrics read back whole; ``cache.stage_item_hits``: items read back per
metric) instead of running the metric's network on them again. The store lives in a run's own cache
folder: `agomni run`'s ``RUN/cache``, or the ``--cache-dir`` of `agomni eval` (without it, `agomni eval`
keeps no stage outcomes).

The keys are content-based, like the embedding cache's (`agomni.metrics.cache`). A metric's key holds the
metric and its stage and everything in the request that determines its numbers (random weights and seed,
device, speech backends, protocol) and the agomni version; an item's key adds the item's id, its manifest
fields (texts, language, task) and the path and SHA-256 of every file scored for it: the generated file and
the media its manifest item names (video, prompt and reference audio). Checkpoints enter through their
registry names, whose files are checked against their pinned SHA-256 when loaded. The outcomes of a part
in which no item could be scored are not stored: a rerun tries them again.

An entry that cannot be read or does not match its key is said on stderr and recomputed, never used.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from agomni import __version__
from agomni.atomic import atomic_write
from agomni.errors import AgomniError
from agomni.io.container import file_sha256
from agomni.manifest import Item, load_manifest
from agomni.metrics.item_outcomes import ItemOutcome, MetricConfig
from agomni.metrics.stage import StageRequest

STAGES_DIR = "stages"
FORMAT = 2
T = TypeVar("T")
#: The manifest fields an item's outcomes can depend on, besides its media files.
FIELDS = ("task", "text", "transcript", "lyrics", "language", "prompt_text", "duration")
MEDIA = ("video", "prompt_audio", "reference_audio")


@dataclass
class Found:
    """What the store holds for one metric: its configuration (None: not stored) and item outcomes."""

    config: MetricConfig | None = None
    outcomes: dict[str, ItemOutcome] = field(default_factory=dict)


def _digest(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


@dataclass
class StageCache:
    """The stage-outcomes store under cache ``root`` (``enabled=False``: every lookup misses and nothing
    is written); ``hits`` and ``writes`` (metric -> items) and ``rejected`` (path: reason) are what this
    run did."""

    root: Path
    enabled: bool = True
    hits: dict[str, int] = field(default_factory=dict)
    whole: list[str] = field(default_factory=list)
    writes: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    _sha: dict[Path, str] = field(default_factory=dict, repr=False)
    _items: dict[Path, dict[str, Item]] = field(default_factory=dict, repr=False)

    def _file(self, path: Path | None) -> list[str] | None:
        if path is None:
            return None
        if path not in self._sha:
            try:
                self._sha[path] = file_sha256(path)
            except (OSError, AgomniError) as err:  # the stage reports the file; the key records the problem
                self._sha[path] = f"unreadable: {err}"
        return [str(path), self._sha[path]]

    def metric_key(self, stage: str, name: str, request: StageRequest) -> dict[str, Any]:
        """Everything metric `name` of `stage` depends on in `request` besides its items."""
        return {
            "format": FORMAT,
            "agomni": __version__,
            "stage": stage,
            "metric": name,
            "random_weights": request.random_weights,
            "seed": request.seed,
            "device": request.device,
            "backends": list(request.backends),
            "protocol": request.protocol,
        }

    def item_keys(self, request: StageRequest) -> dict[str, dict[str, Any]]:
        """Each generated item's part of its keys: id, manifest fields and scored files (see the module
        docstring). A manifest that cannot be read gives the items without it: the stage says why."""
        items: dict[str, Item] = {}
        if request.manifest is not None:
            if request.manifest not in self._items:  # read once per run
                try:
                    self._items[request.manifest] = {i.id: i for i in load_manifest(request.manifest).items}
                except AgomniError:
                    self._items[request.manifest] = {}
            items = self._items[request.manifest]
        keys = {}
        for item_id, path in request.pred.items():
            item = items.get(item_id)
            keys[item_id] = {
                "id": item_id,
                "generated": self._file(Path(path)),
                "fields": None if item is None else {f: getattr(item, f) for f in FIELDS},
                "media": None if item is None else {m: self._file(getattr(item, m)) for m in MEDIA},
            }
        return keys

    def _path(self, key: Mapping[str, Any]) -> Path:
        digest = _digest(key)
        return self.root / STAGES_DIR / digest[:2] / f"{digest}.json"

    def _read(self, key: Mapping[str, Any], field_name: str, parse: Callable[[Any], T]) -> T | None:
        """``parse`` of the stored entry's ``field_name``; None when absent, or rejected (said on stderr and
        recorded) when unreadable, of another key or malformed."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry["key"] != key:
                raise ValueError("its key differs from the request's")
            return parse(entry[field_name])
        except (OSError, ValueError, KeyError, TypeError) as err:
            self.rejected[str(path)] = str(err)
            print(f"[agomni] stage cache entry {path} rejected ({err}); computing it again", file=sys.stderr)
            return None

    def lookup(self, stage: str, request: StageRequest) -> dict[str, Found]:
        """Per metric of ``request.names``: its stored configuration and the stored outcomes of its items
        (nothing when disabled, or when the configuration is not stored)."""
        found = {name: Found() for name in request.names}
        if not self.enabled:
            return found
        items = self.item_keys(request)
        for name in request.names:
            metric_key = self.metric_key(stage, name, request)
            config = self._read(metric_key, "config", MetricConfig.from_dict)
            if config is None:
                continue
            outcomes = {}
            for item_id, item_key in items.items():
                outcome = self._read(
                    {"metric": metric_key, "item": item_key}, "outcome", ItemOutcome.from_dict
                )
                if outcome is not None:
                    outcomes[item_id] = outcome
            found[name] = Found(config, outcomes)
        return found

    def count_hits(self, found: Mapping[str, Found], items: int) -> None:
        """Note what `lookup` found (every rank is told, so that each one's provenance says it)."""
        for name, stored in found.items():
            if stored.outcomes:
                self.hits[name] = len(stored.outcomes)
                if len(stored.outcomes) == items:
                    self.whole.append(name)

    def _write(self, key: Mapping[str, Any], field_name: str, value: Any) -> bool:
        text = json.dumps({"key": key, field_name: value}, sort_keys=True)
        try:
            atomic_write(self._path(key), lambda tmp: tmp.write_text(text, encoding="utf-8"))
        except OSError as err:  # a cache that cannot be written costs a rerun its reuse, not this run
            print(f"[agomni] stage cache: cannot write {self._path(key)} ({err.strerror})", file=sys.stderr)
            return False
        return True

    def store(
        self,
        stage: str,
        name: str,
        request: StageRequest,
        config: MetricConfig,
        outcomes: Mapping[str, ItemOutcome],
    ) -> int:
        """Store metric `name`'s configuration and the outcomes of ``request.pred``'s items; the number of
        outcomes written (the caller adds every rank's to ``writes``)."""
        if not self.enabled:
            return 0
        metric_key = self.metric_key(stage, name, request)
        if not self._write(metric_key, "config", config.to_dict()):
            return 0
        items = self.item_keys(request)
        return sum(
            self._write({"metric": metric_key, "item": items[i]}, "outcome", outcome.to_dict())
            for i, outcome in outcomes.items()
        )

    def describe(self) -> dict[str, Any]:
        """For the results' provenance: the metrics read back whole, the items read back and written per
        metric, and rejected entries."""
        return {
            "stage_hits": list(self.whole),
            "stage_item_hits": dict(self.hits),
            "stage_writes": dict(self.writes),
            "stage_rejected": self.rejected,
        }
