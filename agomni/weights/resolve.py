"""The entry points metrics use: a verified local path, its SHA-256, and provenance for results.

`resolve` returns the cached file after re-hashing it against its record and pin (every load is
checked), or fetches it (which honours offline mode). Within one process a file whose size, mtime
and inode are unchanged since it was last hashed is not hashed again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ChecksumMismatchError, WeightsError
from .fetch import fetch
from .load import load_state_dict
from .registry import WeightsEntry, get_entry
from .store import cached_path, read_record, trust_class, verify

if TYPE_CHECKING:
    import torch

_verified: dict[tuple[str, int, int, int], str] = {}


def _stat_key(path: Path) -> tuple[str, int, int, int]:
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ino)


def _checked_sha256(entry: WeightsEntry) -> str:
    path = cached_path(entry)
    key = _stat_key(path)
    if key in _verified:
        return _verified[key]
    state = verify(entry)
    if state.status == "corrupt":
        raise ChecksumMismatchError(
            f"{state.detail}. Run `agomni weights fetch {entry.name}` to download it again "
            f"(or `agomni weights import {entry.name} PATH`)"
        )
    if not state.ok or state.got is None:
        raise WeightsError(f"{entry.name}: {path}: {state.detail}")
    _verified[key] = state.got
    return state.got


def resolve(name: str | WeightsEntry, *, progress: bool = True) -> Path:
    """Local path of a verified checkpoint: the cached file (re-hashed) or a fresh fetch.

    Raises OfflineError in offline mode when the file is not cached, ChecksumMismatchError when the
    cached file no longer matches its pin or first-use record.
    """
    entry = get_entry(name) if isinstance(name, str) else name
    path = cached_path(entry)
    if not path.is_file():
        path = fetch(entry, progress=progress)
    _checked_sha256(entry)
    return path


def sha256_of(name: str | WeightsEntry) -> str:
    """SHA-256 (hex) of the cached, verified file of `name`; fetches it first when needed."""
    entry = get_entry(name) if isinstance(name, str) else name
    resolve(entry, progress=False)
    return _checked_sha256(entry)


def provenance(name: str | WeightsEntry) -> dict[str, Any]:
    """What a result must record about the checkpoint it used (verified now, never from memory alone).

    Keys: name, filename, sha256, size_bytes, trust (pinned-sha256 / pinned-md5 / pinned-prefix / tofu),
    trust_class (``pinned`` / ``tofu``, the vocabulary of agomni.results), pin, pin_source, source,
    obtained_at, licence.
    """
    entry = get_entry(name) if isinstance(name, str) else name
    sha = sha256_of(entry)
    record = read_record(entry)
    if record is None:  # verify() above guarantees a record; keep the error explicit all the same
        raise WeightsError(f"{entry.name}: no record next to {cached_path(entry)}")
    return {
        "name": entry.name,
        "filename": entry.filename,
        "sha256": sha,
        "size_bytes": record.size_bytes,
        "trust": record.trust,
        "trust_class": trust_class(record.trust),
        "pin": record.pin,
        "pin_source": record.pin_source,
        "source": record.source,
        "obtained_at": record.obtained_at,
        "licence": entry.licence,
    }


def load_entry_state_dict(name: str | WeightsEntry, *, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Resolve `name` (verified) and load its tensors, unwrapping the entry's documented `state_dict_key`."""
    entry = get_entry(name) if isinstance(name, str) else name
    return load_state_dict(resolve(entry), allow_pickle=allow_pickle, key=entry.state_dict_key)
