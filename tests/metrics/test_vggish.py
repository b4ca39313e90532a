"""VGGish embedder vs the upstream torchvggish 0.2 package (its VGG class and numpy feature pipeline).

Random weights are generated in torchvggish's ``VGG`` (seeded), saved to a file in tmp, loaded into ours
through agomni.weights; audio is a 44.1 kHz stereo wav prepared by agomni.io with each recipe on our side
and by the reference recipe's own code (soundfile + torchaudio, see conftest) on the reference side.
Relative error = max |ours - reference| / max |reference|; the acceptance bound is 1e-4.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torchvggish import mel_features, vggish_input  # upstream reference (test-only dependency)
from torchvggish.torchvggish import VGG, make_layers

from agomni.errors import MetricInputError, OfflineError, UsageError, WeightsError
from agomni.io.prepare import load_prepared
from agomni.io.prepare import recipe as input_recipe
from agomni.metrics.embedders import vggish as vggish_module
from agomni.metrics.embedders.vggish import MIN_SAMPLES, VGGishEmbedder, VGGishFeatures, vggish_mel_matrix

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def vggish_upstream() -> VGG:
    """torchvggish's VGG with seeded random weights; ``embeddings[5]`` (the last ReLU) is kept."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        model = VGG(make_layers(), postprocess=False)
        for p in model.parameters():  # biases default to small uniform values: make them matter
            if p.ndim == 1:
                p.data.normal_(0.0, 0.05)
    return model.eval()


@pytest.fixture(scope="module")
def vggish_checkpoint(vggish_upstream: VGG, tmp_path_factory: pytest.TempPathFactory):
    """The upstream state dict saved as the published file is: a flat ``.pth`` of tensors."""
    path = tmp_path_factory.mktemp("vggish") / "vggish-random.pth"
    torch.save(vggish_upstream.state_dict(), path)
    return path


def upstream_embeddings(model: VGG, waveform_16k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(pre-activation, post-ReLU) embeddings [E, 128] from torchvggish's own pipeline on 16 kHz audio."""
    examples = vggish_input.waveform_to_examples(waveform_16k.numpy(), 16000, return_tensor=True)
    with torch.no_grad():
        post = model(examples.detach())
        last_relu = model.embeddings[5]
        model.embeddings[5] = (
            torch.nn.Identity()
        )  # what av-benchmark / audioldm_eval (use_activation=False) do
        try:
            pre = model(examples.detach())
        finally:
            model.embeddings[5] = last_relu
    return pre, post


def test_mel_matrix_matches_torchvggish():
    reference = mel_features.spectrogram_to_mel_matrix(
        num_mel_bins=64,
        num_spectrogram_bins=257,
        audio_sample_rate=16000,
        lower_edge_hertz=125,
        upper_edge_hertz=7500,
    )
    np.testing.assert_allclose(vggish_mel_matrix(), reference, rtol=0, atol=1e-12)


def test_log_mel_examples_match_waveform_to_examples():
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(16000 * 3 + 777)).astype(np.float32)  # 3 examples + a dropped tail
    reference = vggish_input.waveform_to_examples(x, 16000, return_tensor=False)  # float64 [3, 96, 64]
    ours = VGGishFeatures()(torch.from_numpy(x)[None])[0]
    assert tuple(ours.shape) == reference.shape == (3, 96, 64)
    np.testing.assert_allclose(ours.numpy(), reference, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("recipe", "seconds", "max_seconds"),
    [
        ("av-benchmark", 2.3, None),
        ("av-benchmark", 3.4, 2.0),
        ("audioldm-eval", 2.3, None),
        ("audioldm-eval", 1.1, None),
    ],
)
def test_file_embeddings_match_upstream(
    recipe,
    seconds,
    max_seconds,
    vggish_upstream,
    vggish_checkpoint,
    panns_vggish_stereo_wav,
    panns_vggish_reference_input,
    panns_vggish_relative_error,
):
    path = panns_vggish_stereo_wav(seconds)
    embedder = VGGishEmbedder.from_checkpoint(vggish_checkpoint)
    waveform, record, steps = load_prepared(path, 16000, input_recipe(recipe, max_seconds=max_seconds))
    assert record.source_channels == 2 and record.source_sample_rate == 44100
    assert steps["resample"]["new_sr"] == 16000
    ours = embedder.embed(waveform[None])[0]

    reference_waveform = panns_vggish_reference_input(path, recipe, 16000, max_seconds)
    assert panns_vggish_relative_error(waveform, reference_waveform) < 1e-6
    pre, post = upstream_embeddings(vggish_upstream, reference_waveform)
    assert ours.shape == pre.shape and ours.shape[0] >= 1
    assert panns_vggish_relative_error(ours, pre) < TOLERANCE
    assert panns_vggish_relative_error(torch.relu(ours), post) < TOLERANCE
    assert float((ours < 0).float().mean()) > 0.1  # really the pre-activation (a ReLU would zero these)


def test_recipes_differ_on_stereo(vggish_checkpoint, panns_vggish_stereo_wav):
    """mean vs first-channel downmix: the two recipes give different inputs for this stereo file."""
    path = panns_vggish_stereo_wav(2.3)
    a = load_prepared(path, 16000, input_recipe("av-benchmark"))[0]
    b = load_prepared(path, 16000, input_recipe("audioldm-eval"))[0]
    assert a.shape == b.shape and float((a - b).abs().max()) > 0.05


