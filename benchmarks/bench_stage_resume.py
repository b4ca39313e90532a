"""What a rerun of the per-item stages costs: `agomni eval --suite SUITE --random-weights --cache-dir C` as
whole processes on a synthetic set, for source trees (``--tree``, e.g. a worktree of an older commit),
in three scenarios that share one cache folder:

1. ``cold``: every item scored (fresh cache);
2. ``resumed``: the same command again (everything scored before);
3. ``added``: a fresh cache filled by a run over a folder holding the first ``--count - --added``
   generated files (and a manifest of those items), then the run over the same folder once the other
   files were added to it (with the whole manifest: only the added items are new).

Prints a markdown table: wall seconds per run and the set values; each run's stage profile is in its
``OUT/TREE/RUN/timings.json``. Given several trees, each scenario runs
every tree before the next one starts, so that they share the machine's load.

    PYTHONPATH=. python benchmarks/bench_stage_resume.py /tmp/resume --tree OLD --tree . --count 8 --added 2
    PYTHONPATH=. python benchmarks/bench_stage_resume.py /tmp/v2a --suite v2a-vggsound --tree OLD --tree . \\
        --count 2 --cold-and-resumed-only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.synthetic_sets import write_tts_set, write_v2a_set

WRITERS = {"tts-seed-en": write_tts_set, "v2a-vggsound": write_v2a_set}


def evaluate(
    tree: Path, suite: str, manifest: Path, pred: Path, cache: Path, out: Path, *extra: str
) -> float:
    """Wall seconds of one whole `agomni eval` process of ``tree``; its results in ``out``."""
    command = [
        sys.executable, "-m", "agomni.cli", "eval", "--suite", suite, "--manifest", str(manifest),
        "--pred", str(pred), "--random-weights", "--cache-dir", str(cache), "--no-progress",
        "--out", str(out), "--overwrite", "--profile-stages", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    # run from the tree: `python -m` puts the working folder first on the path, before PYTHONPATH
    done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 4):
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def values(out: Path) -> str:
    results = json.loads((out / "results.json").read_text())
    return ", ".join(f"{m['name']} {m['value']:.6g}" for m in results["metrics"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tree", type=Path, action="append", help="a source tree; several: alternated")
    parser.add_argument("--suite", default="tts-seed-en")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--added", type=int, default=2)
    parser.add_argument("--cold-and-resumed-only", action="store_true", help="skip the items-added scenario")
    args = parser.parse_args()
    if args.suite not in WRITERS:
        raise SystemExit(f"--suite: one of {sorted(WRITERS)}")
    trees = [t.resolve() for t in args.tree or [Path(".")]]
    data = args.out / "data"
    if not (data / "manifest.jsonl").exists():
        WRITERS[args.suite](data, args.count)
    manifest, pred = data / "manifest.jsonl", data / "pred"
    lines = manifest.read_text().splitlines()
    first_n = args.count - args.added
    first = data / "manifest-first.jsonl"
    first.write_text("\n".join(lines[:first_n]) + "\n")
    files = sorted(pred.glob("*.wav"))
    print("| run | tree | wall s | set values |\n|---|---|---:|---|", flush=True)

    def row(name: str, tree: Path, *run: Any) -> None:
        seconds = evaluate(tree, args.suite, *run)
        print(f"| {name} | {tree.name} | {seconds:.1f} | {values(run[-1])} |", flush=True)

    # each scenario runs every tree before the next scenario starts (alternated: same machine load)
    for tree in trees:
        row("cold", tree, manifest, pred, args.out / tree.name / "cache", args.out / tree.name / "cold")
    for tree in trees:
        runs = args.out / tree.name
        row("resumed (same command again)", tree, manifest, pred, runs / "cache", runs / "resumed")
    if args.cold_and_resumed_only:
        return
    for tree in trees:  # the same folder, first with the first items only, then with every item
        runs = args.out / tree.name
        (runs / "pred").mkdir(parents=True, exist_ok=True)
        for path in files[:first_n]:
            shutil.copy2(path, runs / "pred" / path.name)
        row(
            f"first {first_n} items (fresh cache)",
            tree,
            first,
            runs / "pred",
            runs / "cache-added",
            runs / "first",
        )
    for tree in trees:
        runs = args.out / tree.name
        for path in files[first_n:]:
            shutil.copy2(path, runs / "pred" / path.name)
        row(
            f"{args.added} files added: all {args.count}",
            tree,
            manifest,
            runs / "pred",
            runs / "cache-added",
            runs / "added",
        )


if __name__ == "__main__":
    main()
