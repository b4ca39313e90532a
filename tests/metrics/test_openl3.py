"""OpenL3 (stable-audio-metrics' FD_openl3) against its references, on real-shaped files.

References, independent of agomni's code:
- torchopenl3 1.0.1 (test-only dependency): ``PytorchOpenl3`` (openl3's network with the Keras weights'
  layout) loaded with the same seeded random weights as ours, and ``utils.preprocess_audio_batch``
  (resampy kaiser_best to 48 kHz, centring, padding, 1 s windows every 0.5 s) as openl3 0.4.2 frames audio.
- openl3 0.4.2's kapre 0.3.7 frontend, written here in numpy from its definition (``tf.signal.stft`` with
  ``pad_end``, periodic Hann, ``|X|``, ``librosa.filters.mel(htk=False, norm="slaney")``,
  ``10 log10(max(m, 1e-10))`` minus the maximum, floored at -80): it replaces torchopenl3's own
  kapre 0.1.4 speclayer, which openl3 0.4.2 (what stable-audio-metrics runs) no longer uses.
- stable-audio-metrics ``extract_embeddings``' loader with soundfile, numpy and soxr, in float32 as it
  runs (librosa.load's float32, pyloudnorm under numpy 1.x, soxr and resampy on float32): openl3's
  ``10 log10(|X|)`` over an 80 dB range reaches amplitude ratios of 1e-8, so a float32 rounding difference
  of the input (~1e-7) moves the bands a 44.1 kHz signal leaves empty and the embeddings by ~2 %;
  its Frechet distance with numpy and scipy.linalg.sqrtm.
openl3 0.4.2 itself is not installable here (its setup.py downloads the weights from GitHub at install
time, and it needs TensorFlow).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import linalg

from agomni.errors import MetricInputError, OfflineError, UsageError
from agomni.io.prepare import load_prepared
from agomni.io.prepare import recipe as input_recipe
from agomni.metrics import FrechetDistance
from agomni.metrics.embedders.openl3 import OpenL3Embedder, frame_windows
from tests.metrics.conftest import relative_error
from tests.metrics.test_vggish import relative_spread

torchopenl3 = pytest.importorskip("torchopenl3")
librosa = pytest.importorskip("librosa")
soxr = pytest.importorskip("soxr")

TOLERANCE = 1e-4
EVAL_RATE = 44100


def reference_frontend(frames: np.ndarray) -> np.ndarray:
    """openl3 0.4.2 / kapre 0.3.7 mel256 decibel spectrogram of windows [n, 48000] -> [n, 256, 199, 1]."""
    n_fft, hop = 2048, 242
    n_frames = -(-frames.shape[1] // hop)
    padded = np.pad(frames.astype(np.float64), ((0, 0), (0, (n_frames - 1) * hop + n_fft - frames.shape[1])))
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    magnitude = np.abs(np.fft.rfft(padded[:, idx] * window, axis=-1))  # [n, time, bins]
    mel_basis = librosa.filters.mel(
        sr=48000, n_fft=n_fft, n_mels=256, fmin=0.0, fmax=None, htk=False, norm="slaney"
    )
    mel = magnitude @ mel_basis.T.astype(np.float64)  # [n, time, mels]
    db = 10 * np.log10(np.maximum(mel, 1e-10))
    db = np.maximum(db - db.max(axis=(1, 2), keepdims=True), -80.0)
    return db.transpose(0, 2, 1)[..., None].astype(np.float32)


class _ReferenceFrontend(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(reference_frontend(x[:, 0].double().numpy()))


def upstream_network(embedder: OpenL3Embedder) -> torch.nn.Module:
    """torchopenl3's network with our seeded random weights and openl3 0.4.2's frontend."""
    model = torchopenl3.models.PytorchOpenl3(content_type="music", input_repr="mel256", embedding_size=512)
    missing, unexpected = model.load_state_dict(embedder.network.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("speclayer.") for k in missing)
    model.speclayer = _ReferenceFrontend()
    return model.eval()


def upstream_embeddings(model: torch.nn.Module, path: Path) -> np.ndarray:
    """stable-audio-metrics ``extract_embeddings`` (channels=2, samplingrate=44100, hop 0.5) of one file,
    with torchopenl3's framing and network: [frames, 1024]."""
    audio, rate = sf.read(path, dtype="float32", always_2d=True)  # librosa.load(sr=None, mono=False).T
    audio = audio[:, 0] if audio.shape[1] == 1 else audio
    # pyloudnorm.normalize.peak(audio, -1.0) under numpy 1.x (float32 array times a float64 scalar: float32)
    audio = audio * np.float32(10 ** (-1.0 / 20) / np.max(np.abs(audio)))
    audio = soxr.resample(audio, rate, EVAL_RATE)  # float32 in, float32 out, quality HQ
    channels = [audio, audio] if audio.ndim == 1 else [audio[:, 0], audio[:, 1]]
    out = []
    for channel in channels:
        frames = torchopenl3.utils.preprocess_audio_batch(
            torch.from_numpy(np.ascontiguousarray(channel))[None],
            EVAL_RATE,
            center=True,
            hop_size=0.5,
            sampler="resampy",
        ).to(torch.float32)
        with torch.no_grad():
            out.append(model(frames).numpy())
    return np.concatenate(out, axis=1)


