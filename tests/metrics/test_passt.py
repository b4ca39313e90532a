"""PaSST embedder vs the upstream hear21passt classes (same random weights), plus loading and input errors.

The reference side follows av-benchmark's own path (``av_bench/data/audio_dataset.py`` +
``av_bench/extract.py``): read, mean downmix, subtract the mean, ``torchaudio.transforms.Resample``,
pad/crop to 320000 samples, ``PasstBasicWrapper(mode="all")`` -> [527 logits | 768 embedding]. Our side
composes the same loader steps from ``agomni.io`` and then calls ``PasstEmbedder``
(see passt_clap_reference.py).
Most tests use a 2-block network to stay fast; the full 12-block model is checked in a slow test.
"""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest
import torch

from agomni.errors import MetricInputError, WeightsError
from agomni.metrics.embedders.passt import PasstEmbedder, window_starts
from tests.metrics.passt_clap_reference import (
    agomni_av_benchmark_path,
    av_benchmark_wave,
    rel_diff,
    write_tone,
)

hear21passt = pytest.importorskip("hear21passt", reason="hear21passt 0.0.26 is the reference implementation")
from hear21passt.models.passt import PaSST, get_model  # noqa: E402
from hear21passt.models.preprocess import AugmentMelSTFT  # noqa: E402
from hear21passt.wrapper import PasstBasicWrapper  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")
SR = 32000


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())  # hear21passt prints from inside forward


def _randomise(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)


def _upstream(net: torch.nn.Module) -> PasstBasicWrapper:
    with _quiet():
        mel = AugmentMelSTFT(
            n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, freqm=48, timem=192, htk=False,
            fmin=0.0, fmax=None, norm=1, fmin_aug_range=10, fmax_aug_range=2000,
        )  # fmt: skip
        return PasstBasicWrapper(mel=mel, net=net, mode="all").eval()


@pytest.fixture(scope="module")
def small_pair() -> tuple[PasstBasicWrapper, PasstEmbedder]:
    """Upstream PaSST with 2 blocks (else the official architecture) and ours with the same weights."""
    torch.manual_seed(0)
    with _quiet():
        net = PaSST(
            img_size=(128, 998), stride=(10, 10), patch_size=16, embed_dim=768, depth=2, num_heads=12,
            distilled=True, num_classes=527, in_chans=1,
        )  # fmt: skip
    _randomise(net, 1)
    return _upstream(net), PasstEmbedder(state_dict=net.state_dict(), depth=2)


def _upstream_av_benchmark(model: PasstBasicWrapper, path) -> torch.Tensor:
    """av-benchmark's loader + ``extract.py`` PaSST step: pad/crop to 320000, ``[527 logits | 768]``."""
    wav = av_benchmark_wave(path, SR)
    wav = (
        wav[..., :320000]
        if wav.size(-1) >= 320000
        else torch.nn.functional.pad(wav, (0, 320000 - wav.size(-1)))
    )
    with torch.no_grad(), _quiet():
        return model(wav)


@pytest.mark.parametrize(
    ("rate", "seconds", "channels"),
    [(44100, 7.0, 2), (32000, 11.0, 1)],
    ids=["44k1-stereo-7s", "32k-mono-11s"],
)
def test_matches_upstream_on_files(small_pair, tmp_path, rate, seconds, channels):
    upstream, ours = small_pair
    path = tmp_path / f"clip_{rate}_{channels}.wav"
    write_tone(path, rate, seconds, channels, seed=rate)
    ref = _upstream_av_benchmark(upstream, path)
    wav = agomni_av_benchmark_path(path, SR)
    embedding, logits = ours.embed_and_logits(wav)
    assert embedding.shape == (1, 768) and logits.shape == (1, 527)
    assert rel_diff(embedding, ref[:, 527:]) < 1e-4
    assert rel_diff(logits, ref[:, :527]) < 1e-4
    assert rel_diff(ours.logits(wav), ref[:, :527]) < 1e-4


def test_batched_equals_one_by_one():
    ours = PasstEmbedder(random_weights=True, seed=3, depth=1, batch_size=2)
    x = torch.randn(2, 40000, generator=torch.Generator().manual_seed(3)) * 0.1
    batched = ours.embed(x)
    one_by_one = torch.cat([ours.embed(x[i : i + 1]) for i in range(2)])
    assert batched.shape == (2, 768) and batched.dtype == torch.float32
    assert rel_diff(batched, one_by_one) < 1e-5


def test_window_starts_follow_stable_audio_metrics_loop():
    step = 5 * SR
    for n in (1, 48001, 159999, 160000, 320000, 320001, 384000, 800000, 960000 + 17):
        expected = []
        i = 0
        while i < max(step, n - step):  # stable-audio-metrics passt_kld.return_probabilities
            expected.append(i)
            i += step
        assert window_starts(n) == expected, n


