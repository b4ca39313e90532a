"""The weights cache on disk: layout, trust-on-first-use records, and verification.

Layout under ``agomni.paths.agomni_home()``::

    weights/<name>/<filename>              the verified checkpoint
    weights/<name>/<filename>.record.json  what we know about it (below)
    weights/<name>/<filename>.part         an unfinished download (resumed by the next fetch)
    weights/<name>/<filename>.part.validator  the ETag / Last-Modified the resume is conditional on
    weights/<name>/<filename>.lock         advisory lock while a process downloads the file (removed after)

A record holds the file's SHA-256 and size, where it came from (URL or local path), when, and how
it was trusted: ``pinned-sha256`` (matched the published SHA-256), ``pinned-md5`` or
``pinned-prefix`` (matched the published MD5 / SHA-256 prefix; the full SHA-256 was recorded then),
or ``tofu`` (no published checksum; the SHA-256 was recorded on first use). Every later load
re-hashes the file and compares with the record and the pin. Records are written atomically
(temporary file in the same folder, fsync, rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Literal

from agomni.atomic import atomic_write

from ..errors import ChecksumMismatchError, WeightsError
from ..paths import agomni_home
from .registry import WeightsEntry, get_entry

Trust = Literal["pinned-sha256", "pinned-md5", "pinned-prefix", "tofu"]
RECORD_SUFFIX = ".record.json"
PART_SUFFIX = ".part"
_CHUNK = 1 << 20


def trust_class(trust: Trust) -> Literal["pinned", "tofu"]:
    """The coarse form results record (agomni.results CHECKPOINT_TRUST): any published checksum that
    matched (SHA-256, MD5 or SHA-256 prefix) is ``pinned``; no published checksum is ``tofu``."""
    return "tofu" if trust == "tofu" else "pinned"


def weights_dir() -> Path:
    """``<agomni home>/weights``."""
    return agomni_home() / "weights"


def cached_path(entry: WeightsEntry) -> Path:
    """Where `entry`'s verified file lives (it may not exist yet)."""
    return weights_dir() / entry.name / entry.filename


def record_path(entry: WeightsEntry) -> Path:
    return cached_path(entry).with_name(entry.filename + RECORD_SUFFIX)


def part_path(entry: WeightsEntry) -> Path:
    return cached_path(entry).with_name(entry.filename + PART_SUFFIX)


@dataclass(frozen=True)
class Digests:
    """SHA-256 and MD5 (lowercase hex) and size in bytes of one file."""

    sha256: str
    md5: str
    size_bytes: int


def hash_stream(stream: BinaryIO) -> Digests:
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    while chunk := stream.read(_CHUNK):
        sha.update(chunk)
        md5.update(chunk)
        size += len(chunk)
    return Digests(sha.hexdigest(), md5.hexdigest(), size)


def hash_file(path: Path) -> Digests:
    """Stream `path` once and return its SHA-256, MD5 and size."""
    try:
        with open(path, "rb") as f:
            return hash_stream(f)
    except OSError as err:
        raise WeightsError(f"{path}: cannot read ({err.strerror or err})") from err


