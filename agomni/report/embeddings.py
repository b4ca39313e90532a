"""Per-item embeddings of a scored run, read back from the run's embedding cache, for set-level intervals.

A run's results record, per metric, the embedder group and its exact cache key parts (embedder, cache
key, checkpoint, preprocessing) in provenance, and the metric's kind says which output (head) it read; each file's decoded-audio hash is in the cache's
audio index. So the rows FD/KAD saw are found again without decoding or embedding anything. An item
whose entry is absent raises `ResultsError` naming it (e.g. the cache was deleted).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agomni.errors import ResultsError
from agomni.evaluate.registry import KINDS
from agomni.io.container import file_sha256
from agomni.manifest import load_manifest, pair_outputs
from agomni.metrics.cache import EmbeddingCache, EmbeddingKey, SourceKey, decoder_fingerprint
from agomni.metrics.frechet import GaussianStats
from agomni.metrics.kad import kernel_audio_distance
from agomni.results import Results

RESAMPLABLE = ("fd", "kad")


def metric_kind(results: Results, name: str) -> str | None:
    details = results.provenance.preprocessing.get("metrics", {}).get(name, {})
    return details.get("kind")


def _rows(array: np.ndarray, pooling: str, dtype: str) -> np.ndarray:
    rows = array[None, :] if array.ndim == 1 else array
    if array.ndim == 2 and pooling == "clip-mean":
        rows = array.mean(axis=0, keepdims=True)
    return rows.astype(np.float16).astype(np.float64) if dtype == "float16" else rows.astype(np.float64)


def item_rows(
    results: Results, name: str, manifest: Path, pred_dir: Path, cache_root: Path
) -> dict[str, Any]:
    """{"pred": {id: rows}, "ref": {id: rows}} of metric `name` for every item scored "ok"."""
    prep = results.provenance.preprocessing
    details = prep["metrics"][name]
    group = prep["embedders"][details["embedder"]]
    head = KINDS[details["kind"]].spec.head
    dtype = prep["profiles"][group["profile"]].get("embedding_dtype", "float32")
    cache = EmbeddingCache(cache_root)
    loaded = load_manifest(manifest)
    pairs = {p.item.id: p for p in pair_outputs(loaded, pred_dir, allow_missing=True).pairs}
    ok = [c.id for c in results.coverage if c.status == "ok"]
    out: dict[str, dict[str, np.ndarray]] = {"pred": {}, "ref": {}}
    for item_id in ok:
        pair = pairs.get(item_id)
        files = {
            "pred": pair.outputs[0] if pair else None,
            "ref": pair.item.reference_audio if pair else None,
        }
        for side, path in files.items():
            if path is None:
                raise ResultsError(
                    manifest, [f"{name}: item {item_id!r} has no {side} file (generated files: {pred_dir})"]
                )
            source = SourceKey(file_sha256(path), group["preprocessing"], decoder_fingerprint())
            audio = cache.get_audio(source)
            key = (
                None
                if audio is None
                else EmbeddingKey(
                    audio["audio_sha256"],
                    group["name"],
                    group["cache_key"],
                    group["checkpoint"],
                    group["preprocessing"],
                )
            )
            outputs = None if key is None else cache.get(key, source=source.file_sha256)
            array = None if outputs is None else outputs.get(head)
            if array is None:
                raise ResultsError(
                    cache_root,
                    [
                        f"{name}: no cached embedding of {path} (item {item_id!r}); score the run again to refill it"
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
