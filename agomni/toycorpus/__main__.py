"""``python -m agomni.toycorpus OUT_DIR [--seed N] ...``: build the toy corpus and print what was written."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from agomni.errors import AgomniError
from agomni.manifest import TASKS, load_manifest

from .build import build_corpus


def main(argv: list[str] | None = None) -> int:
    """Build the corpus, print a per-task / per-split item count table; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m agomni.toycorpus", description=__doc__)
    parser.add_argument("out_dir", help="folder to write <split>/manifest.jsonl and media into")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--n-train", type=int, default=48, help="train items per task (default 48)")
    parser.add_argument("--n-heldout", type=int, default=12, help="held-out items per task (default 12)")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per item (default 2.0)")
    parser.add_argument(
        "--sample-rate", type=int, default=16000, help="audio sample rate in Hz (default 16000)"
    )
    args = parser.parse_args(argv)
    try:
        manifests = build_corpus(
            args.out_dir,
            seed=args.seed,
            n_train=args.n_train,
            n_heldout=args.n_heldout,
            duration=args.duration,
            sample_rate=args.sample_rate,
        )
        counts = {
            split: Counter(item.task for item in load_manifest(path)) for split, path in manifests.items()
        }
    except AgomniError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(
        f"agomni toy corpus: seed {args.seed}, {args.duration:g} s items, mono {args.sample_rate} Hz 16-bit WAV, "
        "video 64x64 at 8 fps (item counts per task and split, read back from the written manifests)"
    )
    splits = list(manifests)
    print(f"{'task':<8}" + "".join(f"{split:>10}" for split in splits))
    for task in TASKS:
        print(f"{task:<8}" + "".join(f"{counts[split][task]:>10}" for split in splits))
    print(f"{'total':<8}" + "".join(f"{sum(counts[split].values()):>10}" for split in splits))
    for split, path in manifests.items():
        print(f"{split} manifest: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
