"""Evaluation throughput on one device, random weights (same networks and input sizes as the real
checkpoints; the numbers they give are not measurements):

1. clips/s of each network at each batch size (forward passes only; inputs built on the CPU as the
   pipeline builds them, so the host-to-device copy is included): PANNs, VGGish, PaSST, LAION-CLAP audio
   (``--seconds`` clips at each one's rate), Whisper-large-v3's encoder and WavLM-Large + ECAPA (the
   tts-seed-en recipe's recogniser and speaker encoder), Synchformer (DeSync) and ImageBind (IB-score)
   through their scorers on one decoded item, whose ``batch_size`` is segments / clips per network call;
2. bfloat16 autocast and TF32 against float32 (TF32 and cuDNN's TF32 off) for the audio networks:
   largest absolute difference of each output over the largest absolute float32 value (reported only;
   agomni runs float32);
3. whole-suite throughput: `agomni.evaluate.evaluate` of the v2a-vggsound and tts-seed-en metric sets on
   synthetic clips (`benchmarks.synthetic_sets`), cold (no cache), with the per-stage seconds;
4. peak device memory of each measurement (``torch.cuda.max_memory_allocated``; CUDA only).

``--budget-s`` bounds the whole run: a measurement that would start after the budget is listed as
skipped. Writes OUT/gpu_eval.json and OUT/gpu_eval.md.

    PYTHONPATH=. python benchmarks/gpu_eval.py /tmp/gpu_eval --device cuda --budget-s 270
    PYTHONPATH=. python benchmarks/gpu_eval.py /tmp/cpu_eval --device cpu --networks panns --batches 1,2 \\
        --seconds 2 --suites v2a-vggsound --suite-metrics kl_panns --suite-items 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agomni.evaluate.pipeline import EvalRequest, evaluate
from agomni.evaluate.profiles import get_profile
from agomni.evaluate.registry import METRICS, build_embedder
from agomni.metrics.av.media import decode
from agomni.metrics.av.score import build_scorer
from agomni.metrics.speech.wavlm_ecapa import WavLMECAPA
from agomni.metrics.speech.whisper import WhisperASR, log_mel
from benchmarks.synthetic_sets import write_tts_set, write_v2a_set, write_video

AUDIO_NETWORKS = {"panns": "fd_panns", "vggish": "fd_vggish", "passt": "fd_passt", "clap": "fd_clap"}
ALL_NETWORKS = (*AUDIO_NETWORKS, "whisper_encoder", "wavlm_ecapa", "desync", "ib_score")
Forward = Callable[[Any], Any]


class Budget:
    def __init__(self, seconds: float) -> None:
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None


def _noise(batch: int, samples: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, samples, generator=generator)


def build_network(
    name: str, device: str, seconds: float, work: Path
) -> tuple[Forward, Callable[[int], Any], bool]:
    """(forward, inputs of a batch, whether a batch is one item) of network `name` with random weights."""
    if name in AUDIO_NETWORKS:
        entry = METRICS[AUDIO_NETWORKS[name]]
        options = get_profile(entry.default_profile).embedder_options.get(entry.embedder.name, {})
        embedder = build_embedder(entry.embedder, options, device=device, seed=0, random_weights=True)
        samples = int(seconds * embedder.needs.sample_rate)
        return embedder.outputs, lambda b: _noise(b, samples), False
    if name == "whisper_encoder":
        asr = WhisperASR.random(seed=0, device=device)
        mel = log_mel(_noise(1, int(seconds * 16000))[0].numpy(), asr.network.dims.n_mels)
        return lambda x: asr.network.encoder(x.to(device)), lambda b: mel[None].repeat(b, 1, 1), False
    if name == "wavlm_ecapa":
        encoder = WavLMECAPA.random(0, device)
        return lambda x: encoder.network(x.to(device)), lambda b: _noise(b, int(seconds * 16000)), False
    video = work / "network_video.mp4"
    if not video.exists():
        write_video(video, max(seconds, 8.0), (360, 640), seed=0)
    scorers: dict[int, Any] = {}

    def inputs(batch: int) -> Any:
        scorers.setdefault(
            batch, build_scorer(name, random_weights=True, seed=0, device=device, batch_size=batch)
        )
        return scorers[batch], decode(scorers[batch].media, video)

    return lambda x: x[0].score_decoded("item", x[1]), inputs, True


def time_network(name: str, args: argparse.Namespace, budget: Budget, work: Path) -> list[dict[str, Any]]:
    rows = []
    forward, inputs, per_item = build_network(name, args.device, args.seconds, work)
    for batch in args.batches:
        if budget.left() < 0:
            rows.append({"network": name, "batch": batch, "skipped": "budget spent"})
            continue
        x = inputs(batch)
        _reset_peak(args.device)
        with torch.inference_mode():
            forward(x)  # warm-up: kernels chosen, caches filled
            _sync(args.device)
            start = time.perf_counter()
            for _ in range(args.repeats):
                forward(x)
            _sync(args.device)
        elapsed = time.perf_counter() - start
        clips = args.repeats * (1 if per_item else batch)
        rows.append(
            {
                "network": name,
                "batch": batch,
                "batch_means": "segments/clips per network call of one item"
                if per_item
                else "clips per call",
                "clips_per_s": clips / elapsed,
                "seconds_per_call": elapsed / args.repeats,
                "peak_gib": _peak_gib(args.device),
            }
        )
    return rows


@contextmanager
def _precision(mode: str, device: str):
    """float32 (TF32 off for matmul and cuDNN), tf32 (both on), or bf16 autocast."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "tf32"
    try:
        if mode == "bf16":
            with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _heads(out: Any) -> dict[str, np.ndarray]:
    items = out.items() if isinstance(out, dict) else [("output", out)]
    return {head: value.detach().float().cpu().numpy().astype(np.float64) for head, value in items}


