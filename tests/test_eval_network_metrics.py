"""`agomni eval` with network embedders (seeded random weights): what reaches each network, and the
numbers, against the reference recipes recomputed here with soundfile + numpy/scipy + torchaudio/soxr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
import torchaudio
from scipy import linalg

from agomni.evaluate import EvalRequest, evaluate
from agomni.evaluate.cli import format_outcome
from agomni.evaluate.registry import resolve_metric_names
from agomni.metrics.embedders.clap import ClapAudioEmbedder
from agomni.metrics.embedders.panns import PannsCnn14Embedder
from agomni.metrics.embedders.passt import PasstEmbedder
from agomni.metrics.embedders.vggish import VGGishEmbedder

RATE = 44100


def _write(path: Path, seconds: float, dc: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f = rng.uniform(200, 2000)
    left = 0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(t.size)
    right = 0.2 * np.sin(2 * np.pi * 1.5 * f * t) + 0.05 * rng.standard_normal(t.size)
    sf.write(path, (np.stack([left, right], axis=1) + dc).astype(np.float32), RATE, subtype="FLOAT")
    return path


def _sets(root: Path, n: int, seconds: float, dc: float) -> tuple[Path, Path]:
    pred, ref = root / "pred", root / "ref"
    pred.mkdir()
    ref.mkdir()
    for i in range(n):
        _write(pred / f"item{i}.wav", seconds, dc, seed=i)
        _write(ref / f"item{i}.wav", seconds, -dc, seed=100 + i)
    return pred, ref


def _mono(path: Path) -> torch.Tensor:
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    return torch.from_numpy(data.T.copy()).mean(dim=0)


def _record(monkeypatch: pytest.MonkeyPatch, cls: type, calls: list) -> None:
    """Wrap ``cls.outputs`` (what the pipeline calls) so every batch it feeds is kept with the embedder,
    a function giving the embedding of a batch, and the embedding the pipeline got."""
    original = cls.outputs

    def embedding(self, waveform):  # type: ignore[no-untyped-def]
        return original(self, waveform)["embed"]

    def outputs(self, waveform):  # type: ignore[no-untyped-def]
        out = original(self, waveform)
        calls.append((self, embedding, waveform.detach().clone(), out["embed"].detach().clone()))
        return out

    monkeypatch.setattr(cls, "outputs", outputs)


def _run(pred: Path, ref: Path, tmp: Path, metrics: tuple[str, ...], **kwargs) -> object:
    return evaluate(
        EvalRequest(
            pred_dir=pred,
            ref_dir=ref,
            metrics=metrics,
            random_weights=True,
            use_cache=False,
            progress=False,
            batch_size=1,
            out=tmp / "run",
            **kwargs,
        )
    )


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """Tr sqrt(S1 S2) = sum of sqrt of the eigenvalues of sqrt(S1) S2 sqrt(S1) (both PSD)."""
    w, v = linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    return float(np.sqrt(np.clip(linalg.eigvalsh(root @ s2 @ root), 0, None)).sum())


def _frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * _trace_sqrt_product(s1, s2))


def _match(rows: list[torch.Tensor], expected: torch.Tensor, atol: float) -> int:
    """Index of the recorded row equal to ``expected`` (within atol), or fail."""
    for i, row in enumerate(rows):
        if row.shape == expected.shape and float((row - expected).abs().max()) <= atol:
            return i
    shapes = sorted({tuple(r.shape) for r in rows})
    raise AssertionError(
        f"no recorded network input matches (recorded shapes {shapes}, want {expected.shape})"
    )


@pytest.mark.slow  # three full-size random-weight networks on 8-10 s clips (about 40 s on 2 cores)
def test_av_benchmark_removes_dc_and_cuts_to_8_s_for_vggish_panns_and_passt(tmp_path, monkeypatch):
    """av-benchmark's loader: channel mean, minus the mean, torchaudio Resample, first 8 s (then PaSST
    pads to 10 s). Every network input must equal that, computed here from soundfile + torchaudio."""
    pred, ref = _sets(tmp_path, 2, 8.6, dc=0.3)
    calls: list = []
    for cls in (VGGishEmbedder, PannsCnn14Embedder, PasstEmbedder):
        _record(monkeypatch, cls, calls)
    outcome = _run(pred, ref, tmp_path, ("fd_vggish", "fd_panns", "fd_passt"), profile="av-benchmark")
    assert [m.name for m in outcome.results.metrics] == ["fd_vggish", "fd_panns", "fd_passt"]
    rates = {VGGishEmbedder: 16000, PannsCnn14Embedder: 16000, PasstEmbedder: 32000}
    files = sorted(pred.iterdir()) + sorted(ref.iterdir())
    for cls, rate in rates.items():
        mine = [c for c in calls if type(c[0]) is cls]
        rows = [row for c in mine for row in c[2]]
        assert len(rows) == len(files), cls.__name__
        for path in files:
            mono = _mono(path)
            expected = torchaudio.transforms.Resample(RATE, rate)((mono - mono.mean())[None])[0][: 8 * rate]
            not_centred = torchaudio.transforms.Resample(RATE, rate)(mono[None])[0][: 8 * rate]
            assert float((expected - not_centred).abs().min()) > 0.2  # the DC offset is visible
            i = _match(rows, expected, atol=2e-6)
            embedder, original = mine[0][0], mine[0][1]
            flat_out = [o for c in mine for o in c[3]]
            torch.testing.assert_close(
                flat_out[i], original(embedder, expected[None])[0], rtol=1e-5, atol=1e-5
            )


def test_fd_clap_follows_fadtk_clap_laion_audio(tmp_path, monkeypatch):
    """FD-CLAP (fadtk clap-laion-audio): fadtk loader (mean, kaiser-best, 16-bit), then the CLAP
    embedder's int16 round trip and 10 s chunks every 1 s; all chunk embeddings pooled, as float16."""
    pred, ref = _sets(tmp_path, 3, 1.2, dc=0.0)
    calls: list = []
    _record(monkeypatch, ClapAudioEmbedder, calls)
    outcome = _run(pred, ref, tmp_path, ("fd-clap-laion-audio",))
    metric = outcome.results.metrics[0]
    assert (metric.name, metric.profile, metric.unit, metric.higher_is_better) == (
        "fd_clap",
        "fadtk",
        "FD",
        False,
    )
    resampler = torchaudio.transforms.Resample(
        RATE,
        48000,
        lowpass_filter_width=64,
        rolloff=0.9475937167399596,
        resampling_method="sinc_interp_kaiser",
        beta=14.769656459379492,
    )
    embedder = ClapAudioEmbedder("630k-audioset-best", profile="fadtk", random_weights=True, seed=0)
    rows = [row for c in calls for row in c[2]]
    sets = {}
    for side, folder in (("pred", pred), ("ref", ref)):
        chunks = []
        for path in sorted(folder.iterdir()):
            y = resampler(_mono(path)[None])[0].numpy().astype(np.float64)
            x = torch.from_numpy((np.clip(np.round(y * 32768), -32768, 32767) / 32768).astype(np.float32))
            _match(rows, x, atol=0.0)
            with torch.no_grad():
                chunks.append(embedder.embed(x[None])[0].numpy())
        sets[side] = np.concatenate(chunks).astype(np.float16).astype(np.float64)
    assert sets["pred"].shape == (6, 512)  # ceil(1.2 s / 1 s) = 2 chunks per clip
    assert metric.value == pytest.approx(_frechet(sets["pred"], sets["ref"]), rel=1e-5)
    prep = outcome.results.provenance.preprocessing
    embedder_prep = prep["embedders"]["clap-laion-audio@fadtk"]["preprocessing"]
    assert embedder_prep["recipe"]["name"] == "fadtk" and "one LSB" in embedder_prep["recipe"]["notes"]
    assert "one LSB" in prep["profiles"]["fadtk"]["notes"]


