"""Anchors side by side: whole-process time of `agomni eval` against the way the reference implementations
are run today, on the same seeded clips and the same seeded random weights.

Makes ``--count`` generated and ``--count`` reference clips (mono 16 kHz WAV, `make_clips.make_sets`,
seed 0) once, exports agomni's seeded random weights (``--random-weights`` with ``--seed 0``) in each
upstream's official layout, then for each anchor and repeat runs, alternating which goes first:

- (A) ``agomni eval --metrics <set> --profile <profile> --random-weights --no-cache --no-progress``;
- (B) the upstream loop: ``benchmarks/anchors/<anchor>_loop.py`` (upstream network file by file, or
  av-benchmark's own entry script for ``av-benchmark``).

Each is its own subprocess, timed by wall clock and by child CPU seconds (``RUSAGE_CHILDREN`` user +
system delta). Both report metric values, printed side by side. One JSON line per run goes to stdout
and to ``OUT/runs.jsonl``; a summary table (medians, ratio upstream / agomni: higher is better for
agomni) ends the output. Run it at low priority on a shared machine:

    PYTHONPATH=. nice -n 10 python benchmarks/bench_anchors.py /tmp/anchors --count 48 --seconds 8 \
        --repeats 2 --av-benchmark-src /work/ext/av-benchmark

Anchors: ``panns`` (FD-PANNs vs panns-inference 0.1.1 per file), ``vggish`` (FD-VGG vs torchvggish 0.2
per file), ``passt`` (FD-PaSST vs hear21passt 0.0.26 per file), ``av-benchmark`` (FD-VGG, FD-PANNs,
FD-PaSST, KL-PANNs, KL-PaSST, IS vs av-benchmark's own loop; needs ``--av-benchmark-src``), ``clap``
(FD-CLAP with ``--profile fadtk`` vs laion-clap 1.1.7 in fadtk's per-file loop; every other anchor runs
agomni with ``--profile av-benchmark``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.make_clips import make_sets

ROOT = Path(__file__).resolve().parent.parent
ANCHOR_DIR = Path(__file__).resolve().parent / "anchors"
# the `agomni` command as installed next to this Python; with PYTHONPATH=ROOT it runs this tree's code
AGOMNI = [str(Path(sys.executable).parent / "agomni")]
AV_BENCHMARK_SET = "fd_vggish,fd_panns,fd_passt,kl_panns,kl_passt,is_panns"


@dataclass(frozen=True)
class Anchor:
    name: str
    metrics: str
    script: str
    upstream: str
    profile: str = "av-benchmark"


ANCHORS = {
    a.name: a
    for a in (
        Anchor("panns", "fd_panns", "panns_loop.py", "panns-inference 0.1.1, per file"),
        Anchor("vggish", "fd_vggish", "vggish_loop.py", "torchvggish 0.2, per file"),
        Anchor("passt", "fd_passt", "passt_loop.py", "hear21passt 0.0.26, per file"),
        Anchor("clap", "fd_clap", "clap_loop.py", "laion-clap 1.1.7, fadtk's per-file loop", "fadtk"),
        Anchor("av-benchmark", AV_BENCHMARK_SET, "av_benchmark_loop.py", "av-benchmark evaluate.py"),
    )
}


def export_weights(folder: Path, seed: int) -> None:
    """agomni's seeded random weights, as `agomni eval --random-weights --seed SEED` builds them, in the
    upstream layouts: ``panns.pth`` ({"model": state_dict}), ``vggish.pth`` and ``passt.pth`` (state dicts),
    ``clap.pt`` ({"state_dict": {"module.<name>": tensor}}, the LAION-CLAP audio tower)."""
    from agomni.metrics.embedders.clap import ClapAudioEmbedder
    from agomni.metrics.embedders.panns import PannsCnn14Embedder
    from agomni.metrics.embedders.passt import PasstEmbedder
    from agomni.metrics.embedders.vggish import VGGishEmbedder

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    panns = PannsCnn14Embedder.random("panns-cnn14-16k", seed=seed).network.state_dict()
    torch.save({"model": panns}, folder / "panns.pth")
    torch.manual_seed(seed)
    torch.save(VGGishEmbedder.random(seed=seed).network.state_dict(), folder / "vggish.pth")
    torch.manual_seed(seed)
    torch.save(PasstEmbedder(random_weights=True, seed=seed).net.state_dict(), folder / "passt.pth")
    clap = ClapAudioEmbedder(random_weights=True, seed=seed).net.state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in clap.items()}}, folder / "clap.pt")


def timed(cmd: list[str], log: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """Run ``cmd`` (stdout + stderr to ``log``); returns (wall seconds, child CPU seconds, exit status)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log.open("w") as out:
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, rc


def agomni_values(out: Path) -> dict[str, float]:
    results = json.loads((out / "results.json").read_text())
    return {m["name"]: m["value"] for m in results["metrics"]}


def upstream_values(log: Path) -> dict[str, float]:
    for line in reversed(log.read_text().splitlines()):
        if line.startswith('{"anchor"'):
            return json.loads(line)["values"]
    return {}


