"""Every checkpoint agomni's metrics or reference model use, as typed data read from ``registry.json``.

Each entry (one JSON object per checkpoint, keys as the fields of `WeightsEntry`; ``pin`` an object
with ``kind``, ``value`` and ``source``, or null) names its download URL, size, licence, the metrics
that need it, and the checksum its publisher gives, with where that checksum was found. Hashes are
never invented: an entry whose publisher gives no checksum is *unpinned*, and its SHA-256 is recorded
the first time the file enters the cache (trust on first use) and checked on every later load (see
`store.py`).

Pin kinds:
- ``sha256``: the full SHA-256 published by the host (Hugging Face LFS object id, a URL path).
- ``sha256-prefix``: a torch-hub file name carries the first hex digits of the SHA-256; the prefix
  is checked and the full SHA-256 recorded on first use.
- ``md5``: the host publishes only an MD5 (Zenodo, some release scripts); the MD5 is checked and
  the SHA-256 recorded on first use.

Sizes are in bytes. `size_exact` is False where the host only shows a rounded size (e.g. "2.35 GB"
on a Hugging Face page): such a size is shown with "~" and never used to reject a download.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from ..errors import UnknownWeightsError

PinKind = Literal["sha256", "sha256-prefix", "md5"]

_HEX = re.compile(r"^[0-9a-f]+$")
_PIN_LENGTHS: dict[str, tuple[int, ...]] = {
    "sha256": (64,),
    "md5": (32,),
    "sha256-prefix": tuple(range(6, 64)),
}


@dataclass(frozen=True)
class Pin:
    """A checksum published by a trustworthy source, and where it was found."""

    kind: PinKind
    value: str
    source: str

    def __post_init__(self) -> None:
        if self.kind not in _PIN_LENGTHS:
            raise ValueError(f"unknown pin kind {self.kind!r}")
        if not _HEX.match(self.value) or len(self.value) not in _PIN_LENGTHS[self.kind]:
            raise ValueError(f"{self.kind} pin {self.value!r} is not lowercase hex of the right length")
        if not self.source.strip():
            raise ValueError("a pin must say where its checksum was published")

    def describe(self) -> str:
        """One-line human form, e.g. ``sha256 e5b1...`` or ``md5 362f... (+ SHA-256 on first use)``."""
        if self.kind == "sha256":
            return f"sha256 {self.value}"
        if self.kind == "md5":
            return f"md5 {self.value} (+ sha256 recorded on first use)"
        return f"sha256 prefix {self.value} (+ full sha256 recorded on first use)"


@dataclass(frozen=True)
class WeightsEntry:
    """One checkpoint file.

    `url` is None where no direct download exists (files produced by ``agomni train``, files behind
    a Google Drive viewer); `manual` then says how to obtain the file, and ``agomni weights import``
    brings it into the cache. `state_dict_key` names the wrapper key holding the tensors inside the
    checkpoint (e.g. ``"model"`` for PANNs, ``"model_state_dict"`` for Whisper), or None when the file
    is a plain ``{name: tensor}`` mapping.
    """

    name: str
    filename: str
    url: str | None
    size_bytes: int | None
    size_exact: bool
    licence: str
    metrics: tuple[str, ...]
    pin: Pin | None
    checksum_search: str
    state_dict_key: str | None = None
    manual: str | None = None
    notes: str = ""

    @property
    def pinned(self) -> bool:
        return self.pin is not None


def _entry(data: dict[str, Any]) -> WeightsEntry:
    """One object of ``registry.json`` as a `WeightsEntry` (lists become tuples, ``pin`` a `Pin`)."""
    fields = {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}
    pin = fields.pop("pin")
    return WeightsEntry(**fields, pin=None if pin is None else Pin(**pin))


def _load_entries() -> tuple[WeightsEntry, ...]:
    """The entries of ``registry.json`` (shipped next to this module), in file order."""
    text = resources.files(__package__).joinpath("registry.json").read_text(encoding="utf-8")
    return tuple(_entry(data) for data in json.loads(text))


_ENTRIES = _load_entries()
REGISTRY: dict[str, WeightsEntry] = {entry.name: entry for entry in _ENTRIES}
_extra: dict[str, WeightsEntry] = {}


def entries() -> list[WeightsEntry]:
    """Every known entry (the registry plus any added with `registered`), in registry order."""
    return [*REGISTRY.values(), *(e for name, e in _extra.items() if name not in REGISTRY)]


def get_entry(name: str) -> WeightsEntry:
    """The entry called `name`; UnknownWeightsError listing the known names otherwise."""
    if name in _extra:
        return _extra[name]
    if name in REGISTRY:
        return REGISTRY[name]
    known = ", ".join(e.name for e in entries())
    raise UnknownWeightsError(f"unknown weights {name!r}; known: {known} (see `agomni weights list`)")


@contextmanager
def registered(*extra: WeightsEntry) -> Iterator[None]:
    """Temporarily add (or override) entries, e.g. ones pointing at a local test server or a mirror."""
    saved = dict(_extra)
    _extra.update({entry.name: entry for entry in extra})
    try:
        yield
    finally:
        _extra.clear()
        _extra.update(saved)
