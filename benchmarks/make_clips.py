"""Generate seeded test clips for `agomni eval` benchmarks: two folders of mono 16 kHz 16-bit WAV files.

Each clip is a sum of 1-3 decaying tones plus band-limited noise bursts, drawn from a seeded RNG; the
``ref`` and ``pred`` sets differ in their tone range and noise level, so FD/KAD between them are clearly
non-zero. The clips are written to a scratch folder and never committed.

    python benchmarks/make_clips.py OUT_DIR --count 2000 --seconds 10
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000


def make_clip(
    rng: np.random.Generator, seconds: float, low_hz: float, high_hz: float, noise: float
) -> np.ndarray:
    """One clip, float32 in [-1, 1], ``seconds * 16000`` samples."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    clip = np.zeros_like(t)
    for _ in range(rng.integers(1, 4)):
        freq = rng.uniform(low_hz, high_hz)
        onset = rng.uniform(0, seconds / 2)
        envelope = np.exp(-np.clip(t - onset, 0, None) * rng.uniform(0.3, 3.0)) * (t >= onset)
        clip += rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * freq * t) * envelope
    burst = rng.normal(size=t.size) * noise
    gate = (np.sin(2 * np.pi * rng.uniform(0.2, 2.0) * t) > 0).astype(float)
    clip += np.convolve(burst * gate, np.ones(8) / 8, mode="same")
    return (0.9 * clip / max(1e-9, float(np.abs(clip).max()))).astype(np.float32)


def make_sets(out: Path, count: int, seconds: float, seed: int = 0) -> tuple[Path, Path]:
    """Write ``count`` clips into ``out/ref`` and ``out/pred`` (ids clip_00000 ...); returns both folders."""
    rng = np.random.default_rng(seed)
    folders = (out / "ref", out / "pred")
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        name = f"clip_{i:05d}.wav"
        sf.write(folders[0] / name, make_clip(rng, seconds, 200, 2000, 0.05), SAMPLE_RATE, subtype="PCM_16")
        sf.write(folders[1] / name, make_clip(rng, seconds, 300, 3000, 0.10), SAMPLE_RATE, subtype="PCM_16")
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ref, pred = make_sets(args.out, args.count, args.seconds, args.seed)
    print(f"wrote {args.count} clips of {args.seconds} s each to {ref} and {pred}")


if __name__ == "__main__":
    main()
