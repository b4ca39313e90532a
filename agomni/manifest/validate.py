"""Check a JSONL manifest and report every problem in it, each with its line number.

Format rules (fields and the per-task table are in `fields.py`):
- UTF-8 JSON Lines: one JSON object per line, line numbers count from 1. A byte-order mark at the
  start and CRLF line ends are accepted.
- Blank (empty or whitespace-only) lines are allowed only at the end of the file. JSON Lines has no
  blank records, and a blank line between items is usually the trace of an item lost while
  editing or concatenating files, so it is reported; trailing blank lines are an editor habit and
  hide nothing.
- NaN/Infinity and repeated keys within one object are rejected (JSON parsers differ on them).
- Unknown top-level fields are problems (typo protection); free-form data belongs under `meta`.
- `null` is not a value for any field: omit the field instead. Strings may not be empty, except
  `transcript` and `lyrics`: an item whose words are empty (or punctuation only) is a valid item that the
  speech metrics list as an error with the reason, so it is never lost.
- Paths are relative to the manifest's folder and must stay inside it: no absolute paths, no `..`
  leading out, and (when files are checked) no symlink resolving outside. An item with `data_root` (an
  absolute path of an existing folder, as `agomni run`'s importers write for a read-only data root)
  has its paths relative to that folder instead, under the same rules.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .fields import (
    ALWAYS_REQUIRED,
    FIELD_KINDS,
    MAX_DURATION_S,
    MAX_META_BYTES,
    MAX_META_DEPTH,
    MAX_TEXT_CHARS,
    TASK_REQUIRED_FIELDS,
    TASKS,
    id_problem,
)


@dataclass(frozen=True)
class Problem:
    """One problem in a manifest. `line` counts from 1 (None for the whole file); `item_id` and
    `field` are None where unknown or not applicable."""

    path: str
    line: int | None
    item_id: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        parts = [where]
        if self.item_id is not None:
            parts.append(f"id {self.item_id!r}")
        if self.field is not None:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


@dataclass
class ManifestScan:
    """What one reading of a manifest gave: its bytes (None if unreadable), the (line, object)
    records of lines without problems of their own, and every problem found."""

    data: bytes | None
    records: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def validate_manifest(path: str | Path, *, check_files: bool = True) -> list[Problem]:
    """Every problem in the manifest at `path`, in line order; an empty list means it is valid.

    With `check_files`, each path field must name an existing regular file that resolves (through
    symlinks) inside the manifest's folder; without it, paths are checked only as text. A missing
    or unreadable manifest is reported as one problem, never raised.
    """
    return scan_manifest(path, check_files=check_files).problems


def scan_manifest(path: str | Path, *, check_files: bool) -> ManifestScan:
    """Read and check the manifest once (see `validate_manifest`); the loader builds items from this."""
    shown = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        reason = err.strerror or str(err)
        return ManifestScan(
            None, problems=[Problem(shown, None, None, None, f"cannot read manifest: {reason}")]
        )
    scan = ManifestScan(data)
    root = Path(os.path.abspath(path)).parent
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the final newline ends the last line; it does not start another
    last_content = max((i for i, raw in enumerate(lines) if raw.strip()), default=-1)
    if last_content < 0:
        scan.problems.append(Problem(shown, None, None, None, "no items (the file is empty or blank)"))
        return scan

    first_line: dict[str, int] = {}
    folded_line: dict[str, tuple[str, int]] = {}
    for index, raw in enumerate(lines[: last_content + 1]):
        lineno = index + 1
        problems_before = len(scan.problems)
        obj = _parse_line(shown, lineno, raw, scan.problems)
        if obj is None:
            continue
        raw_id = obj.get("id")
        item_id = raw_id if isinstance(raw_id, str) else None
        _check_item(shown, lineno, obj, item_id, root, check_files, scan.problems)
        if item_id:
            if item_id in first_line:
                scan.problems.append(
                    Problem(
                        shown, lineno, item_id, None, f"duplicate id (also on line {first_line[item_id]})"
                    )
                )
            else:
                first_line[item_id] = lineno
                folded = item_id.casefold()
                if folded in folded_line:
                    other_id, other_line = folded_line[folded]
                    scan.problems.append(
                        Problem(
                            shown,
                            lineno,
                            item_id,
                            None,
                            f"id differs only in letter case from {other_id!r} on line {other_line} "
                            "(their output files would collide on case-insensitive file systems)",
                        )
                    )
                else:
                    folded_line[folded] = (item_id, lineno)
        if len(scan.problems) == problems_before:
            scan.records.append((lineno, obj))
    return scan


def _parse_line(shown: str, lineno: int, raw: bytes, problems: list[Problem]) -> dict[str, Any] | None:
    """The line's JSON object, or None after recording why there is none."""

    def problem(message: str) -> None:
        problems.append(Problem(shown, lineno, None, None, message))

    if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        problem(f"not valid UTF-8 (byte {err.start + 1} of the line)")
        return None
    if not text.strip():
        problem("blank line (blank lines are allowed only at the end of the file; delete it)")
        return None
    repeated: list[str] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                repeated.append(key)
            seen.add(key)
        return dict(pairs)

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        value = json.loads(text, object_pairs_hook=pairs_hook, parse_constant=reject_constant)
    except json.JSONDecodeError as err:
        problem(f"invalid JSON: {err.msg} (column {err.colno})")
        return None
    except ValueError as err:
        problem(f"invalid JSON: {err}")
        return None
    except RecursionError:
        problem("invalid JSON: nested too deeply to read")
        return None
    if not isinstance(value, dict):
        problem(f"not a JSON object (got {_json_type(value)}); each line must be one item object")
        return None
    if repeated:
        problem(f"repeated key(s) in the object: {', '.join(map(repr, repeated))}")
        return None
    return value


