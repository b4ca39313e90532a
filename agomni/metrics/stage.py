"""What a per-item stage of `agomni eval` (audio-visual, text-audio, speech) is asked and gives the run.

Such a stage scores each generated item on its own against something the manifest gives (a video, a
caption, a transcript or prompt) and summarises each metric as a mean over the scored items
(`agomni.metrics.item_mean`): its result's details carry ``per_item`` (id -> value), ``errors``
([{"id", "reason", "side"}]) and ``items_scored``. A stage is a function `StageRequest` -> `StageScores`;
`StageScores.file` files one metric's configuration and item outcomes (`agomni.metrics.item_outcomes`);
`agomni.evaluate.item_stages` runs the stages on each rank's part of the items, keeps the outcomes in the
stage cache and combines them into the metric's result (`StageScores.add_result`).

Each per-item family of the metric registry (evaluation/metrics.json ``family``) is served by one module
that exposes ``STAGE``, a `FamilyStage`; `family_stage` finds it by the family name, so that the
evaluation and the runner use a family through this interface only, never its module's internals.
"""

from __future__ import annotations

import importlib
import re
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from agomni.errors import AgomniError, NoScorableItemsError, UsageError
from agomni.manifest import Item, load_manifest
from agomni.metrics.base import MetricResult
from agomni.results import NotComputed, SetMetric

if TYPE_CHECKING:
    from agomni.metrics.item_outcomes import ItemOutcome, MetricConfig

    OnFiled = Callable[[str, MetricConfig, dict[str, ItemOutcome]], None]

T = TypeVar("T")

#: What to do when no item could be scored, by the side at fault.
HINTS: dict[str, str] = {
    "generated": "check the generated files named (format, length, silence) and regenerate them",
    "reference": "give the items reference audio (the manifest's reference_audio or --ref), or request "
    "metrics that need none",
    "video": "give each item a readable video as long as the metric needs (see the reasons), or leave the "
    "metric out with --metrics",
    "prompt": "give each item a readable prompt_audio in the manifest",
    "transcript": "give each item a non-empty text in the manifest, in the suite's language",
    "text": "give each item a caption (the manifest's text field)",
}
SHOWN_ITEMS = 5
#: The module serving each per-item family of the metric registry (its ``STAGE``).
FAMILY_MODULES: dict[str, str] = {
    "audio_visual": "agomni.metrics.av.eval_stage",
    "text_audio": "agomni.metrics.text_audio.eval_stage",
    "speech": "agomni.metrics.speech.eval_stage",
}


def _general(reason: str) -> str:
    """A per-item reason without its leading file path, so equal problems of different files count together."""
    return re.sub(r"^\S*/\S*: ", "", reason)


def no_scorable_items(
    name: str, errors: Mapping[str, str], sides: Mapping[str, str], empty_side: str = "generated"
) -> NoScorableItemsError:
    """The error of metric `name` when no item could be scored: `errors` (item id -> reason) counted per
    reason, the side most items failed on (`sides`: item id -> side; "generated" where not given), the
    first item ids and what to do; without errors, no `empty_side` item was given at all."""
    if not errors:
        return NoScorableItemsError(
            f"{name}: no {empty_side} item was given", side=empty_side, hint=HINTS.get(empty_side, "")
        )
    side_counts = Counter(sides.get(i, "generated") for i in errors)
    side = max(side_counts, key=lambda s: (side_counts[s], s == "generated"))
    counts = Counter(_general(reason) for reason in errors.values())
    return NoScorableItemsError(
        f"{name}: none of {len(errors)} item(s) could be scored ({side} side)",
        side=side,
        counts=dict(counts.most_common()),
        items=tuple(sorted(errors))[:SHOWN_ITEMS],
        hint=HINTS.get(side, ""),
        per_item={i: (reason, sides.get(i, "generated")) for i, reason in errors.items()},
    )


