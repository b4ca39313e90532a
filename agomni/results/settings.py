"""How an evaluation computed its numbers, as typed fields: the ``preprocessing`` object of a results file's
provenance.

`agomni eval` writes it and `agomni run` adds its run context and replicate values; the report, the
calibration and the CLI summary read it. `EvalSettings` is the one place that knows its keys: writers build
one and store `EvalSettings.to_dict`, readers take `Provenance.settings`. The file keeps the same JSON object
(results schema "1"); a key this version does not know (a results file of another tool, or the self-check's
own settings) is kept in ``other``, so reading and writing back loses nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True)
class CacheUse:
    """What the run's caches did: the embedding cache (``root``, ``enabled``, embedding hits / writes and
    the other counters of `agomni.metrics.cache.CacheStats`, kept in ``embedding``) and the per-item
    stage cache (`agomni.evaluate.stage_cache`: metrics read back whole, items read back and written per
    metric, rejected entries)."""

    root: str | None = None
    enabled: bool = False
    embedding: JSON = field(default_factory=dict)
    stage_hits: tuple[str, ...] = ()
    stage_item_hits: dict[str, int] = field(default_factory=dict)
    stage_writes: dict[str, int] = field(default_factory=dict)
    stage_rejected: dict[str, str] = field(default_factory=dict)

    @property
    def embedding_hits(self) -> int:
        return int(self.embedding.get("embedding_hits", 0))

    @property
    def embedding_writes(self) -> int:
        return int(self.embedding.get("embedding_writes", 0))

    def to_dict(self) -> JSON:
        return {
            "root": self.root,
            "enabled": self.enabled,
            **copy.deepcopy(self.embedding),
            "stage_hits": list(self.stage_hits),
            "stage_item_hits": dict(self.stage_item_hits),
            "stage_writes": dict(self.stage_writes),
            "stage_rejected": dict(self.stage_rejected),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CacheUse:
        own = ("root", "enabled", "stage_hits", "stage_item_hits", "stage_writes", "stage_rejected")
        writes = data.get("stage_writes", {})
        return cls(
            root=data.get("root"),
            enabled=bool(data.get("enabled", False)),
            embedding={k: copy.deepcopy(v) for k, v in data.items() if k not in own},
            stage_hits=tuple(data.get("stage_hits", ())),
            stage_item_hits=dict(data.get("stage_item_hits", {})),
            # results of earlier versions list the metrics written, without item counts
            stage_writes=dict(writes) if isinstance(writes, Mapping) else {name: 0 for name in writes},
            stage_rejected=dict(data.get("stage_rejected", {})),
        )


@dataclass(frozen=True)
class EvalSettings:
    """The provenance's ``preprocessing`` (module docstring).

    - ``metrics``: per metric, its details (unit, recipe, backend, the per-item lists, corpus rate ...);
    - ``profiles``: each input recipe used (name -> its definition and notes);
    - ``embedders``: each embedding network used (label -> name, checkpoint, cache key, preprocessing);
    - ``comparable_with_published``: whether every number follows the published recipes (None: not said);
    - ``inputs``: how the inputs were found and paired; ``cache``: `CacheUse`;
    - ``allow_missing``, ``batch_size``, ``processes``: the options that shaped the run;
    - ``run``: `agomni run`'s context (suite, generator, replicates; None for `agomni eval`);
    - ``replicates``: each replicate's set values (None unless the results combine replicates);
    - ``other``: keys this version does not know, kept as they are.
    """

    metrics: dict[str, JSON] = field(default_factory=dict)
    profiles: dict[str, JSON] = field(default_factory=dict)
    embedders: dict[str, JSON] = field(default_factory=dict)
    comparable_with_published: bool | None = None
    inputs: JSON = field(default_factory=dict)
    cache: CacheUse = field(default_factory=CacheUse)
    allow_missing: bool = False
    batch_size: int | None = None
    processes: int = 1
    run: JSON | None = None
    replicates: dict[str, dict[str, float]] | None = None
    other: JSON = field(default_factory=dict)

    def metric(self, name: str) -> JSON:
        """Metric `name`'s details ({} when the results hold none)."""
        details = self.metrics.get(name, {})
        return details if isinstance(details, dict) else {}

    def to_dict(self) -> JSON:
        out: JSON = copy.deepcopy(self.other)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "other" or (f.name in ("run", "replicates") and value is None):
                continue
            out[f.name] = value.to_dict() if isinstance(value, CacheUse) else copy.deepcopy(value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalSettings:
        known = {f.name for f in fields(cls)} - {"other"}
        values = {k: copy.deepcopy(v) for k, v in data.items() if k in known}
        if "cache" in values:
            values["cache"] = CacheUse.from_dict(values["cache"])
        return cls(**values, other={k: copy.deepcopy(v) for k, v in data.items() if k not in known})
