"""Content-addressed, on-disk cache of embedder outputs (and of which decoded audio a source file gives).

What a cached entry is keyed by (``EmbeddingKey``):

- ``audio_sha256``: SHA-256 of the **decoded, preprocessed float32 samples** the embedder receives
  (``audio_sha256()``: dtype, shape, then the little-endian bytes), not of the source file. The
  outputs are a deterministic function of exactly these samples, so this hash changes whenever the
  audio or any preprocessing step changes it (decoder version, downmix, resampler, crop/pad), and two
  files that decode to the same samples (a WAV and its FLAC copy) share one entry. A path would miss
  everything (audioldm_eval's cache is keyed by path).
- ``embedder`` and ``embedder_key``: the embedder's name and ``Embedder.cache_key()`` (name, version,
  sample rate, output level, heads and every setting in ``config()``).
- ``checkpoint``: the weights' SHA-256, ``"random-weights:<seed>"`` for a network left with seeded random
  weights, or ``"none"`` for a weight-free embedder.
- ``preprocessing``: the preprocessing settings (sample rate and the input recipe). Redundant with
  ``audio_sha256`` by construction, but kept so an entry says on disk how its audio was prepared.

One entry holds **every head** of the embedder for that clip (``{"embed": ..., "logits": ...}``), as one
forward pass produced them. Layout under the cache root (default ``agomni_home()/cache``;
``--cache-dir`` replaces it): ``embeddings/<first 2 hex of the key digest>/<digest>.npz`` holds the
arrays exactly as the embedder returned them (no float16 rounding as in fadtk), ``<digest>.json`` beside
it the record: the key parts, each array's SHA-256 (`audio_sha256` scheme), shape and dtype, and the
SHA-256s of the source files whose decoding gave this audio.

Nothing is used unchecked: ``get`` rejects an entry whose record does not match the key, whose arrays
cannot be read, differ from the record (checksum, shape, dtype) or hold NaN/inf, or (when looked up
through the audio index) whose record does not list the source file. A rejected entry is recorded with
the path and reason in ``CacheStats.rejected`` (and so in the run's provenance), said on stderr (the
first ``SHOWN_REJECTIONS``) and recomputed. An entry lists every file that decoded to its audio (a write
keeps the files an entry of the same key already lists).

A second store, ``audio-index/<prefix>/<digest>.json``, maps a ``SourceKey`` (SHA-256 of the source
file's bytes + the preprocessing settings + a fingerprint of the decoding stack: PyAV/libavcodec,
torchaudio, soxr versions and the bytes of agomni's ``agomni/io`` source) to the ``audio_sha256`` that
decoding it gave. A re-run then hashes the file, finds the audio hash and the outputs, and skips
decoding altogether. An index entry pointing at audio whose entry does not list that file (edited or
mixed-up index) is rejected and the file decoded again.

Writes are atomic (``agomni.atomic.atomic_write``): an interrupted run leaves whole entries only and
resumes without recomputing them. They are not fsynced: after a power loss an entry may be empty or
truncated, which ``get`` detects and recomputes (an fsync per file cost more than computing the offline
embeddings, benchmarks/RESULTS.md). A write that fails (disk full, permissions) turns writing off for
the rest of the run with one warning (``CacheStats.write_error``): the run goes on without the cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
import torchaudio

from agomni.atomic import atomic_write
from agomni.paths import agomni_home

CACHE_FORMAT = "2"
EMBEDDINGS_DIR = "embeddings"
AUDIO_INDEX_DIR = "audio-index"
SHOWN_REJECTIONS = 10  # rejected entries said on stderr per cache object; all are in the provenance


def default_cache_root() -> Path:
    """``agomni_home()/cache`` (``$AGOMNI_HOME/cache`` when set)."""
    return agomni_home() / "cache"


def canonical_json(value: Any) -> str:
    """Sorted-key, compact JSON: the text hashed into every key digest."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def audio_sha256(samples: torch.Tensor | np.ndarray) -> str:
    """SHA-256 (hex) of audio samples as float32: ``"float32<shape>"`` then the little-endian C-order
    bytes. Shape [channels, samples] or [samples]; any float dtype is cast to float32 first."""
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu().to(torch.float32).numpy()
    array = np.ascontiguousarray(np.asarray(samples, dtype="<f4"))
    digest = hashlib.sha256(f"float32{list(array.shape)}".encode("ascii"))
    digest.update(array.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class EmbeddingKey:
    """Every input an embedding depends on (see the module docstring)."""

    audio_sha256: str
    embedder: str
    embedder_key: str
    checkpoint: str
    preprocessing: Mapping[str, Any]

    def parts(self) -> dict[str, Any]:
        """The key as a JSON object (what the sidecar file holds)."""
        return {
            "format": CACHE_FORMAT,
            "audio_sha256": self.audio_sha256,
            "embedder": self.embedder,
            "embedder_key": self.embedder_key,
            "checkpoint": self.checkpoint,
            "preprocessing": json.loads(canonical_json(dict(self.preprocessing))),
        }

    def digest(self) -> str:
        """SHA-256 (hex) of ``canonical_json(parts())``: the entry's file name."""
        return hashlib.sha256(canonical_json(self.parts()).encode("ascii")).hexdigest()


@dataclass(frozen=True)
class SourceKey:
    """A source file (by the SHA-256 of its bytes) prepared with ``preprocessing`` by the decoding stack
    ``decoder`` (see ``decoder_fingerprint``)."""

    file_sha256: str
    preprocessing: Mapping[str, Any]
    decoder: Mapping[str, Any]

    def parts(self) -> dict[str, Any]:
        return {
            "format": CACHE_FORMAT,
            "file_sha256": self.file_sha256,
            "preprocessing": json.loads(canonical_json(dict(self.preprocessing))),
            "decoder": json.loads(canonical_json(dict(self.decoder))),
        }

    def digest(self) -> str:
        return hashlib.sha256(canonical_json(self.parts()).encode("ascii")).hexdigest()


@functools.lru_cache(maxsize=1)
def decoder_fingerprint() -> dict[str, Any]:
    """Versions of the decoding stack and the SHA-256 of agomni's ``agomni/io`` sources: a change of any
    of them may change decoded samples, so it is part of every ``SourceKey``."""
    try:
        import soxr

        soxr_version: str | None = soxr.__version__
    except ImportError:
        soxr_version = None
    io_dir = Path(__file__).resolve().parents[1] / "io"
    digest = hashlib.sha256()
    for source in sorted(io_dir.glob("*.py")):
        digest.update(source.name.encode("utf-8") + b"\0" + source.read_bytes() + b"\0")
    return {
        "av": av.__version__,
        "libavcodec": list(av.library_versions["libavcodec"]),
        "torchaudio": torchaudio.__version__,
        "soxr": soxr_version,
        "agomni_io_sha256": digest.hexdigest(),
    }


@dataclass
class CacheStats:
    """Counts for provenance: entry hits/misses/writes, audio-index hits/misses, every rejected entry as
    ``"<path>: <reason>"``, and the error that turned writing off (None while writing works)."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    index_hits: int = 0
    index_misses: int = 0
    rejected: list[str] = field(default_factory=list)
    write_error: str | None = None

    @classmethod
    def total(cls, parts: list[CacheStats]) -> CacheStats:
        """The counts of several processes added up (rejections listed in order, the first write error)."""
        errors = [p.write_error for p in parts if p.write_error is not None]
        return cls(
            hits=sum(p.hits for p in parts),
            misses=sum(p.misses for p in parts),
            writes=sum(p.writes for p in parts),
            index_hits=sum(p.index_hits for p in parts),
            index_misses=sum(p.index_misses for p in parts),
            rejected=[r for p in parts for r in p.rejected],
            write_error=errors[0] if errors else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "embedding_hits": self.hits,
            "embedding_misses": self.misses,
            "embedding_writes": self.writes,
            "audio_index_hits": self.index_hits,
            "audio_index_misses": self.index_misses,
            "rejected_entries": list(self.rejected),
            "write_error": self.write_error,
        }


Outputs = dict[str, np.ndarray]


def _save_npz(path: Path, arrays: Outputs) -> None:
    """``np.savez`` to exactly ``path`` (through a handle, so no ``.npz`` suffix is appended)."""
    with path.open("wb") as handle:
        np.savez(handle, **{head: np.ascontiguousarray(a) for head, a in arrays.items()})


def _describe(array: np.ndarray) -> dict[str, Any]:
    """SHA-256 of dtype, shape and bytes (little-endian C order), shape and dtype: an array's record."""
    digest = hashlib.sha256(f"{array.dtype.str}{list(array.shape)}".encode("ascii"))
    digest.update(np.ascontiguousarray(array).tobytes())
    return {"sha256": digest.hexdigest(), "shape": list(array.shape), "dtype": array.dtype.str}


def _check_arrays(arrays: Outputs, described: Mapping[str, Any]) -> str | None:
    """None when ``arrays`` are exactly what the record ``described``, finite; else the reason."""
    if set(arrays) != set(described):
        return f"heads {sorted(arrays)} differ from the record's {sorted(described)}"
    for head, array in arrays.items():
        if _describe(array) != described[head]:
            return f"{head} array differs from its record (checksum, shape or dtype)"
        if not np.isfinite(array).all():
            return f"{head} array holds NaN or infinite values"
    return None


class EmbeddingCache:
    """The on-disk cache: ``get``/``put`` all heads of one clip by ``EmbeddingKey``, ``get_audio``/
    ``put_audio`` the audio hash of a ``SourceKey``. ``enabled=False`` makes every lookup a miss and every
    write a no-op (``--no-cache``)."""

    def __init__(self, root: str | Path | None = None, *, enabled: bool = True):
        self.root = Path(root).expanduser() if root is not None else default_cache_root()
        self.enabled = enabled
        self.stats = CacheStats()

    def embedding_path(self, key: EmbeddingKey) -> Path:
        digest = key.digest()
        return self.root / EMBEDDINGS_DIR / digest[:2] / f"{digest}.npz"

    def audio_index_path(self, key: SourceKey) -> Path:
        digest = key.digest()
        return self.root / AUDIO_INDEX_DIR / digest[:2] / f"{digest}.json"

    def _rejected(self, message: str) -> None:
        """Record a rejected entry and say so on stderr (the first few; all are in the provenance)."""
        self.stats.rejected.append(message)
        shown = len(self.stats.rejected)
        if shown <= SHOWN_REJECTIONS:
            print(f"warning: embedding cache entry rejected: {message}", file=sys.stderr)
        if shown == SHOWN_REJECTIONS:
            print(
                "warning: further rejected cache entries are listed only in the results' provenance "
                "(cache.rejected_entries)",
                file=sys.stderr,
            )

    def _reject(self, path: Path, reason: str) -> None:
        self._rejected(f"{path}: {reason}; recomputed")
        self.stats.misses += 1

    def _record(self, path: Path) -> dict[str, Any] | str:
        """The record beside entry ``path``, or why it cannot be read."""
        try:
            record = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            return f"record unreadable ({err})"
        return record if isinstance(record, dict) else "record is not a JSON object"

    def get(self, key: EmbeddingKey, *, source: str | None = None) -> Outputs | None:
        """Every head cached for ``key``, verified against its record, or None (a miss). ``source``: the
        SHA-256 of the file whose audio-index entry led here; the record must list it. Rejected entries
        are recorded with the reason and missed."""
        if not self.enabled:
            return None
        path = self.embedding_path(key)
        if not path.is_file():
            self.stats.misses += 1
            return None
        record = self._record(path)
        if isinstance(record, str):
            self._reject(path, record)
            return None
        if record.get("key") != key.parts():
            self._reject(path, "record key parts differ from the requested key")
            return None
        if source is not None and source not in record.get("sources", []):
            self._reject(
                path, f"the audio index led here from file {source[:12]}..., which the entry does not list"
            )
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {head: stored[head] for head in stored.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            self._reject(path, f"arrays unreadable ({err})")
            return None
        problem = _check_arrays(arrays, record.get("arrays", {}))
        if problem is not None:
            self._reject(path, problem)
            return None
        self.stats.hits += 1
        return arrays

    def _write(self, path: Path, write: Any) -> bool:
        """``atomic_write`` unless writing is off; a failure turns it off with one warning."""
        if not self.enabled or self.stats.write_error is not None:
            return False
        try:
            atomic_write(path, write)
        except OSError as err:
            self.stats.write_error = f"{path}: {err}"
            print(
                f"warning: cannot write the embedding cache ({err}); going on without writing to it",
                file=sys.stderr,
            )
            return False
        return True

    def put(
        self,
        key: EmbeddingKey,
        arrays: Mapping[str, np.ndarray | torch.Tensor],
        *,
        source: str | None = None,
        sources: list[str] | tuple[str, ...] = (),
    ) -> Path | None:
        """Store every head of one clip under ``key`` (arrays first, then the record listing ``source``
        and ``sources``), each atomically; None when not written."""
        outputs = {
            head: a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
            for head, a in arrays.items()
        }
        path = self.embedding_path(key)
        # Files already listed for this key stay listed: two files that decode to the same audio (a
        # generated file equal to its reference) are embedded in one batch and stored one after the other.
        kept = self._record(path) if path.is_file() else None
        if isinstance(kept, dict) and kept.get("key") == key.parts():
            sources = [*sources, *kept.get("sources", [])]
        listed = sorted({*sources, *([source] if source else [])})
        record = {
            "key": key.parts(),
            "arrays": {h: _describe(a) for h, a in outputs.items()},
            "sources": listed,
        }
        text = (canonical_json(record) + "\n").encode("ascii")
        if not (
            self._write(path, lambda tmp: _save_npz(tmp, outputs))
            and self._write(path.with_suffix(".json"), lambda tmp: tmp.write_bytes(text))
        ):
            return None
        self.stats.writes += 1
        return path

    def add_source(self, key: EmbeddingKey, arrays: Outputs, source: str) -> None:
        """Record that file ``source`` also decodes to ``key``'s audio (a verified hit of ``arrays``)."""
        record = self._record(self.embedding_path(key))
        listed = record.get("sources", []) if isinstance(record, dict) else []
        if source not in listed:
            self.put(key, arrays, source=source, sources=listed)

    def get_audio(self, key: SourceKey) -> dict[str, Any] | None:
        """What decoding the source gave last time (``audio_sha256``, ``samples``, ``sample_rate``), or
        None."""
        if not self.enabled:
            return None
        path = self.audio_index_path(key)
        if not path.is_file():
            self.stats.index_misses += 1
            return None
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            valid = stored["key"] == key.parts() and isinstance(stored["audio"]["audio_sha256"], str)
        except (OSError, ValueError, KeyError, TypeError) as err:
            self._rejected(f"{path}: unreadable audio-index entry ({err}); decoded again")
            self.stats.index_misses += 1
            return None
        if not valid:
            self._rejected(f"{path}: audio-index key differs from the requested key; decoded again")
            self.stats.index_misses += 1
            return None
        self.stats.index_hits += 1
        return dict(stored["audio"])

    def reject_audio(self, key: SourceKey, reason: str) -> None:
        """Record that the audio-index entry of ``key`` was not trusted (the file is decoded again)."""
        self._rejected(f"{self.audio_index_path(key)}: {reason}; decoded again")
        self.stats.index_hits -= 1
        self.stats.index_misses += 1

    def put_audio(self, key: SourceKey, audio: Mapping[str, Any]) -> Path | None:
        """Record that ``key``'s source decodes to ``audio`` (must hold ``audio_sha256``)."""
        path = self.audio_index_path(key)
        text = (canonical_json({"key": key.parts(), "audio": dict(audio)}) + "\n").encode("ascii")
        return path if self._write(path, lambda tmp: tmp.write_bytes(text)) else None

    def describe(self) -> dict[str, Any]:
        """Root, enabled flag and statistics, for provenance."""
        return {"root": str(self.root), "enabled": self.enabled, **self.stats.to_dict()}