def reference_fd(a: np.ndarray, b: np.ndarray) -> float:
    """stable-audio-metrics calculate_embd_statistics + calculate_frechet_distance (numpy / scipy)."""
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    covmean = covmean.real
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _write(
    folder: Path, name: str, seconds: float, rate: int, channels: int, subtype: str, seed: int
) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(round(rate * seconds)) / rate
    cols = []
    for c in range(channels):
        tone = 0.5 * np.sin(2 * np.pi * rng.uniform(80, 6000) * t * (1 + 0.1 * c * t))
        gate = np.sign(np.sin(2 * np.pi * rng.uniform(0.5, 4) * t)) > 0
        cols.append(tone * gate + rng.uniform(0.01, 0.2) * rng.standard_normal(t.size))
    path = folder / name
    sf.write(path, np.stack(cols, axis=1), rate, subtype=subtype)
    return path


@pytest.fixture(scope="module")
def openl3_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """48 kHz stereo 24-bit, sub-second stereo FLAC, mono 16 kHz Ogg-free FLAC, 6-channel, over-long."""
    folder = tmp_path_factory.mktemp("openl3_audio")
    return {
        "stereo24": _write(folder, "stereo24.wav", 2.3, 48000, 2, "PCM_24", 1),
        "short": _write(folder, "short.flac", 0.4, 48000, 2, "PCM_24", 2),
        "mono16k": _write(folder, "mono16k.flac", 1.7, 16000, 1, "PCM_16", 3),
        "six": _write(folder, "six.wav", 1.2, 44100, 6, "PCM_16", 4),
    }


@pytest.fixture(scope="module")
def random_embedder() -> OpenL3Embedder:
    return OpenL3Embedder.random("music", seed=3)


def _ours(embedder: OpenL3Embedder, path: Path) -> np.ndarray:
    waveform, _, steps = load_prepared(
        path, embedder.needs.sample_rate, input_recipe("stable-audio-metrics-openl3")
    )
    assert waveform.shape[0] == 2 and steps["sample_rate"] == EVAL_RATE
    return embedder.outputs(waveform[None])["embed"][0].double().numpy()


@pytest.mark.parametrize("name", ["stereo24", "short", "mono16k", "six"])
def test_file_embeddings_match_torchopenl3_with_openl3_042_frontend(name, openl3_files, random_embedder):
    path = openl3_files[name]
    ours = _ours(random_embedder, path)
    reference = upstream_embeddings(upstream_network(random_embedder), path)
    assert ours.shape == reference.shape and ours.shape[1] == 1024
    assert relative_error(ours, reference) < TOLERANCE
    if name == "mono16k":  # a mono file is embedded as both channels
        np.testing.assert_array_equal(ours[:, :512], ours[:, 512:])
    else:
        assert relative_error(ours[:, :512], ours[:, 512:]) > 0.01


@pytest.mark.slow
def test_over_long_file_and_fd_match_references(tmp_path, openl3_files, random_embedder):
    long = _write(tmp_path, "long.wav", 12.0, 48000, 2, "PCM_24", 9)
    model = upstream_network(random_embedder)
    ours_long = _ours(random_embedder, long)
    reference_long = upstream_embeddings(model, long)
    assert ours_long.shape == (24, 1024)  # 1 + ceil((12 s + 0.5 s - 1 s) / 0.5 s)
    assert relative_error(ours_long, reference_long) < TOLERANCE
    generated = np.concatenate(
        [_ours(random_embedder, openl3_files[n]) for n in ("stereo24", "short", "six")]
    )
    fd = FrechetDistance()
    fd.update(ours_long, reference=True)
    fd.update(generated)
    value = fd.compute().value
    assert value == pytest.approx(reference_fd(generated, ours_long), rel=1e-6)


