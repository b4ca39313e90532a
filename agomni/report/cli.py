"""`agomni report RUN...`: render run folders (and the comparison of each with the first)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .render import write_report


def cli_report(args: argparse.Namespace) -> int:
    runs = [Path(r) for r in args.runs]
    out = Path(args.out) if args.out else runs[0]
    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    written = write_report(
        runs,
        out,
        formats,
        against_paper=args.against_paper,
        profile=None if args.profile is None else Path(args.profile),
        resamples=args.resamples,
    )
    for path in written:
        print(f"wrote {path}")
    return 0