@dataclass(frozen=True)
class ManifestNeed:
    """What a stage's metrics read from each manifest item (``needs``) and in which ``fields``: without
    ``--manifest`` the run is refused before any work (`error`)."""

    needs: str
    fields: str = ""

    def error(self, names: Sequence[str]) -> UsageError:
        where = f" ({self.fields})" if self.fields else ""
        return UsageError(f"{', '.join(names)} {self.needs}: pass --manifest{where}")


@dataclass(frozen=True)
class StageRequest:
    """One stage's metric ``names``, the generated files to score (``pred``: id -> path, the items the
    run covers "ok"), the ``manifest`` that gives what they are judged against, and the run's options:
    ``batch_size`` (windows / segments / clips per network call of the audio-visual scorers; None: each
    scorer's default), ``backends`` (the speech stage's recogniser / speaker encoder) and ``protocol`` (the
    suite's protocol, which the speech stage's normalisers follow)."""

    names: tuple[str, ...]
    pred: dict[str, Path]
    manifest: Path | None
    random_weights: bool
    device: str
    seed: int
    progress: bool
    batch_size: int | None = None
    backends: tuple[str, ...] = ()
    protocol: str | None = None
    strict: bool = False  # --strict: a metric that cannot be computed ends the run (no isolation)
    # called with (name, configuration, item outcomes) as soon as a metric is filed (`StageScores.file`):
    # the run keeps them
    on_filed: OnFiled | None = field(default=None, compare=False, repr=False)
    # ``timed(stage)``: a context manager that adds the block's seconds to the run's stage timings
    # (`agomni.evaluate.pipeline.Timings.stage`; stage names: `agomni.evaluate.stage_profile`)
    timed: Callable[[str], AbstractContextManager[Any]] = field(
        default=nullcontext, compare=False, repr=False
    )
    # the networks `network` built, kept for the next calls that carry the same dict (None: none kept);
    # `agomni.evaluate.item_stages` gives one to all the chunks of a network's metrics, then empties it
    networks: dict[tuple[Any, ...], Any] | None = field(default=None, compare=False, repr=False)

    def network(self, name: str, build: Callable[[], T]) -> T:
        """Network ``name`` (the registry's ``network``, or a speech backend) as ``build`` makes it for this
        request, timed as ``load:NAME``; kept in ``networks`` under the name and the options a build reads
        (random weights, seed, device, batch size, backends), so that the calls sharing that dict build it
        once."""
        key = (name, self.random_weights, self.seed, self.device, self.batch_size, self.backends)
        if self.networks is not None and key in self.networks:
            return self.networks[key]
        with self.timed(f"load:{name}"):
            built = build()
        if self.networks is not None:
            self.networks[key] = built
        return built

    def manifest_items(self, need: ManifestNeed) -> dict[str, Item]:
        """The manifest's items by id; without a manifest the `UsageError` of `need`."""
        if self.manifest is None:
            raise need.error(self.names)
        return {item.id: item for item in load_manifest(self.manifest).items}


