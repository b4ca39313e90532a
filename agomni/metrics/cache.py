"""Content-addressed, on-disk cache of embeddings (and of which decoded audio a source file gives).

What a cached embedding is keyed by (``EmbeddingKey``):

- ``audio_sha256``: SHA-256 of the **decoded, preprocessed float32 samples** the embedder receives
  (``audio_sha256()``: dtype, shape, then the little-endian bytes), not of the source file. The
  embedding is a deterministic function of exactly these samples, so this hash changes whenever the
  audio or any preprocessing step changes it (decoder version, downmix, resampler, crop/pad), and two
  files that decode to the same samples (a WAV and its FLAC copy) share one entry. A hash of the file
  bytes alone would miss a change of decoder or resampler; a path would miss everything (the
  audioldm_eval pitfall, see PROTOCOLS.md).
- ``embedder`` and ``embedder_key``: the embedder's name and ``Embedder.cache_key()`` (name, version,
  sample rate, output level and every setting in ``config()``).
- ``checkpoint``: the weights' SHA-256, ``"random-weights:<seed>"`` for a network left with seeded random
  weights, or ``"none"`` for a weight-free embedder.
- ``preprocessing``: the preprocessing settings (sample rate, downmix, resampler and its parameters,
  crop/pad). Redundant with ``audio_sha256`` by construction, but kept in the key and in the sidecar so
  an entry says on disk how its audio was prepared.
- ``head``: which output of the embedder was stored (``"embed"`` or ``"logits"``).

Layout under the cache root (default ``agomni_home()/cache``; ``--cache-dir`` replaces it):
``embeddings/<first 2 hex of the key digest>/<digest>.npy`` holds the array exactly as the embedder
returned it (float32, no float16 rounding as in fadtk), ``<digest>.json`` beside it holds the key parts.
An entry whose sidecar does not match the key, or whose array cannot be read, is rejected (recorded
with the reason in ``CacheStats.rejected``) and recomputed; nothing is used unchecked.

A second store, ``audio-index/<prefix>/<digest>.json``, maps a ``SourceKey`` (SHA-256 of the source
file's bytes + the preprocessing settings + a fingerprint of the decoding stack: PyAV/libavcodec,
torchaudio, soxr versions and the bytes of agomni's ``agomni/io`` source) to the ``audio_sha256`` that
decoding it gave. A re-run then hashes the file, finds the audio hash and the embeddings, and skips
decoding altogether; any change of bytes, settings or decoding code changes the source key.
Entries are only written for audio that decoded and passed every check, so a bad file is re-checked
(and fails again) on every run.

Writes are atomic (``agomni.atomic.atomic_write``): an interrupted run leaves whole entries only and
resumes without recomputing them. They are not fsynced: after a power loss an entry may be empty or
truncated, which ``get`` detects and recomputes; an fsync per file cost more than computing the offline
embeddings (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agomni.atomic import atomic_write
from agomni.paths import agomni_home

CACHE_FORMAT = "1"
EMBEDDINGS_DIR = "embeddings"
AUDIO_INDEX_DIR = "audio-index"


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
    head: str = "embed"

    def parts(self) -> dict[str, Any]:
        """The key as a JSON object (what the sidecar file holds)."""
        return {
            "format": CACHE_FORMAT,
            "audio_sha256": self.audio_sha256,
            "embedder": self.embedder,
            "embedder_key": self.embedder_key,
            "checkpoint": self.checkpoint,
            "preprocessing": json.loads(canonical_json(dict(self.preprocessing))),
            "head": self.head,
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
    import av
    import torchaudio

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
    """Counts for provenance: embedding hits/misses/writes, audio-index hits/misses, and every rejected
    entry as ``"<path>: <reason>"``."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    index_hits: int = 0
    index_misses: int = 0
    rejected: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "embedding_hits": self.hits,
            "embedding_misses": self.misses,
            "embedding_writes": self.writes,
            "audio_index_hits": self.index_hits,
            "audio_index_misses": self.index_misses,
            "rejected_entries": list(self.rejected),
        }


