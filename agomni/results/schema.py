"""The results of one evaluation run as dataclasses (schema_version "1"), and their JSON form.

The JSON form is described by `results.schema.json` beside this file; `to_dict` writes every key
(null where a value is absent) and `from_dict` reads exactly that form (plus coverage entries without
``unscored``, as files written before it existed hold them). Checking a dict against the
schema is `agomni.results.store.validate_results_dict`; `from_dict` assumes a checked dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agomni.errors import NotComputableError, WeightsError

from .provenance import Provenance
from .record import Record

SCHEMA_VERSION = "1"
COVERAGE_STATUSES: tuple[str, ...] = ("ok", "missing", "error")
# Why a requested metric has no value: no item could be scored on some side, fewer items than its statistic
# needs, its network's weights are not in the cache or could not be loaded, the metric is not available in
# this version, or its stage raised.
NOT_COMPUTED_KINDS: tuple[str, ...] = ("no-items", "too-few-items", "weights", "unavailable", "exception")
SIDES: tuple[str, ...] = ("generated", "reference", "video", "prompt", "transcript", "text", "")


@dataclass(frozen=True)
class CoverageEntry(Record):
    """What happened to one item: status "ok", "missing" (no output) or "error" (unusable output);
    `reason` says why for every status but "ok" (where it is "").

    `unscored` (metric name -> reason) lists the metrics that could not score an "ok" item although its
    files were read, e.g. LSE-C when no face was found: the item counts as covered, and those metrics
    leave it out of their set values. Results files written before this field existed read as {}.
    """

    id: str
    status: str
    reason: str = ""
    unscored: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "unscored", dict(sorted(self.unscored.items())))


@dataclass(frozen=True)
class Spread(Record):
    """Dispersion of a set-level metric: `kind` ("std", "sem", ...) and `value` in the metric's unit."""

    kind: str
    value: float


@dataclass(frozen=True)
class ConfidenceInterval(Record):
    """[low, high] in the metric's unit at coverage probability `level` (e.g. 0.95), by `method`
    (e.g. "bootstrap-percentile")."""

    low: float
    high: float
    level: float
    method: str


@dataclass(frozen=True)
class SetMetric(Record):
    """One set-level number: `value` in `unit` ("1" when dimensionless), its direction, the reference
    recipe (`profile`) it followed, how many items/samples it came from (`n`) and optional spread/CI."""

    name: str
    value: float
    unit: str
    higher_is_better: bool
    profile: str
    n: int | None = None
    spread: Spread | None = None
    ci: ConfidenceInterval | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SetMetric:
        spread = None if data["spread"] is None else Spread.from_dict(data["spread"])
        ci = None if data["ci"] is None else ConfidenceInterval.from_dict(data["ci"])
        return cls(**{**data, "spread": spread, "ci": ci})


@dataclass(frozen=True)
class NotComputed(Record):
    """A requested metric that has no value in this run, and why.

    `kind` is one of NOT_COMPUTED_KINDS; `reason` is one sentence naming the cause (with the minimum a
    statistic needs where that is the cause); `side` names the input at fault ("generated", "reference",
    "video", "prompt", "transcript", "text"; "" when no side is); `counts` maps each per-item reason to
    its number of items; `items` lists the first few item ids concerned; `hint` says what to do.
    """

    name: str
    kind: str
    reason: str
    side: str = ""
    counts: Mapping[str, int] = field(default_factory=dict, hash=False)
    items: tuple[str, ...] = ()
    hint: str = ""

    def __post_init__(self) -> None:
        if self.kind not in NOT_COMPUTED_KINDS:
            raise ValueError(
                f"not-computed kind {self.kind!r}; expected one of {', '.join(NOT_COMPUTED_KINDS)}"
            )
        if self.side not in SIDES:
            raise ValueError(
                f"not-computed side {self.side!r}; expected one of {', '.join(map(repr, SIDES))}"
            )
        object.__setattr__(self, "counts", dict(self.counts))
        object.__setattr__(self, "items", tuple(self.items))

    @classmethod
    def of(cls, name: str, err: BaseException) -> NotComputed:
        """The entry for metric `name` that failed with `err`: a `NotComputableError` gives its kind,
        side, counts, items and hint; a `WeightsError` is kind "weights"; anything else "exception"
        (its type and message)."""
        if isinstance(err, NotComputableError):
            reason = err.reason.removeprefix(f"{name}: ")
            return cls(name, err.kind, reason, err.side, err.counts, err.items, err.hint)
        if isinstance(err, WeightsError):
            hint = "" if "agomni weights fetch" in str(err) else "agomni weights list shows what is cached"
            return cls(name, "weights", str(err), hint=hint)
        return cls(name, "exception", f"{type(err).__name__}: {err}")


@dataclass(frozen=True)
class RunInfo(Record):
    """What ran: an id, the UTC start time (ISO 8601), the argv, the suite (if any), the folders of
    generated and reference audio, and the samples generated per item."""

    run_id: str
    created_utc: str
    command: tuple[str, ...] = ()
    suite: str | None = None
    pred_dir: str | None = None
    ref_dir: str | None = None
    num_samples: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "command", tuple(self.command))


@dataclass(frozen=True)
class Results:
    """One run's results: `item_scores` (item id -> metric name -> value), set-level `metrics`,
    `coverage` (every item), `provenance`, and `not_computed`: every requested metric without a value,
    with the reason (results files written before this field existed read as none)."""

    run: RunInfo
    provenance: Provenance
    item_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    metrics: tuple[SetMetric, ...] = ()
    coverage: tuple[CoverageEntry, ...] = ()
    not_computed: tuple[NotComputed, ...] = ()
    schema_version: str = SCHEMA_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "coverage", tuple(self.coverage))
        object.__setattr__(self, "not_computed", tuple(self.not_computed))

    @property
    def random_weights(self) -> bool:
        """True when any network with random weights was involved: every output must say so."""
        return self.provenance.random_weights

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "run": self.run.to_dict(),
            "item_scores": {item: dict(scores) for item, scores in self.item_scores.items()},
            "metrics": [metric.to_dict() for metric in self.metrics],
            "coverage": [entry.to_dict() for entry in self.coverage],
            "not_computed": [entry.to_dict() for entry in self.not_computed],
            "provenance": self.provenance.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Results:
        return cls(
            run=RunInfo.from_dict(data["run"]),
            provenance=Provenance.from_dict(data["provenance"]),
            item_scores={item: dict(scores) for item, scores in data["item_scores"].items()},
            metrics=tuple(SetMetric.from_dict(m) for m in data["metrics"]),
            coverage=tuple(CoverageEntry.from_dict(c) for c in data["coverage"]),
            not_computed=tuple(NotComputed.from_dict(n) for n in data.get("not_computed", [])),
            schema_version=data["schema_version"],
        )
