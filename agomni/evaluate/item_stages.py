"""The per-item stages of `agomni eval`: metrics that judge each generated item on its own against what
its manifest item gives, outside the embedder / cache loop of `agomni.evaluate.pipeline`.

- ``audio_visual``: LSE-C / LSE-D, DeSync, IB-score against the item's video (`agomni.metrics.av`);
- ``text_audio``: the CLAP score against the item's caption (`agomni.metrics.text_audio`);
- ``speech``: WER / CER / PER, SIM-o, F0, quality and aesthetics against the transcript, lyrics or
  prompt audio (`agomni.metrics.speech`).

Each stage is the ``score`` of its family's `agomni.metrics.stage.FamilyStage`, `StageRequest` ->
`StageScores`, which files each metric as item outcomes (`agomni.metrics.item_outcomes`). Under
torchrun each rank scores its contiguous part of the items; the item outcomes are gathered in rank order
and each metric is combined from them, so every rank files what one process would. A metric a stage
cannot compute is a "not computed" entry of its scores (`StageScores.isolated`), never the end of the
run (unless ``--strict``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agomni import distributed, suites
from agomni.evaluate.registry import split_names
from agomni.evaluate.stage_cache import Found, StageCache
from agomni.metrics import item_outcomes
from agomni.metrics.item_outcomes import NO_OUTCOME, ItemOutcome, MetricConfig
from agomni.metrics.stage import (
    FAMILY_MODULES,
    StageRequest,
    StageScores,
    family_stage,
    no_scorable_items,
)
from agomni.results import NotComputed

#: The per-item stages, in the order they run: the metric registry's per-item families.
STAGES = tuple(FAMILY_MODULES)
#: Items per call of a stage: their outcomes are stored when the call files them, so a run killed inside a
#: stage loses at most this many items' work per metric, and a stage holds at most this many decoded clips.
CHUNK = 256


def _isolated(stage: str, request: StageRequest) -> StageScores:
    """Stage `stage`'s scores; a failure before any of its metrics was filed (no manifest, no item of the
    kind it needs) makes each of them "not computed" (``request.strict``: raised)."""
    scores = StageScores()
    with scores.isolated(request.names, request.strict):
        scores = family_stage(stage).score(request)
    return scores


@dataclass
class _Part:
    """What one rank computed of one group of metrics for its items: per metric, its configuration and
    item outcomes, or why it could not be computed; and how many outcomes it stored."""

    configs: dict[str, MetricConfig]
    outcomes: dict[str, dict[str, ItemOutcome]]
    not_computed: dict[str, NotComputed]
    written: dict[str, int]

    def add(self, other: _Part) -> None:
        """Add the next chunk's part (a metric not computed on one chunk is not computed)."""
        for name, config in other.configs.items():
            self.configs.setdefault(name, config)
        for name, outcomes in other.outcomes.items():
            self.outcomes.setdefault(name, {}).update(outcomes)
        self.not_computed.update(other.not_computed)
        for name, n in other.written.items():
            self.written[name] = self.written.get(name, 0) + n


def _compute(stage: str, request: StageRequest, cache: StageCache) -> _Part:
    """Stage `stage`'s metrics ``request.names`` over ``request.pred`` (this rank's part of the items that
    no earlier run scored): each metric's outcomes are stored as soon as it is filed, so a later kill does
    not lose them; those of a metric no item of this part could be scored for are not stored (a rerun
    tries them again) and its configuration is not kept (it is combined with the other parts)."""
    ids = list(request.pred)
    configs: dict[str, MetricConfig] = {}
    outcomes: dict[str, dict[str, ItemOutcome]] = {}
    written: dict[str, int] = {}

    def keep(name: str, config: MetricConfig, filed: dict[str, ItemOutcome]) -> None:
        outcomes[name] = {i: filed.get(i, ItemOutcome(None, NO_OUTCOME)) for i in ids}
        if any(o.value is not None for o in outcomes[name].values()):
            configs[name] = config
            with request.timed("cache_io"):
                written[name] = cache.store(stage, name, request, config, outcomes[name])

    computed = _isolated(stage, replace(request, on_filed=keep))
    not_computed = {e.name: e for e in computed.not_computed if e.name not in outcomes}
    return _Part(configs, outcomes, not_computed, written)


def _say_found(found: dict[str, Found], ids: Sequence[str]) -> None:
    for name, stored in found.items():
        if len(stored.outcomes) == len(ids):
            print(
                f"[agomni] {name}: read from the stage cache (all {len(ids)} items scored before), "
                "not recomputed",
                file=sys.stderr,
            )
        elif stored.outcomes:
            print(
                f"[agomni] {name}: {len(stored.outcomes)} of {len(ids)} items read from the stage cache; "
                f"scoring the other {len(ids) - len(stored.outcomes)}",
                file=sys.stderr,
            )


