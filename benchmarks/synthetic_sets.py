"""Seeded synthetic evaluation sets for the throughput benchmarks (written to a scratch folder, never
committed): what a v2a-vggsound run and a tts-seed-en run read, with random content.

- `write_v2a_set`: ``count`` items of task v2a: a generated WAV per item (16 kHz mono), a reference WAV,
  and a video (H.264, 25 fps, moving coloured squares; ``videos`` distinct files shared round-robin by
  the items, so that setting up stays cheap); ``manifest.jsonl`` names them.
- `write_tts_set`: ``count`` items of task tts: a generated WAV, a prompt WAV and an English transcript.

    PYTHONPATH=. python -c "from benchmarks.synthetic_sets import write_v2a_set; write_v2a_set(...)"
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from benchmarks.make_clips import SAMPLE_RATE, make_clip

FPS = 25
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "small",
    "birds",
    "sing",
    "near",
    "the",
    "river",
]


@dataclass(frozen=True)
class SyntheticSet:
    """A set's manifest and the folder of its generated files (named by item id)."""

    manifest: Path
    pred_dir: Path
    count: int


def write_video(path: Path, seconds: float, size: tuple[int, int], seed: int) -> Path:
    """``seconds`` of 25 fps H.264 video of ``size`` = (height, width): a square moving over a background
    whose colour drifts, so that frames differ (no audio track)."""
    rng = np.random.default_rng(seed)
    height, width = size
    base = rng.integers(0, 255, 3)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        side = min(height, width) // 4
        for index in range(int(seconds * FPS)):
            image = np.empty((height, width, 3), np.uint8)
            image[...] = (base + 3 * index) % 255
            y = (index * 7) % (height - side)
            x = (index * 11) % (width - side)
            image[y : y + side, x : x + side] = 255 - image[0, 0]
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _write_wav(
    path: Path, rng: np.random.Generator, seconds: float, low: float, high: float, noise: float
) -> None:
    sf.write(path, make_clip(rng, seconds, low, high, noise), SAMPLE_RATE, subtype="PCM_16")


def write_v2a_set(
    root: Path,
    count: int,
    *,
    seconds: float = 8.0,
    videos: int = 4,
    size: tuple[int, int] = (360, 640),
    seed: int = 0,
) -> SyntheticSet:
    """``root/manifest.jsonl`` (task v2a, video + reference_audio), ``root/pred/<id>.wav``."""
    rng = np.random.default_rng(seed)
    for folder in ("pred", "ref", "video"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    names = [
        write_video(root / "video" / f"video_{v}.mp4", seconds, size, seed + v).name for v in range(videos)
    ]
    lines = []
    for i in range(count):
        item = f"v2a_{i:05d}"
        _write_wav(root / "pred" / f"{item}.wav", rng, seconds, 300, 3000, 0.10)
        _write_wav(root / "ref" / f"{item}.wav", rng, seconds, 200, 2000, 0.05)
        lines.append(
            {
                "id": item,
                "task": "v2a",
                "video": f"video/{names[i % videos]}",
                "reference_audio": f"ref/{item}.wav",
            }
        )
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return SyntheticSet(manifest, root / "pred", count)


def write_tts_set(root: Path, count: int, *, seconds: float = 4.0, seed: int = 0) -> SyntheticSet:
    """``root/manifest.jsonl`` (task tts, English transcript + prompt_audio), ``root/pred/<id>.wav``."""
    rng = np.random.default_rng(seed)
    for folder in ("pred", "prompt"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(count):
        item = f"tts_{i:05d}"
        _write_wav(root / "pred" / f"{item}.wav", rng, seconds, 100, 1200, 0.10)
        _write_wav(root / "prompt" / f"{item}.wav", rng, seconds, 100, 1200, 0.10)
        words = [WORDS[j] for j in rng.integers(0, len(WORDS), 8)]
        lines.append(
            {
                "id": item,
                "task": "tts",
                "transcript": " ".join(words),
                "language": "en",
                "prompt_audio": f"prompt/{item}.wav",
            }
        )
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return SyntheticSet(manifest, root / "pred", count)
