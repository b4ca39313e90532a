"""The content-addressed embedding cache: keys, layout, atomic writes, rejection of bad entries."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch

from agomni.metrics.cache import (
    EmbeddingCache,
    EmbeddingKey,
    SourceKey,
    audio_sha256,
    decoder_fingerprint,
)

KEY = EmbeddingKey(
    audio_sha256="a" * 64,
    embedder="mel-stats",
    embedder_key="b" * 64,
    checkpoint="none",
    preprocessing={"sample_rate": 16000, "downmix": "mean", "resampler": "torchaudio-sinc"},
    head="embed",
)


def test_audio_hash_is_sha256_of_float32_bytes_with_shape() -> None:
    x = np.random.default_rng(0).normal(size=(1, 800)).astype(np.float32)
    expected = hashlib.sha256(b"float32[1, 800]" + x.astype("<f4").tobytes()).hexdigest()
    assert audio_sha256(x) == expected
    assert audio_sha256(torch.from_numpy(x)) == expected
    assert audio_sha256(x.astype(np.float64)) == expected  # cast to float32 first
    changed = x.copy()
    changed[0, 400] = np.nextafter(changed[0, 400], np.float32(2))  # one ulp of one sample
    assert audio_sha256(changed) != expected
    assert audio_sha256(x.reshape(800)) != expected  # the shape is part of the hash


@pytest.mark.parametrize(
    "change",
    [
        {"audio_sha256": "c" * 64},
        {"embedder": "mfcc-stats"},
        {"embedder_key": "d" * 64},
        {"checkpoint": "random-weights:0"},
        {"preprocessing": {"sample_rate": 16000, "downmix": "first", "resampler": "torchaudio-sinc"}},
        {"preprocessing": {"sample_rate": 16000, "downmix": "mean", "resampler": "soxr-hq"}},
        {"head": "logits"},
    ],
)
def test_every_key_part_changes_the_digest(change: dict) -> None:
    assert dataclasses.replace(KEY, **change).digest() != KEY.digest()


def test_digest_ignores_dict_order_and_is_sha256_of_canonical_parts() -> None:
    reordered = dataclasses.replace(KEY, preprocessing=dict(reversed(list(KEY.preprocessing.items()))))
    assert reordered.digest() == KEY.digest()
    text = json.dumps(KEY.parts(), sort_keys=True, separators=(",", ":"))
    assert KEY.digest() == hashlib.sha256(text.encode()).hexdigest()


def test_put_get_round_trip_layout_and_sidecar(tmp_path) -> None:
    cache = EmbeddingCache(tmp_path)
    assert cache.get(KEY) is None and cache.stats.misses == 1
    array = np.random.default_rng(1).normal(size=(5, 128)).astype(np.float32)
    path = cache.put(KEY, array)
    digest = KEY.digest()
    assert path == tmp_path / "embeddings" / digest[:2] / f"{digest}.npy"
    assert json.loads(path.with_suffix(".json").read_text()) == KEY.parts()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # atomic: no leftovers
    got = cache.get(KEY)
    assert got.dtype == np.float32 and np.array_equal(got, array)  # stored exactly, no float16
    assert (cache.stats.hits, cache.stats.writes) == (1, 1)


def test_default_root_is_under_agomni_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path))
    assert EmbeddingCache().embedding_path(KEY).parent.parent == tmp_path / "cache" / "embeddings"


@pytest.mark.parametrize(
    "damage", ["sidecar-mismatch", "sidecar-garbage", "array-garbage", "array-empty", "array-truncated"]
)
def test_damaged_entries_are_rejected_with_reason_and_missed(tmp_path, damage: str) -> None:
    cache = EmbeddingCache(tmp_path)
    path = cache.put(KEY, np.ones((30,), np.float32))
    if damage == "sidecar-mismatch":
        other = dataclasses.replace(KEY, checkpoint="random-weights:1")
        path.with_suffix(".json").write_text(json.dumps(other.parts()))
    elif damage == "sidecar-garbage":
        path.with_suffix(".json").write_text("{not json")
    elif damage == "array-garbage":
        path.write_bytes(b"not an npy file")
    elif damage == "array-empty":  # what a power loss can leave without fsync
        path.write_bytes(b"")
    else:
        path.write_bytes(path.read_bytes()[:-4])
    assert cache.get(KEY) is None
    assert cache.stats.misses == 1 and len(cache.stats.rejected) == 1
    assert str(path) in cache.stats.rejected[0]


def test_disabled_cache_reads_and_writes_nothing(tmp_path) -> None:
    EmbeddingCache(tmp_path).put(KEY, np.ones((3,), np.float32))
    off = EmbeddingCache(tmp_path / "other", enabled=False)
    assert off.put(KEY, np.ones((3,), np.float32)) is None
    assert off.get(KEY) is None
    assert not (tmp_path / "other").exists()
    assert EmbeddingCache(tmp_path, enabled=False).get(KEY) is None


def test_audio_index_round_trip_and_key_parts(tmp_path) -> None:
    cache = EmbeddingCache(tmp_path)
    key = SourceKey("e" * 64, {"sample_rate": 16000}, decoder_fingerprint())
    assert cache.get_audio(key) is None
    cache.put_audio(key, {"audio_sha256": "f" * 64, "samples": 8000, "sample_rate": 16000})
    assert cache.get_audio(key)["audio_sha256"] == "f" * 64
    for other in (
        dataclasses.replace(key, file_sha256="0" * 64),
        dataclasses.replace(key, preprocessing={"sample_rate": 32000}),
        dataclasses.replace(key, decoder={**key.decoder, "av": "0.0"}),
    ):
        assert other.digest() != key.digest()
        assert cache.get_audio(other) is None
    assert (cache.stats.index_hits, cache.stats.index_misses) == (1, 4)


def test_decoder_fingerprint_hashes_the_io_sources() -> None:
    fingerprint = decoder_fingerprint()
    assert set(fingerprint) == {"av", "libavcodec", "torchaudio", "soxr", "agomni_io_sha256"}
    assert len(fingerprint["agomni_io_sha256"]) == 64
