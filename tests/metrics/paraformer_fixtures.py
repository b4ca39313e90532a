"""A small Paraformer in funasr's model-directory layout, with seeded random weights made by funasr itself.

The directory holds what the published paraformer-zh directory holds for decoding: ``config.yaml`` (the
paraformer-large layout: SANM encoder, CIF predictor, SANM decoder, WavFrontend with 7/6 low frame rate
and no dither, CharTokenizer; only the widths and depths are shrunk), ``tokens.json``, ``am.mvn`` (Kaldi
nnet text with <AddShift> / <Rescale>) and ``model.pt`` (a state dict). The weights come from funasr's
``AutoModel.build_model`` seeded with ``seed`` (funasr's own initialisation), never from agomni code.
RANDOM WEIGHTS: transcripts are garbage characters; tests compare computations, not accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml
from funasr import AutoModel

LFR_DIM = 80 * 7
TOKENS = ["<blank>", "<s>", "</s>", *"你好世界我们今天气很不错中文语音识别", "<unk>"]
CONFIG = {
    "model": "Paraformer",
    "model_conf": {"ctc_weight": 0.0, "lsm_weight": 0.1, "predictor_weight": 1.0, "predictor_bias": 1},
    "encoder": "SANMEncoder",
    "encoder_conf": {
        "output_size": 32,
        "attention_heads": 2,
        "linear_units": 64,
        "num_blocks": 2,
        "input_layer": "pe",
        "pos_enc_class": "SinusoidalPositionEncoder",
        "normalize_before": True,
        "kernel_size": 11,
        "sanm_shfit": 0,
        "selfattention_layer_type": "sanm",
    },
    "decoder": "ParaformerSANMDecoder",
    "decoder_conf": {
        "attention_heads": 2,
        "linear_units": 64,
        "num_blocks": 2,
        "att_layer_num": 2,
        "kernel_size": 11,
        "sanm_shfit": 0,
    },
    "predictor": "CifPredictorV2",
    "predictor_conf": {"idim": 32, "threshold": 1.0, "l_order": 1, "r_order": 1, "tail_threshold": 0.45},
    "frontend": "WavFrontend",
    "frontend_conf": {
        "fs": 16000,
        "window": "hamming",
        "n_mels": 80,
        "frame_length": 25,
        "frame_shift": 10,
        "lfr_m": 7,
        "lfr_n": 6,
        "dither": 0.0,
    },
    "specaug": None,
    "normalize": None,
    "tokenizer": "CharTokenizer",
    "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
}


def _mvn_line(values: float) -> str:
    return "<LearnRateCoef> 0 [ " + " ".join([f"{values}"] * LFR_DIM) + " ]"


def write_paraformer_dir(directory: Path, *, seed: int = 3) -> Path:
    """config.yaml, tokens.json, am.mvn and model.pt (funasr's seeded random weights) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(CONFIG, allow_unicode=True), encoding="utf-8")
    (directory / "tokens.json").write_text(json.dumps(TOKENS, ensure_ascii=False), encoding="utf-8")
    mvn = [
        "<Nnet>",
        f"<AddShift> {LFR_DIM} {LFR_DIM}",
        _mvn_line(-8.0),
        f"<Rescale> {LFR_DIM} {LFR_DIM}",
        _mvn_line(0.25),
        "</Nnet>",
    ]
    (directory / "am.mvn").write_text("\n".join(mvn) + "\n", encoding="utf-8")
    config = json.loads(json.dumps(CONFIG))
    config["tokenizer_conf"]["token_list"] = str(directory / "tokens.json")
    config["frontend_conf"]["cmvn_file"] = str(directory / "am.mvn")
    with torch.random.fork_rng():
        network, _ = AutoModel.build_model(**config, seed=seed, device="cpu", init_param=None)
    torch.save(network.state_dict(), directory / "model.pt")
    return directory


def write_tone_clips(directory: Path) -> dict[str, Path]:
    """Two 16 kHz mono FLAC clips (harmonic tones, syllable-rate amplitude modulation; no speech)."""
    directory.mkdir(parents=True, exist_ok=True)
    rate = 16000
    t = np.arange(int(1.6 * rate)) / rate
    paths = {}
    for item_id, (f0, syllables) in {"zh_a": (180.0, 4.0), "zh_b": (260.0, 6.0)}.items():
        envelope = 0.5 * (1 - np.cos(2 * np.pi * syllables * t))
        wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
        paths[item_id] = directory / f"{item_id}.flac"
        sf.write(paths[item_id], (0.2 * envelope * wave).astype(np.float32), rate, subtype="PCM_16")
    return paths
