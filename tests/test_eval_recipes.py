"""Input recipes of `agomni eval` profiles, each against the reference loader's steps recomputed here
with soundfile + numpy + torchaudio / soxr (not with agomni.io or agomni's recipe code)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
import torchaudio

from agomni.errors import UsageError
from agomni.evaluate import PROFILES, get_profile
from agomni.io.prepare import RECIPES as INPUT_RECIPES
from agomni.io.prepare import load_prepared
from agomni.io.prepare import recipe as input_recipe

RATE = 44100


def _stereo_wav(path: Path, seconds: float, dc: float = 0.0, seed: int = 0) -> Path:
    """Float32 stereo wav at 44.1 kHz: two different noisy tones plus a DC offset."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    left = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    right = 0.2 * np.sin(2 * np.pi * 1234 * t) + 0.05 * rng.standard_normal(t.size)
    sf.write(path, (np.stack([left, right], axis=1) + dc).astype(np.float32), RATE, subtype="FLOAT")
    return path


def _mono(path: Path) -> torch.Tensor:
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    assert rate == RATE
    return torch.from_numpy(data.T.copy()).mean(dim=0)


def test_fadtk_recipe_matches_fadtk_loader_steps(tmp_path: Path) -> None:
    """fadtk: channel mean, Resample(kaiser_best), 16-bit PCM write + int16/32768 read, VGGish min 1 s."""
    path = _stereo_wav(tmp_path / "short.wav", 0.6, dc=0.01)
    resampler = torchaudio.transforms.Resample(
        RATE,
        16000,
        lowpass_filter_width=64,
        rolloff=0.9475937167399596,
        resampling_method="sinc_interp_kaiser",
        beta=14.769656459379492,
    )
    y = resampler(_mono(path)[None])[0].numpy().astype(np.float64)
    pcm = np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16)
    expected = pcm / 32768.0
    expected = np.pad(expected, (0, int(np.ceil(1 * 16000 - expected.size))))  # enforce_min_len
    ours, _, steps = load_prepared(path, 16000, get_profile("fadtk").recipe_for("vggish"))
    assert ours.shape == (16000,) and steps["samples_zero_padded"] == 16000 - pcm.size
    np.testing.assert_array_equal(ours.numpy().astype(np.float64), expected)
    # CLAP under fadtk: no minimum length, 48 kHz, the same quantisation grid.
    clap, _, _ = load_prepared(path, 48000, get_profile("fadtk").recipe_for("clap-laion-audio"))
    assert clap.shape[0] == math.ceil(0.6 * 48000)
    assert np.array_equal(np.round(clap.numpy().astype(np.float64) * 32768), clap.numpy() * 32768)


def test_stable_audio_metrics_recipe_is_librosa_mono_soxr_hq_and_minus_1_dbfs_peak(tmp_path: Path) -> None:
    path = _stereo_wav(tmp_path / "a.wav", 1.3, dc=0.02, seed=1)
    y = soxr.resample(_mono(path).numpy(), RATE, 32000, quality="HQ").astype(np.float64)
    expected = y * (10 ** (-1.0 / 20.0) / np.abs(y).max())  # pyloudnorm.normalize.peak(y, -1.0)
    ours, _, steps = load_prepared(path, 32000, get_profile("stable-audio-metrics").recipe_for("passt"))
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=2e-6)
    assert 20 * np.log10(float(ours.abs().max())) == pytest.approx(-1.0, abs=1e-5)
    assert steps["dc_offset_removed"] == 0.0


def test_av_benchmark_recipe_removes_dc_before_resampling_and_keeps_8_s(tmp_path: Path) -> None:
    path = _stereo_wav(tmp_path / "long.wav", 8.7, dc=0.25, seed=2)
    mono = _mono(path)
    full = torchaudio.transforms.Resample(RATE, 16000)((mono - mono.mean())[None])[0]
    expected = full[: 8 * 16000]
    ours, _, steps = load_prepared(path, 16000, get_profile("av-benchmark").recipe_for("vggish"))
    assert ours.shape == expected.shape == (128000,)
    torch.testing.assert_close(ours, expected, rtol=0, atol=2e-6)
    assert steps["dc_offset_removed"] == pytest.approx(float(mono.mean()), abs=1e-7)
    assert steps["samples_cropped"] == full.shape[0] - 128000 > 0


def test_profiles_name_existing_recipes_and_expose_their_policies() -> None:
    for profile in PROFILES.values():
        recipe = INPUT_RECIPES[profile.recipe]
        assert (profile.downmix, profile.resampler) == (recipe.downmix, recipe.resampler)
        assert profile.to_dict()["recipe"]["name"] == recipe.name
    assert get_profile("av-benchmark").recipe_for("passt").max_seconds == 8.0
    assert get_profile("fadtk").recipe_for("vggish").min_seconds == 1.0
    assert get_profile("fadtk").recipe_for("panns").min_seconds is None
    assert get_profile("fadtk").embedding_dtype == "float16"
    assert "one LSB" in get_profile("fadtk").notes and INPUT_RECIPES["fadtk"].notes
    with pytest.raises(UsageError, match="unknown input recipe"):
        input_recipe("ffmpeg")
    with pytest.raises(UsageError, match="min_seconds"):
        input_recipe("fadtk", min_seconds=0)
