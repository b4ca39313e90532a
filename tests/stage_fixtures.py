"""A small v2s set for the per-item stage tests: real utterances (each padded to 8 s) with talking-face
videos, and a manifest giving each item's video, words and a caption."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.metrics.speech_fixtures import utterances
from tests.metrics.talking_video import talking_video_file

RATE = 16000


def write_v2s_set(root: Path, items: Sequence[str]) -> tuple[Path, Path]:
    """(generated folder, manifest) under `root` for the utterance ids `items`."""
    pred, videos = root / "pred", root / "videos"
    pred.mkdir()
    videos.mkdir()
    lines = []
    for k, item in enumerate(items):
        audio, text = utterances()[item]
        sf.write(pred / f"{item}.wav", np.pad(audio, (0, 8 * RATE - audio.size)), RATE, subtype="PCM_16")
        talking_video_file(videos, f"{item}.mp4", 8.0, 25, (96, 128), seed=k, audio=False)
        caption = f"a voice says {text.split()[0].lower()}"
        line = {"id": item, "task": "v2s", "video": f"videos/{item}.mp4", "transcript": text, "text": caption}
        lines.append(json.dumps(line))
    manifest = root / "items.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return pred, manifest
