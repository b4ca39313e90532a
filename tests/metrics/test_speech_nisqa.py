"""Our NISQA (mel spectrogram, segments, CNN, self-attention, pooling heads) equals the ``nisqa`` package's
own prediction (nisqaModel, mode predict_file: librosa loading and mel spectrogram included) with the same
seeded random weights, on files as users have them. The package ships no weights (its wheel holds code
only), so the real-weights property (clean > noisy) cannot run offline here."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from agomni.cli import main
from agomni.errors import WeightsError
from agomni.io import load_audio
from agomni.metrics.speech.nisqa import NISQA, OUTPUTS, NISQANetwork, nisqa, random_network
from agomni.results import read_results
from agomni.weights import get_entry, resolve
from agomni.weights.store import quick_status
from tests.metrics.speech_fixtures import utterances

lib = pytest.importorskip("nisqa.NISQA_lib", reason="the nisqa package is the equality reference")
nisqa_model = pytest.importorskip("nisqa.NISQA_model")

#: The recipe arguments of the published nisqa.tar (see agomni.metrics.speech.nisqa), as the package's
#: predict mode reads them from a checkpoint.
ARGS = {
    "model": "NISQA_DIM",
    "ms_sr": None,
    "ms_n_fft": 4096,
    "ms_hop_length": 0.01,
    "ms_win_length": 0.02,
    "ms_n_mels": 48,
    "ms_fmax": 20000,
    "ms_seg_length": 15,
    "ms_seg_hop_length": 4,
    "ms_max_segments": 1300,
    "ms_channel": None,
    "cnn_model": "adapt",
    "cnn_c_out_1": 16,
    "cnn_c_out_2": 32,
    "cnn_c_out_3": 64,
    "cnn_kernel_size": (3, 3),
    "cnn_dropout": 0.2,
    "cnn_pool_1": [24, 7],
    "cnn_pool_2": [12, 5],
    "cnn_pool_3": [6, 3],
    "cnn_fc_out_h": None,
    "td": "self_att",
    "td_sa_d_model": 64,
    "td_sa_nhead": 1,
    "td_sa_pos_enc": False,
    "td_sa_num_layers": 2,
    "td_sa_h": 64,
    "td_sa_dropout": 0.1,
    "td_2": "skip",
    "pool": "att",
    "pool_att_h": 128,
    "pool_att_dropout": 0,
    **{f"td_{k}": None for k in ("lstm_h", "lstm_num_layers", "lstm_dropout", "lstm_bidirectional")},
    **{
        f"td_2_{k}": None
        for k in (
            "sa_d_model",
            "sa_nhead",
            "sa_pos_enc",
            "sa_num_layers",
            "sa_h",
            "sa_dropout",
            "lstm_h",
            "lstm_num_layers",
            "lstm_dropout",
            "lstm_bidirectional",
        )
    },
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """The package's NISQA_DIM holding `random_network`'s seeded weights (every name must fit, strictly),
    saved by the package's model in the published file's layout."""
    kwargs = {k: v for k, v in ARGS.items() if not k.startswith("ms_") and k != "model"}
    reference = lib.NISQA_DIM(ms_seg_length=15, ms_n_mels=48, **kwargs)
    reference.load_state_dict(random_network(0).state_dict(), strict=True)
    path = tmp_path_factory.mktemp("nisqa") / "nisqa.tar"  # the published name of a torch.save zip
    torch.save({"args": ARGS, "model_state_dict": reference.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """48 kHz stereo 24-bit FLAC speech, 16 kHz mono WAV speech, a sub-second clip, noise, and a 60 s clip."""
    folder = tmp_path_factory.mktemp("nisqa_clips")
    rng = np.random.default_rng(3)
    speech = utterances()["f2_2"][0]
    up = np.interp(np.arange(len(speech) * 3) / 3, np.arange(len(speech)), speech)
    stereo = np.stack([up, 0.6 * np.roll(up, 240) + 0.01 * rng.standard_normal(up.size)], axis=1)
    out = {
        "stereo48k": (folder / "stereo48k.flac", 0.8 * stereo, 48000, "PCM_24"),
        "mono16k": (folder / "mono16k.wav", utterances()["m1_0"][0], 16000, "PCM_16"),
        "subsecond": (folder / "subsecond.wav", speech[4000:11000], 16000, "FLOAT"),
        "noise": (folder / "noise.flac", 0.3 * rng.standard_normal((48000, 2)), 48000, "PCM_24"),
        "overlong": (folder / "overlong.flac", 0.1 * rng.standard_normal(60 * 16000), 16000, "PCM_16"),
    }
    for path, audio, rate, subtype in out.values():
        sf.write(path, audio, rate, subtype=subtype)
    return {name: spec[0] for name, spec in out.items()}


def _package_scores(checkpoint: Path, clip: Path) -> np.ndarray:
    args = {
        "mode": "predict_file",
        "pretrained_model": str(checkpoint),
        "deg": str(clip),
        "output_dir": None,
        "tr_bs_val": 1,
        "tr_num_workers": 0,
        "tr_parallel": False,
        "tr_device": "cpu",
        "ms_channel": None,
    }
    frame = nisqa_model.nisqaModel(args).predict()
    return frame[["mos_pred", "noi_pred", "dis_pred", "col_pred", "loud_pred"]].to_numpy()[0]


def _ours(model: NISQA, paths: dict[str, Path]):
    loaded = {}
    for name, path in paths.items():
        samples, record = load_audio(path, downmix="mean")
        loaded[name] = (samples[0].numpy(), record.sample_rate)
    return nisqa(list(loaded.values()), model, ids=list(loaded))


@pytest.mark.slow
def test_scores_equal_the_package_prediction_with_the_same_random_weights(checkpoint, clips) -> None:
    model = NISQA.from_checkpoint(str(checkpoint))
    assert "RANDOM" not in model.backend  # the loader cannot tell; the stage labels random weights
    scores = _ours(model, clips)
    for index, name in enumerate(("stereo48k", "mono16k", "subsecond", "noise")):
        expected = _package_scores(checkpoint, clips[name])
        got = np.array([scores[out].items[index].value for out in OUTPUTS])
        print(f"{name}: ours {got}, package {expected}")
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="max_length"):  # the package refuses the 60 s clip too
        _package_scores(checkpoint, clips["overlong"])
    overlong = scores["NISQA_MOS"].items[4]
    assert overlong.value is None and "overlong" in overlong.error and "1300" in overlong.error
    rows = np.array([[scores[out].items[k].value for out in OUTPUTS] for k in range(4)])
    spread = rows.std(axis=0).mean() / np.abs(rows).mean()
    print(f"relative spread across the four clips: {spread:.3f}")
    # Random weights still separate different inputs. The spread depends on the seed (0.08 to 1.1 over
    # seeds 0-7 on these clips, as the outputs' mean |value| varies); seed 0 gives 0.44.
    assert spread > 0.3


def test_too_short_empty_and_non_speech_items() -> None:
    torch.manual_seed(0)
    model = NISQA(NISQANetwork(), random_weights=True)
    rng = np.random.default_rng(2)
    clips = [
        (np.zeros(0, dtype=np.float32), 16000),
        (0.1 * rng.standard_normal(1600), 16000),  # 0.1 s: 11 frames < 15
        (0.1 * rng.standard_normal(16000), 16000),
        (np.full(16000, np.nan), 16000),
    ]
    scores = nisqa(clips, model, ids=["empty", "tiny", "noise", "nan"])
    mos = scores["NISQA_MOS"]
    assert [i.error is not None for i in mos.items] == [True, True, False, True]
    assert "item tiny" in mos.items[1].error and "0.15 s" in mos.items[1].error
    assert "non-speech" in mos.items[2].flags[0]
    assert "RANDOM WEIGHTS" in mos.backend and mos.unit == "MOS (1-5)" and mos.higher_is_better


@pytest.mark.slow
def test_nisqa_through_eval_with_random_weights_equals_the_direct_computation(tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    pred.mkdir()
    speech = utterances()["f2_2"][0]
    up = np.interp(np.arange(len(speech) * 3) / 3, np.arange(len(speech)), speech)
    sf.write(pred / "a48k.flac", np.stack([up, 0.5 * up], axis=1), 48000, subtype="PCM_24")
    sf.write(pred / "b16k.wav", utterances()["m1_0"][0], 16000, subtype="PCM_16")
    sf.write(pred / "c_noise.ogg", 0.2 * np.random.default_rng(4).standard_normal(24000), 24000)
    sf.write(pred / "d_tiny.wav", speech[:1000], 16000, subtype="PCM_16")  # 62 ms: too short
    argv = ["eval", "--pred", str(pred), "--metrics", "nisqa_mos,nisqa_col", "--random-weights"]
    assert main([*argv, "--seed", "3", "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    results = read_results(tmp_path / "out" / "results.json")
    assert [m.name for m in results.metrics] == ["nisqa_mos", "nisqa_col"]
    assert all("RANDOM WEIGHTS" in m.profile and m.unit == "MOS (1-5)" for m in results.metrics)
    model = NISQA(random_network(3), random_weights=True)
    direct = {}
    for name in ("a48k.flac", "b16k.wav", "c_noise.ogg"):
        audio, rate = sf.read(str(pred / name), dtype="float32", always_2d=True)
        direct[name.split(".")[0]] = model.score(audio.mean(axis=1), rate)
    for item_id, expected in direct.items():
        got = results.item_scores[item_id]
        assert got["nisqa_mos"] == pytest.approx(expected["NISQA_MOS"], rel=1e-5, abs=1e-6)
        assert got["nisqa_col"] == pytest.approx(expected["NISQA_COL"], rel=1e-5, abs=1e-6)
    errors = results.provenance.preprocessing["metrics"]["nisqa_mos"]["errors"]
    assert [e["id"] for e in errors] == ["d_tiny"] and "0.15 s" in errors[0]["reason"]
    rows = np.array([[v["NISQA_MOS"], v["NISQA_COL"]] for v in direct.values()])
    assert rows.std(axis=0).mean() / np.abs(rows).mean() > 0.3  # the product's random weights spread too


def test_checkpoints_of_another_recipe_and_real_tar_archives_are_refused(tmp_path: Path) -> None:
    state = random_network(1).state_dict()
    other = tmp_path / "other.tar"
    torch.save({"args": {**ARGS, "ms_n_mels": 32}, "model_state_dict": state}, other)
    with pytest.raises(WeightsError, match="ms_n_mels"):
        NISQA.from_checkpoint(str(other))
    archive = tmp_path / "archive.tar"
    with tarfile.open(archive, "w") as handle:
        handle.add(other, arcname="other.tar")
    with pytest.raises(WeightsError, match=r"not a torch checkpoint|unreadable torch checkpoint"):
        NISQA.from_checkpoint(str(archive))


@pytest.mark.slow
@pytest.mark.skipif(
    quick_status(get_entry("nisqa-v2")) != "cached",
    reason="the real NISQA weights are not in the weights cache (`agomni weights fetch nisqa-v2`)",
)
def test_real_weights_score_clean_speech_higher_than_the_same_with_added_noise() -> None:
    model = NISQA.from_checkpoint(str(resolve("nisqa-v2")))
    clean = utterances()["f2_2"][0]
    noise = np.random.default_rng(0).standard_normal(len(clean))
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (5.0 / 10))
    noisy = clean + noise
    noisy /= max(1.0, np.abs(noisy).max())
    scores = nisqa([(clean, 16000), (noisy, 16000)], model, ids=["clean", "noisy_5dB"])
    values = {name: [item.value for item in s.items] for name, s in scores.items()}
    print(f"NISQA clean vs 5 dB SNR white noise: {values}")
    assert values["NISQA_MOS"][0] > values["NISQA_MOS"][1] + 0.3
