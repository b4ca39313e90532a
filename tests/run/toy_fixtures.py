"""A small toy-corpus manifest for run tests: the held-out items without video (decoding video is the
slow part of generation on CPU)."""

import json
from pathlib import Path

from agomni.toycorpus import build_corpus


def no_video_manifest(root: Path) -> Path:
    """t2a, tts and t2song held-out items (2 each) as a manifest at the corpus root."""
    heldout = build_corpus(root, n_train=1, n_heldout=2)["heldout"]
    lines = [json.loads(line) for line in heldout.read_text().splitlines()]
    paths = ("reference_audio", "prompt_audio")
    kept = [{**e, **{k: f"heldout/{e[k]}" for k in paths if k in e}} for e in lines if "video" not in e]
    path = root / "no-video.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in kept))
    return path
