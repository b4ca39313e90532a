"""FD-CLAP the way fadtk 1.0 runs LAION-CLAP (``clap-laion-audio``), file by file: each file read with
soundfile, made mono (channel mean), resampled to 48 kHz by ``torchaudio.transforms.Resample`` with
librosa's "kaiser_best" settings (fadtk's ``TORCHAUDIO_RESAMPLING``), stored as 16-bit PCM and read back
as ``int16 / 32768`` (done in memory here, rounding to nearest as FFmpeg's s16 encoder does), then
``CLAPLaionModel._get_embedding``: laion-clap's int16 round trip (``* 32767``, truncate, ``/ 32767``),
10 s chunks starting every 1 s, each zero-padded to 10 s and fed alone to upstream laion-clap 1.1.7
``CLAP_Module.get_audio_embedding_from_data(x, use_tensor=True)`` (HTSAT-tiny, 630k-audioset layout);
the chunk embeddings rounded to float16 (fadtk's embedding cache) and every chunk of the two folders
compared with scipy (see anchor_stats.frechet_distance).

This is the recipe of agomni's ``fd_clap`` with ``--profile fadtk``. Weights: ``WEIGHTS/clap.pt``, the
official ``{"state_dict": {"module.<name>": tensor}}`` layout holding the audio tower (bench_anchors.py
writes agomni's seeded random weights there). Built offline: ``CLAP_Module`` would fetch RoBERTa and three
tokenizers from the Hugging Face hub, so those ``from_pretrained`` calls are replaced by a small randomly
initialised RoBERTa and no tokenizers (the text tower is not used here); nothing is downloaded.

    python benchmarks/anchors/clap_loop.py --pred P --ref R --weights WEIGHTS --seconds 8
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from unittest import mock

import numpy as np
import soundfile as sf
import torch
import torchaudio
import transformers
from anchor_stats import audio_files, fd_loop

RATE = 48000
CHUNK = 10 * RATE
HOP = RATE
KAISER_BEST = {
    "lowpass_filter_width": 64, "rolloff": 0.9475937167399596, "resampling_method": "sinc_interp_kaiser",
    "beta": 14.769656459379492,
}  # fmt: skip
SMALL_ROBERTA = {
    "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
    "intermediate_size": 37, "max_position_embeddings": 80,
}  # fmt: skip


def load_clap(weights: Path):
    config = transformers.RobertaConfig(**SMALL_ROBERTA)
    none = classmethod(lambda cls, *a, **k: None)
    with (
        mock.patch.object(transformers.RobertaModel, "from_pretrained", lambda *a, **k: transformers.RobertaModel(config)),
        mock.patch.object(transformers.RobertaTokenizer, "from_pretrained", none),
        mock.patch.object(transformers.BertTokenizer, "from_pretrained", none),
        mock.patch.object(transformers.BartTokenizer, "from_pretrained", none),
        contextlib.redirect_stdout(io.StringIO()),
    ):  # fmt: skip
        import laion_clap

        module = laion_clap.CLAP_Module(enable_fusion=False, amodel="HTSAT-tiny", device="cpu")
    state = torch.load(weights, map_location="cpu", weights_only=True)["state_dict"]
    audio = {k.removeprefix("module."): v for k, v in state.items()}
    result = module.model.load_state_dict(audio, strict=False)
    missing = [k for k in result.missing_keys if k.startswith(("audio_branch", "audio_projection"))]
    if missing or result.unexpected_keys:
        raise SystemExit(
            f"clap.pt does not fit CLAP_Module: missing {missing}, unexpected {result.unexpected_keys}"
        )
    return module.eval()


def embed_folder(module, folder: Path, seconds: float) -> np.ndarray:
    rows, resamplers = [], {}
    for path in audio_files(folder):
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        audio = torch.from_numpy(data.T).mean(dim=0)
        if rate != RATE:
            resample = resamplers.setdefault(rate, torchaudio.transforms.Resample(rate, RATE, **KAISER_BEST))
            audio = resample(audio)
        pcm = np.clip(np.round(audio.numpy().astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)
        audio = (pcm / 32768.0)[None, :]
        audio = (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16) / 32767.0
        for start in range(0, audio.shape[1], HOP):
            chunk = audio[:, start : start + CHUNK]
            chunk = np.pad(chunk, ((0, 0), (0, CHUNK - chunk.shape[1])))
            with torch.no_grad():
                emb = module.get_audio_embedding_from_data(x=torch.from_numpy(chunk).float(), use_tensor=True)
            rows.append(emb.numpy().astype(np.float16))
    return np.concatenate(rows)


if __name__ == "__main__":
    fd_loop(__doc__.splitlines()[0], "laion-clap", "fd_clap", "clap.pt", load_clap, embed_folder)
