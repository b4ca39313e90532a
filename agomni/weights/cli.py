"""``agomni weights list | fetch NAME | import NAME PATH | verify [NAME...]``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from ..errors import UsageError
from .fetch import fetch
from .registry import WeightsEntry, entries, get_entry
from .store import cached_path, import_file, quick_status, read_record, record_path, verify, weights_dir


def human_size(entry: WeightsEntry) -> str:
    """``"358.7 MB (358,668,570 B)"``; ``~`` marks a size rounded by the publisher; ``unknown`` if none."""
    n = entry.size_bytes
    if n is None:
        return "unknown"
    value, unit = float(n), "B"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            break
        value /= 1000
    approx = "" if entry.size_exact else "~"
    digits = ".2f" if entry.size_exact else ".3g"
    shown = f"{n} B" if unit == "B" else f"{value:{digits}} {unit}"
    return f"{approx}{shown} ({approx}{n:,} B)"


def _checksum(entry: WeightsEntry) -> str:
    return entry.pin.describe() if entry.pin else "unpinned (sha256 recorded on first use)"


def _entry_json(entry: WeightsEntry) -> dict[str, Any]:
    record = read_record(entry)
    return {
        "name": entry.name,
        "filename": entry.filename,
        "url": entry.url,
        "manual": entry.manual,
        "size_bytes": entry.size_bytes,
        "size_exact": entry.size_exact,
        "licence": entry.licence,
        "metrics": list(entry.metrics),
        "pin": None if entry.pin is None else asdict(entry.pin),
        "checksum_search": entry.checksum_search,
        "state_dict_key": entry.state_dict_key,
        "notes": entry.notes,
        "path": str(cached_path(entry)),
        "status": quick_status(entry),
        "recorded_sha256": record.sha256 if record else None,
        "trust": record.trust if record else None,
    }


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps([_entry_json(e) for e in entries()], indent=2))
        return 0
    rows = [["NAME", "SIZE", "CHECKSUM (published)", "LICENCE", "STATUS", "USED BY"]]
    for e in entries():
        licence = e.licence.split(" (")[0]
        rows.append([e.name, human_size(e), _checksum(e), licence, quick_status(e), "; ".join(e.metrics)])
    print(_table(rows))
    print(f"\ncache: {weights_dir()} (status without re-hashing; `agomni weights verify` re-hashes)")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    entry = get_entry(args.name)
    path = fetch(entry, url=args.url)
    record = read_record(entry)
    trust = f" ({record.trust})" if record else ""
    print(f"{entry.name}: {path} sha256 {record.sha256 if record else '?'}{trust}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    entry = get_entry(args.name)
    path = import_file(entry, args.path)
    record = read_record(entry)
    assert record is not None  # import_file always writes one
    print(f"{entry.name}: imported {args.path} -> {path} sha256 {record.sha256} ({record.trust})")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    if args.names:
        targets = [get_entry(name) for name in args.names]
    else:
        targets = [e for e in entries() if cached_path(e).is_file() or record_path(e).is_file()]
        if not targets:
            print(f"no cached weights under {weights_dir()}")
            return 0
    failures = 0
    for entry in targets:
        state = verify(entry)
        if state.ok:
            print(f"ok        {entry.name}  {state.path}  sha256 {state.got}  ({state.detail})")
            continue
        failures += 1
        if state.status == "corrupt":
            print(f"MISMATCH  {entry.name}  {state.path}  expected {state.expected}  got {state.got}")
            print(f"          {state.detail}", file=sys.stderr)
        else:
            print(f"{state.status.upper():<9} {entry.name}  {state.path}  {state.detail}")
    if failures:
        print(f"{failures} of {len(targets)} file(s) failed verification", file=sys.stderr)
    return 1 if failures else 0


_COMMANDS = {"list": cmd_list, "fetch": cmd_fetch, "import": cmd_import, "verify": cmd_verify}


def cli_weights(args: argparse.Namespace) -> int:
    """Dispatch ``agomni weights ACTION``; returns the exit code (1 when verification fails)."""
    command = _COMMANDS.get(args.weights_command)
    if command is None:
        raise UsageError(
            f"unknown weights action {args.weights_command!r}; use one of {', '.join(_COMMANDS)}"
        )
    return command(args)
