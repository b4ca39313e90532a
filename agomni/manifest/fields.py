"""What a manifest item may hold: its fields, each field's kind, and which fields each task needs.

This module is the one place these rules live, as data. The validator, the loader and the output
pairing all read them from here.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from types import MappingProxyType

# Each task -> the fields (besides `id` and `task`) an item of that task must have.
TASK_REQUIRED_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "t2a": ("text",),
        "v2a": ("video",),
        "tts": ("transcript",),
        "v2s": ("video", "transcript"),
        "t2song": ("text",),
        "v2song": ("video",),
    }
)
TASKS: tuple[str, ...] = tuple(TASK_REQUIRED_FIELDS)

# Field -> its kind. Kinds: "id", "task"; "text" (non-empty string); "spoken" (a string, empty allowed: an
# item whose words are empty is kept, and the speech metrics list it as an error with the reason); "path"
# (a file, relative to the manifest's folder, or to the item's `data_root` when it has one); "root" (an
# absolute folder path: the importers of `agomni run` name the user's data root so the manifest can live
# in the run folder); "seconds" (finite number > 0); "object" (free JSON object).
FIELD_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "id": "id",
        "task": "task",
        "text": "text",
        "transcript": "spoken",
        "lyrics": "spoken",
        "language": "text",
        "video": "path",
        "reference_audio": "path",
        "prompt_audio": "path",
        "prompt_text": "text",
        "duration": "seconds",
        "meta": "object",
        "data_root": "root",
    }
)
ALWAYS_REQUIRED: tuple[str, ...] = ("id", "task")
PATH_FIELDS: tuple[str, ...] = tuple(name for name, kind in FIELD_KINDS.items() if kind == "path")

# Separates an item id from its sample index in output file names ("<id>__s<k>.<ext>"); ids may not
# contain it, so every output name splits back into (id, k) one way only.
SAMPLE_SEPARATOR = "__"
# Characters no id may hold: path separators and those Windows forbids in file names.
_FORBIDDEN_ID_CHARS = frozenset('/\\<>:"|?*')
# Longest id in UTF-8 bytes: leaves room for "__s<k>.<ext>" within the usual 255-byte name limit.
MAX_ID_BYTES = 200
# Bounds that keep a valid manifest runnable: a duration generation and scoring can allocate (1 hour),
# text an encoder reads in one piece, and a `meta` object of reasonable depth and size.
MAX_DURATION_S = 3600.0
MAX_TEXT_CHARS = 20_000
MAX_META_DEPTH = 16
MAX_META_BYTES = 65_536


def id_problem(item_id: str) -> str | None:
    """Why `item_id` cannot serve as a file stem on Linux, macOS and Windows, or None when it can.

    Rules: non-empty; at most MAX_ID_BYTES bytes of UTF-8; no leading '.'; no whitespace or control
    characters; none of / \\ < > : " | ? *; no SAMPLE_SEPARATOR ("__", reserved for sample names).
    """
    if not item_id:
        return "empty id"
    if len(item_id.encode("utf-8")) > MAX_ID_BYTES:
        return f"id longer than {MAX_ID_BYTES} bytes of UTF-8"
    if item_id.startswith("."):
        return "id starts with '.' (hidden file names are not allowed)"
    for char in item_id:
        if char.isspace() or unicodedata.category(char).startswith("C"):
            return f"id contains whitespace or a control character ({char!r})"
        if char in _FORBIDDEN_ID_CHARS:
            return f'id contains {char!r} (ids must be safe as file names: no / \\ < > : " | ? *)'
    if SAMPLE_SEPARATOR in item_id:
        return f"id contains {SAMPLE_SEPARATOR!r}, which output names reserve to separate the sample index"
    return None
