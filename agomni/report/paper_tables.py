"""Paper-layout tables of a report: one wide table per task, laid out as the anchor papers print them.

Per task (v2a, t2a, tts, v2s, t2song, v2song) one table: rows are systems (this report's runs, then the
suite's published rows, grouped), columns are that task's metrics in the order the anchor papers print
them (the metric registry's ``paper_columns``, `agomni.suites.task_columns`; metrics a task does not list follow in the order the runs report them). Each column
header carries its name, better-direction arrow and unit once (IB-score is cosine x100 as MMAudio prints
it, WER/CER/PER in %, SIM as cosine). A run with replicates shows mean ± std over its replicates; a
metric with a confidence interval shows it. Sources are numbered footnotes. A row that is not comparable
with the published rows (random weights, a recogniser other than the published recipe's, another
protocol) carries a dagger and its reason as a footnote. The best comparable value per column is marked
``best``: among the rows without a dagger, or, when every row has one and the table has no published
rows (e.g. the smoke suite), among the runs, which then compare only with each other.

A run holding several tasks (the smoke suite) gets one table per task, from the items of that task:
per-item metrics average that task's item scores; FD and KAD are recomputed on that task's items from
the run's embedding cache (`agomni.report.embeddings`, first replicate); other set-level metrics have no
per-task value and say so. An "all tasks" table keeps the run's values over every item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agomni.errors import AgomniError
from agomni.manifest import load_manifest
from agomni.results import RunFolder, SetMetric
from agomni.results.flags import corpus_note, corpus_rates, flags_summary, item_flags
from agomni.suites import get_suite, load_metric_specs, read_published, task_columns

from .embeddings import RESAMPLABLE, metric_kind, scored_rows, set_metric_function

ALL_TASKS = "all tasks"


@dataclass(frozen=True)
class Column:
    metric: str
    unit: str
    higher_is_better: bool

    @property
    def label(self) -> str:
        base = self.metric.removesuffix(" (corpus)")
        spec = load_metric_specs().get(base)
        label = spec.label if spec is not None and spec.label else base
        return label if base == self.metric else f"{label} corpus"

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    @property
    def header(self) -> str:
        """Name, arrow and unit, e.g. "IB-score ↑ (cosine x100)"."""
        return f"{self.label} {self.arrow} ({self.unit})"


@dataclass(frozen=True)
class Cell:
    value: float | None
    spread: float | None = None  # std over replicates
    spread_kind: str = ""
    interval: tuple[float, float] | None = None
    n: int | None = None
    note: str = ""  # why there is no value
    best: bool = False
    profile: str = ""  # recipe of a run's value; "published" for a published row
    source: str = ""  # "agomni run FOLDER" or the published row's citation
    url: str = ""
    test_set: str = ""
    flagged: int | None = None  # items scored but flagged (None: not a per-item metric of a run)
    flags: str = ""  # "reason: count (ids); ..." (`agomni.results.flags.flags_summary`)

    @property
    def text(self) -> str:
        if self.value is None:
            return "-"
        text = f"{self.value:.4g}"
        if self.spread is not None:
            text += f" ± {self.spread:.2g}"
        if self.interval is not None:
            text += f" [{self.interval[0]:.4g}, {self.interval[1]:.4g}]"
        return text


@dataclass(frozen=True)
class Footnote:
    number: int
    text: str
    url: str = ""


@dataclass(frozen=True)
class TableRow:
    system: str
    group: str  # "runs" | "published"
    cells: dict[str, Cell]
    footnotes: tuple[int, ...] = ()
    dagger: str = ""  # why this row is not comparable with the published rows ("" when it is)

    @property
    def name(self) -> str:
        return self.system + (" †" if self.dagger else "")


@dataclass
class PaperTable:
    task: str
    title: str
    columns: list[Column]
    rows: list[TableRow]
    footnotes: list[Footnote] = field(default_factory=list)
    best_among: str = "comparable rows (no dagger)"

    def groups(self) -> list[tuple[str, list[TableRow]]]:
        """[("runs", rows), ("published", rows)] without empty groups."""
        out = [(g, [r for r in self.rows if r.group == g]) for g in ("runs", "published")]
        return [(g, rows) for g, rows in out if rows]


class _Notes:
    """Numbered footnotes of one table, each text numbered once in order of first use."""

    def __init__(self) -> None:
        self.items: list[Footnote] = []

    def mark(self, text: str, url: str = "") -> int:
        for note in self.items:
            if (note.text, note.url) == (text, url):
                return note.number
        self.items.append(Footnote(len(self.items) + 1, text, url))
        return len(self.items)


def column_order(task: str, names: Sequence[str]) -> list[str]:
    """The metrics `names` in the anchor papers' order of `task`, the others after in their order."""
    known = [m for m in task_columns(task) if m in names]
    order = [
        m for m in known + [m for m in dict.fromkeys(names) if m not in known] if not m.endswith(" (corpus)")
    ]
    for corpus in (m for m in names if m.endswith(" (corpus)")):  # beside its utterance mean
        base = corpus.removesuffix(" (corpus)")
        order.insert(order.index(base) + 1 if base in order else len(order), corpus)
    return order


