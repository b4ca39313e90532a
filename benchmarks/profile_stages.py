"""Where an evaluation's time goes: `agomni eval --profile-stages` on a synthetic set with random weights,
for the v2a-vggsound and tts-seed-en metric sets, each run ``--runs`` times as a whole process (cold:
``--no-cache``), alternating the suites. Prints a markdown table: per stage, the mean seconds and the
range over the runs (random weights cost what the real checkpoints cost: same networks, same input sizes).

    PYTHONPATH=. python benchmarks/profile_stages.py /tmp/profile --count 8 --runs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.synthetic_sets import write_tts_set, write_v2a_set


def run_once(suite: str, manifest: Path, pred: Path, out: Path, device: str) -> dict[str, float]:
    """Stage seconds (and total) of one whole-process `agomni eval` run, read from its timings.json."""
    command = [
        sys.executable, "-m", "agomni.cli", "eval", "--suite", suite, "--manifest", str(manifest),
        "--pred", str(pred), "--random-weights", "--no-cache", "--no-progress", "--profile-stages",
        "--device", device, "--out", str(out), "--overwrite",
    ]  # fmt: skip
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL, env={**os.environ})
    table = json.loads((out / "timings.json").read_text())
    return {**{row["stage"]: row["seconds"] for row in table["stages"]}, "untimed": table["untimed_s"],
            "total": table["total_s"]}  # fmt: skip


def markdown(suite: str, runs: list[dict[str, float]]) -> str:
    stages = sorted({s for run in runs for s in run}, key=lambda s: -sum(r.get(s, 0.0) for r in runs))
    lines = [f"| {suite} stage | mean s | min s | max s | share of total |", "|---|---|---|---|---|"]
    total = sum(r["total"] for r in runs) / len(runs)
    for stage in stages:
        values = [r.get(stage, 0.0) for r in runs]
        mean = sum(values) / len(values)
        share = "" if stage == "total" else f"{100 * mean / total:.1f}%"
        lines.append(f"| {stage} | {mean:.2f} | {min(values):.2f} | {max(values):.2f} | {share} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=8, help="items per set")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--suites", default="v2a-vggsound,tts-seed-en")
    args = parser.parse_args()
    sets = {
        "v2a-vggsound": write_v2a_set(args.out / "v2a", args.count),
        "tts-seed-en": write_tts_set(args.out / "tts", args.count),
    }
    suites = args.suites.split(",")
    results: dict[str, list[dict[str, float]]] = {s: [] for s in suites}
    for run in range(args.runs):
        for suite in suites:
            chosen = sets[suite]
            timings = run_once(
                suite, chosen.manifest, chosen.pred_dir, args.out / f"run_{suite}_{run}", args.device
            )
            results[suite].append(timings)
            print(f"{suite} run {run}: total {timings['total']:.1f} s", file=sys.stderr, flush=True)
    (args.out / "profile.json").write_text(json.dumps(results, indent=1) + "\n")
    for suite in suites:
        print(markdown(suite, results[suite]) + "\n")


if __name__ == "__main__":
    main()
