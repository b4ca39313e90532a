"""SongEval on MuQ in agomni's own code.

- MuQ features equal the ``muq`` package's own MuQ (0.1.0) with the same seeded random weights, on files
  loaded as SongEval loads them (librosa, 24 kHz): its mel front end, normalisation, convolutional
  subsampling and conformer (transformers' Wav2Vec2ConformerEncoder, which MuQ builds). Under the
  transformers this stack pins, MuQ's own ``forward`` no longer returns hidden states (the encoder's
  output has no ``hidden_states`` key), so the test runs MuQ's modules in MuQ's order and takes
  ``hidden_states[6]`` (the 6th layer's output) with a forward hook.
- SongEval's head (its reference code is only on GitHub, so it cannot be a test dependency) is checked
  against an independent numpy computation of the same layers on the same weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

from agomni.cli import main
from agomni.io import load_audio
from agomni.metrics.speech.songeval import OUTPUTS, SongEvalHead, muq_from_files, random_songeval, songeval
from agomni.results import read_results
from agomni.run.runner import plan_metrics
from agomni.suites import get_suite

librosa = pytest.importorskip("librosa")
muq = pytest.importorskip("muq", reason="the muq package is the MuQ equality reference")
transformers = pytest.importorskip("transformers")

STAT = {"melspec_2048_mean": 6.768, "melspec_2048_std": 18.418}


def _w2v2(positions: str) -> dict:
    """A small conformer configuration in MuQ's ``w2v2_config`` form (plain values only)."""
    config = transformers.Wav2Vec2ConformerConfig(
        hidden_size=64,
        num_attention_heads=4,
        intermediate_size=96,
        conv_depthwise_kernel_size=7,
        hidden_act="swish",
        position_embeddings_type=positions,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    ).to_dict()
    out = {k: v for k, v in config.items() if not k.startswith("_") and not isinstance(v, dict | list)}
    return {**out, "_attn_implementation": "eager"}


def _muq_files(folder: Path, positions: str, seed: int) -> tuple[Path, Path, torch.nn.Module]:
    """config.json and model.safetensors of the package's MuQ with seeded random weights."""
    config = {
        "encoder_dim": 64,
        "encoder_depth": 7,
        "conv_dim": 16,
        "codebook_size": 32,
        "stat": STAT,
        "w2v2_config": _w2v2(positions),
    }
    torch.manual_seed(seed)
    reference = muq.MuQ(config).eval()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, tensor in reference.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0, generator=generator)
            elif name.endswith(("pos_bias_u", "pos_bias_v")):
                tensor.normal_(0.0, 1.0, generator=generator)
            elif name.endswith("running_mean") or (name.endswith("bias") and "norm" in name):
                tensor.normal_(0.0, 0.2, generator=generator)
            elif name.endswith(("linear_q.weight", "linear_k.weight", "linear_pos.weight")):
                tensor.mul_(4.0)  # peaked attention, so positions and biases matter to the output
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    return folder / "config.json", folder / "model.safetensors", reference


def _reference_features(reference: torch.nn.Module, wav: np.ndarray) -> torch.Tensor:
    """MuQ's hidden_states[6] through the package's own modules, in MuQModel.get_predictions' order."""
    model = reference.model
    captured = {}
    hook = model.conformer.layers[5].register_forward_hook(lambda m, i, o: captured.update(out=o))
    with torch.no_grad():
        x = model.normalize(model.preprocessing(torch.from_numpy(wav)[None], features=["melspec_2048"]))
        model.conformer(model.conv(x["melspec_2048"]))
    hook.remove()
    out = captured["out"]
    return out[0] if isinstance(out, tuple) else out


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("songs")
    rng = np.random.default_rng(7)
    t = np.arange(int(48000 * 3.0)) / 48000
    melody = sum(0.2 * np.sin(2 * np.pi * f * t) * (1 + np.sin(2 * np.pi * 0.7 * k * t)) for k, f in
                 enumerate((220.0, 277.2, 329.6), start=1))  # fmt: skip
    out = {
        "stereo48k": (folder / "stereo48k.flac", np.stack([melody, 0.5 * melody[::-1]], 1), 48000, "PCM_24"),
        "mono24k": (folder / "mono24k.wav", 0.3 * rng.standard_normal(24000 * 2), 24000, "PCM_16"),
        "subsecond": (folder / "subsecond.flac", melody[:24000], 48000, "PCM_24"),
    }
    for path, audio, rate, subtype in out.values():
        sf.write(path, audio, rate, subtype=subtype)
    return {name: spec[0] for name, spec in out.items()}