def test_windowed_logits_match_upstream_mean(small_pair):
    upstream, _ = small_pair
    ours = PasstEmbedder(state_dict=upstream.net.state_dict(), depth=2, segment_rule="windows-10s-hop-5s")
    audio = (np.random.default_rng(5).standard_normal(int(12.3 * SR)) * 0.1).astype(np.float32)
    win, step = 10 * SR, 5 * SR
    logits = []
    for i in range(0, max(step, len(audio) - step), step):
        window = audio[i : i + win]
        if len(window) < win and len(window) > int(win * 0.15):
            tmp = np.zeros(win, dtype=np.float32)
            tmp[: len(window)] = window
            window = tmp
        with torch.no_grad(), _quiet():
            logits.append(upstream(torch.from_numpy(window)[None])[0, :527])
    ref = torch.stack(logits).mean(dim=0, keepdim=True)
    assert len(logits) == 2
    assert rel_diff(ours.logits(torch.from_numpy(audio)[None]), ref) < 1e-4
    with pytest.raises(MetricInputError, match="too short"):
        ours.logits(torch.zeros(1, int(1.5 * SR)))


@pytest.mark.slow
def test_full_model_matches_upstream(tmp_path):
    torch.manual_seed(0)
    with _quiet():
        net = get_model(arch="passt_s_swa_p16_128_ap476", pretrained=False)
    _randomise(net, 2)
    upstream = _upstream(net)
    ours = PasstEmbedder(state_dict=net.state_dict())
    path = tmp_path / "stereo.wav"
    write_tone(path, 44100, 10.0, 2, seed=9)
    ref = _upstream_av_benchmark(upstream, path)
    embedding, logits = ours.embed_and_logits(agomni_av_benchmark_path(path, SR))
    assert rel_diff(embedding, ref[:, 527:]) < 1e-4
    assert rel_diff(logits, ref[:, :527]) < 1e-4


@pytest.mark.slow
def test_official_layout_through_the_registry(tmp_path, monkeypatch):
    """A file in the official layout, imported into the cache (unpinned entry: trust on first use), loads
    strictly with weights_only=True and gives the same outputs as the state dict it came from."""
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "home"))
    from agomni import weights

    source = PasstEmbedder(random_weights=True, seed=4)
    state = source.net.state_dict()
    state["patch_embed.proj.weight"] = state["patch_embed.proj.weight"].reshape(768, 256)  # pre-conv layout
    path = tmp_path / "passt-s-f128-p16-s10-ap.476-swa.pt"
    torch.save(state, path)
    weights.import_file("passt-s-swa-p16-128-ap476", path)
    loaded = PasstEmbedder()
    assert loaded.comparable_with_published and loaded.metadata()["config"][
        "checkpoint"
    ] == weights.sha256_of("passt-s-swa-p16-128-ap476")
    x = torch.randn(1, 20000, generator=torch.Generator().manual_seed(1)) * 0.1
    assert torch.equal(loaded.embed(x), source.embed(x))


def test_strict_loading_errors(small_pair):
    upstream, _ = small_pair
    state = dict(upstream.net.state_dict())
    missing = {k: v for k, v in state.items() if k != "head_dist.bias"}
    with pytest.raises(WeightsError, match=re.escape("missing keys (1): head_dist.bias")):
        PasstEmbedder(state_dict=missing, depth=2)
    with pytest.raises(WeightsError, match=re.escape("unexpected keys (1): extra.weight")):
        PasstEmbedder(state_dict={**state, "extra.weight": torch.zeros(1)}, depth=2)
    bad = {**state, "cls_token": torch.zeros(1, 1, 767)}
    with pytest.raises(
        WeightsError,
        match=re.escape("shape mismatches (1): cls_token: checkpoint (1, 1, 767) vs model (1, 1, 768)"),
    ):
        PasstEmbedder(state_dict=bad, depth=2)
    # a 2-block checkpoint for the 12-block model: every key of blocks 2..11 is missing (sorted, 20 shown)
    per_block = [k.removeprefix("blocks.0.") for k in state if k.startswith("blocks.0.")]
    absent = sorted(f"blocks.{b}.{rest}" for b in range(2, 12) for rest in per_block)
    listed = f"missing keys ({len(absent)}): {', '.join(absent[:20])}, ... ({len(absent)} in all)"
    with pytest.raises(WeightsError, match=re.escape(listed)):
        PasstEmbedder(state_dict=state)


def test_input_errors(small_pair):
    _, ours = small_pair
    x = torch.zeros(2, 4000)
    x[1, 7] = float("nan")
    with pytest.raises(MetricInputError, match="row 1"):
        ours.embed(x)
    with pytest.raises(MetricInputError, match="needs at least 800"):
        ours.embed(torch.zeros(1, 799))
    with pytest.raises(MetricInputError, match="expected a waveform batch"):
        ours.embed(torch.zeros(4000))


def test_random_weights_are_seeded_and_labelled():
    a = PasstEmbedder(random_weights=True, seed=1, depth=1)
    b = PasstEmbedder(random_weights=True, seed=1, depth=1)
    c = PasstEmbedder(random_weights=True, seed=2, depth=1)
    x = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0)) * 0.1
    assert torch.equal(a.embed(x), b.embed(x))
    assert not torch.allclose(a.embed(x), c.embed(x))
    meta = a.metadata()
    assert meta["config"]["random_weights"] is True and meta["comparable_with_published"] is False
    assert meta["config"]["checkpoint"] == "random-weights:1"
    assert a.cache_key() != c.cache_key()
