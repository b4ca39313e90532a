"""FD-VGG the way people run it with torchvggish 0.2: each file read with soundfile (int16 / 32768, as
``vggish_input.wavfile_to_examples`` does), turned into 0.96 s log-mel examples by
``vggish_input.waveform_to_examples`` and fed alone to upstream ``torchvggish.VGG``; the 128-d frame
embeddings of the two folders compared with scipy (see anchor_stats.frechet_distance).

The input and output follow av-benchmark's recipe (agomni's default profile of ``fd_vggish``): mono,
mean removed, cut to ``--seconds``, the last ReLU of the embedding head left out (audioldm_eval's
``use_activation=False``). Weights: ``WEIGHTS/vggish.pth`` (torchvggish keys; bench_anchors.py writes
agomni's seeded random weights there); nothing is downloaded.

    python benchmarks/anchors/vggish_loop.py --pred P --ref R --weights WEIGHTS --seconds 8
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from anchor_stats import audio_files, fd_loop
from torchvggish import vggish_input
from torchvggish.torchvggish import VGG, make_layers


def load_vggish(weights: Path) -> torch.nn.Module:
    model = VGG(make_layers(), postprocess=False)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.embeddings[5] = torch.nn.Identity()
    return model.eval()


def embed_folder(model: torch.nn.Module, folder: Path, seconds: float) -> np.ndarray:
    rows = []
    for path in audio_files(folder):
        data, rate = sf.read(path, dtype="int16", always_2d=True)
        audio = data.mean(axis=1) / 32768.0
        audio = (audio - audio.mean())[: int(seconds * rate)]
        examples = vggish_input.waveform_to_examples(audio, rate, return_tensor=True)
        with torch.no_grad():
            rows.append(model(examples).numpy())
    return np.concatenate(rows)


if __name__ == "__main__":
    fd_loop(__doc__.splitlines()[0], "torchvggish", "fd_vggish", "vggish.pth", load_vggish, embed_folder)
