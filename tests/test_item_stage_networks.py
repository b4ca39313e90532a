"""The per-item stages build each network once per run, whatever the number of chunks, and one at a time.

Five items in chunks of two (three chunks) with one cheap metric of each family and random weights:
IB-score and DeSync (the one-block test towers), a CLAP-like score (a seeded random projection scorer
standing in for the CLAP network) and WER (pocketsphinx) with DNSMOS. Every build is counted: one per
network for all three chunks, each built only once the network before it is released, none left alive
after the run; the values equal those of the same run in one chunk. A network that fails to build makes
its metric not computed with the reason, built once, not once per chunk.
"""

from __future__ import annotations

import gc
import weakref
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from agomni.evaluate import EvalRequest, evaluate, item_stages, pipeline
from agomni.metrics.av import score as av_score
from agomni.metrics.speech import eval_stage as speech_stage
from agomni.metrics.text_audio import eval_stage as text_audio_stage
from agomni.results import Results
from tests.metrics.av_fixtures import tiny_scorer
from tests.stage_fixtures import write_v2s_set

ITEMS = ("f2_0", "f2_1", "f2_2", "m1_0", "m1_1")
METRICS = ("ib_score", "desync", "clap", "wer", "dnsmos_ovrl")
RATE = 16000
NETWORKS = {"imagebind": 1, "synchformer": 1, "laion-clap": 1, "pocketsphinx": 1, "dnsmos": 1}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Generated folder and manifest (`tests.stage_fixtures.write_v2s_set`)."""
    return write_v2s_set(tmp_path_factory.mktemp("networks"), ITEMS)


class RandomProjectionScorer:
    """A text-audio scorer of seeded random weights: character counts and a 64-bin magnitude spectrum
    of the clip's first second, each through a fixed random projection, compared by cosine."""

    def __init__(self, seed: int, device: str = "cpu") -> None:
        generator = torch.Generator().manual_seed(seed)
        self.seed = seed
        self.text_weights = torch.randn(128, 16, generator=generator, dtype=torch.float64)
        self.audio_weights = torch.randn(64, 16, generator=generator, dtype=torch.float64)

    def config(self) -> dict[str, object]:
        return {"random_weights": True, "seed": self.seed}

    def embed_text(self, captions: list[str]) -> torch.Tensor:
        counts = torch.tensor([[c.count(chr(k)) for k in range(128)] for c in captions], dtype=torch.float64)
        return torch.nn.functional.normalize(counts @ self.text_weights, dim=1)

    def cosine(self, audio: Path, text_embedding: torch.Tensor) -> float:
        samples, _ = sf.read(str(audio), dtype="float64", frames=RATE)
        spectrum = torch.from_numpy(np.abs(np.fft.rfft(samples, 126)))
        embedding = torch.nn.functional.normalize(spectrum @ self.audio_weights, dim=0)
        return float(torch.dot(embedding, text_embedding))


class Builds:
    """Counts each network's builds, keeps a weak reference to each, and checks at every build that no
    network built before is still alive."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.built: list[weakref.ref] = []

    def add(self, network: str, built: object) -> object:
        gc.collect()
        assert [r() for r in self.built if r() is not None] == [], f"{network} built while another is alive"
        self.count[network] += 1
        self.built.append(weakref.ref(built))
        return built

    def alive(self) -> list[object]:
        gc.collect()
        return [r() for r in self.built if r() is not None]


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Builds:
    """Every network build of the three families counted (the test towers and scorer for AV and CLAP)."""
    counted = Builds()

    def av(metric: str, **options: object) -> object:
        return counted.add(metric, tiny_scorer(metric, **options))

    class PocketSphinx(speech_stage.PocketSphinxASR):
        def __init__(self) -> None:
            super().__init__()
            counted.add("pocketsphinx", self)

    class DNSMOS(speech_stage.DNSMOS):
        def __init__(self) -> None:
            super().__init__()
            counted.add("dnsmos", self)

    def clap(seed: int, device: str) -> RandomProjectionScorer:
        return counted.add("laion-clap", RandomProjectionScorer(seed, device))

    monkeypatch.setattr(av_score, "build_scorer", av)
    monkeypatch.setattr(speech_stage, "PocketSphinxASR", PocketSphinx)
    monkeypatch.setattr(speech_stage, "DNSMOS", DNSMOS)
    registry = text_audio_stage.SCORERS["laion-clap"][1]
    monkeypatch.setitem(text_audio_stage.SCORERS, "laion-clap", (clap, registry))
    return counted


def _evaluate(data: tuple[Path, Path], out: Path, metrics: tuple[str, ...] = METRICS) -> Results:
    pred, manifest = data
    request = EvalRequest(
        pred_dir=pred,
        manifest=manifest,
        metrics=metrics,
        random_weights=True,
        cache_dir=out / "cache",
        out=out / "run",
        progress=False,
    )
    return evaluate(request).results


def _values(results: Results) -> dict[str, float]:
    values = {m.name: m.value for m in results.metrics} | {f"{m.name} n": m.n for m in results.metrics}
    return values | {f"{i} {m}": v for i, s in results.item_scores.items() for m, v in s.items()}


@pytest.mark.slow  # two evaluations of five 8 s items: the test towers, pocketsphinx, DNSMOS (about 1 min)
def test_each_network_is_built_once_for_all_chunks_and_released_before_the_next(
    data: tuple[Path, Path], builds: Builds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "home"))
    loads: Counter[str] = Counter()
    stage = pipeline.Timings.stage

    def timed(self: pipeline.Timings, name: str):
        loads[name] += name.startswith("load:")
        return stage(self, name)

    monkeypatch.setattr(pipeline.Timings, "stage", timed)
    whole = _evaluate(data, tmp_path / "whole")
    assert dict(builds.count) == {"ib_score": 1, "desync": 1, "laion-clap": 1, "pocketsphinx": 1, "dnsmos": 1}
    assert builds.alive() == []
    builds.count.clear()
    loads.clear()

    monkeypatch.setattr(item_stages, "CHUNK", 2)
    chunked = _evaluate(data, tmp_path / "chunked")
    assert dict(builds.count) == {"ib_score": 1, "desync": 1, "laion-clap": 1, "pocketsphinx": 1, "dnsmos": 1}
    assert builds.alive() == []
    assert {name: n for name, n in loads.items() if n} == {f"load:{name}": 1 for name in NETWORKS}
    assert [m.name for m in chunked.metrics] == list(METRICS) and not chunked.not_computed
    # every item was scored, each in its chunk, and the items differ: the comparison is not empty
    assert chunked.provenance.settings.cache.stage_writes == dict.fromkeys(METRICS, len(ITEMS))
    assert all(len({round(s[m], 9) for s in chunked.item_scores.values()}) > 1 for m in METRICS)
    assert _values(chunked) == pytest.approx(_values(whole), rel=1e-9, abs=0)


@pytest.mark.slow  # five 8 s items in three chunks, the network build failing (about 5 s)
def test_a_network_that_fails_to_build_is_tried_once_and_its_metric_not_computed(
    data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(item_stages, "CHUNK", 2)
    tries: list[str] = []

    def failing(metric: str, **options: object) -> object:
        tries.append(metric)
        raise RuntimeError("no memory for the network")

    monkeypatch.setattr(av_score, "build_scorer", failing)
    results = _evaluate(data, tmp_path / "failed", ("ib_score",))
    assert tries == ["ib_score"]
    (entry,) = results.not_computed
    assert entry.name == "ib_score" and "no memory for the network" in entry.reason
