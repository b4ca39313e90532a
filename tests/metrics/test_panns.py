"""PANNs CNN14 embedder vs the upstream panns-inference 0.1.1 package (``panns_inference.models.Cnn14``,
whose front end is torchlibrosa's Spectrogram / LogmelFilterBank built from librosa).

Random weights are generated in the upstream class (seeded, BatchNorm statistics randomised too), saved
in the published layout (``{"model": state_dict}`` .pth) or as .safetensors in tmp, and loaded into ours
through agomni.weights. Audio: a 44.1 kHz stereo wav prepared by agomni.io with each recipe on our side,
by the recipe's own code (soundfile + torchaudio, see conftest) on the reference side. Relative error =
max |ours - reference| / max |reference|; the acceptance bound is 1e-4.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from agomni.errors import MetricInputError, OfflineError, UsageError, WeightsError
from agomni.io.prepare import load_prepared
from agomni.io.prepare import recipe as input_recipe
from agomni.metrics.embedders.logmel import librosa_mel_filterbank, stft_kernels
from agomni.metrics.embedders.panns import CNN14_CONFIGS, FRONTEND_KEYS, PannsCnn14Embedder

TOLERANCE = 1e-4


def _upstream_models():
    """``panns_inference.models`` without running the package ``__init__``, which imports its config
    module, and that one runs ``wget`` into ~/panns_data for the AudioSet label list."""
    if "panns_inference.models" not in sys.modules:
        spec = importlib.util.find_spec("panns_inference")
        assert spec is not None, "panns-inference (test-only upstream dependency) is not installed"
        package = types.ModuleType("panns_inference")
        package.__path__ = list(spec.submodule_search_locations or [])
        sys.modules.setdefault("panns_inference", package)
    import panns_inference.models as models

    return models


def upstream_cnn14(name: str, seed: int) -> torch.nn.Module:
    """panns_inference's Cnn14 for configuration `name`, seeded, with random BatchNorm affine and statistics."""
    c = CNN14_CONFIGS[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _upstream_models().Cnn14(
            sample_rate=c.sample_rate,
            window_size=c.window_size,
            hop_size=c.hop_size,
            mel_bins=c.mel_bins,
            fmin=c.fmin,
            fmax=c.fmax,
            classes_num=c.classes_num,
        )
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.5)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.data.uniform_(0.5, 1.5)
                module.bias.data.normal_(0.0, 0.1)
            elif isinstance(module, torch.nn.Linear):
                module.bias.data.normal_(0.0, 0.1)
    return model.eval()


