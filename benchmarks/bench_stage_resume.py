"""What a rerun of the per-item stages costs: `agomni eval --suite SUITE --random-weights --cache-dir C` as
whole processes on a synthetic set, for one source tree (``--tree``, e.g. a worktree of an older commit),
in three scenarios that share one cache folder:

1. ``cold``: every item scored (fresh cache);
2. ``resumed``: the same command again (everything scored before);
3. ``added``: a fresh cache filled by a run over the first ``--count - --added`` items (with
   ``--allow-missing``, the last files are unused), then the run over every item (only the added ones
   are new).

Prints a markdown table: wall seconds per run and the set values, so that two trees can be compared.

    PYTHONPATH=. python benchmarks/bench_stage_resume.py /tmp/resume --tree . --count 8 --added 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.synthetic_sets import write_tts_set


def evaluate(
    tree: Path, suite: str, manifest: Path, pred: Path, cache: Path, out: Path, *extra: str
) -> float:
    """Wall seconds of one whole `agomni eval` process of ``tree``; its results in ``out``."""
    command = [
        sys.executable, "-m", "agomni.cli", "eval", "--suite", suite, "--manifest", str(manifest),
        "--pred", str(pred), "--random-weights", "--cache-dir", str(cache), "--no-progress",
        "--out", str(out), "--overwrite", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
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
    parser.add_argument("--tree", type=Path, default=Path("."))
    parser.add_argument("--suite", default="tts-seed-en")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--added", type=int, default=2)
    args = parser.parse_args()
    tree = args.tree.resolve()
    data = args.out / "data"
    if not (data / "manifest.jsonl").exists():
        write_tts_set(data, args.count)
    manifest, pred = data / "manifest.jsonl", data / "pred"
    lines = manifest.read_text().splitlines()
    first = data / "manifest-first.jsonl"
    first.write_text("\n".join(lines[: args.count - args.added]) + "\n")
    runs = args.out / tree.name
    rows = []
    cold = evaluate(tree, args.suite, manifest, pred, runs / "cache", runs / "cold")
    rows.append(("cold", cold, values(runs / "cold")))
    resumed = evaluate(tree, args.suite, manifest, pred, runs / "cache", runs / "resumed")
    rows.append(("resumed", resumed, values(runs / "resumed")))
    part = evaluate(tree, args.suite, first, pred, runs / "cache-added", runs / "first", "--allow-missing")
    rows.append((f"first {args.count - args.added} items (fresh cache)", part, values(runs / "first")))
    added = evaluate(tree, args.suite, manifest, pred, runs / "cache-added", runs / "added")
    rows.append((f"added: all {args.count} items after that", added, values(runs / "added")))
    print(f"| {tree.name}: run | wall s | set values |\n|---|---:|---|")
    for name, seconds, text in rows:
        print(f"| {name} | {seconds:.1f} | {text} |")


if __name__ == "__main__":
    main()
