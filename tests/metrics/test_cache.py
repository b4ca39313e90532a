"""The content-addressed embedding cache: keys, layout, atomic writes, rejection of bad entries."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch

from agomni.metrics.cache import (
    SHOWN_REJECTIONS,
    CacheStats,
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
)
ARRAYS = {
    "embed": np.random.default_rng(1).normal(size=(5, 128)).astype(np.float32),
    "logits": np.random.default_rng(2).normal(size=(527,)).astype(np.float32),
}


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
    ],
)
def test_every_key_part_changes_the_digest(change: dict) -> None:
    assert dataclasses.replace(KEY, **change).digest() != KEY.digest()


def test_digest_ignores_dict_order_and_is_sha256_of_canonical_parts() -> None:
    reordered = dataclasses.replace(KEY, preprocessing=dict(reversed(list(KEY.preprocessing.items()))))
    assert reordered.digest() == KEY.digest()
    text = json.dumps(KEY.parts(), sort_keys=True, separators=(",", ":"))
    assert KEY.digest() == hashlib.sha256(text.encode()).hexdigest()


def test_put_get_round_trip_layout_and_record(tmp_path) -> None:
    cache = EmbeddingCache(tmp_path)
    assert cache.get(KEY) is None and cache.stats.misses == 1
    path = cache.put(KEY, ARRAYS, source="f" * 64)
    digest = KEY.digest()
    assert path == tmp_path / "embeddings" / digest[:2] / f"{digest}.npz"
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["key"] == KEY.parts() and record["sources"] == ["f" * 64]
    embed = ARRAYS["embed"]
    expected = hashlib.sha256(b"<f4[5, 128]" + embed.astype("<f4").tobytes()).hexdigest()
    assert record["arrays"]["embed"] == {"sha256": expected, "shape": [5, 128], "dtype": "<f4"}
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # atomic: no leftovers
    got = cache.get(KEY)
    assert set(got) == {"embed", "logits"}  # every head of the clip in one entry
    assert got["embed"].dtype == np.float32 and np.array_equal(got["embed"], embed)  # exact, no float16
    assert np.array_equal(got["logits"], ARRAYS["logits"])
    assert (cache.stats.hits, cache.stats.writes) == (1, 1)


def test_default_root_is_under_agomni_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path))
    assert EmbeddingCache().embedding_path(KEY).parent.parent == tmp_path / "cache" / "embeddings"


def _replace_arrays(path, arrays) -> None:
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


@pytest.mark.parametrize(
    "damage",
    [
        "record-mismatch",
        "record-garbage",
        "array-garbage",
        "array-empty",
        "array-truncated",
        "values-changed",
        "nan",
        "head-missing",
        "source-not-listed",
    ],
)
def test_damaged_entries_are_rejected_with_reason_and_missed(tmp_path, damage: str, capsys) -> None:
    cache = EmbeddingCache(tmp_path)
    path = cache.put(KEY, ARRAYS, source="f" * 64)
    record = path.with_suffix(".json")
    source = "f" * 64
    if damage == "record-mismatch":
        other = dataclasses.replace(KEY, checkpoint="random-weights:1")
        record.write_text(json.dumps({**json.loads(record.read_text()), "key": other.parts()}))
    elif damage == "record-garbage":
        record.write_text("{not json")
    elif damage == "array-garbage":
        path.write_bytes(b"not an npz file")
    elif damage == "array-empty":  # what a power loss can leave without fsync
        path.write_bytes(b"")
    elif damage == "array-truncated":
        path.write_bytes(path.read_bytes()[:-4])
    elif damage == "values-changed":  # same shape and dtype, other values: only the checksum sees it
        _replace_arrays(path, {**ARRAYS, "embed": ARRAYS["embed"] * np.float32(1.5)})
    elif damage == "nan":
        _replace_arrays(path, {**ARRAYS, "logits": np.full(527, np.nan, np.float32)})
    elif damage == "head-missing":
        _replace_arrays(path, {"embed": ARRAYS["embed"]})
    else:  # reached through an audio-index entry of a file the entry never came from
        source = "0" * 64
    assert cache.get(KEY, source=source) is None
    assert cache.stats.misses == 1 and len(cache.stats.rejected) == 1
    assert str(path) in cache.stats.rejected[0]
    assert f"warning: embedding cache entry rejected: {cache.stats.rejected[0]}" in capsys.readouterr().err


def test_rejections_beyond_the_first_few_are_summed_up_on_stderr(tmp_path, capsys) -> None:
    cache = EmbeddingCache(tmp_path)
    path = cache.put(KEY, ARRAYS, source="f" * 64)
    path.write_bytes(b"damaged")
    for _ in range(SHOWN_REJECTIONS + 3):
        assert cache.get(KEY) is None
    err = capsys.readouterr().err
    assert err.count("warning: embedding cache entry rejected:") == SHOWN_REJECTIONS
    assert "further rejected cache entries are listed only in the results' provenance" in err
    assert len(cache.stats.rejected) == SHOWN_REJECTIONS + 3


def test_two_files_of_the_same_audio_both_stay_listed(tmp_path) -> None:
    """A generated file equal in audio to its reference: both are stored under one key, one after the
    other; a lookup through either file's audio-index entry is a hit."""
    cache = EmbeddingCache(tmp_path)
    cache.put(KEY, ARRAYS, source="1" * 64)
    path = cache.put(KEY, ARRAYS, source="2" * 64)
    assert json.loads(path.with_suffix(".json").read_text())["sources"] == ["1" * 64, "2" * 64]
    for source in ("1" * 64, "2" * 64):
        assert cache.get(KEY, source=source) is not None
    assert cache.stats.rejected == []


def test_a_write_failure_turns_writing_off_with_one_warning(tmp_path, monkeypatch, capsys) -> None:
    cache = EmbeddingCache(tmp_path)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("agomni.metrics.cache.atomic_write", disk_full)
    assert cache.put(KEY, ARRAYS) is None and cache.put(KEY, ARRAYS) is None
    assert "No space left on device" in cache.stats.write_error
    assert capsys.readouterr().err.count("going on without writing") == 1


def test_disabled_cache_reads_and_writes_nothing(tmp_path) -> None:
    EmbeddingCache(tmp_path).put(KEY, ARRAYS)
    off = EmbeddingCache(tmp_path / "other", enabled=False)
    assert off.put(KEY, ARRAYS) is None
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


def test_stats_of_several_processes_add_up():
    a = CacheStats(hits=3, misses=1, writes=1, index_hits=2, index_misses=0, rejected=["x: bad"])
    b = CacheStats(hits=1, misses=4, writes=4, index_hits=0, index_misses=5, write_error="disk full")
    total = CacheStats.total([a, b]).to_dict()
    assert total == {
        "embedding_hits": 4,
        "embedding_misses": 5,
        "embedding_writes": 5,
        "audio_index_hits": 2,
        "audio_index_misses": 5,
        "rejected_entries": ["x: bad"],
        "write_error": "disk full",
    }
