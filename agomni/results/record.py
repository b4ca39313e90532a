"""The JSON form shared by the results dataclasses: one key per field, in field order."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import fields
from typing import Any


def _plain(value: Any) -> Any:
    """A field's JSON value: a nested record as its dict, a tuple as a list, a mapping with each nested
    record as its dict, anything else deep-copied."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return {k: v.to_dict() if hasattr(v, "to_dict") else copy.deepcopy(v) for k, v in value.items()}
    return copy.deepcopy(value)


class Record:
    """Base of a frozen dataclass whose JSON object holds every field under its own name."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        """The record of a checked dict (nested records are read by the subclass)."""
        return cls(**data)
