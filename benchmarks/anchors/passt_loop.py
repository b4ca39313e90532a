"""FD-PaSST the way people run it with hear21passt 0.0.26: each file read with soundfile, made mono, its
mean removed, resampled to 32 kHz by ``torchaudio.transforms.Resample`` (torchaudio's defaults, as
av-benchmark's ``AudioDataset`` does), cut to ``--seconds``, padded or cut to 10 s (320000 samples, what
av-benchmark feeds) and fed alone to upstream ``PasstBasicWrapper(mode="all")``
(``passt_s_swa_p16_128_ap476`` with hear21passt's own mel front end); the 768-d embeddings of the two
folders compared with scipy (see anchor_stats.frechet_distance).

This is av-benchmark's recipe (agomni's default profile of ``fd_passt``), file by file. Weights:
``WEIGHTS/passt.pth`` (hear21passt keys; bench_anchors.py writes agomni's seeded random weights there);
nothing is downloaded.

    python benchmarks/anchors/passt_loop.py --pred P --ref R --weights WEIGHTS --seconds 8
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio
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
    rows, resamplers = [], {}
    for path in audio_files(folder):
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        audio = torch.from_numpy(data.T).mean(dim=0)
        audio = audio - audio.mean()
        if rate != RATE:
            resample = resamplers.setdefault(rate, torchaudio.transforms.Resample(rate, RATE))
            audio = resample(audio)
        audio = audio[: int(seconds * RATE)][:INPUT_SAMPLES]
        audio = torch.nn.functional.pad(audio, (0, INPUT_SAMPLES - audio.numel()))
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            out = model(audio[None, :])
        rows.append(out[0, 527:].numpy())
    return np.stack(rows)


if __name__ == "__main__":
    fd_loop(__doc__.splitlines()[0], "hear21passt", "fd_passt", "passt.pth", load_passt, embed_folder)
