"""LAION-CLAP audio embedder vs the upstream laion-clap 1.1.7 ``CLAP_Module`` (same random weights).

The upstream module is built offline by `tests.metrics.clap_upstream` (a tiny randomly initialised
``RobertaModel``: the text branch is not used by any audio embedding).

Reference paths: av-benchmark (``AudioDataset.read_from_file`` at 48 kHz, then
``get_audio_embedding_from_data(x, use_tensor=True)``; our side composes the same loader steps from
``agomni.io``: decode, mean downmix, subtract the mean, "torchaudio-sinc" resampling) and fadtk (``CLAPLaionModel._get_embedding``:
int16 round trip, 10 s chunks every 1 s, zero-padded), transcribed around the upstream model.
"""

from __future__ import annotations

import re
from unittest import mock

import numpy as np
import pytest
import torch

from agomni.errors import MetricInputError, UnsafeCheckpointError, WeightsError
from agomni.metrics.embedders.clap import (
    HTSAT_BASE,
    HTSAT_TINY,
    ClapAudioEmbedder,
    ClapAudioNet,
    Htsat,
    numpy_scalar_globals,
)
from tests.metrics.clap_upstream import build_upstream
from tests.metrics.passt_clap_reference import (
    agomni_av_benchmark_path,
    av_benchmark_wave,
    rel_diff,
    write_tone,
)

pytestmark = pytest.mark.filterwarnings("ignore")
SR = 48000


@pytest.fixture(scope="module")
def tiny_pair():
    upstream = build_upstream("HTSAT-tiny")
    state = {"module." + k: v for k, v in upstream.model.state_dict().items()}  # official file layout
    return upstream, ClapAudioEmbedder("630k-audioset-best", state_dict=state), state


def test_front_end_of_random_model_matches_torchlibrosa(tiny_pair):
    upstream, _, _ = tiny_pair
    ref = upstream.model.audio_branch.state_dict()
    ours = Htsat(HTSAT_TINY).state_dict()
    front = [k for k in ours if k.startswith(("spectrogram_extractor.", "logmel_extractor."))]
    assert len(front) == 3
    for name in front:
        tensor = ours[name]
        assert tensor.shape == ref[name].shape
        assert float((tensor - ref[name]).abs().max()) < 1e-6 * float(ref[name].abs().max()) + 1e-7, name


def test_av_benchmark_profile_matches_upstream_on_resampled_stereo(tiny_pair, tmp_path):
    upstream, ours, _ = tiny_pair
    path = tmp_path / "stereo44k.wav"
    write_tone(path, 44100, 3.0, 2, seed=1)  # 3 s: laion's repeatpad repeats it 3 times, then zero-pads
    with torch.no_grad():
        ref = upstream.get_audio_embedding_from_data(av_benchmark_wave(path, SR), use_tensor=True)
    got = ours.embed(agomni_av_benchmark_path(path, SR))
    assert got.shape == (1, 512)
    assert rel_diff(got, ref) < 1e-4
    assert torch.allclose(got.norm(dim=1), torch.ones(1), atol=1e-5)


def test_long_clips_are_cropped_to_the_first_10_s(tiny_pair):
    upstream, ours, _ = tiny_pair
    x = torch.randn(1, 12 * SR, generator=torch.Generator().manual_seed(2)) * 0.1
    with torch.no_grad(), mock.patch("numpy.random.randint", lambda low, high=None, *a, **k: 0):
        ref = upstream.get_audio_embedding_from_data(x, use_tensor=True)  # rand_trunc with offset 0
    first = ours.embed(x)
    assert rel_diff(first, ref) < 1e-4
    assert torch.equal(first, ours.embed(x))  # deterministic


def test_fadtk_profile_matches_upstream_chunking(tiny_pair):
    upstream, _, state = tiny_pair
    ours = ClapAudioEmbedder("630k-audioset-best", profile="fadtk", state_dict=state)
    audio = (np.random.default_rng(3).standard_normal(int(1.5 * SR)) * 0.4).astype(np.float32)
    audio[:10] = [1.2, -1.3, 0.5, -0.5, 1e-5, -1e-5, 0.99999, -0.99999, 0.0, 0.25]  # clipping and truncation
    x = audio.reshape(1, -1)
    x = (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)  # fadtk float32_to_int16 ...
    x = (x / 32767.0).astype(np.float32)  # ... and int16_to_float32
    chunk_size, hop = 10 * SR, SR
    refs = []
    for i in range(0, x.shape[1], hop):
        chunk = x[:, i : i + chunk_size]
        chunk = (
            chunk
            if chunk.shape[1] == chunk_size
            else np.pad(chunk, ((0, 0), (0, chunk_size - chunk.shape[1])))
        )
        with torch.no_grad():
            refs.append(
                upstream.get_audio_embedding_from_data(torch.from_numpy(chunk).float(), use_tensor=True)
            )
    ref = torch.cat(refs)
    got = ours.embed(torch.from_numpy(audio)[None])
    assert got.shape == (1, 2, 512) and ours.output == "frames"
    assert rel_diff(got[0], ref) < 1e-4