@dataclass
class StageScores:
    """Set metrics, per-item scores (id -> metric -> value), the items each metric could not score
    (id -> metric -> reason: the run's coverage entry of the item lists them under ``unscored``),
    per-metric details (configuration, checkpoints, errors) for the provenance, the metrics that
    could not be computed at all (`isolated`), and those a stage filed as item outcomes (`file`)."""

    metrics: list[SetMetric] = field(default_factory=list)
    item_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    unscored: dict[str, dict[str, str]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    not_computed: list[NotComputed] = field(default_factory=list)
    filed: list[str] = field(default_factory=list)
    on_filed: OnFiled | None = field(default=None, compare=False, repr=False)

    @contextmanager
    def isolated(self, names: Sequence[str], strict: bool = False) -> Iterator[None]:
        """Run the block that computes metrics ``names``; if it raises, each of them not yet filed becomes
        a "not computed" entry (`NotComputed.of`: kind, side, counts, hint) and the stage goes on with its
        next metric. ``strict`` re-raises instead. Interrupts (Ctrl-C) and exits always propagate."""
        try:
            yield
        except Exception as err:
            if strict:
                raise
            if not isinstance(
                err, AgomniError
            ):  # a bug or a library failure: its trace helps whoever reports it
                traceback.print_exc(file=sys.stderr)
            done = {m.name for m in self.metrics} | {n.name for n in self.not_computed} | set(self.filed)
            self.not_computed += [NotComputed.of(name, err) for name in names if name not in done]

    def file(self, name: str, config: MetricConfig, outcomes: dict[str, ItemOutcome]) -> None:
        """File metric `name` as scored by a stage: its configuration and item outcomes go to ``on_filed``
        (`agomni.evaluate.item_stages` keeps and combines them)."""
        self.filed.append(name)
        if self.on_filed is not None:
            self.on_filed(name, config, outcomes)

    def add_result(self, name: str, result: MetricResult) -> None:
        """File metric `name`'s per-item-mean result: values per item, errors as unscored reasons, the
        remaining details, and the set value (n = the items scored)."""
        details = dict(result.details)
        for item_id, value in details.pop("per_item").items():
            self.item_scores.setdefault(item_id, {})[name] = value
        for error in details["errors"]:
            self.unscored.setdefault(error["id"], {})[name] = error["reason"]
        self.details[name] = {"unit": result.unit, "recipe": result.recipe, **details}
        self.metrics.append(
            SetMetric(
                name=name,
                value=result.value,
                unit=result.unit,
                higher_is_better=result.higher_is_better,
                profile=result.recipe,
                n=details["items_scored"],
            )
        )

    def merge(self, other: StageScores) -> None:
        """Add another stage's scores (metric names never overlap between stages)."""
        self.metrics += other.metrics
        for target, source in ((self.item_scores, other.item_scores), (self.unscored, other.unscored)):
            for item_id, values in source.items():
                target.setdefault(item_id, {}).update(values)
        self.details.update(other.details)
        self.not_computed += other.not_computed


def _no_backends(names: Sequence[str], backends: Sequence[str]) -> None:
    """A family without backends accepts none (backends are the speech family's option)."""


def _suite_backends(suite: Sequence[str], requested: Sequence[str]) -> tuple[str, ...]:
    return tuple(requested)


@dataclass(frozen=True)
class FamilyStage:
    """What a per-item metric family offers the evaluation and the runner (module docstring).

    - ``score``: the stage itself, `StageRequest` -> `StageScores`;
    - ``manifest_need``: what its metrics ``names`` read from the manifest (None: nothing), checked before
      any work;
    - ``weights_needed(name, backends, random_weights)``: the weights-cache entries a metric needs with the
      chosen backends (None: the registry row's ``weights``, none with random weights);
    - ``check_backends(names, backends)``: a `UsageError` before any work for backends (``--speech-backend``)
      that are unknown, or that none of ``names`` uses;
    - ``resolve_backends(suite, requested)``: the backends a run uses: the suite's, each replaced by a
      requested one of the same role.
    """

    score: Callable[[StageRequest], StageScores]
    manifest_need: Callable[[tuple[str, ...]], ManifestNeed | None]
    weights_needed: Callable[[str, Sequence[str], bool], tuple[str, ...]] | None = None
    check_backends: Callable[[Sequence[str], Sequence[str]], None] = _no_backends
    resolve_backends: Callable[[Sequence[str], Sequence[str]], tuple[str, ...]] = _suite_backends


def family_stage(family: str) -> FamilyStage:
    """The `FamilyStage` of a per-item family ("audio_visual", "text_audio", "speech")."""
    if family not in FAMILY_MODULES:
        raise UsageError(
            f"metric family {family!r} has no per-item stage; families: {', '.join(FAMILY_MODULES)}"
        )
    return importlib.import_module(FAMILY_MODULES[family]).STAGE