def test_fd_clap_refuses_other_profiles(tmp_path):
    pred, ref = _sets(tmp_path, 2, 1.0, dc=0.0)
    from agomni.errors import UsageError

    with pytest.raises(UsageError, match="fd_clap follows fadtk only"):
        _run(pred, ref, tmp_path, ("fd_clap",), profile="av-benchmark")


@pytest.mark.slow  # two full-size random-weight PaSST models on 10 s windows (about 30 s on 2 cores)
def test_kl_passt_stable_audio_metrics_direction_windows_and_label(tmp_path):
    """KL_PaSST as stable-audio-metrics: soxr HQ, -1 dBFS peak, 10 s windows every 5 s (mean logits),
    KL(gen||ref) with log(p_ref + 1e-6), averaged over items."""
    pred, ref = _sets(tmp_path, 2, 3.0, dc=0.0)
    outcome = _run(pred, ref, tmp_path, ("kl_passt",), profile="stable-audio-metrics")
    metric = outcome.results.metrics[0]
    details = outcome.results.provenance.preprocessing["metrics"]["kl_passt"]
    assert (details["direction"], details["direction_label"]) == ("gen_ref", "KL(gen||ref)")
    assert "KL(gen||ref)" in format_outcome(outcome)
    embedder = PasstEmbedder(random_weights=True, seed=0, segment_rule="windows-10s-hop-5s")

    def probabilities(path: Path) -> np.ndarray:
        y = soxr.resample(_mono(path).numpy(), RATE, 32000, quality="HQ").astype(np.float64)
        y = y * (10 ** (-1 / 20) / np.abs(y).max())
        logits = embedder.logits(torch.from_numpy(y.astype(np.float32))[None])[0].numpy().astype(np.float64)
        e = np.exp(logits - logits.max())
        return e / e.sum()

    values = []
    for name in ("item0.wav", "item1.wav"):
        p_gen, p_ref = probabilities(pred / name), probabilities(ref / name)
        values.append(float((p_gen * (np.log(p_gen) - np.log(p_ref + 1e-6))).sum()))
    assert metric.value == pytest.approx(np.mean(values), rel=1e-4)
    assert metric.profile == "stable-audio-metrics" and metric.n == 2


