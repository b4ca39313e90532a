"""CPU throughput (clips per second) of SongEval (MuQ up to layer 6 + SongEval head) at full width.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_songeval.py [--repeats 3] [--seconds 10]

RANDOM WEIGHTS (same cost as the real ones) on MuQ-large's published sizes (1024-wide encoder, 512-channel
convolutions, 128 mel bands) with conformer settings given here (16 heads, feed-forward 4096, depthwise
kernel 31, rotary positions): the MuQ-large-msd-iter config.json holding the real ones is not in this
repository. Three synthetic 24 kHz clips of ``--seconds`` each, one warm-up clip, model construction not
timed; prints clips/s per repeat and audio seconds per wall second (median repeat).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from agomni.metrics.speech.songeval import random_songeval

CONFIG = {
    "conv_dim": 512,
    "encoder_dim": 1024,
    "encoder_depth": 12,
    "stat": {"melspec_2048_mean": 6.77, "melspec_2048_std": 18.42},
    "w2v2_config": {
        "num_attention_heads": 16,
        "intermediate_size": 4096,
        "conv_depthwise_kernel_size": 31,
        "hidden_act": "swish",
        "position_embeddings_type": "rotary",
    },
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = int(args.seconds * 24000)
    t = np.arange(n) / 24000
    clips = [
        (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t))).astype(np.float32),
        (0.2 * rng.standard_normal(n)).astype(np.float32),
        (0.3 * np.sign(np.sin(2 * np.pi * 2 * t)) * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
    ]
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.json"
        config.write_text(json.dumps(CONFIG), encoding="utf-8")
        model = random_songeval(config, seed=0)
    model.score(clips[0])  # warm-up
    rates = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for clip in clips:
            model.score(clip)
        rates.append(len(clips) / (time.perf_counter() - start))
    median = float(np.median(rates))
    print(f"threads {torch.get_num_threads()} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    print(
        f"| SongEval (MuQ to layer 6 + head), RANDOM WEIGHTS, {args.seconds:.0f} s clips | "
        f"{', '.join(f'{r:.3f}' for r in rates)} | {median * args.seconds:.2f} |"
    )


if __name__ == "__main__":
    main()