def commands(anchor: Anchor, args: argparse.Namespace, clips: Path, work: Path) -> dict[str, list[str]]:
    agomni = [
        *AGOMNI, "eval",
        "--pred", str(clips / "pred"), "--ref", str(clips / "ref"),
        "--metrics", anchor.metrics, "--profile", anchor.profile, "--seed", "0",
        "--random-weights", "--no-cache", "--no-progress", "--overwrite", "--out", str(work / "agomni"),
    ]  # fmt: skip
    upstream = [
        sys.executable, str(ANCHOR_DIR / anchor.script),
        "--pred", str(clips / "pred"), "--ref", str(clips / "ref"),
        "--weights", str(args.out / "weights"), "--seconds", str(args.seconds),
    ]  # fmt: skip
    if anchor.name == "av-benchmark":
        upstream += ["--src", str(args.av_benchmark_src), "--work", str(work / "av-benchmark")]
    return {"agomni": agomni, "upstream": upstream}


def git_commit() -> str:
    run = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return run.stdout.strip()


def summarise(rows: list[dict]) -> None:
    print(
        "\n| anchor | upstream | agomni wall s | upstream wall s | ratio wall | agomni CPU s | upstream CPU s "
        "| ratio CPU |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in dict.fromkeys(r["anchor"] for r in rows):
        mine = [r for r in rows if r["anchor"] == name and r["rc"] == 0]
        side = {s: [r for r in mine if r["side"] == s] for s in ("agomni", "upstream")}
        if not side["agomni"] or not side["upstream"]:
            print(f"| {name} | (a run failed: see runs.jsonl) |")
            continue
        med = {s: {k: statistics.median(r[k] for r in side[s]) for k in ("wall_s", "cpu_s")} for s in side}
        walls = {s: ", ".join(f"{r['wall_s']:.1f}" for r in side[s]) for s in side}
        cpus = {s: ", ".join(f"{r['cpu_s']:.1f}" for r in side[s]) for s in side}
        print(
            f"| {name} | {ANCHORS[name].upstream} | {walls['agomni']} | {walls['upstream']} | "
            f"{med['upstream']['wall_s'] / med['agomni']['wall_s']:.2f}x | {cpus['agomni']} | "
            f"{cpus['upstream']} | {med['upstream']['cpu_s'] / med['agomni']['cpu_s']:.2f}x |"
        )
        a_vals, b_vals = side["agomni"][-1]["values"], side["upstream"][-1]["values"]
        for metric in a_vals:
            print(f"|   {metric} | A {a_vals[metric]:.6g} | B {b_vals.get(metric, float('nan')):.6g} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--first-repeat", type=int, default=0, help="index of the first repeat (odd: the upstream side first)"
    )
    parser.add_argument("--only", default="", help=f"comma-separated anchors of {sorted(ANCHORS)}")
    parser.add_argument("--av-benchmark-src", type=Path, help="av-benchmark source tree (its own loop)")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or [
        n for n in ANCHORS if n != "av-benchmark" or args.av_benchmark_src
    ]
    unknown = [n for n in names if n not in ANCHORS]
    if unknown:
        raise SystemExit(f"unknown anchor(s) {unknown}; choose from {sorted(ANCHORS)}")
    if "av-benchmark" in names and args.av_benchmark_src is None:
        raise SystemExit("the av-benchmark anchor needs --av-benchmark-src (a checkout of its source)")
    args.out = args.out.resolve()
    clips = args.out / "clips"
    shutil.rmtree(clips, ignore_errors=True)
    make_sets(clips, args.count, args.seconds, seed=0)
    export_weights(args.out / "weights", seed=0)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}  # nothing may download
    if "av-benchmark" in names:
        prep = [sys.executable, str(ANCHOR_DIR / ANCHORS["av-benchmark"].script), "--prepare"]
        prep += ["--src", str(args.av_benchmark_src), "--weights", str(args.out / "weights")]
        subprocess.run(prep, check=True, env=env, cwd=ROOT)
    context = {
        "commit": git_commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "count": args.count, "seconds": args.seconds, "torch_threads": torch.get_num_threads(),
    }  # fmt: skip
    print(json.dumps(context), flush=True)
    rows = []
    with (args.out / "runs.jsonl").open("w") as runs:
        runs.write(json.dumps(context) + "\n")
        for name in names:
            anchor = ANCHORS[name]
            for repeat in range(args.first_repeat, args.first_repeat + args.repeats):
                work = args.out / "work" / name
                cmds = commands(anchor, args, clips, work)
                order = ("agomni", "upstream") if repeat % 2 == 0 else ("upstream", "agomni")
                for side in order:
                    work.mkdir(parents=True, exist_ok=True)
                    log = args.out / f"{name}_{side}_{repeat}.log"
                    wall, cpu, rc = timed(cmds[side], log, env)
                    values = {}
                    if rc in (0, 4):
                        values = agomni_values(work / "agomni") if side == "agomni" else upstream_values(log)
                    row = {
                        "anchor": name, "side": side, "repeat": repeat, "wall_s": round(wall, 2),
                        "cpu_s": round(cpu, 2), "rc": rc, "load_avg_1min": round(os.getloadavg()[0], 2),
                        "values": values,
                    }  # fmt: skip
                    rows.append(row)
                    runs.write(json.dumps(row) + "\n")
                    runs.flush()
                    print(json.dumps(row), flush=True)
    summarise(rows)


if __name__ == "__main__":
    main()
