"""Our Audiobox Aesthetics (WavLM encoder, heads, windowing) equals the audiobox-aesthetics package's
AesPredictor with the same seeded random weights, loaded from the package's checkpoint format."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from audiobox_aesthetics.infer import AesPredictor
from audiobox_aesthetics.model.aes import AesMultiOutput

from agomni.metrics.speech.aesthetics import AXES, AudioboxAesthetics, audiobox_aesthetics
from tests.metrics.speech_fixtures import utterances

MODEL_CFG = {
    "proj_num_layer": 1,
    "proj_ln": False,
    "proj_act_fn": "gelu",
    "proj_dropout": 0,
    "nth_layer": 13,
    "use_weighted_layer_sum": True,
    "precision": "32",
    "normalize_embed": True,
    "output_dim": 1,
}
TRANSFORM = {
    "CE": {"mean": 5.1, "std": 1.3},
    "CU": {"mean": 5.9, "std": 1.1},
    "PC": {"mean": 4.2, "std": 1.9},
    "PQ": {"mean": 6.4, "std": 1.2},
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(11)
    reference = AesMultiOutput(**MODEL_CFG, target_transform=TRANSFORM)
    generator = torch.Generator().manual_seed(12)
    with torch.no_grad():  # layer weights and heads away from their uniform / default initialisation
        for axis in AXES:
            reference.layer_weights[axis].normal_(0.0, 1.0, generator=generator)
            reference.proj_layer[axis][0].weight.normal_(0.0, 30.0, generator=generator)
    path = tmp_path_factory.mktemp("audiobox") / "checkpoint.pt"
    state = {f"model.{k}": v for k, v in reference.state_dict().items()}
    torch.save({"state_dict": state, "model_cfg": MODEL_CFG, "target_transform": TRANSFORM}, path)
    return path


@pytest.mark.slow
def test_scores_equal_the_package_predictor_with_the_same_random_weights(checkpoint) -> None:
    ours = AudioboxAesthetics.from_checkpoint(str(checkpoint))
    predictor = AesPredictor(checkpoint_pth=str(checkpoint), precision="32", data_col="path")
    short = utterances()["f2_3"][0].astype(np.float32)  # 3.6 s: one padded window
    long = np.concatenate([short] * 4)  # 14 s: a full and a padded window, length-weighted
    for audio in (short, long):
        expected = predictor.forward([{"path": torch.from_numpy(audio)[None], "sample_rate": 16000}])[0]
        got = ours.score(audio)
        for axis in AXES:
            assert got[axis] == pytest.approx(expected[axis], rel=1e-4, abs=1e-5), axis
    scores = audiobox_aesthetics([short, long], ours, ids=["short", "long"])
    values = [scores["AUDIOBOX_PQ"].items[k].value for k in range(2)]
    print(f"random-weight PQ of the two clips: {values}")
    assert abs(values[0] - values[1]) > 0.05  # random weights still separate different inputs
    assert scores["AUDIOBOX_CE"].higher_is_better and scores["AUDIOBOX_CE"].covered == 2
