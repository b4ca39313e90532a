"""Peak memory and cache speed-up of `agomni eval` on a large generated set (see benchmarks/RESULTS.md).

Runs ``agomni eval`` as a fresh process per run under ``/usr/bin/time -f "%e %M"`` (wall seconds, peak
RSS in KiB): one cold run into an empty cache folder, then ``--warm`` runs from that cache, and
optionally one ``--no-cache`` run. Prints one markdown row per run, with the pipeline's own total time
(provenance timings) and the cache hit/miss counts read back from each run's results.json.

    python benchmarks/make_clips.py /tmp/clips --count 2000 --seconds 10
    python benchmarks/bench_eval_cache.py /tmp/clips /tmp/bench --metrics fd-mel-stats --warm 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from agomni.results import read_results


def run_once(clips: Path, work: Path, label: str, metrics: str, extra: list[str]) -> str:
    """One timed `agomni eval` process; returns its markdown row."""
    out = work / f"run-{label}"
    command = [
        "/usr/bin/time",
        "-f",
        "%e %M",
        "-o",
        str(work / f"{label}.time"),
        sys.executable,
        "-m",
        "agomni.cli",
        "eval",
        "--pred",
        str(clips / "pred"),
        "--ref",
        str(clips / "ref"),
        "--metrics",
        metrics,
        "--cache-dir",
        str(work / "cache"),
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall, peak_kib = (work / f"{label}.time").read_text().split()[-2:]
    results = read_results(out / "results.json")
    cache = results.provenance.preprocessing["cache"]
    values = ", ".join(f"{m.name}={m.value:.6g}" for m in results.metrics)
    return (
        f"| {label} | {float(wall):.1f} | {results.provenance.timings['total']:.1f} | "
        f"{int(peak_kib) / 1024:.0f} | {cache['embedding_hits']} / {cache['embedding_misses']} | {values} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", type=Path, help="folder with pred/ and ref/ (benchmarks/make_clips.py)")
    parser.add_argument("work", type=Path, help="scratch folder for the cache and run folders (emptied)")
    parser.add_argument("--metrics", default="fd-mel-stats")
    parser.add_argument("--warm", type=int, default=3, help="runs from the cache after the cold one")
    parser.add_argument("--no-cache-run", action="store_true", help="also one run with --no-cache")
    parser.add_argument("--extra", default="", help="more `agomni eval` options, space-separated")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    extra = args.extra.split()
    print("| run | wall s (process) | pipeline s | peak RSS MiB | cache hits / misses | values |")
    print("|---|---|---|---|---|---|")
    print(run_once(args.clips, args.work, "cold", args.metrics, extra), flush=True)
    for i in range(args.warm):
        print(run_once(args.clips, args.work, f"warm{i + 1}", args.metrics, extra), flush=True)
    if args.no_cache_run:
        print(run_once(args.clips, args.work, "no-cache", args.metrics, [*extra, "--no-cache"]), flush=True)


if __name__ == "__main__":
    main()
