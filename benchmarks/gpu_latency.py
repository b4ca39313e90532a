"""GPU latency of the reference model: `agomni profile` for L-44k and S-16k, fp32 eager and bf16 autocast eager.

Usage (one lent H100/H200; needs no network access; about 1-2 minutes)::

    python benchmarks/gpu_latency.py OUT_DIR [--device cuda] [--sizes L,S] [--dtypes fp32,bf16]
                                             [--duration 8 --steps 25 --cfg 4.5 --repeats 5 --budget-s 200]

Writes OUT_DIR/gpu_latency.md (a table per configuration plus a summary) and OUT_DIR/gpu_latency.json
(every `agomni.model.profile.profile_generation` report, or the error of a configuration that failed).
Each configuration runs in this process, one after another; a failure (out of memory, a kernel error)
is recorded and the next configuration still runs. Both files are rewritten after every configuration,
so a run cut short still leaves the finished ones. Configurations that would start after --budget-s
seconds are recorded as skipped. Test it on a CPU with ``--sizes tiny --device cpu``.
Every network, conditioner and codec has random weights: the numbers time the computation only.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from agomni.model.profile import ProfileSettings, format_profile, profile_generation


def _run_one(settings: ProfileSettings) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        report = profile_generation(settings, progress=lambda msg: print(f"  {msg}", file=sys.stderr))
        return {"status": "ok", "report": report, "wall_s": time.perf_counter() - start}
    except Exception as err:
        return {
            "status": "failed",
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(),
            "wall_s": time.perf_counter() - start,
        }
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "# agomni reference-model latency (RANDOM WEIGHTS; timings of the computation only)",
        "",
        "Recipe: `agomni.model.profile` (one warm-up, then the median over the repeats; CFG as one batched",
        "pass; codec in fp32). Seconds of wall clock, lower is better; RTF = generation s / audio s.",
        "",
        "| size | dtype | status | conditioning (s) | network step mean (s) | network total (s) | VAE (s) "
        "| vocoder (s) | total (s) | RTF |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r["settings"]
        if r["status"] != "ok":
            lines.append(f"| {s['size']} | {s['dtype']} | {r['status']}: {r.get('error', '')} |" + " |" * 7)
            continue
        st = r["report"]["stages"]
        cells = [
            st[k]["median_s"]
            for k in (
                "conditioning",
                "network step (mean)",
                "network total (all steps)",
                "codec decode (VAE)",
                "vocoder",
                "total",
            )
        ]
        values = " | ".join(f"{v:.4f}" for v in [*cells, r["report"]["rtf"]["median_s"]])
        lines.append(f"| {r['report']['model']['size']} | {s['dtype']} | ok | {values} |")
    for r in results:
        if r["status"] == "ok":
            lines += ["", "```", format_profile(r["report"]), "```"]
        elif r["status"] == "failed":
            lines += [
                "",
                f"{r['settings']['size']} {r['settings']['dtype']} failed:",
                "```",
                r["traceback"],
                "```",
            ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for gpu_latency.md and gpu_latency.json")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", default="L,S", help="comma-separated sizes (tiny, S, M, L)")
    parser.add_argument("--dtypes", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of audio")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--cfg", type=float, default=4.5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget-s", type=float, default=200.0, help="start no configuration after this")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results: list[dict[str, Any]] = []
    for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        for dtype in [d.strip() for d in args.dtypes.split(",") if d.strip()]:
            fields = {"size": size, "duration": args.duration, "steps": args.steps, "cfg": args.cfg}
            fields |= {"device": args.device, "dtype": dtype, "repeats": args.repeats}
            elapsed = time.perf_counter() - start
            if elapsed > args.budget_s:
                result = {
                    "status": "skipped",
                    "error": f"time budget {args.budget_s} s spent ({elapsed:.0f} s)",
                }
            else:
                print(f"{size} {dtype} on {args.device}", file=sys.stderr)
                try:
                    result = _run_one(ProfileSettings(**fields))
                except Exception as err:
                    result = {"status": "failed", "error": str(err), "traceback": traceback.format_exc()}
            results.append({"settings": fields, **result})
            (args.out / "gpu_latency.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
            (args.out / "gpu_latency.md").write_text(_markdown(results), encoding="utf-8")
    print(_markdown(results))
    print(f"wrote {args.out / 'gpu_latency.md'} and {args.out / 'gpu_latency.json'}", file=sys.stderr)
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