def test_a_batch_of_equal_lengths_matches_one_by_one_upstream(
    vggish_upstream, panns_vggish_relative_error, monkeypatch
):
    """`agomni eval` calls the embedder on clips of one length stacked together; each row equals the
    upstream network run on that clip alone."""
    monkeypatch.setattr(vggish_module, "EXAMPLES_PER_FORWARD", 3)  # network calls in chunks of 3 examples
    rng = np.random.default_rng(5)
    clips = torch.from_numpy((0.2 * rng.standard_normal((3, 48000 + 123))).astype(np.float32))
    embedder = VGGishEmbedder(
        vggish_upstream.state_dict(), weights={"source": "test", "random_weights": True}
    )
    outputs = embedder.embed(clips)
    assert outputs.shape == (3, 3, 128)
    for clip, out in zip(clips, outputs, strict=True):
        pre, _ = upstream_embeddings(vggish_upstream, clip)
        assert panns_vggish_relative_error(out, pre) < TOLERANCE


def test_too_short_input_is_a_metric_input_error():
    embedder = VGGishEmbedder.random(seed=0)
    with pytest.raises(MetricInputError, match=r"15599 samples, needs at least 15600 \(0\.975 s"):
        embedder.embed(torch.zeros(1, MIN_SAMPLES - 1))
    assert embedder.embed(torch.zeros(2, MIN_SAMPLES)).shape == (2, 1, 128)
    with pytest.raises(MetricInputError, match="empty batch"):
        embedder.embed(torch.zeros(0, MIN_SAMPLES))


def test_strict_loading_lists_missing_unexpected_and_misshapen_keys(vggish_upstream, tmp_path):
    state = dict(vggish_upstream.state_dict())
    del state["features.3.bias"]
    state["pproc.pca_means"] = torch.zeros(128, 1)
    state["embeddings.4.weight"] = torch.zeros(127, 4096)
    path = tmp_path / "broken.safetensors"
    save_file(state, str(path))
    with pytest.raises(WeightsError) as err:
        VGGishEmbedder.from_checkpoint(path)
    message = str(err.value)
    assert "missing keys (1): features.3.bias" in message
    assert "unexpected keys (1): pproc.pca_means" in message
    assert "embeddings.4.weight: checkpoint (127, 4096) vs model (128, 4096)" in message


def test_safetensors_checkpoint_and_metadata(vggish_upstream, tmp_path):
    path = tmp_path / "vggish.safetensors"
    save_file({k: v.contiguous() for k, v in vggish_upstream.state_dict().items()}, str(path))
    embedder = VGGishEmbedder.from_checkpoint(path)
    meta = embedder.metadata()
    assert meta["random_weights"] is False and meta["comparable_with_published"] is False
    assert meta["weights"]["sha256"] and meta["output"] == "frames" and meta["sample_rate"] == 16000
    assert meta["heads"] == ["embed"] and embedder.needs.min_samples == 15600
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((1, 20000)).astype(np.float32))
    pre, _ = upstream_embeddings(vggish_upstream, x[0])
    assert float((embedder.embed(x)[0] - pre).abs().max() / pre.abs().max()) < TOLERANCE


def test_random_weights_are_labelled_and_seeded():
    a, b, c = VGGishEmbedder.random(seed=7), VGGishEmbedder.random(seed=7), VGGishEmbedder.random(seed=8)
    meta = a.metadata()
    assert meta["random_weights"] is True and meta["comparable_with_published"] is False
    assert a.cache_key() == b.cache_key() != c.cache_key()
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((1, 16000)).astype(np.float32))
    assert torch.equal(a.embed(x), b.embed(x)) and not torch.equal(a.embed(x), c.embed(x))


def test_registry_construction_offline_without_cache_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path))
    monkeypatch.setenv("AGOMNI_OFFLINE", "1")
    with pytest.raises(OfflineError, match="vggish"):
        VGGishEmbedder.from_registry()


def test_unknown_recipe_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown input recipe"):
        input_recipe("no-such-toolkit")


def _varied_clips(n: int = 6, rate: int = 16000) -> torch.Tensor:
    """Tones, noise and gated noise of 1 s: clips that a trained network tells apart."""
    rng = np.random.default_rng(5)
    t = np.arange(rate) / rate
    clips = []
    for i in range(n):
        if i % 3 == 0:
            x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t)
        elif i % 3 == 1:
            x = rng.uniform(0.02, 0.3) * rng.standard_normal(t.size)
        else:
            x = 0.1 * np.sign(np.sin(2 * np.pi * rng.uniform(2, 8) * t)) * rng.standard_normal(t.size)
        clips.append(x)
    return torch.from_numpy(np.stack(clips).astype(np.float32))


def relative_spread(rows: np.ndarray) -> float:
    """Mean over dimensions of the std across clips, over the mean |value|."""
    return float(rows.std(axis=0).mean() / np.abs(rows).mean())


def test_random_weights_give_embeddings_that_differ_between_clips():
    """PyTorch's default initialisation gave a spread of 0.075 (outputs sat on the biases)."""
    rows = VGGishEmbedder.random(seed=0).embed(_varied_clips())[:, 0].double().numpy()
    assert relative_spread(rows) > 0.3