def test_framing_matches_torchopenl3():
    rng = np.random.default_rng(0)
    for samples in (1000, 48000, 48001, 100_000, 240_000):
        audio = rng.standard_normal(samples).astype(np.float32)
        ours = frame_windows(audio, 0.5)
        theirs = torchopenl3.utils.preprocess_audio_batch(
            torch.from_numpy(audio)[None], 48000, center=True, hop_size=0.5
        )[:, 0].numpy()
        np.testing.assert_array_equal(ours, theirs)


def test_random_weights_spread_across_inputs(random_embedder):
    from tests.metrics.test_vggish import _varied_clips

    clips = _varied_clips(rate=EVAL_RATE)
    rows = random_embedder.embed(clips).mean(dim=1).double().numpy()  # one mean row per clip
    assert rows.shape == (6, 1024)
    assert relative_spread(rows) > 0.3


def test_checkpoint_with_torchopenl3_keys_loads_and_metadata(tmp_path, random_embedder):
    from safetensors.torch import save_file

    upstream = torchopenl3.models.PytorchOpenl3(content_type="env", input_repr="mel256", embedding_size=512)
    upstream.load_state_dict(random_embedder.network.state_dict(), strict=False)
    path = tmp_path / "openl3.safetensors"
    save_file(
        {k: v.contiguous() for k, v in upstream.state_dict().items()}, str(path)
    )  # speclayer.* included
    embedder = OpenL3Embedder.from_checkpoint("env", path)
    clip = torch.from_numpy(np.random.default_rng(1).standard_normal((1, 2, 30000)).astype(np.float32)) * 0.1
    np.testing.assert_allclose(
        embedder.embed(clip).numpy(), random_embedder.embed(clip).numpy(), rtol=1e-5, atol=1e-6
    )
    meta = embedder.metadata()
    assert meta["name"] == "openl3-env" and meta["output"] == "frames" and meta["random_weights"] is False
    assert meta["weights"]["trust_class"] == "tofu" and embedder.comparable_with_published is False
    random_meta = random_embedder.metadata()
    assert random_meta["random_weights"] is True and random_meta["weights"]["seed"] == 3


def test_bad_inputs_are_clear_errors(random_embedder):
    with pytest.raises(MetricInputError, match="openl3-music"):
        random_embedder.embed(torch.zeros(1, 3, 100))
    with pytest.raises(MetricInputError, match="finite"):
        random_embedder.embed(torch.full((1, 100), float("nan")))
    with pytest.raises(UsageError, match="content type"):
        OpenL3Embedder.random("speech")


def test_registry_construction_offline_without_cache_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path))
    monkeypatch.setenv("AGOMNI_OFFLINE", "1")
    with pytest.raises(OfflineError, match="openl3-mel256-music-512"):
        OpenL3Embedder.from_registry("music")


@pytest.mark.slow
def test_agomni_eval_computes_fd_and_kad_on_openl3_and_reports_a_silent_file(tmp_path):
    """`agomni eval --random-weights` end to end: stereo 24-bit and mono files, a silent generated file."""
    from agomni.evaluate.pipeline import EvalRequest, evaluate

    pred, ref = tmp_path / "pred", tmp_path / "ref"
    pred.mkdir(), ref.mkdir()
    for i in range(3):
        _write(ref, f"item{i}.wav", 1.1 + 0.2 * i, 48000, 2, "PCM_24", 100 + i)
        _write(pred, f"item{i}.flac", 0.9 + 0.3 * i, 44100, 1 + i % 2, "PCM_16", 200 + i)
    sf.write(pred / "item3.wav", np.zeros((4800, 2)), 48000, subtype="PCM_24")
    _write(ref, "item3.wav", 1.0, 48000, 2, "PCM_24", 103)
    outcome = evaluate(
        EvalRequest(
            pred_dir=pred,
            ref_dir=ref,
            metrics=("fd_openl3_env", "kad_openl3_env"),
            profile="stable-audio-metrics",
            random_weights=True,
            seed=3,
            cache_dir=tmp_path / "cache",
            progress=False,
            out=tmp_path / "out",
            allow_missing=True,
        )
    )
    results = outcome.results
    by_name = {m.name: m for m in results.metrics}
    assert set(by_name) == {"fd_openl3_env", "kad_openl3_env"}
    assert by_name["fd_openl3_env"].value > 0 and np.isfinite(by_name["kad_openl3_env"].value)
    assert not outcome.comparable_with_published
    text = json.dumps(results.to_dict())
    coverage = {entry.id: entry for entry in results.coverage}
    assert coverage["item3"].status == "error" and "exactly 0" in coverage["item3"].reason
    assert [coverage[f"item{i}"].status for i in range(3)] == ["ok"] * 3
    assert results.random_weights
    assert "random" in text and "stable-audio-metrics-openl3" in text
