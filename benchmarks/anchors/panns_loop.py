"""FD-PANNs the way people run it with panns-inference 0.1.1: each file loaded with ``librosa.load`` at
16 kHz, fed alone (batch 1) to upstream ``panns_inference.models.Cnn14`` (16 kHz configuration), the
2048-d clip embeddings of the two folders compared with scipy (see anchor_stats.frechet_distance).

The input follows av-benchmark's recipe for CNN14 16 kHz (agomni's default profile of ``fd_panns``):
mono, mean removed, cut to ``--seconds``. Weights: ``WEIGHTS/panns.pth``, a ``{"model": state_dict}``
file in the official layout (bench_anchors.py writes agomni's seeded random weights there); nothing is
downloaded.

    python benchmarks/anchors/panns_loop.py --pred P --ref R --weights WEIGHTS --seconds 8
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import librosa
import numpy as np
import torch
from anchor_stats import audio_files, fd_loop

RATE = 16000


def upstream_models() -> types.ModuleType:
    """``panns_inference.models`` without the package ``__init__``, whose config module runs ``wget`` for
    the AudioSet label list."""
    spec = importlib.util.find_spec("panns_inference")
    if spec is None:
        raise SystemExit("panns-inference is not installed")
    package = types.ModuleType("panns_inference")
    package.__path__ = list(spec.submodule_search_locations or [])
    sys.modules.setdefault("panns_inference", package)
    import panns_inference.models as models

    return models


def load_cnn14(weights: Path) -> torch.nn.Module:
    model = upstream_models().Cnn14(
        sample_rate=RATE, window_size=512, hop_size=160, mel_bins=64, fmin=50, fmax=8000, classes_num=527
    )
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    return model.eval()


def embed_folder(model: torch.nn.Module, folder: Path, seconds: float) -> np.ndarray:
    rows = []
    for path in audio_files(folder):
        audio, _ = librosa.load(path, sr=RATE, mono=True)
        audio = (audio - audio.mean())[: int(seconds * RATE)]
        with torch.no_grad():
            out = model(torch.from_numpy(audio)[None, :])
        rows.append(out["embedding"][0].numpy())
    return np.stack(rows)


if __name__ == "__main__":
    fd_loop(__doc__.splitlines()[0], "panns-inference", "fd_panns", "panns.pth", load_cnn14, embed_folder)