def upstream_outputs(
    model: torch.nn.Module, waveform: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(embedding, pre-sigmoid logits, clipwise_output) of upstream Cnn14 for [B, samples]; the logits are
    upstream's own ``fc_audioset`` applied to its embedding (its forward returns only their sigmoid)."""
    with torch.no_grad():
        out = model(waveform)
        logits = model.fc_audioset(out["embedding"])
    return out["embedding"], logits, out["clipwise_output"]


@pytest.fixture(scope="module")
def panns_upstream_16k() -> torch.nn.Module:
    return upstream_cnn14("panns-cnn14-16k", seed=11)


@pytest.fixture(scope="module")
def panns_checkpoint_16k(panns_upstream_16k, tmp_path_factory):
    """Published layout: ``{"model": state_dict, "iteration": ...}`` in a .pth."""
    path = tmp_path_factory.mktemp("panns16") / "Cnn14_16k_random.pth"
    torch.save({"model": panns_upstream_16k.state_dict(), "iteration": 0}, path)
    return path


@pytest.mark.parametrize("name", sorted(CNN14_CONFIGS))
def test_frontend_matrices_match_torchlibrosa(name):
    from torchlibrosa.stft import STFT, LogmelFilterBank

    c = CNN14_CONFIGS[name]
    mel = LogmelFilterBank(sr=c.sample_rate, n_fft=c.window_size, n_mels=c.mel_bins, fmin=c.fmin, fmax=c.fmax)
    ours = librosa_mel_filterbank(c.sample_rate, c.window_size, c.mel_bins, c.fmin, c.fmax)
    np.testing.assert_allclose(ours, mel.melW.numpy(), rtol=0, atol=1e-8)
    stft = STFT(n_fft=c.window_size, hop_length=c.hop_size, win_length=c.window_size, window="hann")
    real, imag = stft_kernels(c.window_size)
    np.testing.assert_allclose(real, stft.conv_real.weight.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(imag, stft.conv_imag.weight.numpy(), rtol=0, atol=1e-6)


def _check_file(embedder, upstream, path, recipe, rate, reference_input, relative_error, max_seconds=None):
    waveform, record, steps = load_prepared(path, rate, input_recipe(recipe, max_seconds=max_seconds))
    assert record.source_channels == 2 and record.source_sample_rate == 44100
    assert steps["resample"]["new_sr"] == rate
    reference_waveform = reference_input(path, recipe, rate, max_seconds)
    assert relative_error(waveform, reference_waveform) < 1e-6
    heads = embedder.outputs(waveform[None])  # what `agomni eval` calls: both heads from one pass
    embedding, logits = heads["embed"], heads["logits"]
    ref_embedding, ref_logits, ref_probabilities = upstream_outputs(upstream, reference_waveform[None])
    assert embedding.shape == (1, 2048) and logits.shape == (1, 527)
    assert relative_error(embedding, ref_embedding) < TOLERANCE
    assert relative_error(logits, ref_logits) < TOLERANCE
    assert relative_error(torch.sigmoid(logits), ref_probabilities) < TOLERANCE
    assert float((logits < 0).float().mean()) > 0.05  # pre-sigmoid values, not probabilities


@pytest.mark.parametrize(
    ("recipe", "seconds", "max_seconds"), [("av-benchmark", 1.7, 1.5), ("audioldm-eval", 1.3, None)]
)
def test_16k_file_outputs_match_upstream(
    recipe,
    seconds,
    max_seconds,
    panns_upstream_16k,
    panns_checkpoint_16k,
    panns_vggish_stereo_wav,
    panns_vggish_reference_input,
    panns_vggish_relative_error,
):
    embedder = PannsCnn14Embedder.from_checkpoint("panns-cnn14-16k", panns_checkpoint_16k)
    _check_file(
        embedder,
        panns_upstream_16k,
        panns_vggish_stereo_wav(seconds),
        recipe,
        16000,
        panns_vggish_reference_input,
        panns_vggish_relative_error,
        max_seconds,
    )


def test_32k_file_outputs_match_upstream_from_safetensors(
    tmp_path, panns_vggish_stereo_wav, panns_vggish_reference_input, panns_vggish_relative_error
):
    upstream = upstream_cnn14("panns-cnn14-32k", seed=12)
    path = tmp_path / "cnn14_32k.safetensors"
    save_file({k: v.contiguous() for k, v in upstream.state_dict().items()}, str(path))
    embedder = PannsCnn14Embedder.from_checkpoint("panns-cnn14-32k", path)
    assert embedder.sample_rate == 32000
    _check_file(
        embedder,
        upstream,
        panns_vggish_stereo_wav(1.2),
        "audioldm-eval",
        32000,
        panns_vggish_reference_input,
        panns_vggish_relative_error,
    )


def test_a_batch_of_equal_lengths_matches_one_by_one_upstream(
    panns_upstream_16k, panns_vggish_relative_error
):
    """`agomni eval` calls the embedder on clips of one length stacked together; each row equals the
    upstream network run on that clip alone."""
    rng = np.random.default_rng(3)
    clips = torch.from_numpy((0.2 * rng.standard_normal((3, 12000))).astype(np.float32))
    embedder = PannsCnn14Embedder(
        "panns-cnn14-16k", panns_upstream_16k.state_dict(), weights={"source": "test", "random_weights": True}
    )
    embeddings, logits = embedder.embed_and_logits(clips)
    assert embeddings.shape == (3, 2048) and logits.shape == (3, 527)
    for i, clip in enumerate(clips):
        ref_embedding, ref_logits, _ = upstream_outputs(panns_upstream_16k, clip[None])
        assert panns_vggish_relative_error(embeddings[i : i + 1], ref_embedding) < TOLERANCE
        assert panns_vggish_relative_error(logits[i : i + 1], ref_logits) < TOLERANCE


@pytest.mark.parametrize("name", sorted(CNN14_CONFIGS))
def test_too_short_input_is_a_metric_input_error(name, panns_upstream_16k):
    embedder = PannsCnn14Embedder.random(name, seed=0)
    shortest = 31 * CNN14_CONFIGS[name].hop_size
    with pytest.raises(
        MetricInputError, match=rf"{shortest - 1} samples, needs at least {shortest} \(0\.310 s"
    ):
        embedder.embed(torch.zeros(1, shortest - 1))
    if name == "panns-cnn14-16k":  # the upstream network fails just below the same bound
        with pytest.raises(RuntimeError, match="Output size is too small"), torch.no_grad():
            panns_upstream_16k(torch.zeros(1, shortest - 1))
    assert embedder.embed(torch.zeros(1, shortest)).shape == (1, 2048)
    with pytest.raises(MetricInputError, match="empty batch"):
        embedder.logits(torch.zeros(0, shortest))


def test_strict_loading_lists_missing_unexpected_and_misshapen_keys(panns_upstream_16k, tmp_path):
    state = dict(panns_upstream_16k.state_dict())
    del state["conv_block3.bn2.running_var"]
    state["att_block.cla.weight"] = torch.zeros(527, 2048, 1)
    state["fc_audioset.weight"] = torch.zeros(10, 2048)
    with pytest.raises(WeightsError) as err:
        PannsCnn14Embedder("panns-cnn14-16k", state, weights={"random_weights": True}, where="edited.pth")
    message = str(err.value)
    assert message.startswith("edited.pth: the state dict does not fit Cnn14Network: ")
    assert "missing keys (1): conv_block3.bn2.running_var" in message
    assert "unexpected keys (1): att_block.cla.weight" in message
    assert "fc_audioset.weight: checkpoint (10, 2048) vs model (527, 2048)" in message


def test_checkpoint_of_the_other_configuration_is_refused(panns_checkpoint_16k):
    with pytest.raises(
        WeightsError, match=r"spectrogram_extractor\.stft\.conv_real\.weight: checkpoint \(257, 1, 512\)"
    ):
        PannsCnn14Embedder.from_checkpoint("panns-cnn14-32k", panns_checkpoint_16k)


def test_frontend_of_other_mel_settings_is_refused(panns_upstream_16k):
    state = dict(panns_upstream_16k.state_dict())
    state["logmel_extractor.melW"] = torch.from_numpy(librosa_mel_filterbank(16000, 512, 64, 50.0, 7000.0))
    with pytest.raises(WeightsError, match=r"logmel_extractor\.melW differs"):
        PannsCnn14Embedder("panns-cnn14-16k", state, weights={"random_weights": True})


def test_batchnorm_counters_are_optional(panns_upstream_16k):
    state = {
        k: v for k, v in panns_upstream_16k.state_dict().items() if not k.endswith("num_batches_tracked")
    }
    embedder = PannsCnn14Embedder("panns-cnn14-16k", state, weights={"random_weights": True})
    assert set(FRONTEND_KEYS) <= set(embedder.network.state_dict())


def test_random_weights_metadata_and_names():
    embedder = PannsCnn14Embedder.random("panns-cnn14-32k", seed=4)
    meta = embedder.metadata()
    assert meta["name"] == "panns-cnn14-32k" and meta["sample_rate"] == 32000 and meta["output"] == "clip"
    assert meta["random_weights"] is True and meta["comparable_with_published"] is False
    assert meta["config"]["logits"].endswith("pre-sigmoid") and meta["config"]["fmax"] == 14000.0
    with pytest.raises(UsageError, match="unknown CNN14 configuration"):
        PannsCnn14Embedder.random("panns-cnn10")


def test_random_weights_put_inputs_on_the_network_device():
    """``random(device=...)`` moves the network and the embedder's input device together ("meta" stands in
    for a GPU: a network there and inputs left on the CPU is what would fail)."""
    embedder = PannsCnn14Embedder.random(seed=0, device="meta")
    assert next(embedder.network.parameters()).device == torch.device("meta")
    assert embedder.device == torch.device("meta")


def test_registry_construction_offline_without_cache_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path))
    monkeypatch.setenv("AGOMNI_OFFLINE", "1")
    with pytest.raises(OfflineError, match="panns-cnn14-16k"):
        PannsCnn14Embedder.from_registry("panns-cnn14-16k")


def test_random_weights_give_embeddings_and_logits_that_differ_between_clips():
    """PyTorch's default initialisation with identity BatchNorm statistics gave spreads of 0.029
    (embeddings) and 0.0098 (logits), so KL was ~1e-8 and IS 1 + 1e-8."""
    from tests.metrics.test_vggish import _varied_clips, relative_spread

    heads = PannsCnn14Embedder.random("panns-cnn14-16k", seed=0).outputs(_varied_clips())
    assert relative_spread(heads["embed"].double().numpy()) > 0.3
    assert relative_spread(heads["logits"].double().numpy()) > 0.3
    assert float(heads["logits"].std(dim=1).mean()) > 1.0  # logits spread over classes like a tagger's
