"""Our UTMOS22 strong learner equals the ``utmos-pytorch`` package's model (0.1.0, a fairseq-free port of
the authors' network that keeps their parameter names) with the same seeded random weights, preprocessing
included: the reference side reads each file as F5-TTS's ``eval_utmos.py`` does (``librosa.load(sr=None,
mono=True)``, then SpeechMOS's ``torchaudio.functional.resample`` to 16 kHz) and scores it with the
package's ``UTMOSScoreTorch`` (domain 0, listener 288, frame mean x2+3). The ``utmos`` package (1.1.10)
needs fairseq, which does not install on this stack, so it is not the reference. Real weights are not
fetched offline, so a real-weights property cannot run here."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from agomni.cli import main
from agomni.errors import EXIT_NOT_COMPUTED, UsageError, WeightsError
from agomni.metrics.speech.utmos import UTMOS, load_16k, random_network, utmos
from agomni.results import read_results
from agomni.weights import get_entry, resolve
from agomni.weights.store import quick_status
from tests.metrics.speech_fixtures import utterances

utmos_torch = pytest.importorskip(
    "utmos_pytorch.utmos_torch", reason="utmos-pytorch is the equality reference"
)


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return random_network(0).state_dict()


@pytest.fixture(scope="module")
def reference(state, tmp_path_factory):
    """The package's scorer holding the same weights; every name must fit its model strictly (its
    model has no ``mask_emb``, an unused pre-training parameter the authors' checkpoint keeps)."""
    kept = {k: v for k, v in state.items() if not k.endswith("mask_emb")}
    assert len(kept) == len(state) - 1
    utmos_torch.UTMOSModel().load_state_dict(kept, strict=True)
    path = tmp_path_factory.mktemp("utmos_ref") / "utmos_state_dict.pt"
    torch.save(kept, path)
    return utmos_torch.UTMOSScoreTorch(ckpt_path=str(path), device="cpu")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """48 kHz stereo 24-bit FLAC speech, 16 kHz mono WAV speech, a sub-second clip at 22.05 kHz, noise, and
    a 25 s clip (longer than the 4-10 s utterances of the TTS test sets)."""
    folder = tmp_path_factory.mktemp("utmos_clips")
    rng = np.random.default_rng(5)
    speech = utterances()["f2_2"][0]
    up = np.interp(np.arange(len(speech) * 3) / 3, np.arange(len(speech)), speech)
    stereo = np.stack([up, 0.6 * np.roll(up, 240) + 0.01 * rng.standard_normal(up.size)], axis=1)
    long = np.concatenate([utterances()[k][0] for k in ("f2_0", "f2_1", "f2_3", "m1_1", "m1_2")] * 2)
    short = librosa.resample(speech[4000:12000], orig_sr=16000, target_sr=22050)
    out = {
        "stereo48k": (folder / "stereo48k.flac", 0.8 * stereo, 48000, "PCM_24"),
        "mono16k": (folder / "mono16k.wav", utterances()["m1_0"][0], 16000, "PCM_16"),
        "subsecond": (folder / "subsecond.wav", short, 22050, "FLOAT"),
        "noise": (folder / "noise.flac", 0.3 * rng.standard_normal((48000, 2)), 48000, "PCM_24"),
        "long": (folder / "long.flac", long[: 25 * 16000], 16000, "PCM_16"),
    }
    for path, audio, rate, subtype in out.values():
        sf.write(path, audio, rate, subtype=subtype)
    return {name: spec[0] for name, spec in out.items()}


def _reference_score(scorer, path: Path) -> float:
    wave, rate = librosa.load(path, sr=None, mono=True)
    wave16k = torchaudio.functional.resample(
        torch.from_numpy(wave).unsqueeze(0), orig_freq=rate, new_freq=16000
    )
    return float(scorer.score(wave16k)[0])


@pytest.mark.slow
def test_scores_equal_the_package_with_the_same_random_weights(state, reference, clips, tmp_path) -> None:
    checkpoint = tmp_path / "authors_layout.pt"
    torch.save({"state_dict": state}, checkpoint)  # the Lightning file nests the tensors so
    model = UTMOS.from_checkpoint(str(checkpoint))
    ids = list(clips)
    ours = utmos([load_16k(clips[i]) for i in ids], model, ids=ids)
    got = np.array([item.value for item in ours.items])
    expected = np.array([_reference_score(reference, clips[i]) for i in ids])
    print("ours", got.round(5), "package", expected.round(5), "for", ids)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    spread = got.std() / np.abs(got).mean()
    print(f"relative spread across the five clips: {spread:.3f}")
    assert spread > 0.3  # random weights still separate different inputs
    assert ours.unit == "MOS (1-5)" and ours.higher_is_better and "utmos22_strong" in ours.recipe
    assert "non-speech" in ours.items[ids.index("noise")].flags[0]


def _speechmos_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The names of SpeechMOS's UTMOS22Strong (its speechmos/utmos22/strong/model.py), written out here."""
    out = {}
    for name, tensor in state.items():
        for ours, theirs in (
            ("feature_extractors.0.ssl_model.", "wav2vec2."),
            ("output_layers.0.decoder_rnn.", "blstm."),
            ("output_layers.1.net.0.", "projection.0."),
            ("output_layers.1.net.3.", "projection.2."),
        ):
            if name.startswith(ours):
                out[theirs + name[len(ours) :]] = tensor
    out["domain_emb"] = state["feature_extractors.1.embedding.weight"][0:1].clone()
    out["judge_emb"] = state["output_layers.0.judge_embedding.weight"][288:289].clone()
    return out