@dataclass(frozen=True)
class Record:
    """What the cache knows about one stored file (see the module docstring)."""

    name: str
    filename: str
    sha256: str
    size_bytes: int
    trust: Trust
    pin: str | None
    pin_source: str | None
    source: str
    obtained_at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def read_record(entry: WeightsEntry) -> Record | None:
    """The stored record, or None when there is none; a damaged record is a WeightsError."""
    path = record_path(entry)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Record(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as err:
        raise WeightsError(
            f"{path}: unreadable weights record ({err}); delete it and run `agomni weights fetch "
            f"{entry.name}` (or `import`) again"
        ) from err


def write_record(entry: WeightsEntry, record: Record) -> None:
    data = record.to_json().encode("utf-8")
    atomic_write(record_path(entry), lambda tmp: tmp.write_bytes(data), durable=True)


def check_digests(entry: WeightsEntry, digests: Digests, what: str) -> Trust:
    """Compare `digests` of `what` (a path or URL) with the entry's pin and any earlier record.

    Returns how the file is trusted; raises ChecksumMismatchError saying expected vs got otherwise.
    """
    pin = entry.pin
    if pin is not None:
        got = digests.md5 if pin.kind == "md5" else digests.sha256
        ok = got.startswith(pin.value) if pin.kind == "sha256-prefix" else got == pin.value
        if not ok:
            label = {"sha256": "SHA-256", "md5": "MD5", "sha256-prefix": "SHA-256 prefix"}[pin.kind]
            raise ChecksumMismatchError(
                f"{entry.name}: {what} does not match the published {label} (source: {pin.source}): "
                f"expected {pin.value}, got {got}"
            )
    if entry.size_exact and entry.size_bytes is not None and digests.size_bytes != entry.size_bytes:
        raise ChecksumMismatchError(
            f"{entry.name}: {what} has {digests.size_bytes} bytes, the registry expects {entry.size_bytes}"
        )
    record = read_record(entry)
    if record is not None and record.sha256 != digests.sha256:
        raise ChecksumMismatchError(
            f"{entry.name}: {what} differs from the SHA-256 recorded on {record.obtained_at} "
            f"({record.trust}, from {record.source}): expected {record.sha256}, got {digests.sha256}. "
            f"`agomni weights fetch {entry.name}` restores the recorded file; only if its publisher really "
            f"changed it, delete {record_path(entry)} to trust the new one."
        )
    if pin is None:
        return "tofu"
    return {"sha256": "pinned-sha256", "md5": "pinned-md5", "sha256-prefix": "pinned-prefix"}[pin.kind]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def install(entry: WeightsEntry, verified: Path, digests: Digests, trust: Trust, source: str) -> Path:
    """Move an already verified file into place (atomic rename) and write its record."""
    target = cached_path(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(verified, target)
    write_record(
        entry,
        Record(
            name=entry.name,
            filename=entry.filename,
            sha256=digests.sha256,
            size_bytes=digests.size_bytes,
            trust=trust,
            pin=f"{entry.pin.kind}:{entry.pin.value}" if entry.pin else None,
            pin_source=entry.pin.source if entry.pin else None,
            source=source,
            obtained_at=_now(),
        ),
    )
    return target


def import_file(entry: WeightsEntry | str, src: str | Path) -> Path:
    """Copy a local file into the cache after checking it against the pin (or recording its SHA-256).

    The copy goes to a temporary file next to the target and is hashed there, so what is checked is
    exactly what is installed. A mismatch leaves nothing in the cache.
    """
    entry = get_entry(entry) if isinstance(entry, str) else entry
    src = Path(src).expanduser()
    if not src.is_file():
        raise WeightsError(f"{src}: no such file to import as {entry.name}")
    target = cached_path(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".import", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        digests = hash_file(tmp)
        trust = check_digests(entry, digests, str(src))
        return install(entry, tmp, digests, trust, source=f"import:{src.resolve()}")
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class Verification:
    """Result of re-hashing one cached file. `status`: ok, missing, corrupt or unrecorded."""

    name: str
    path: Path
    status: Literal["ok", "missing", "corrupt", "unrecorded"]
    expected: str | None
    got: str | None
    trust: Trust | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def verify(entry: WeightsEntry | str) -> Verification:
    """Re-hash the cached file of `entry` and compare it with its record and pin."""
    entry = get_entry(entry) if isinstance(entry, str) else entry
    path = cached_path(entry)
    record = read_record(entry)
    if not path.is_file():
        detail = "no cached file" + (f" (a record from {record.obtained_at} exists)" if record else "")
        return Verification(
            entry.name, path, "missing", record.sha256 if record else None, None, None, detail
        )
    digests = hash_file(path)
    if record is None:
        return Verification(
            entry.name, path, "unrecorded", None, digests.sha256, None,
            f"file present but no record: re-import it with `agomni weights import {entry.name} {path}`",
        )  # fmt: skip
    try:
        trust = check_digests(entry, digests, str(path))
    except ChecksumMismatchError as err:
        return Verification(
            entry.name, path, "corrupt", record.sha256, digests.sha256, record.trust, str(err)
        )
    return Verification(
        entry.name, path, "ok", record.sha256, digests.sha256, trust, f"{trust}, {record.source}"
    )


def quick_status(entry: WeightsEntry) -> str:
    """Cheap status for listings (no hashing): cached, missing, partial, or ``corrupt?`` (size differs).

    ``agomni weights verify`` re-hashes for the real answer.
    """
    path = cached_path(entry)
    if not path.is_file():
        return "partial" if part_path(entry).is_file() else "missing"
    try:
        record = read_record(entry)
    except WeightsError:
        return "corrupt? (bad record)"
    if record is None:
        return "unrecorded"
    if path.stat().st_size != record.size_bytes:
        return "corrupt? (size differs)"
    return "cached"