def _save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` to exactly ``path`` (through a handle, so no ``.npy`` suffix is appended)."""
    with path.open("wb") as handle:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)


class EmbeddingCache:
    """The on-disk cache: ``get``/``put`` embeddings by ``EmbeddingKey``, ``get_audio``/``put_audio`` the
    audio hash of a ``SourceKey``. ``enabled=False`` makes every lookup a miss and every write a no-op
    (``--no-cache``)."""

    def __init__(self, root: str | Path | None = None, *, enabled: bool = True):
        self.root = Path(root).expanduser() if root is not None else default_cache_root()
        self.enabled = enabled
        self.stats = CacheStats()

    def embedding_path(self, key: EmbeddingKey) -> Path:
        digest = key.digest()
        return self.root / EMBEDDINGS_DIR / digest[:2] / f"{digest}.npy"

    def audio_index_path(self, key: SourceKey) -> Path:
        digest = key.digest()
        return self.root / AUDIO_INDEX_DIR / digest[:2] / f"{digest}.json"

    def _sidecar_matches(self, sidecar: Path, expected: dict[str, Any]) -> str | None:
        """None when ``sidecar`` holds ``expected``, else the reason it does not."""
        try:
            stored = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            return f"sidecar unreadable ({err})"
        if stored != expected:
            return "sidecar key parts differ from the requested key"
        return None

    def get(self, key: EmbeddingKey) -> np.ndarray | None:
        """The cached array for ``key``, or None (a miss). Rejected entries are recorded and missed."""
        if not self.enabled:
            return None
        path = self.embedding_path(key)
        if not path.is_file():
            self.stats.misses += 1
            return None
        problem = self._sidecar_matches(path.with_suffix(".json"), key.parts())
        array = None
        if problem is None:
            try:
                array = np.load(path, allow_pickle=False)
            except (OSError, ValueError, EOFError) as err:
                problem = f"array unreadable ({err})"
        if problem is not None:
            self.stats.rejected.append(f"{path}: {problem}; recomputed")
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return array

    def put(self, key: EmbeddingKey, array: np.ndarray | torch.Tensor) -> Path | None:
        """Store ``array`` under ``key`` (sidecar first, then the array, each atomically)."""
        if not self.enabled:
            return None
        if isinstance(array, torch.Tensor):
            array = array.detach().cpu().numpy()
        path = self.embedding_path(key)
        sidecar = (canonical_json(key.parts()) + "\n").encode("ascii")
        atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_bytes(sidecar))
        atomic_write(path, lambda tmp: _save_npy(tmp, array))
        self.stats.writes += 1
        return path

    def get_audio(self, key: SourceKey) -> dict[str, Any] | None:
        """What decoding the source gave last time (``audio_sha256``, ``samples``, ``sample_rate``,
        ``channels``), or None."""
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
            self.stats.rejected.append(f"{path}: unreadable audio-index entry ({err}); decoded again")
            self.stats.index_misses += 1
            return None
        if not valid:
            self.stats.rejected.append(
                f"{path}: audio-index key differs from the requested key; decoded again"
            )
            self.stats.index_misses += 1
            return None
        self.stats.index_hits += 1
        return dict(stored["audio"])

    def put_audio(self, key: SourceKey, audio: Mapping[str, Any]) -> Path | None:
        """Record that ``key``'s source decodes to ``audio`` (must hold ``audio_sha256``)."""
        if not self.enabled:
            return None
        path = self.audio_index_path(key)
        text = (canonical_json({"key": key.parts(), "audio": dict(audio)}) + "\n").encode("ascii")
        atomic_write(path, lambda tmp: tmp.write_bytes(text))
        return path

    def describe(self) -> dict[str, Any]:
        """Root, enabled flag and statistics, for provenance."""
        return {"root": str(self.root), "enabled": self.enabled, **self.stats.to_dict()}
