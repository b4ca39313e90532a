"""Per-item embeddings of a scored run, read back from the run's embedding cache, for set-level intervals.

A scored folder's ``items.jsonl`` (`agomni.results.run_folder`) names, per item, side and network, the
prepared audio's hash and the cache entry holding the outputs; its results record, per metric, the
network and its exact cache key parts in provenance, and the metric's kind says which output (head) it
read. So the rows FD/KAD saw are found again without decoding, hashing or embedding anything. An item
whose entry is absent or does not match raises `ResultsError` naming it (e.g. the cache was deleted).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agomni.errors import ResultsError
from agomni.evaluate.registry import KINDS
from agomni.metrics.cache import EmbeddingCache, EmbeddingKey
from agomni.metrics.frechet import GaussianStats
from agomni.metrics.kad import kernel_audio_distance
from agomni.results import ItemRecord, Results, RunFolder

RESAMPLABLE = ("fd", "kad")


def metric_kind(results: Results, name: str) -> str | None:
    return results.provenance.settings.metric(name).get("kind")


def _rows(array: np.ndarray, pooling: str, dtype: str) -> np.ndarray:
    rows = array[None, :] if array.ndim == 1 else array
    if array.ndim == 2 and pooling == "clip-mean":
        rows = array.mean(axis=0, keepdims=True)
    return rows.astype(np.float16).astype(np.float64) if dtype == "float16" else rows.astype(np.float64)


def scored_rows(folder: Path, name: str) -> dict[str, Any]:
    """`item_rows` of metric `name` for a run folder's first replicate, or an `agomni eval` folder."""
    run = RunFolder.open(folder)
    replicate = run.first_replicate()
    if replicate is not None:
        return item_rows(replicate.results(), name, replicate.items(), run.cache_dir)
    results = run.results()
    cache = results.provenance.settings.cache
    if not cache.enabled or cache.root is None:
        raise ResultsError(run.results_path, [f"{name}: scored with --no-cache, so no embedding was kept"])
    return item_rows(results, name, run.items(), Path(cache.root))


def item_rows(results: Results, name: str, items: dict[str, ItemRecord], cache_root: Path) -> dict[str, Any]:
    """{"pred": {id: rows}, "ref": {id: rows}} of metric `name` for every item scored "ok"."""
    settings = results.provenance.settings
    details = settings.metrics[name]
    label = details["embedder"]
    group = settings.embedders[label]
    head = KINDS[details["kind"]].spec.head
    dtype = settings.profiles[group["profile"]].get("embedding_dtype", "float32")
    cache = EmbeddingCache(cache_root)
    ok = [c.id for c in results.coverage if c.status == "ok"]
    out: dict[str, dict[str, np.ndarray]] = {"pred": {}, "ref": {}}
    for item_id in ok:
        record = items.get(item_id)
        for side in out:
            scored = None if record is None else record.files.get(side)
            entry = None if scored is None else scored.networks.get(label)
            if entry is None:
                raise ResultsError(
                    cache_root, [f"{name}: item {item_id!r} has no {side} {label} record in items.jsonl"]
                )
            key = EmbeddingKey(
                entry.audio_sha256,
                group["name"],
                group["cache_key"],
                group["checkpoint"],
                group["preprocessing"],
            )
            if key.digest() != entry.cache_key:
                raise ResultsError(
                    cache_root,
                    [
                        f"{name}: item {item_id!r} ({side}): items.jsonl names another cache entry than the results"
                    ],
                )
            outputs = cache.get(key, source=scored.file_sha256)
            array = None if outputs is None else outputs.get(head)
            if array is None:
                raise ResultsError(
                    cache_root,
                    [
                        f"{name}: no cached embedding of {scored.path} (item {item_id!r}); "
                        "score the run again to refill it"
                    ],
                )
            out[side][item_id] = _rows(array, details.get("pooling", "clip"), dtype)
    return out


def set_metric_function(kind: str):
    """metric(generated rows per item, reference rows per item) -> value, for FD and KAD."""

    def fd(generated: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
        stats = GaussianStats.from_embeddings(np.vstack(generated))
        return stats.frechet_distance(GaussianStats.from_embeddings(np.vstack(reference)))

    def kad(generated: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
        return kernel_audio_distance(np.vstack(reference), np.vstack(generated))

    return {"fd": fd, "kad": kad}[kind]
