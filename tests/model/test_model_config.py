"""Sizes and sequence lengths against MMAudio's published values and hand-computed lengths."""

from __future__ import annotations

import math

import pytest

from agomni.errors import UsageError
from agomni.model import SIZES, model_config
from agomni.model.config import sequence_16k, sequence_44k


def test_8s_lengths_match_mmaudio():
    # MMAudio sequence_config.py: 16k -> 250 latents, 128000 samples; 44k -> 345, 353280; CLIP 64; sync 192.
    s16, s44 = sequence_16k(8.0), sequence_44k(8.0)
    assert (s16.latent_len, s16.clip_len, s16.sync_len, s16.num_audio_samples) == (250, 64, 192, 128000)
    assert (s44.latent_len, s44.clip_len, s44.sync_len, s44.num_audio_samples) == (345, 64, 192, 353280)
    assert s16.latent_fps == 31.25
    assert abs(s44.latent_fps - 43.07) < 0.005


@pytest.mark.parametrize("duration", [4.0, 10.0, 2.5])
def test_lengths_follow_the_rates(duration):
    s16, s44 = sequence_16k(duration), sequence_44k(duration)
    assert s16.latent_len == math.ceil(duration * 16000 / 256 / 2)
    assert s44.latent_len == math.ceil(duration * 44100 / 512 / 2)
    assert s16.clip_len == int(duration * 8)
    segments = (int(duration * 25) - 16) // 8 + 1
    assert s16.sync_len == s44.sync_len == segments * 8


def test_4s_and_10s_hand_values():
    assert (sequence_16k(4).latent_len, sequence_44k(4).latent_len, sequence_16k(4).sync_len) == (
        125,
        173,
        88,
    )
    assert (sequence_16k(10).latent_len, sequence_44k(10).latent_len, sequence_16k(10).sync_len) == (
        313,
        431,
        240,
    )


def test_mmaudio_dimensions():
    expected = {
        "S-16k": (448, 7, 4, 8, 20),
        "S-44k": (448, 7, 4, 8, 40),
        "M-44k": (896, 14, 4, 8, 40),
        "L-44k": (896, 14, 7, 14, 40),
    }
    for name, dims in expected.items():
        c = model_config(name)
        assert (c.hidden_dim, c.num_heads, c.joint_blocks, c.single_blocks, c.latent_dim) == dims
        assert (c.clip_dim, c.sync_dim, c.text_dim, c.head_dim) == (1024, 768, 1024, 64)


def test_aliases_and_unknown_size():
    assert model_config("L").name == "L-44k"
    assert model_config("tiny", 4.0).sequence.duration_s == 4.0
    with pytest.raises(UsageError) as err:
        model_config("XL")
    for name in SIZES:
        assert name in str(err.value)


def test_too_short_duration_is_a_usage_error():
    with pytest.raises(UsageError, match="Synchformer segment"):
        sequence_16k(0.5)
