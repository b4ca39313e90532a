"""`EvalSettings`: the provenance's ``preprocessing`` object read as typed fields and written back without
loss, including keys this version does not know and the stage-cache counters of earlier results files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from agomni.evaluate import EvalRequest, evaluate
from agomni.results import CacheUse, EvalSettings, read_results


def test_a_preprocessing_object_reads_as_fields_and_writes_back_unchanged() -> None:
    data = {
        "metrics": {"wer": {"unit": "% WER", "corpus": 12.5, "flags": [{"id": "a", "flags": ["x"]}]}},
        "profiles": {"av-benchmark": {"sample_rate": 16000}},
        "embedders": {"panns@av-benchmark": {"checkpoint": "none", "random_weights": True}},
        "comparable_with_published": False,
        "inputs": {"pred_dir": "/p"},
        "cache": {
            "root": "/c",
            "enabled": True,
            "embedding_hits": 3,
            "embedding_writes": 5,
            "stage_hits": ["wer"],
            "stage_item_hits": {"wer": 4},
            "stage_writes": {"sim_o": 4},
            "stage_rejected": {},
        },
        "allow_missing": True,
        "batch_size": 8,
        "processes": 2,
        "run": {"suite": "tts-seed-en"},
        "sample_rate": 48000,  # a key of another writer: kept as it is
    }
    settings = EvalSettings.from_dict(json.loads(json.dumps(data)))
    assert settings.metric("wer")["corpus"] == 12.5 and settings.metric("sim_o") == {}
    assert settings.comparable_with_published is False and settings.processes == 2
    assert (settings.cache.embedding_hits, settings.cache.embedding_writes) == (3, 5)
    assert settings.cache.stage_hits == ("wer",) and settings.cache.stage_writes == {"sim_o": 4}
    assert settings.run == {"suite": "tts-seed-en"} and settings.replicates is None
    assert settings.other == {"sample_rate": 48000}
    assert settings.to_dict() == data


def test_earlier_results_files_and_empty_objects_read() -> None:
    old = CacheUse.from_dict({"root": "/c", "enabled": True, "stage_writes": ["ib_score"]})
    assert old.stage_writes == {"ib_score": 0} and old.embedding_hits == 0
    empty = EvalSettings.from_dict({})
    assert empty.metrics == {} and empty.comparable_with_published is None and empty.cache.root is None
    assert "run" not in empty.to_dict() and "replicates" not in empty.to_dict()


def test_an_evaluation_writes_typed_settings(tmp_path: Path) -> None:
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    rng = np.random.default_rng(0)
    for folder in (pred, ref):
        folder.mkdir()
        for i in range(3):
            sf.write(folder / f"{i}.wav", 0.1 * rng.standard_normal(8000), 16000)
    outcome = evaluate(
        EvalRequest(
            pred_dir=pred,
            ref_dir=ref,
            metrics=("fd_offline",),
            cache_dir=tmp_path / "cache",
            out=tmp_path / "out",
            progress=False,
            batch_size=2,
        )
    )
    settings = read_results(outcome.path).provenance.settings
    assert settings.cache.enabled and settings.cache.root == str(tmp_path / "cache")
    assert settings.cache.embedding_writes == 6  # 3 generated + 3 reference clips, none cached before
    assert settings.batch_size == 2 and settings.processes == 1 and settings.allow_missing is False
    assert settings.metric("fd_offline")["kind"] == "fd" and "agomni-offline" in settings.profiles
    assert settings.other == {}