def run_dagger(system: Any, metric: str) -> str:
    """Why `metric` of the run `system` (compare.System) is not comparable with published rows ("" if it is)."""
    results = system.results
    if results.random_weights:
        return "random network weights: tests the pipeline, not a measurement"
    suite = results.run.suite
    if suite is not None and not get_suite(suite).comparable_with_published:
        return f"suite {suite}: its protocol is not the published one"
    settings = results.provenance.settings
    details = settings.metric(metric)
    if details.get("comparable_with_published") is False:
        backend = details.get("backend", "an offline backend")
        return f"{metric} scored with {backend}, not the published recipe's recogniser / encoder"
    if settings.comparable_with_published is False:
        return "offline embedders or stand-in weights: not the published recipe"
    return ""


def _metric_cell(system: Any, metric: SetMetric) -> Cell:
    spread = metric.spread
    ci = metric.ci
    flagged = item_flags(system.results).get(metric.name)
    return Cell(
        metric.value,
        None if spread is None else spread.value,
        "" if spread is None else spread.kind,
        None if ci is None else (ci.low, ci.high),
        metric.n,
        profile=metric.profile,
        source=f"agomni run {system.folder}",
        flagged=None if flagged is None else len(flagged),
        flags="" if flagged is None else flags_summary(flagged),
    )


def run_metrics(results: Any) -> list[SetMetric]:
    """The run's set metrics, each error rate with a corpus-level rate followed by the metric ``NAME
    (corpus)``: total errors / total reference words, printed beside the utterance mean
    (`agomni.results.flags`)."""
    rates = corpus_rates(results)
    out = []
    for m in results.metrics:
        out.append(m)
        if m.name in rates:
            note = f"{corpus_note(m.name)}; {m.profile}"
            out.append(SetMetric(f"{m.name} (corpus)", rates[m.name], m.unit, m.higher_is_better, note, m.n))
    return out


def _item_tasks(system: Any) -> dict[str, str]:
    """Item id -> task of the run's manifest ({} when the folder has no run.json)."""
    path = RunFolder(system.folder).manifest_path()
    if path is None or not path.is_file():
        return {}
    return {item.id: item.task for item in load_manifest(path).items}


def _task_cell(system: Any, metric: SetMetric, ids: list[str]) -> Cell:
    """`metric` of `system` over the items `ids` of one task (module docstring)."""
    where = {"profile": metric.profile, "source": f"agomni run {system.folder}"}
    item_scores = system.results.item_scores
    scores = [item_scores[i][metric.name] for i in ids if metric.name in item_scores.get(i, {})]
    if scores:
        return Cell(float(np.mean(scores)), n=len(scores), **where)
    kind = metric_kind(system.results, metric.name)
    if kind not in RESAMPLABLE:
        return Cell(None, note=f"{metric.name}: set-level, computed over all tasks only", **where)
    try:
        rows = scored_rows(system.folder, metric.name)
    except (AgomniError, OSError, KeyError) as err:
        return Cell(None, note=f"{metric.name}: no per-task value ({err})", **where)
    keep = [i for i in ids if i in rows["pred"]]
    if len(keep) < 2:
        return Cell(None, note=f"{metric.name}: fewer than 2 scored items in this task", **where)
    value = set_metric_function(kind)([rows["pred"][i] for i in keep], [rows["ref"][i] for i in keep])
    return Cell(float(value), n=len(keep), **where)


def _mark_best(rows: list[TableRow], columns: list[Column]) -> tuple[list[TableRow], str]:
    comparable = [r for r in rows if not r.dagger]
    among = "comparable rows (no dagger)"
    if not comparable and not any(r.group == "published" for r in rows):
        comparable, among = rows, "this report's runs (none comparable with published numbers)"
    best: dict[str, float] = {}
    for col in columns:
        values = [r.cells[col.metric].value for r in comparable if col.metric in r.cells]
        values = [v for v in values if v is not None]
        if values:
            best[col.metric] = max(values) if col.higher_is_better else min(values)
    ids = {id(r) for r in comparable}
    out = []
    for r in rows:
        cells = {
            m: Cell(**{**c.__dict__, "best": id(r) in ids and c.value is not None and c.value == best.get(m)})
            for m, c in r.cells.items()
        }
        out.append(TableRow(r.system, r.group, cells, r.footnotes, r.dagger))
    return out, among


