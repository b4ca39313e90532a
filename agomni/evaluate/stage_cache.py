"""The per-item stages' finished metrics, kept on disk so that a rerun does not score them again.

Once a per-item stage (`agomni.evaluate.item_stages`) has computed a metric, its share of the stage's
scores (set value, per-item values, the items it could not score, its details) is written to
``<cache root>/stages/<first 2 hex>/<digest>.json``. A run killed or failing later (in another stage, in
the report) leaves it there, and the rerun of the same command reads it back and says so on stderr and
in the results' provenance (``cache.stage_hits``) instead of running the metric's network again. The store
lives in a run's own cache folder: `agomni run`'s ``RUN/cache``, or the ``--cache-dir`` of `agomni eval`
(without it, `agomni eval` keeps no stage results).

The key is content-based, like the embedding cache's (`agomni.metrics.cache`): the metric and its stage,
everything in the request that determines its numbers (random weights and seed, device, speech backends,
protocol), the agomni version, and the SHA-256 of every file the metric reads for each scored item: the
generated file, the manifest (texts, languages, fields) and the media it names (video, prompt and
reference audio). Checkpoints enter through their registry names, whose files are checked against their
pinned SHA-256 when loaded. A metric that could not be computed is not stored: a rerun tries it again.

An entry that cannot be read or does not match its key is said on stderr and recomputed, never used.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agomni import __version__
from agomni.atomic import atomic_write
from agomni.errors import AgomniError
from agomni.io.container import file_sha256
from agomni.manifest import Item, load_manifest
from agomni.metrics.stage import StageRequest, StageScores
from agomni.results import SetMetric

STAGES_DIR = "stages"
FORMAT = 1


@dataclass
class StageCache:
    """The stage-results store under cache ``root`` (``enabled=False``: every lookup misses and nothing
    is written); ``hits``, ``writes`` and ``rejected`` (path: reason) are what this run did."""

    root: Path
    enabled: bool = True
    hits: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    _sha: dict[Path, str] = field(default_factory=dict, repr=False)
    _items: dict[Path, dict[str, Item]] = field(default_factory=dict, repr=False)

    def _file(self, path: Path | None) -> str | None:
        if path is None:
            return None
        if path not in self._sha:
            try:
                self._sha[path] = file_sha256(path)
            except (OSError, AgomniError) as err:  # the stage reports the file; the key records the problem
                self._sha[path] = f"unreadable: {err}"
        return self._sha[path]

    def key(self, stage: str, name: str, request: StageRequest) -> dict[str, Any]:
        """Everything metric `name` of `stage` depends on in `request` (see the module docstring)."""
        if request.manifest is not None and request.manifest not in self._items:  # read once per run
            self._items[request.manifest] = {i.id: i for i in load_manifest(request.manifest).items}
        items = {} if request.manifest is None else self._items[request.manifest]
        files = {}
        for item_id, path in sorted(request.pred.items()):
            item = items.get(item_id)
            media = () if item is None else (item.video, item.prompt_audio, item.reference_audio)
            files[item_id] = [self._file(Path(path)), *(self._file(m) for m in media)]
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
            "manifest": self._file(request.manifest),
            "files": files,
        }

    def _path(self, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        return self.root / STAGES_DIR / digest[:2] / f"{digest}.json"

    def get(self, key: dict[str, Any]) -> StageScores | None:
        """The stored scores of the key's metric, or None (absent, disabled, or rejected and said)."""
        path = self._path(key)
        if not self.enabled or not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry["key"] != key:
                raise ValueError("its key differs from the request's")
            name = key["metric"]
            scores = StageScores(
                metrics=[SetMetric.from_dict(entry["metric"])],
                item_scores={i: {name: float(v)} for i, v in entry["item_scores"].items()},
                unscored={i: {name: str(r)} for i, r in entry["unscored"].items()},
                details={name: entry["details"]},
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            self.rejected[str(path)] = str(err)
            print(f"[agomni] stage cache entry {path} rejected ({err}); computing it again", file=sys.stderr)
            return None
        self.hits.append(name)
        return scores

    def put(self, key: dict[str, Any], scores: StageScores) -> None:
        """Store the key's metric from `scores` (which computed it)."""
        if not self.enabled:
            return
        name = key["metric"]
        entry = {
            "key": key,
            "metric": next(m for m in scores.metrics if m.name == name).to_dict(),
            "item_scores": {i: v[name] for i, v in scores.item_scores.items() if name in v},
            "unscored": {i: r[name] for i, r in scores.unscored.items() if name in r},
            "details": scores.details[name],
        }
        text = json.dumps(entry, sort_keys=True)
        try:
            atomic_write(self._path(key), lambda tmp: tmp.write_text(text, encoding="utf-8"))
        except OSError as err:  # a cache that cannot be written costs a rerun its reuse, not this run
            print(f"[agomni] stage cache: cannot write {self._path(key)} ({err.strerror})", file=sys.stderr)
            return
        self.writes.append(name)

    def describe(self) -> dict[str, Any]:
        """For the results' provenance: the metrics read back and written, and rejected entries."""
        return {
            "stage_hits": list(self.hits),
            "stage_writes": list(self.writes),
            "stage_rejected": self.rejected,
        }
