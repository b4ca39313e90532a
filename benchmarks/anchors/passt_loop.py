"""FD-PaSST the way people run it with hear21passt 0.0.26: each file loaded with ``librosa.load`` at
32 kHz, padded or cut to 10 s (320000 samples, what av-benchmark feeds) and fed alone to upstream
``PasstBasicWrapper(mode="all")`` (``passt_s_swa_p16_128_ap476`` with hear21passt's own mel front end);
the 768-d embeddings of the two folders compared with scipy (see anchor_stats.frechet_distance).

The input follows av-benchmark's recipe (agomni's default profile of ``fd_passt``) except for the
resampler: mono, mean removed, cut to ``--seconds``, then padded to 10 s. Weights: ``WEIGHTS/passt.pth``
(hear21passt keys; bench_anchors.py writes agomni's seeded random weights there); nothing is downloaded.

    python benchmarks/anchors/passt_loop.py --pred P --ref R --weights WEIGHTS --seconds 8
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import librosa
import numpy as np
import torch
from anchor_stats import audio_files, fd_loop
from hear21passt.models.passt import get_model
from hear21passt.models.preprocess import AugmentMelSTFT
from hear21passt.wrapper import PasstBasicWrapper

RATE = 32000
INPUT_SAMPLES = 320000


def load_passt(weights: Path) -> torch.nn.Module:
    with contextlib.redirect_stdout(io.StringIO()):  # hear21passt prints its configuration
        mel = AugmentMelSTFT(
            n_mels=128, sr=RATE, win_length=800, hopsize=320, n_fft=1024, freqm=48, timem=192, htk=False,
            fmin=0.0, fmax=None, norm=1, fmin_aug_range=10, fmax_aug_range=2000,
        )  # fmt: skip
        net = get_model(arch="passt_s_swa_p16_128_ap476", pretrained=False)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return PasstBasicWrapper(mel=mel, net=net, mode="all").eval()


def embed_folder(model: torch.nn.Module, folder: Path, seconds: float) -> np.ndarray:
    rows = []
    for path in audio_files(folder):
        audio, _ = librosa.load(path, sr=RATE, mono=True)
        audio = (audio - audio.mean())[: int(seconds * RATE)][:INPUT_SAMPLES]
        audio = np.pad(audio, (0, INPUT_SAMPLES - audio.size))
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            out = model(torch.from_numpy(audio)[None, :])
        rows.append(out[0, 527:].numpy())
    return np.stack(rows)


if __name__ == "__main__":
    fd_loop(__doc__.splitlines()[0], "hear21passt", "fd_passt", "passt.pth", load_passt, embed_folder)