@pytest.mark.slow
@pytest.mark.parametrize("positions", ["rotary", "relative"])
def test_muq_features_equal_the_package_with_the_same_random_weights(tmp_path, clips, positions) -> None:
    config, weights, reference = _muq_files(tmp_path / positions, positions, seed=3)
    ours = muq_from_files(config, weights).eval()
    for name, path in clips.items():
        expected_wav, _ = librosa.load(str(path), sr=24000)  # SongEval's loading
        samples, record = load_audio(path, sample_rate=24000, downmix="mean", resampler="soxr-hq")
        assert record.sample_rate == 24000
        np.testing.assert_allclose(samples[0].numpy(), expected_wav, rtol=0, atol=2e-6)
        expected = _reference_features(reference, expected_wav)
        with torch.no_grad():
            got = ours(samples)
        print(
            f"{positions} {name}: frames {tuple(got.shape)}, max |diff| {float((got - expected).abs().max()):.2e}"
        )
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def _numpy_head(head: SongEvalHead, features: np.ndarray) -> np.ndarray:
    """SongEval's head in numpy (float64) from the module's weights: feed-forward, four 8-head attention
    layers without residuals, mean / max pooling, linear, tanh * 2 + 3."""
    w = {k: v.double().numpy() for k, v in head.state_dict().items()}
    x = (
        np.maximum(features @ w["ffd.0.weight"].T + w["ffd.0.bias"], 0) @ w["ffd.2.weight"].T
        + w["ffd.2.bias"]
    )
    y = x
    width = x.shape[-1]
    size = width // 8
    for k in range(4):
        proj = y @ w[f"attn.{k}.in_proj_weight"].T + w[f"attn.{k}.in_proj_bias"]
        q, kk, v = (
            proj[:, i * width : (i + 1) * width].reshape(-1, 8, size).transpose(1, 0, 2) for i in range(3)
        )
        scores = q @ kk.transpose(0, 2, 1) / np.sqrt(size)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        attended = (scores / scores.sum(axis=-1, keepdims=True)) @ v
        y = attended.transpose(1, 0, 2).reshape(-1, width) @ w[f"attn.{k}.out_proj.weight"].T
        y = y + w[f"attn.{k}.out_proj.bias"]
    pooled = np.concatenate([y.mean(axis=0), x.max(axis=0)])
    return np.tanh(pooled @ w["fc.weight"].T + w["fc.bias"]) * 2 + 3


def test_head_equals_a_numpy_computation_of_the_same_layers() -> None:
    torch.manual_seed(0)
    head = SongEvalHead(width=64, hidden=128).eval()
    rng = np.random.default_rng(1)
    outputs = []
    for frames in (1, 7, 50):
        features = rng.standard_normal((frames, 64))
        with torch.no_grad():
            got = head(torch.from_numpy(features).float()[None])[0].double().numpy()
        expected = _numpy_head(head, features)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
        outputs.append(got)
    assert all(1.0 <= v <= 5.0 for row in outputs for v in row)
    assert np.ptp(np.array(outputs), axis=0).max() > 0.05  # different inputs, different scores


@pytest.mark.slow
def test_songeval_through_eval_with_random_weights_equals_the_direct_computation(
    tmp_path, clips, monkeypatch
) -> None:
    """The cached MuQ configuration defines the network; the scores spread; a too-short clip is an item
    error; every output says RANDOM WEIGHTS."""
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "home"))
    config, _, _ = _muq_files(tmp_path / "muq", "rotary", seed=5)
    assert main(["weights", "import", "muq-large-msd-iter-config", str(config)]) == 0
    pred = tmp_path / "pred"
    pred.mkdir()
    for path in clips.values():
        shutil.copy(path, pred / path.name)
    sf.write(pred / "tiny.wav", np.zeros(100), 24000)
    argv = [
        "eval",
        "--pred",
        str(pred),
        "--metrics",
        "songeval_coherence,songeval_clarity",
        "--random-weights",
    ]
    assert main([*argv, "--seed", "4", "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    results = read_results(tmp_path / "out" / "results.json")
    assert [m.name for m in results.metrics] == ["songeval_coherence", "songeval_clarity"]
    assert all("RANDOM WEIGHTS" in m.profile and m.unit == "score (1-5)" for m in results.metrics)
    model = random_songeval(config, 4)
    audio = {
        p.stem: load_audio(p, sample_rate=24000, resampler="soxr-hq")[0][0].numpy() for p in clips.values()
    }
    direct = songeval(list(audio.values()), model, ids=list(audio))
    rows = []
    for k, item_id in enumerate(audio):
        expected = [direct[name].items[k].value for name in OUTPUTS]
        rows.append(expected)
        got = results.item_scores[item_id]
        assert got["songeval_coherence"] == pytest.approx(expected[0], rel=1e-5, abs=1e-6)
        assert got["songeval_clarity"] == pytest.approx(expected[3], rel=1e-5, abs=1e-6)
    rows = np.array(rows)
    spread = rows.std(axis=0).mean() / np.abs(rows - 3.0).mean()  # around the scale's centre, 3
    print(f"SongEval random-weight scores {rows}, spread {spread:.3f}")
    # Different inputs give different scores, but the head compresses MuQ's random features (their own
    # spread about 0.25): about 0.15 here, below the 0.3 the network embedders reach.
    assert np.ptp(rows, axis=0).min() > 0.01 and spread > 0.1
    errors = results.provenance.preprocessing["metrics"]["songeval_coherence"]["errors"]
    assert [e["id"] for e in errors] == ["tiny"] and "shorter than" in errors[0]["reason"]


def test_agomni_run_plans_songeval_only_when_the_muq_configuration_is_cached(tmp_path, monkeypatch) -> None:
    """Random weights need no checkpoint, but SongEval's network is defined by MuQ's config.json."""
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "home"))
    suite = get_suite("t2song")
    run, skipped = plan_metrics(suite, None, random_weights=True)
    assert "audiobox_ce" in run and not any(m.startswith("songeval_") for m in run)
    reasons = {m.name: m for m in skipped}
    assert reasons["songeval_clarity"].command == "agomni weights fetch muq-large-msd-iter-config"
    run, skipped = plan_metrics(suite, None, random_weights=False)
    fetch = {m.name: m.command for m in skipped}["songeval_coherence"]
    assert fetch.count("agomni weights fetch") == 3 and "songeval-head" in fetch
    config, _, _ = _muq_files(tmp_path / "muq", "rotary", seed=1)
    assert main(["weights", "import", "muq-large-msd-iter-config", str(config)]) == 0
    run, _ = plan_metrics(suite, None, random_weights=True)
    assert "songeval_naturalness" in run
