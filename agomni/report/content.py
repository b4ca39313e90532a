"""What a report says, computed once from run folders; the md/html/csv/json writers only lay it out.

Sections: the results table (system x metric, with unit, better-direction arrow, spread, n and the number
of items the metric scored but flagged; for WER / CER / PER a second row with the corpus-level rate beside
the utterance mean, `agomni.results.flags`; published rows of the suite beside them with their source when
asked), the comparison of every run with the first (`agomni.report.compare`), coverage (counts per
system, every item not scored, with the reason, and every item one metric could not score, with the
metric and the reason), flagged items (per metric the count per reason and every item with its flags:
scored but suspicious, e.g. non-speech audio or no words recognised), skipped metrics with the command
that fetches their weights, the worst items per per-item metric (with their generated file), and
provenance (agomni version, git commit, device, seed, generator, checkpoints, import coverage, timings).
Every number carries its unit and direction; a run involving random weights says so in the table.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agomni.errors import UsageError
from agomni.results import RunFolder
from agomni.results.flags import flag_counts, flags_summary, item_flags
from agomni.suites import get_suite, read_published

from .compare import Comparison, System, compare_runs
from .paper_tables import PaperTable, build_tables, run_metrics
from .series import Series, build_series

WORST_ITEMS = 3


@dataclass(frozen=True)
class Row:
    """One system x metric line of the results table."""

    system: str
    metric: str
    value: float
    unit: str
    higher_is_better: bool
    profile: str
    n: int | None
    spread: str
    source: str
    random_weights: bool
    flagged: int | None = None  # items scored but flagged (None: not a per-item metric / published row)
    flags: str = ""  # "reason: count (ids); ..." (`agomni.results.flags.flags_summary`)

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "direction": "higher is better" if self.higher_is_better else "lower is better",
        }


@dataclass(frozen=True)
class WorstItem:
    metric: str
    system: str
    item: str
    value: float
    audio: Path | None


@dataclass
class ReportContent:
    title: str
    systems: list[System]
    rows: list[Row]
    published: list[Row]
    comparisons: list[Comparison]
    worst: list[WorstItem]
    # every requested metric a run has no value for: system, name, kind, side, reason, counts, items, hint
    not_computed: list[dict[str, Any]]
    profile: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    tables: list[PaperTable] = field(default_factory=list)  # the paper layout, one per task
    series: Series | None = None  # metrics against checkpoint step, when every run records its step

    def coverage(self, system: System) -> dict[str, Any]:
        """Counts per status, every item not scored at all (``not_scored``), and every "ok" item some
        metric could not score (``unscored``: id, metric, reason; ``unscored_counts`` per metric)."""
        entries = system.results.coverage
        counts = {s: sum(e.status == s for e in entries) for s in ("ok", "missing", "error")}
        unscored = [
            {"id": e.id, "metric": metric, "reason": reason}
            for e in entries
            for metric, reason in e.unscored.items()
        ]
        return {
            "counts": counts,
            "not_scored": [e.to_dict() for e in entries if e.status != "ok"],
            "unscored": unscored,
            "unscored_counts": dict(sorted(Counter(u["metric"] for u in unscored).items())),
        }

    def flags(self, system: System) -> dict[str, Any]:
        """Items each metric scored but flagged: ``counts`` (metric -> reason -> items) and ``items``
        (id, metric, flags), in metric order."""
        by_metric = item_flags(system.results)
        return {
            "counts": {name: flag_counts(flags) for name, flags in by_metric.items()},
            "items": [
                {"id": item_id, "metric": name, "flags": flags}
                for name, items in by_metric.items()
                for item_id, flags in items.items()
            ],
        }

    def provenance(self, system: System) -> dict[str, Any]:
        prov = system.results.provenance
        ctx = system.context
        return {
            "agomni_version": prov.agomni_version,
            "git_commit": prov.git.commit,
            "git_dirty": prov.git.dirty,
            "device": prov.device,
            "seed": prov.seed,
            "generator": ctx.get("generator"),
            "seeds": ctx.get("seeds"),
            "num_samples": ctx.get("num_samples"),
            "import_coverage": ctx.get("import_coverage"),
            "checkpoints": {k: v.to_dict() for k, v in prov.checkpoints.items()},
            "random_weights": prov.random_weights,
            "timings_s": prov.timings,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "notes": self.notes,
            "rows": [r.to_dict() for r in self.rows],
            "published": [r.to_dict() for r in self.published],
            "comparisons": [c.to_dict() for c in self.comparisons],
            "coverage": {s.label: self.coverage(s) for s in self.systems},
            "flags": {s.label: self.flags(s) for s in self.systems},
            "not_computed": self.not_computed,
            "worst_items": [
                {**w.__dict__, "audio": None if w.audio is None else str(w.audio)} for w in self.worst
            ],
            "provenance": {s.label: self.provenance(s) for s in self.systems},
            "profile": self.profile,
            "tables": [asdict(t) for t in self.tables],
            "series": None if self.series is None else asdict(self.series),
        }


def _rows(system: System) -> list[Row]:
    """One row per metric, and after each metric with a corpus-level rate a row ``NAME (corpus)`` (with
    the flags of its metric)."""
    random = system.results.random_weights
    flags = item_flags(system.results)
    source = f"agomni run {system.folder}"
    out = []
    for m in run_metrics(system.results):
        spread = "" if m.spread is None else f"±{m.spread.value:.4g} ({m.spread.kind})"
        flagged = flags.get(m.name.removesuffix(" (corpus)"), {})
        out.append(
            Row(
                system.label,
                m.name,
                m.value,
                m.unit,
                m.higher_is_better,
                m.profile,
                m.n,
                spread,
                source,
                random,
                len(flagged),
                flags_summary(flagged),
            )
        )
    return out


def _published(suite_name: str | None) -> list[Row]:
    if suite_name is None:
        return []
    rows = []
    for r in read_published(get_suite(suite_name)):
        rows.append(
            Row(
                r["system"],
                r["metric"],
                float(r["value"]),
                r["unit"],
                r["higher_is_better"].lower() == "true",
                "published",
                None,
                "",
                r["source"],
                False,
            )
        )
    return rows


def _audio_files(system: System) -> dict[str, Path]:
    """Item id -> generated file the first replicate scored (from items.jsonl; empty for a folder scored
    before items were recorded)."""
    run = RunFolder(system.folder)
    scored = run.first_replicate() or run
    return scored.scored_files("pred") if scored.items_path.is_file() else {}


def _worst(system: System) -> list[WorstItem]:
    per_metric: dict[str, list[tuple[str, float]]] = {}
    for item_id, scores in system.results.item_scores.items():
        for name, value in scores.items():
            per_metric.setdefault(name, []).append((item_id, value))
    directions = {m.name: m.higher_is_better for m in system.results.metrics}
    files = _audio_files(system)
    out = []
    for name, values in per_metric.items():
        ranked = sorted(values, key=lambda kv: kv[1], reverse=not directions.get(name, False))
        out += [WorstItem(name, system.label, i, v, files.get(i)) for i, v in ranked[:WORST_ITEMS]]
    return out


def _not_computed(system: System) -> list[dict[str, Any]]:
    """The run's not-computed metrics; a run folder written before results listed them gives its skipped
    metrics from run.json instead."""
    entries = [entry.to_dict() for entry in system.results.not_computed]
    named = {entry["name"] for entry in entries}
    for skip in system.context.get("metrics_skipped", []):
        if skip["name"] not in named:
            kind, hint = ("weights", f"run: {skip['command']}") if skip["command"] else ("unavailable", "")
            entries.append(
                {"name": skip["name"], "kind": kind, "reason": skip["reason"], "side": "", "counts": {}}
                | {"items": [], "hint": hint}
            )
    return entries


def build_content(
    run_dirs: list[Path],
    *,
    compare: bool = True,
    against_paper: bool = False,
    profile: Path | None = None,
    resamples: int = 1000,
) -> ReportContent:
    if not run_dirs:
        raise UsageError("name at least one run folder")
    systems = [System.open(folder) for folder in run_dirs]
    labels = [s.label for s in systems]
    if len(set(labels)) != len(labels):
        raise UsageError(f"run folders need distinct names, got {', '.join(labels)}")
    suites = {s.results.run.suite for s in systems}
    suite = next(iter(suites)) if len(suites) == 1 else None
    comparisons = []
    if compare and len(systems) > 1:
        comparisons = [compare_runs(systems[0].folder, s.folder, resamples=resamples) for s in systems[1:]]
    notes = []
    if any(s.results.random_weights for s in systems):
        notes.append(
            "RANDOM WEIGHTS: at least one system involved a network with random (untrained or stand-in) "
            "weights; its numbers test the pipeline and are not comparable with anything published."
        )
    if suite is not None and not get_suite(suite).comparable_with_published:
        notes.append(f"Suite {suite}: its protocol is not comparable with published numbers.")
    not_computed = [{"system": s.label, **entry} for s in systems for entry in _not_computed(s)]
    profile_data = None
    if profile is not None:
        try:
            profile_data = json.loads(Path(profile).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise UsageError(
                f"--profile {profile}: not a readable `agomni profile --json` file ({err})"
            ) from err
    return ReportContent(
        title=f"agomni report: {suite or 'several suites'} ({', '.join(labels)})",
        systems=systems,
        rows=[r for s in systems for r in _rows(s)],
        published=_published(suite) if against_paper else [],
        comparisons=comparisons,
        worst=[w for s in systems for w in _worst(s)],
        not_computed=not_computed,
        profile=profile_data,
        notes=notes,
        tables=build_tables(systems, suite, against_paper),
        series=build_series(systems),
    )