def test_fad_inf_is_seeded_recorded_and_matches_fadtk_score_inf(tmp_path):
    """fadtk score_inf: FD of n frames drawn with replacement for n in linspace(500, N, 25), intercept
    of a least-squares line in 1/n; here the draws use RandomState(seed), recorded in the results."""
    from agomni.metrics import offline_embedder

    pred, ref = _sets(tmp_path, 3, 2.2, dc=0.0)
    assert resolve_metric_names(["fad-inf-mel-frames"])[0].name == "fad_inf_mel_frames"
    outcome = _run(pred, ref, tmp_path, ("fad_inf_mel_frames",), seed=11)
    details = outcome.results.provenance.preprocessing["metrics"]["fad_inf_mel_frames"]
    assert details["seed"] == 11 == outcome.results.provenance.seed
    emb = offline_embedder("mel-frames")

    def frames(folder: Path) -> np.ndarray:
        rows = []
        for path in sorted(folder.iterdir()):
            x = torchaudio.transforms.Resample(RATE, emb.sample_rate)(_mono(path)[None])
            rows.append(emb.embed(x)[0].numpy().astype(np.float64))
        return np.concatenate(rows)

    gen, base = frames(pred), frames(ref)
    rng = np.random.RandomState(11)
    ns = [int(n) for n in np.linspace(500, gen.shape[0], 25)]
    scores = [_frechet(base, gen[rng.choice(gen.shape[0], size=n, replace=True)]) for n in ns]
    slope, intercept = np.polyfit(1 / np.array(ns), scores, 1)
    assert outcome.results.metrics[0].value == pytest.approx(intercept, rel=1e-6)
    assert details["slope"] == pytest.approx(slope, rel=1e-6)
    (tmp_path / "other").mkdir()
    other = _run(pred, ref, tmp_path / "other", ("fad_inf_mel_frames",), seed=12)
    assert other.results.metrics[0].value != outcome.results.metrics[0].value


def test_fadtk_profile_feeds_vggish_and_panns_the_fadtk_loader_output(tmp_path, monkeypatch):
    """--profile fadtk for VGGish/PANNs: mean, kaiser-best resampling, 16-bit round trip, VGGish zero-padded
    to 1 s (fadtk min_len); the FD uses the embeddings rounded to float16."""
    pred, ref = _sets(tmp_path, 2, 0.6, dc=0.05)
    calls: list = []
    for cls in (VGGishEmbedder, PannsCnn14Embedder):
        _record(monkeypatch, cls, calls)
    outcome = _run(pred, ref, tmp_path, ("fd_vggish", "fd_panns"), profile="fadtk")
    assert {m.profile for m in outcome.results.metrics} == {"fadtk"}
    resampler = torchaudio.transforms.Resample(
        RATE,
        16000,
        lowpass_filter_width=64,
        rolloff=0.9475937167399596,
        resampling_method="sinc_interp_kaiser",
        beta=14.769656459379492,
    )
    embedded = {}
    for cls, pad_to in ((VGGishEmbedder, 16000), (PannsCnn14Embedder, 0)):
        mine = [c for c in calls if type(c[0]) is cls]
        rows = [row for c in mine for row in c[2]]
        sides = {}
        for side, folder in (("pred", pred), ("ref", ref)):
            out = []
            for path in sorted(folder.iterdir()):
                y = resampler(_mono(path)[None])[0].numpy().astype(np.float64)  # no DC removal in fadtk
                x = np.clip(np.round(y * 32768), -32768, 32767) / 32768
                x = torch.from_numpy(np.pad(x, (0, max(0, pad_to - x.size))).astype(np.float32))
                _match(rows, x, atol=0.0)
                with torch.no_grad():
                    e = mine[0][1](mine[0][0], x[None])[0].numpy()
                out.append(e.reshape(-1, e.shape[-1]))
            sides[side] = np.concatenate(out).astype(np.float16).astype(np.float64)
        embedded[cls] = sides
    values = {m.name: m.value for m in outcome.results.metrics}
    vgg = embedded[VGGishEmbedder]
    assert vgg["pred"].shape == (2, 128)  # one 0.96 s example per 1 s clip
    assert values["fd_vggish"] == pytest.approx(_frechet(vgg["pred"], vgg["ref"]), rel=1e-5)
    pann = embedded[PannsCnn14Embedder]
    assert values["fd_panns"] == pytest.approx(_frechet(pann["pred"], pann["ref"]), rel=1e-5)