@pytest.mark.slow
def test_htsat_base_matches_upstream(tmp_path):
    upstream = build_upstream("HTSAT-base")
    state = {"module." + k: v for k, v in upstream.model.state_dict().items()}
    ours = ClapAudioEmbedder("music-speech-audioset-89.98", state_dict=state)
    path = tmp_path / "mono22k.wav"
    write_tone(path, 22050, 6.0, 1, seed=4)
    with torch.no_grad():
        ref = upstream.get_audio_embedding_from_data(av_benchmark_wave(path, SR), use_tensor=True)
    assert rel_diff(ours.embed(agomni_av_benchmark_path(path, SR)), ref) < 1e-4


def _fake_text_keys() -> dict[str, torch.Tensor]:
    return {
        "module.text_branch.embeddings.position_ids": torch.arange(4)[None],
        "module.text_projection.0.weight": torch.zeros(2, 2),
        "module.logit_scale_a": torch.tensor(1.0),
        "module.logit_scale_t": torch.tensor(1.0),
    }


@pytest.mark.slow
def test_official_file_layout_with_numpy_scalars_through_the_registry(tmp_path, monkeypatch):
    """Official layout ({"state_dict": {"module.*"}, numpy scalars}) imported into the cache (this entry is
    unpinned: trust on first use) loads with weights_only=True and the narrow numpy allowlist."""
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "home"))
    from agomni import weights

    net = ClapAudioNet(HTSAT_BASE)
    state = {"module." + k: v for k, v in net.state_dict().items()} | _fake_text_keys()
    path = tmp_path / "music_audioset_epoch_15_esc_90.14.pt"
    torch.save({"state_dict": state, "epoch": np.int64(15), "best_mAP": np.float64(0.9014)}, path)
    weights.import_file("laion-clap-music-audioset-90.14", path)
    with pytest.raises(UnsafeCheckpointError):  # without the allowlist the safe loader refuses the file
        weights.load_entry_state_dict("laion-clap-music-audioset-90.14")
    loaded = ClapAudioEmbedder("music-audioset-90.14")
    assert loaded.comparable_with_published
    for name, tensor in net.state_dict().items():
        assert torch.equal(loaded.net.state_dict()[name], tensor), name


def test_numpy_allowlist_is_narrow(tmp_path):
    from agomni.weights import load_state_dict

    ok = tmp_path / "ok.pt"
    torch.save({"state_dict": {"a": torch.ones(2)}, "epoch": np.int64(3), "best": np.float64(0.5)}, ok)
    with pytest.raises(UnsafeCheckpointError):
        load_state_dict(ok, key="state_dict")
    with numpy_scalar_globals():
        assert torch.equal(load_state_dict(ok, key="state_dict")["a"], torch.ones(2))
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"a": torch.ones(2)}, "array": np.zeros(3)}, other)  # needs numpy._reconstruct
    with numpy_scalar_globals(), pytest.raises(UnsafeCheckpointError):
        load_state_dict(other, key="state_dict")
    with pytest.raises(UnsafeCheckpointError):  # the allowance ends with the block
        load_state_dict(ok, key="state_dict")


@pytest.fixture(scope="module")
def own_tiny_state() -> dict[str, torch.Tensor]:
    net = ClapAudioNet(HTSAT_TINY)
    return {"module." + k: v for k, v in net.state_dict().items()} | _fake_text_keys()


def test_strict_loading_errors(own_tiny_state):
    state = own_tiny_state
    ClapAudioEmbedder(state_dict=state)  # the complete layout loads
    with pytest.raises(WeightsError, match=re.escape("missing keys (1): audio_branch.norm.bias")):
        ClapAudioEmbedder(state_dict={k: v for k, v in state.items() if k != "module.audio_branch.norm.bias"})
    with pytest.raises(WeightsError, match=re.escape("keys outside the LAION-CLAP layout: module.mystery")):
        ClapAudioEmbedder(state_dict={**state, "module.mystery": torch.zeros(1)})
    with pytest.raises(WeightsError, match=re.escape("unexpected keys (1): audio_branch.extra")):
        ClapAudioEmbedder(state_dict={**state, "module.audio_branch.extra": torch.zeros(1)})
    with pytest.raises(WeightsError, match=r"shape mismatches \(\d+\): "):
        ClapAudioEmbedder("music-audioset-90.14", state_dict=state)  # HTSAT-tiny weights for HTSAT-base


def test_input_errors(own_tiny_state):
    ours = ClapAudioEmbedder(state_dict=own_tiny_state)
    x = torch.zeros(2, 5000)
    x[0, 3] = float("inf")
    with pytest.raises(MetricInputError, match="row 0"):
        ours.embed(x)
    with pytest.raises(MetricInputError, match="needs at least 1024"):
        ours.embed(torch.zeros(1, 1000))


def test_random_weights_are_seeded_and_labelled():
    a = ClapAudioEmbedder(random_weights=True, seed=1)
    b = ClapAudioEmbedder(random_weights=True, seed=1)
    c = ClapAudioEmbedder(random_weights=True, seed=2)
    assert all(torch.equal(v, b.net.state_dict()[k]) for k, v in a.net.state_dict().items())
    assert not torch.equal(a.net.audio_projection[0].weight, c.net.audio_projection[0].weight)
    meta = a.metadata()
    assert meta["comparable_with_published"] is False and meta["config"]["checkpoint"] == "random-weights:1"
    got = a.embed(torch.randn(2, 30000, generator=torch.Generator().manual_seed(0)) * 0.1)
    assert got.shape == (2, 512) and torch.allclose(got.norm(dim=1), torch.ones(2), atol=1e-5)
