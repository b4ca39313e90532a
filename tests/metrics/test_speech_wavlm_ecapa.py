"""WavLM + ECAPA-TDNN SIM-o equals the UniSpeech reference head (f5-tts's copy, ``f5_tts/eval/ecapa_tdnn.py``)
with the same seeded random weights, saved in the ``wavlm_large_finetune.pth`` layout and loaded through
the weights registry; audio preparation included (agomni.io on our side, soundfile + channel mean +
torchaudio's Resample on the reference side).

The reference builds its WavLM with ``torch.hub.load("s3prl/s3prl", "wavlm_large")``; here that call
returns `S3PRLWavLM`: the unilm WavLM module (as vendored by audiobox-aesthetics) inside a wrapper that
behaves as s3prl's WavLM upstream (waveform layer norm, forward hooks collecting each layer's input and the
encoder output as ``hidden_states``). WavLM is small here (width 64, 3 layers; WavLM-Large's layout) so
the test runs on a CPU; the ECAPA head has its real size.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio
from audiobox_aesthetics.model.wavlm import WavLM as ReferenceWavLM
from audiobox_aesthetics.model.wavlm import WavLMConfig as ReferenceConfig
from f5_tts.eval.ecapa_tdnn import ECAPA_TDNN_SMALL
from scipy.signal import resample_poly
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from agomni import weights
from agomni.errors import WeightsError
from agomni.io import load_audio
from agomni.metrics.speech.speaker import speaker_similarity
from agomni.metrics.speech.wavlm_ecapa import WavLMECAPA
from tests.metrics.speech_fixtures import DATA
from tests.metrics.test_speech_wavlm import LARGE_LAYOUT, REFERENCE_LARGE_LAYOUT

SMALL = LARGE_LAYOUT  # WavLM-Large's layout at width 64, 3 layers
#: The same in the reference's config keys; WavLM-Large normalises the waveform (``normalize``).
REFERENCE_CONFIG = {**REFERENCE_LARGE_LAYOUT, "normalize": True}


class S3PRLWavLM(nn.Module):
    """What s3prl's hub gives for "wavlm_large": ``.model`` is WavLM; forward(list of 1-D waveforms) returns
    ``{"hidden_states": [input of each layer ..., encoder output]}``, waveforms layer-normalised first."""

    def __init__(self) -> None:
        super().__init__()
        self.model = ReferenceWavLM(ReferenceConfig(REFERENCE_CONFIG))
        self.hiddens: list[torch.Tensor] = []
        for layer in self.model.encoder.layers:
            layer.register_forward_hook(lambda _m, args, _out: self.hiddens.append(args[0].transpose(0, 1)))
        self.model.encoder.register_forward_hook(lambda _m, _args, out: self.hiddens.append(out[0]))

    def forward(self, wavs: list[torch.Tensor]) -> dict[str, list[torch.Tensor]]:
        if self.model.cfg.normalize:
            wavs = [F.layer_norm(wav, wav.shape) for wav in wavs]
        lengths = torch.tensor([len(wav) for wav in wavs])
        padding = torch.arange(int(lengths.max()))[None] >= lengths[:, None]
        self.hiddens.clear()
        self.model.extract_features(pad_sequence(wavs, batch_first=True), padding_mask=padding, mask=False)
        hidden, self.hiddens = self.hiddens, []
        return {"hidden_states": hidden}


def _randomise(module: nn.Module, seed: int) -> None:
    """Move every parameter and BatchNorm statistic away from its initial value (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            elif name.endswith(("running_mean", "feature_weight")) or name.endswith("bias"):
                tensor.copy_(0.1 * noise)
            elif tensor.ndim == 1 or name.endswith("grep_a"):  # norms' scales and attention gates
                tensor.copy_(1.0 + 0.2 * noise)


def _calibrate_final_batch_norm(reference: nn.Module) -> None:
    """Set the last BatchNorm's statistics to those of the pooled features of three clips not compared
    below, as training would: random weights alone give pooled statistics that barely differ between
    clips, and embeddings that all point the same way."""
    pooled: list[torch.Tensor] = []
    hook = reference.pooling.register_forward_hook(lambda _m, _args, out: pooled.append(out[0]))
    with torch.no_grad():
        for name in ("f2_7", "m1_1", "f2_3"):
            reference(torch.from_numpy(sf.read(str(DATA / f"{name}.flac"), dtype="float32")[0])[None])
        hook.remove()
        stacked = torch.stack(pooled)
        reference.bn.running_mean.copy_(stacked.mean(dim=0))
        reference.bn.running_var.copy_(stacked.var(dim=0) + 1e-4)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(ours from the registry, the reference) with the same random weights."""
    home = tmp_path_factory.mktemp("wavlm_ecapa")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.hub, "_validate_not_a_forked_repo", torch.hub._validate_not_a_forked_repo)
        mp.setattr(torch.hub, "load", lambda *args, **kwargs: S3PRLWavLM())
        torch.manual_seed(11)
        reference = ECAPA_TDNN_SMALL(feat_dim=SMALL.embed_dim, feat_type="wavlm_large")
    _randomise(reference, seed=12)
    _calibrate_final_batch_norm(reference.eval())
    checkpoint = home / "wavlm_large_finetune.pth"
    torch.save({"model": reference.state_dict(), "epoch": 7}, checkpoint)
    entry = dataclasses.replace(weights.get_entry("wavlm-large-ecapa-sv"), pin=None, size_bytes=None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AGOMNI_HOME", str(home / "cache"))
        mp.setenv("AGOMNI_OFFLINE", "1")
        with weights.registered(entry):
            weights.import_file(entry, checkpoint)
            ours = WavLMECAPA.from_registry(cfg=SMALL)
    return ours, reference.eval()


def _stereo_24bit(tmp_path: Path) -> Path:
    """A 24 kHz stereo 24-bit FLAC: two different voices, one per channel."""
    left, _ = sf.read(str(DATA / "f2_2.flac"))
    right, _ = sf.read(str(DATA / "m1_0.flac"))
    n = min(len(left), len(right))
    stereo = resample_poly(np.stack([left[:n], 0.7 * right[:n]], axis=1), 3, 2, axis=0)
    path = tmp_path / "stereo.flac"
    sf.write(path, 0.9 * stereo / np.abs(stereo).max(), 24000, subtype="PCM_24")
    return path


def _reference_audio(path: Path) -> torch.Tensor:
    """[1, samples] at 16 kHz: soundfile, channel mean, torchaudio's Resample (the references' resampler)."""
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    wav = torch.from_numpy(audio.mean(axis=1))[None]
    return wav if rate == 16000 else torchaudio.transforms.Resample(rate, 16000)(wav)


def _ours_audio(path: Path) -> np.ndarray:
    return load_audio(path, sample_rate=16000, downmix="mean")[0][0].numpy()


@pytest.mark.slow
def test_embeddings_and_sim_o_equal_the_unispeech_reference(models, tmp_path: Path) -> None:
    ours, reference = models
    assert ours.random_weights is False and ours.ignored_keys == []  # loaded as the registry's file
    short = tmp_path / "short.wav"
    audio, _ = sf.read(str(DATA / "m1_1.flac"))
    sf.write(short, audio[4000:13600], 16000, subtype="PCM_16")  # 0.6 s
    clips = {
        "f2_0": DATA / "f2_0.flac",
        "f2_5": DATA / "f2_5.flac",
        "m1_2": DATA / "m1_2.flac",
        "stereo": _stereo_24bit(tmp_path),
        "short": short,
    }
    got, expected = {}, {}
    for name, path in clips.items():
        with torch.no_grad():
            expected[name] = reference(_reference_audio(path))[0]
        got[name] = torch.from_numpy(ours.embed(_ours_audio(path)))
        assert got[name].shape == (256,)
        scale = expected[name].abs().max().item()
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-4 * scale)

    names = list(clips)
    spread = [
        (torch.linalg.norm(expected[a] - expected[b]) / torch.linalg.norm(expected[a])).item()
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    ]
    print(f"relative distance between the clips' reference embeddings: min {min(spread):.3f}")
    assert min(spread) > 0.3  # the random weights tell the clips apart

    pairs = [("f2_0", "f2_5"), ("f2_0", "m1_2"), ("stereo", "f2_5"), ("short", "m1_2")]
    result = speaker_similarity(
        [_ours_audio(clips[g]) for g, _ in pairs],
        [_ours_audio(clips[p]) for _, p in pairs],
        ids=[f"{g}-{p}" for g, p in pairs],
        encoder=ours,
    )
    for item, (g, p) in zip(result.items, pairs, strict=True):
        want = F.cosine_similarity(expected[g][None], expected[p][None])[0].item()
        assert item.error is None and item.value == pytest.approx(want, rel=1e-4, abs=1e-5)
    values = [item.value for item in result.items]
    print(f"SIM-o of the pairs (random weights): {values}")
    assert max(values) - min(values) > 0.05
    assert "seed-tts-eval" in result.recipe and result.backend.startswith("wavlm-ecapa")


def test_checkpoint_layout_is_checked_and_unused_entries_are_listed() -> None:
    state = dict(WavLMECAPA.random(seed=1, cfg=SMALL).network.state_dict())
    state["projection.weight"] = torch.zeros(3, 3)
    extra = WavLMECAPA(state, random_weights=False, cfg=SMALL)
    assert extra.ignored_keys == ["projection.weight"] and "projection.weight" in extra.version
    del state["feature_extract.model.encoder.layers.0.fc1.weight"]
    with pytest.raises(WeightsError, match=r"missing keys \(1\): feature_extract\.model\.encoder\.layers\.0"):
        WavLMECAPA(state, random_weights=False, cfg=SMALL)


def test_a_clip_under_two_frames_is_an_item_error() -> None:
    encoder = WavLMECAPA.random(seed=2, cfg=SMALL)
    assert encoder.min_samples == 720 and "RANDOM WEIGHTS" in encoder.version
    clip = np.sin(np.arange(24000) / 7.0).astype(np.float32)
    result = speaker_similarity([clip[:700], clip], [clip, clip], ids=["tiny", "ok"], encoder=encoder)
    tiny, ok = result.items
    assert tiny.value is None and "too short for WavLM-Large + ECAPA-TDNN" in tiny.error
    assert ok.value == pytest.approx(1.0, abs=1e-6)