def test_speechmos_release_layout_gives_the_same_scores(state, tmp_path) -> None:
    authors, speechmos = tmp_path / "authors.pt", tmp_path / "utmos22_strong_step7459_v1.pt"
    torch.save(state, authors)
    converted = _speechmos_layout(state)
    assert len(converted) == len(state)
    torch.save(converted, speechmos)
    clip = utterances()["f2_0"][0][:24000].astype(np.float32)
    direct = UTMOS.from_checkpoint(str(authors)).score(clip)
    assert UTMOS.from_checkpoint(str(speechmos)).score(clip) == pytest.approx(direct, rel=1e-6)
    del converted["projection.2.bias"]
    torch.save(converted, speechmos)
    with pytest.raises(WeightsError, match=r"missing keys \(1\): output_layers.1.net.3.bias"):
        UTMOS.from_checkpoint(str(speechmos))


def test_too_short_too_long_empty_and_nan_items_are_errors_with_reasons() -> None:
    model = UTMOS(random_network(1), random_weights=True)
    rng = np.random.default_rng(2)
    clips = [
        np.zeros(0, dtype=np.float32),
        0.1 * rng.standard_normal(399),  # one sample short of the first frame
        0.1 * rng.standard_normal(400),
        np.zeros(121 * 16000, dtype=np.float32),
        np.full(16000, np.nan),
    ]
    score = utmos(clips, model, ids=["empty", "tiny", "frame", "long", "nan"])
    assert [i.error is not None for i in score.items] == [True, True, False, True, True]
    assert "item tiny" in score.items[1].error and "400" in score.items[1].error
    assert "item long" in score.items[3].error and "120 s" in score.items[3].error
    assert "RANDOM WEIGHTS" in score.backend


@pytest.mark.slow
def test_utmos_through_eval_equals_the_direct_computation_and_files_short_clips(tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    pred.mkdir()
    speech = utterances()["f2_2"][0]
    up = np.interp(np.arange(len(speech) * 3) / 3, np.arange(len(speech)), speech)
    sf.write(pred / "a48k.flac", np.stack([up, 0.5 * up], axis=1), 48000, subtype="PCM_24")
    sf.write(pred / "b16k.wav", utterances()["m1_0"][0][:32000], 16000, subtype="PCM_16")
    sf.write(pred / "c_tiny.wav", speech[:300], 16000, subtype="PCM_16")  # 19 ms: under one frame
    argv = ["eval", "--pred", str(pred), "--metrics", "utmos", "--random-weights", "--seed", "3"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    results = read_results(tmp_path / "out" / "results.json")
    (metric,) = results.metrics
    assert metric.name == "utmos" and metric.unit == "MOS (1-5)" and metric.higher_is_better
    assert "RANDOM WEIGHTS" in metric.profile
    coverage = {c.id: c for c in results.coverage}
    reason = coverage["c_tiny"].unscored["utmos"]
    assert "300 samples" in reason and "at least 400" in reason
    assert "utmos" not in results.item_scores.get("c_tiny", {})
    model = UTMOS(random_network(3), random_weights=True)
    direct = {}
    for name in ("a48k.flac", "b16k.wav"):  # soundfile + numpy mean + torchaudio, not agomni.io
        audio, rate = sf.read(str(pred / name), dtype="float32", always_2d=True)
        mono = torch.from_numpy(audio.mean(axis=1))
        direct[name.split(".")[0]] = model.score(torchaudio.functional.resample(mono, rate, 16000).numpy())
    for item_id, expected in direct.items():
        assert results.item_scores[item_id]["utmos"] == pytest.approx(expected, rel=1e-5)
    assert metric.value == pytest.approx(np.mean(list(direct.values())), rel=1e-5)


def test_eval_without_the_checkpoint_files_utmos_as_not_computed_with_the_fetch_command(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "empty-home"))
    pred = tmp_path / "pred"
    pred.mkdir()
    sf.write(pred / "a.wav", utterances()["f2_0"][0][:16000], 16000, subtype="PCM_16")
    argv = ["eval", "--pred", str(pred), "--metrics", "utmos", "--out", str(tmp_path / "out")]
    assert main([*argv, "--no-progress"]) == EXIT_NOT_COMPUTED
    assert "utmos: NOT COMPUTED (weights)" in capsys.readouterr().out
    assert main([*argv, "--no-progress", "--strict", "--overwrite"]) == UsageError.exit_code
    assert "utmos22-strong not in the weights cache: run `agomni weights fetch utmos22-strong`" in (
        capsys.readouterr().err
    )
    assert main(["suites"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("utmos ("))
    assert line.strip() == (
        "utmos (MOS (1-5), higher is better) - agomni eval: available; "
        "not in the weights cache: `agomni weights fetch utmos22-strong`"
    )


@pytest.mark.slow
@pytest.mark.skipif(
    quick_status(get_entry("utmos22-strong")) != "cached",
    reason="the real UTMOS weights are not in the weights cache (`agomni weights fetch utmos22-strong`)",
)
def test_real_weights_score_clean_speech_higher_than_the_same_with_added_noise() -> None:
    model = UTMOS.from_checkpoint(str(resolve("utmos22-strong")))
    clean = utterances()["f2_2"][0]
    noise = np.random.default_rng(0).standard_normal(len(clean))
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (5.0 / 10))
    noisy = (clean + noise) / max(1.0, np.abs(clean + noise).max())
    score = utmos([clean, noisy], model, ids=["clean", "noisy_5dB"])
    clean_mos, noisy_mos = (item.value for item in score.items)
    print(f"UTMOS clean {clean_mos:.3f}, 5 dB SNR white noise {noisy_mos:.3f}")
    assert 1.0 < noisy_mos < clean_mos - 0.5 and clean_mos < 5.0
