"""The per-item stages of `agomni eval`: metrics that judge each generated item on its own against what
its manifest item gives, outside the embedder / cache loop of `agomni.evaluate.pipeline`.

- ``audio_visual``: LSE-C / LSE-D, DeSync, IB-score against the item's video (`agomni.metrics.av`);
- ``text_audio``: the CLAP score against the item's caption (`agomni.metrics.text_audio`);
- ``speech``: WER / CER / PER, SIM-o, F0, quality and aesthetics against the transcript, lyrics or
  prompt audio (`agomni.metrics.speech`).

Each stage is the ``score`` of its family's `agomni.metrics.stage.FamilyStage`, `StageRequest` ->
`StageScores`. Under torchrun they run on rank 0 and their
scores are shared with every rank. A metric a stage cannot compute is a "not computed" entry of its scores
(`StageScores.isolated`), never the end of the run (unless ``--strict``).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from agomni import distributed, suites
from agomni.evaluate.registry import split_names
from agomni.evaluate.stage_cache import StageCache
from agomni.metrics.stage import FAMILY_MODULES, StageRequest, StageScores, family_stage

#: The per-item stages, in the order they run: the metric registry's per-item families.
STAGES = tuple(FAMILY_MODULES)


def _isolated(stage: str, request: StageRequest) -> StageScores:
    """Stage `stage`'s scores; a failure before any of its metrics was filed (no manifest, no item of the
    kind it needs) makes each of them "not computed" (``request.strict``: raised)."""
    scores = StageScores()
    with scores.isolated(request.names, request.strict):
        scores = family_stage(stage).score(request)
    return scores


def _cached(stage: str, request: StageRequest, cache: StageCache) -> StageScores:
    """Stage `stage`'s scores: its metrics found in `cache` read back (and said), the others computed
    (`_isolated`) and stored."""
    with request.timed("hash_files"):
        keys = {name: cache.key(stage, name, request) for name in request.names} if cache.enabled else {}
    scores = StageScores()
    todo = []
    for name in request.names:
        with request.timed("cache_io"):
            found = cache.get(keys[name]) if cache.enabled else None
        if found is None:
            todo.append(name)
            continue
        print(
            f"[agomni] {name}: read from the stage cache (same inputs scored before), not recomputed",
            file=sys.stderr,
        )
        scores.merge(found)
    if todo:

        def keep(name: str, filed: StageScores) -> None:  # stored once filed: a later kill does not lose it
            if cache.enabled:
                with request.timed("cache_io"):
                    cache.put(keys[name], filed)

        computed = _isolated(stage, replace(request, names=tuple(todo), on_filed=keep))
        computed.on_filed = None  # the scores may travel to other ranks (pickled)
        scores.merge(computed)
    return scores


@dataclass(frozen=True)
class ItemStages:
    """The metric names of each per-item stage (stage name -> names, in the order asked)."""

    names: dict[str, tuple[str, ...]]

    @classmethod
    def split(cls, names: Sequence[str], speech_backends: Sequence[str]) -> tuple[ItemStages, list[str]]:
        """The per-item stages' names and the names left for the embedder metrics. Speech backends are
        checked here, before any work: unknown or unavailable ones, and ones no requested metric uses."""
        stages = {}
        rest = list(names)
        for stage in STAGES:
            stages[stage], rest = split_names(rest, suites.family_names(stage))
        family_stage("speech").check_backends(stages["speech"], speech_backends)
        return cls({stage: tuple(n) for stage, n in stages.items() if n}), rest

    def check_manifest(self, manifest: Path | None) -> None:
        """A `UsageError` before any work when a stage's metrics read the manifest and none is given."""
        for stage, names in self.names.items():
            need = family_stage(stage).manifest_need(names)
            if need is not None and manifest is None:
                raise need.error(names)

    def run(self, request: StageRequest, shard: distributed.Shard, cache: StageCache) -> StageScores:
        """Every stage with names, each given ``request`` with its own names, on rank 0, timed as a whole
        by ``request.timed(stage)`` (the networks' passes inside it by their own stages); the merged
        scores. Metrics ``cache`` holds from an earlier run of the same inputs are read back, not computed
        (`agomni.evaluate.stage_cache`)."""
        scores = StageScores()
        for stage, names in self.names.items():
            with request.timed(stage):
                run = functools.partial(_cached, stage, replace(request, names=names), cache)
                scores.merge(shard.from_main(run))
        return scores

    def comparable(self, scores: StageScores, random_weights: bool) -> bool:
        """Whether the stages' numbers compare with published ones: real weights, and every speech metric's
        backend the published recipe's."""
        speech = self.names.get("speech", ())
        return not (self.names and random_weights) and all(
            scores.details[n]["comparable_with_published"] for n in speech if n in scores.details
        )
