"""CPU throughput of the MS-CLAP score's networks (agomni.metrics.text_audio.ms_clap_net), read-only.

Run: ``.venv/bin/python benchmarks/bench_ms_clap.py [--rounds 5]`` (not part of the test suite). The towers
have seeded RANDOM weights (the cost of the computation, not of a checkpoint). Audio: batches of 4 clips of
7 s at 44.1 kHz (what one item costs); text: batches of 8 captions of about 10 words. Each measurement
is repeated ``--rounds`` times after one warm-up, at one thread and at torch's default thread count;
prints clips (captions) per second as median [min, max] over the rounds.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from agomni.metrics.text_audio.ms_clap_net import CLIP_SAMPLES, MsClapWeights

CLIPS, CAPTIONS, TOKENS = 4, 8, 77


def rates(fn, count: int, rounds: int) -> list[float]:
    fn()
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        out.append(count / (time.perf_counter() - start))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ms = MsClapWeights.random(seed=0)
    audio, text = ms.audio.eval(), ms.text.eval()
    g = torch.Generator().manual_seed(0)
    waves = 0.1 * torch.randn(CLIPS, CLIP_SAMPLES, generator=g)
    ids = torch.randint(1, 50000, (CAPTIONS, TOKENS), generator=g)
    ids[:, 14:] = 0  # 14 real tokens (about 10 words + ' <|endoftext|>'), the rest '!' padding
    default_threads = torch.get_num_threads()
    print(f"machine: {platform.processor() or platform.machine()}, {default_threads} default torch threads")
    for threads in (1, default_threads):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            a = rates(lambda: audio(waves), CLIPS, args.rounds)
            t = rates(lambda: text(ids), CAPTIONS, args.rounds)
        for label, r in (("audio clips/s (7 s, batch 4)", a), ("captions/s (batch 8)", t)):
            print(
                f"threads={threads}  {label}: median {statistics.median(r):.2f} "
                f"[{min(r):.2f}, {max(r):.2f}] over {args.rounds} rounds"
            )


if __name__ == "__main__":
    main()