def _score_stage(
    stage: str, request: StageRequest, shard: distributed.Shard, cache: StageCache
) -> StageScores:
    """Stage `stage`'s metrics over ``request.pred``: the item outcomes ``cache`` holds are read back
    (rank 0 reads, every rank is told), the rest are split into contiguous parts, one per rank, scored
    there in chunks of `CHUNK` items (each chunk's outcomes stored once filed) and gathered in rank
    order; each metric's result is combined from all its outcomes (`agomni.metrics.item_outcomes.combine`):
    the same result as one process scoring every item. The metrics run network by network (the registry's
    ``network``): each network is built once for all its chunks (`StageRequest.network`) and released
    before the next network's metrics start."""
    ids = list(request.pred)

    def look_up() -> dict[str, Found]:
        with request.timed("hash_files"):
            found = cache.lookup(stage, request)
        _say_found(found, ids)
        return found

    found = shard.from_main(look_up)
    cache.count_hits(found, len(ids))
    groups: dict[str, dict[tuple[str, ...], list[str]]] = {}  # network -> items to score -> metrics
    for name in request.names:
        missing = tuple(i for i in ids if i not in found[name].outcomes)
        groups.setdefault(suites.network_of(name), {}).setdefault(missing, []).append(name)
    parts: dict[str, list[_Part]] = {}
    for by_missing in groups.values():
        # the network's scorers: built on its first chunk, kept for the next ones, released after the last
        networks: dict[tuple[Any, ...], Any] = {}
        for missing, names in by_missing.items():
            mine = _Part({}, {}, {}, {})
            part = shard.part(missing)
            for start in range(0, len(part), CHUNK):
                todo = tuple(n for n in names if n not in mine.not_computed)
                if todo:
                    chunk = {i: request.pred[i] for i in part[start : start + CHUNK]}
                    chunk_request = replace(request, names=todo, pred=chunk, networks=networks)
                    mine.add(_compute(stage, chunk_request, cache))
            gathered: list[_Part] = shard.gather(mine) if missing else []
            for p in gathered:  # every rank's provenance counts every rank's writes
                for name, n in p.written.items():
                    cache.writes[name] = cache.writes.get(name, 0) + n
            parts.update(dict.fromkeys(names, gathered))
        networks.clear()
    scores = StageScores()
    for name in request.names:
        with scores.isolated([name], request.strict):
            _file(scores, name, ids, found[name], parts[name])
    return scores


def _file(scores: StageScores, name: str, ids: Sequence[str], stored: Found, parts: Sequence[_Part]) -> None:
    """File metric `name` combined from its stored outcomes and every rank's part; a rank on which it
    could not be computed at all (no network, a library failure) makes it not computed."""
    for part in parts:
        if name in part.not_computed:
            scores.not_computed.append(part.not_computed[name])
            return
    configs = [p.configs[name] for p in parts if name in p.configs]
    config = configs[0] if configs else stored.config
    outcomes = dict(stored.outcomes)
    for part in parts:
        outcomes.update(part.outcomes.get(name, {}))
    ordered = {i: outcomes[i] for i in ids if i in outcomes}
    if config is None:  # no part scored an item: the error names every item's reason
        reasons = {i: o.reason for i, o in ordered.items()}
        raise no_scorable_items(name, reasons, {i: o.side for i, o in ordered.items()})
    scores.add_result(name, item_outcomes.combine(name, config, ordered))


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
        """Every stage with names, each given ``request`` with its own names, its items split across the
        ranks (`_score_stage`), timed as a whole by ``request.timed(stage)`` (the networks' passes inside
        it by their own stages); the merged scores. Item outcomes ``cache`` holds from an earlier run of
        the same inputs are read back, not computed (`agomni.evaluate.stage_cache`)."""
        scores = StageScores()
        for stage, names in self.names.items():
            with request.timed(stage):
                scores.merge(_score_stage(stage, replace(request, names=names), shard, cache))
        return scores

    def comparable(self, scores: StageScores, random_weights: bool) -> bool:
        """Whether the stages' numbers compare with published ones: real weights, and every speech metric's
        backend the published recipe's."""
        speech = self.names.get("speech", ())
        return not (self.names and random_weights) and all(
            scores.details[n]["comparable_with_published"] for n in speech if n in scores.details
        )