def precision_errors(name: str, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    forward, inputs, _ = build_network(name, args.device, args.seconds, work)
    x = inputs(min(args.batches))
    outputs = {}
    for mode in ("float32", "bf16", "tf32"):
        if mode == "tf32" and not args.device.startswith("cuda"):
            continue
        with torch.inference_mode(), _precision(mode, args.device):
            outputs[mode] = _heads(forward(x))
    rows = []
    for mode in ("bf16", "tf32"):
        if mode not in outputs:
            rows.append({"network": name, "mode": mode, "skipped": "CUDA only"})
            continue
        for head, reference in outputs["float32"].items():
            scale = float(np.abs(reference).max()) or 1.0
            rows.append(
                {
                    "network": name,
                    "mode": mode,
                    "head": head,
                    "max_abs_error": float(np.abs(outputs[mode][head] - reference).max()),
                    "relative_to_max_abs": float(np.abs(outputs[mode][head] - reference).max()) / scale,
                }
            )
    return rows


def suite_run(suite: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    if suite == "v2a-vggsound":
        chosen = write_v2a_set(work / suite, args.suite_items, seconds=args.suite_seconds)
        backends: tuple[str, ...] = ()
    else:
        chosen = write_tts_set(work / suite, args.suite_items)
        backends = tuple(b for b in args.speech_backends.split(",") if b)
    metrics = tuple(args.suite_metrics.split(",")) if args.suite_metrics else None
    request = EvalRequest(
        pred_dir=chosen.pred_dir,
        manifest=chosen.manifest,
        suite=suite,
        metrics=metrics,
        device=args.device,
        batch_size=args.suite_batch,
        random_weights=True,
        use_cache=False,
        progress=False,
        speech_backends=backends,
    )
    _reset_peak(args.device)
    start = time.perf_counter()
    outcome = evaluate(request)
    wall = time.perf_counter() - start
    timings = dict(outcome.results.provenance.timings)
    building = sum(s for k, s in timings.items() if k == "load_embedders" or k.startswith("load:"))
    return {
        "suite": suite,
        "metrics": [m.name for m in outcome.results.metrics],
        "not_computed": [n.name for n in outcome.results.not_computed],
        "items": chosen.count,
        "wall_s": wall,
        "clips_per_s": chosen.count / wall,
        "clips_per_s_without_network_building": chosen.count / (wall - building),
        "timings_s": timings,
        "peak_gib": _peak_gib(args.device),
        "speech_backends": list(backends),
    }


def markdown(record: dict[str, Any]) -> str:
    lines = [
        f"# agomni evaluation throughput, device {record['device']} (RANDOM WEIGHTS; not measurements of scores)",
        "",
        f"command: `{record['command']}`; started {record['started_utc']}; {record['machine']}",
        "",
        "| network | batch | clips/s | s/call | peak GiB |",
        "|---|---|---|---|---|",
    ]
    for row in record["networks"]:
        if "skipped" in row:
            lines.append(f"| {row['network']} | {row['batch']} | skipped: {row['skipped']} | | |")
            continue
        peak = "-" if row["peak_gib"] is None else f"{row['peak_gib']:.2f}"
        lines.append(
            f"| {row['network']} | {row['batch']} | {row['clips_per_s']:.2f} | {row['seconds_per_call']:.4f} | {peak} |"
        )
    lines += [
        "",
        "| network | mode | head | max abs error vs float32 | / max abs float32 |",
        "|---|---|---|---|---|",
    ]
    for row in record["precision"]:
        if "skipped" in row:
            lines.append(f"| {row['network']} | {row['mode']} | skipped: {row['skipped']} | | |")
            continue
        lines.append(
            f"| {row['network']} | {row['mode']} | {row['head']} | {row['max_abs_error']:.3g} | {row['relative_to_max_abs']:.3g} |"
        )
    lines += [
        "",
        "| suite | items | wall s | clips/s | clips/s without building networks | peak GiB |",
        "|---|---|---|---|---|---|",
    ]
    for row in record["suites"]:
        if "skipped" in row:
            lines.append(f"| {row['suite']} | skipped: {row['skipped']} | | | | |")
            continue
        peak = "-" if row["peak_gib"] is None else f"{row['peak_gib']:.2f}"
        lines.append(
            f"| {row['suite']} | {row['items']} | {row['wall_s']:.1f} | {row['clips_per_s']:.2f} | "
            f"{row['clips_per_s_without_network_building']:.2f} | {peak} |"
        )
        stages = sorted(row["timings_s"].items(), key=lambda kv: -kv[1])
        lines.append("")
        lines.append(f"{row['suite']} stages (s): " + ", ".join(f"{k} {v:.2f}" for k, v in stages))
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--budget-s", type=float, default=270.0, help="no measurement starts after this")
    parser.add_argument("--networks", default=",".join(ALL_NETWORKS))
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per batch size (after a warm-up)")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length of the network inputs")
    parser.add_argument("--precision", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--suites", default="v2a-vggsound,tts-seed-en")
    parser.add_argument("--suite-items", type=int, default=64)
    parser.add_argument("--suite-seconds", type=float, default=8.0)
    parser.add_argument("--suite-batch", type=int, default=32)
    parser.add_argument("--suite-metrics", help="a subset of each suite's metrics (default: all)")
    parser.add_argument("--speech-backends", default="whisper-large-v3,wavlm-ecapa", help="for tts-seed-en")
    args = parser.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",")]
    budget = Budget(args.budget_s)
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    device_name = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else f"{platform.machine()} CPU, {os.cpu_count()} cores"
    )
    record: dict[str, Any] = {
        "device": args.device,
        "machine": f"{device_name}; torch {torch.__version__}; {torch.get_num_threads()} CPU threads",
        "command": "python benchmarks/gpu_eval.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "networks": [],
        "precision": [],
        "suites": [],
    }
    names = [n for n in args.networks.split(",") if n]
    for name in names:
        if budget.left() < 0:
            record["networks"].append({"network": name, "batch": "-", "skipped": "budget spent"})
            continue
        record["networks"] += time_network(name, args, budget, work)
    if args.precision:
        for name in [n for n in names if n in (*AUDIO_NETWORKS, "whisper_encoder", "wavlm_ecapa")]:
            if budget.left() < 0:
                record["precision"].append({"network": name, "mode": "-", "skipped": "budget spent"})
                continue
            record["precision"] += precision_errors(name, args, work)
    for suite in [s for s in args.suites.split(",") if s]:
        if budget.left() < 0:
            record["suites"].append({"suite": suite, "skipped": "budget spent"})
            continue
        record["suites"].append(suite_run(suite, args, work))
    record["wall_s"] = args.budget_s - budget.left()
    (args.out / "gpu_eval.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    (args.out / "gpu_eval.md").write_text(markdown(record), encoding="utf-8")
    return record


if __name__ == "__main__":
    main()