def _table(
    task: str,
    title: str,
    systems: Sequence[Any],
    cells_of: dict[str, dict[str, Cell]],
    metrics: dict[str, SetMetric],
    published: list[dict[str, str]],
) -> PaperTable:
    notes = _Notes()
    names = [m for cells in cells_of.values() for m in cells] + [p["metric"] for p in published]
    columns = []
    for name in column_order(task, names):
        if name in metrics:
            m = metrics[name]
            columns.append(Column(name, m.unit, m.higher_is_better))
        else:
            p = next(p for p in published if p["metric"] == name)
            columns.append(Column(name, p["unit"], p["higher_is_better"].lower() == "true"))
    rows = []
    for s in systems:
        cells = cells_of[s.label]
        marks = [notes.mark(_run_source(s, cells))]
        marks += [notes.mark(c.note) for c in cells.values() if c.note]
        reasons = sorted({run_dagger(s, m) for m in cells} - {""})
        dagger = "; ".join(reasons)
        if dagger:
            marks.append(notes.mark(f"† not comparable with published numbers: {dagger}"))
        rows.append(TableRow(s.label, "runs", cells, tuple(marks), dagger))
    by_system: dict[str, list[dict[str, str]]] = {}
    for p in published:
        by_system.setdefault(p["system"], []).append(p)
    for system, entries in by_system.items():
        cells = {
            p["metric"]: Cell(
                float(p["value"]),
                profile="published",
                source=p["source"],
                url=p["url"],
                test_set=p["test_set"],
            )
            for p in entries
        }
        marks = tuple(
            dict.fromkeys(
                notes.mark(f"{system}: {p['source']}; test set: {p['test_set']}", p["url"]) for p in entries
            )
        )
        dagger = next((p["not_comparable"] for p in entries if p.get("not_comparable")), "")
        if dagger:
            marks += (notes.mark(f"† not comparable: {dagger}"),)
        rows.append(TableRow(system, "published", cells, marks, dagger))
    rows, among = _mark_best(rows, columns)
    return PaperTable(task, title, columns, rows, notes.items, among)


def _run_source(system: Any, cells: dict[str, Cell]) -> str:
    """The footnote of a run row: folder, checkpoint step, recipes and what the ± means."""
    step = step_of(system)
    recipes = sorted({m.profile for m in system.results.metrics if m.name in cells})
    parts = [f"{system.label}: agomni run {system.folder}"]
    if step is not None:
        parts.append(f"checkpoint step {step}")
    parts.append(f"recipe {', '.join(recipes)}")
    spreads = sorted({c.spread_kind for c in cells.values() if c.spread_kind})
    if spreads:
        parts.append("± = " + ", ".join(spreads))
    return "; ".join(parts)


def step_of(system: Any) -> int | None:
    """The training step of a run's checkpoint (run.json generator), None when not recorded."""
    step = ((system.context.get("generator") or {}).get("checkpoint") or {}).get("step")
    return None if step is None else int(step)


def build_tables(systems: Sequence[Any], suite_name: str | None, against_paper: bool) -> list[PaperTable]:
    """The paper tables of a report (module docstring): per task, then "all tasks" for multi-task runs."""
    if not systems:
        return []
    suite = None if suite_name is None else get_suite(suite_name)
    metrics: dict[str, SetMetric] = {}
    for s in systems:
        for m in run_metrics(s.results):
            metrics.setdefault(m.name, m)
    tasks_of = {s.label: _item_tasks(s) for s in systems}
    tasks = sorted({t for mapping in tasks_of.values() for t in mapping.values()})
    whole = {s.label: {m.name: _metric_cell(s, m) for m in run_metrics(s.results)} for s in systems}
    # the items' own task when they hold one (a suite's task field can be nominal, e.g. smoke)
    task = tasks[0] if len(tasks) == 1 else (suite.task if suite is not None else ALL_TASKS)
    published = read_published(suite) if (suite is not None and against_paper) else []
    if len(tasks) <= 1:
        title = f"{task}: {suite.title}" if suite is not None else f"{task}"
        return [_table(task, title, systems, whole, metrics, published)]
    out = []
    for t in tasks:
        cells_of = {}
        for s in systems:
            ids = [i for i, tt in tasks_of[s.label].items() if tt == t]
            cells_of[s.label] = {m.name: _task_cell(s, m, ids) for m in s.results.metrics}
        n = max(len([i for i in m.values() if i == t]) for m in tasks_of.values())
        out.append(_table(t, f"{t} ({n} items)", systems, cells_of, metrics, []))
    n_all = max(len(m) for m in tasks_of.values())
    title = f"{ALL_TASKS} ({n_all} items, every task together)"
    out.append(_table(ALL_TASKS, title, systems, whole, metrics, published))
    return out