def _check_item(
    shown: str,
    lineno: int,
    obj: dict[str, Any],
    item_id: str | None,
    root: Path,
    check_files: bool,
    problems: list[Problem],
) -> None:
    """Record every problem of one parsed item: required fields, kinds, unknown fields, files."""

    def problem(field_name: str | None, message: str) -> None:
        problems.append(Problem(shown, lineno, item_id, field_name, message))

    task = obj.get("task")
    item_root, where = root, "the manifest's folder"
    if "data_root" in obj:
        raw_root = obj["data_root"]
        item_root = Path(raw_root) if _value_problem("root", raw_root, root, check_files) is None else None
        where = "the item's data_root"
    for name in ALWAYS_REQUIRED:
        if name not in obj:
            problem(name, "missing (every item needs it)")
    if isinstance(task, str) and task not in TASKS:
        problem("task", f"unknown task {task!r} (known: {', '.join(TASKS)})")
    for name, value in obj.items():
        kind = FIELD_KINDS.get(name)
        if kind is None:
            close = difflib.get_close_matches(name, FIELD_KINDS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problem(name, f"unknown field ({hint}put free-form data under 'meta')")
            continue
        message = _value_problem(kind, value, item_root, check_files, where)
        if message is not None:
            problem(name, message)
    if isinstance(task, str):
        for name in TASK_REQUIRED_FIELDS.get(task, ()):
            if name not in obj:
                problem(name, f"missing (required for task {task!r})")


def _value_problem(
    kind: str, value: Any, root: Path | None, check_files: bool, where: str = "the manifest's folder"
) -> str | None:
    """Why `value` is not a valid value of a field of `kind`, or None. Paths are relative to folder
    `root` (`where` in messages); None: an invalid data_root, so paths are checked only as text."""
    if value is None:
        return "null is not allowed (omit the field instead)"
    if kind == "object":
        if not isinstance(value, dict):
            return f"must be a JSON object, got {_json_type(value)}"
        if _depth(value) > MAX_META_DEPTH:
            return f"nested deeper than {MAX_META_DEPTH} levels"
        if len(json.dumps(value, ensure_ascii=False).encode("utf-8")) > MAX_META_BYTES:
            return f"larger than {MAX_META_BYTES} bytes of JSON"
        return None
    if kind == "seconds":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number of seconds, got {_json_type(value)}"
        if not math.isfinite(value) or value <= 0 or value > MAX_DURATION_S:
            return f"must be a positive number of seconds, got {value!r} (at most {MAX_DURATION_S:g})"
        return None
    if not isinstance(value, str):
        return f"must be a string, got {_json_type(value)}"
    if kind == "id":
        return id_problem(value)
    if kind == "task":
        return None  # the caller checks it against TASKS and lists the known ones
    if not value.strip() and kind != "spoken":
        return "empty string (omit the field instead)"
    if kind == "path":
        return path_problem(value, root or Path("."), check_files and root is not None, where)
    if kind == "root":
        if "\x00" in value or not os.path.isabs(value):
            return (
                f"must be an absolute folder path (the data root the item's paths are relative to): {value}"
            )
        if check_files and not Path(value).is_dir():
            return f"folder not found: {value}"
        return None
    if len(value) > MAX_TEXT_CHARS:
        return f"longer than {MAX_TEXT_CHARS} characters ({len(value)})"
    return None


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value (a scalar is 0, an object or array one more than its deepest child)."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def path_problem(raw: str, root: Path, check_files: bool, where: str = "the manifest's folder") -> str | None:
    """Why manifest path `raw` (relative to folder `root`, called `where` in messages) is not usable, or None.

    Lexical checks always run; with `check_files` the path must also name a regular file whose real
    location (symlinks resolved) lies inside `root`'s real location.
    """
    if "\x00" in raw:
        return "path contains a NUL character"
    if os.path.isabs(raw) or PurePosixPath(raw).is_absolute():
        return f"absolute path not allowed (give it relative to {where}): {raw}"
    normal = os.path.normpath(raw)
    if normal == os.pardir or normal.startswith(os.pardir + os.sep):
        return f"path leads outside {where}: {raw}"
    if not check_files:
        return None
    full = root / raw
    if not full.exists():
        broken = " (broken symlink)" if full.is_symlink() else ""
        return f"file not found{broken}: {raw}"
    real = full.resolve()
    if not real.is_relative_to(root.resolve()):
        return f"path resolves outside {where} through a symlink: {raw} -> {real}"
    if not real.is_file():
        return f"not a regular file: {raw}"
    return None


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
