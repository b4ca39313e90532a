"""CPU cost of the audio-visual metrics (LSE-C/LSE-D, DeSync, IB-score) per video, with random weights.

Random weights have the cost of the real checkpoints (same networks, same input sizes); the scores they
give are not measurements. Generates talking-face videos (8 s, 25 fps, 360 x 640, H.264 + AAC), then times
each scorer's `score` on them, `--repeats` times, in this process. Prints one JSON line per measurement.

    PYTHONPATH=. python benchmarks/bench_av_metrics.py --out /tmp/avbench --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from agomni.io.video import load_video
from agomni.metrics.av.faces import HaarDetector
from agomni.metrics.av.s3fd import S3FD, S3FDNet
from agomni.metrics.av.score import AVItem, build_scorer, score_items
from tests.metrics.talking_video import speech_like, syllable_envelope, talking_frames, write_talking_video


def _timed(fn, repeats: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return times, out


def _report(what: str, times: list[float], **extra: object) -> None:
    row = {
        "what": what,
        "seconds_per_video": [round(t, 2) for t in times],
        "median_s": round(statistics.median(times), 2),
        "videos_per_s": round(1 / statistics.median(times), 4),
        "torch_threads": torch.get_num_threads(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        **extra,
    }
    print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--metrics", default="lse,desync,ib")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    envelope = syllable_envelope(8.0, seed=0)
    video = write_talking_video(
        args.out / "talk_8s_640x360.mp4",
        talking_frames(envelope, 25, (360, 640), 220),
        25,
        speech_like(envelope),
    )
    item = [AVItem("talk", video)]
    chosen = args.metrics.split(",")
    if "lse" in chosen:
        scorer = build_scorer("lse_c", random_weights=True)
        times, items = _timed(lambda: score_items(scorer, item, progress=False), args.repeats)
        _report(
            "LSE (decode, Haar faces, crops, SyncNet), 8 s 640x360 25 fps",
            times,
            item=items[0].to_dict()["frames_used"],
        )
        frames, _ = load_video(video, fps=25)
        rgb = frames.permute(0, 2, 3, 1).numpy()
        haar = HaarDetector()
        times, _ = _timed(lambda: [haar.detect(f) for f in rgb], args.repeats)
        _report("Haar detection alone, 200 frames 640x360", times)
        torch.manual_seed(0)
        s3fd = S3FD(S3FDNet())
        times, _ = _timed(lambda: [s3fd.detect(np.ascontiguousarray(f)) for f in rgb], args.repeats)
        _report("S3FD detection alone (scale 0.25), 200 frames 640x360", times)
    if "desync" in chosen:
        scorer = build_scorer("desync", random_weights=True)
        times, items = _timed(lambda: score_items(scorer, item, progress=False), args.repeats)
        _report(
            "DeSync (decode, 24 MotionFormer + 24 AST segments, 2 windows), 8 s", times, error=items[0].error
        )
    if "ib" in chosen:
        scorer = build_scorer("ib_score", random_weights=True)
        times, items = _timed(lambda: score_items(scorer, item, progress=False), args.repeats)
        _report("IB-score (decode, 9 vision clips ViT-H, 3 audio clips), 8 s", times, error=items[0].error)


if __name__ == "__main__":
    main()
