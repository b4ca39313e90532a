"""Write a report in Markdown, a self-contained HTML page, CSV (long: one row per table x system x
metric, with ``flagged`` and ``flags``: the items a metric scored but flagged, with the count per
reason; wide: one row per table x system), LaTeX (the paper tables, `agomni.report.latex`) and JSON.

The HTML page needs no network: plots are inline SVG and the worst items' audio is embedded as
base64 16-bit WAV data, so the file can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from agomni.atomic import atomic_write
from agomni.errors import UsageError

from .compare import MetricComparison
from .content import ReportContent, build_content
from .latex import render_tex
from .paper_render import long_csv, series_html, series_md, table_html, table_md, wide_csv
from .plots import all_plots

FORMATS = {
    "md": "report.md",
    "html": "index.html",
    "csv": "results.csv",
    "csv-wide": "results-wide.csv",
    "tex": "tables.tex",
    "json": "report.json",
}


FLAGGED_NOTE = (
    "Items scored but flagged (e.g. non-speech audio, no words recognised): they keep their value and "
    "count in the metric; listen to them before trusting the number."
)


NOT_COMPUTED_NOTE = (
    "Requested metrics without a value in a run, and why: `no-items` (no item could be scored on the side "
    "named), `too-few-items` (fewer than the statistic needs), `weights` (not in the cache: the command "
    "fetches them), `unavailable` (not in this version), `exception` (the metric's stage failed). Every "
    "other metric was computed."
)


def _not_computed_cells(entry: dict[str, Any]) -> list[str]:
    """system, metric, why (kind: reason), side, items (count per reason, first ids), what to do."""
    counts = "; ".join(f"{n}: {why}" for why, n in entry["counts"].items())
    first = f" (first: {', '.join(entry['items'])})" if entry["items"] else ""
    return [
        entry["system"],
        entry["name"],
        f"{entry['kind']}: {entry['reason']}",
        entry["side"] or "-",
        (counts + first) or "-",
        entry["hint"] or "-",
    ]


COMPARISON_HEADERS = ("metric", "unit", "better", "base", "new", "delta", "95 % interval", "verdict", "note")


def _comparison_cells(m: MetricComparison) -> list[str]:
    """One comparison row under COMPARISON_HEADERS."""
    ci = "" if m.interval is None else f"[{m.interval.low:+.4g}, {m.interval.high:+.4g}]"
    verdict = m.verdict + (" (REGRESSION)" if m.regression else "")
    arrow = "↑" if m.higher_is_better else "↓"
    return [m.name, m.unit, arrow, _fmt(m.base), _fmt(m.new), f"{m.delta:+.4g}", ci, verdict, m.note]


def _md_cell(text: str) -> str:
    """Text in a Markdown table cell: pipes escaped, line breaks as spaces."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _coverage_counts(cov: dict[str, Any]) -> str:
    """ "ok 3, missing 0, error 1" and, when some metric could not score ok items, "; not scored by
    lse_c 1, lse_d 1"."""
    text = ", ".join(f"{k} {v}" for k, v in cov["counts"].items())
    if cov["unscored_counts"]:
        text += "; not scored by " + ", ".join(f"{k} {v}" for k, v in cov["unscored_counts"].items())
    return text


def _fmt(value: float) -> str:
    return f"{value:.5g}"


def render_md(content: ReportContent) -> str:
    lines = [f"# {content.title}", ""]
    lines += [f"> {note}" for note in content.notes] + ([""] if content.notes else [])
    lines += ["## Results", ""]
    for table in content.tables:
        lines += table_md(table)
    if content.not_computed:
        lines += ["", "## Not computed", "", NOT_COMPUTED_NOTE, ""]
        lines += ["| system | metric | why | side | items | what to do |", "|---|---|---|---|---|---|"]
        lines += [
            "| " + " | ".join(_md_cell(cell) for cell in _not_computed_cells(x)) + " |"
            for x in content.not_computed
        ]
    if content.series is not None:
        lines += series_md(content.series)
    for comp in content.comparisons:
        lines += [
            "",
            f"## Comparison: {comp.new} vs {comp.base}",
            "",
            "Delta = new - base; 95 % seeded bootstrap interval.",
            "",
        ]
        lines += ["| " + " | ".join(COMPARISON_HEADERS) + " |", "|" + "---|" * len(COMPARISON_HEADERS)]
        lines += ["| " + " | ".join(_comparison_cells(m)) + " |" for m in comp.metrics]
    lines += ["", "## Coverage", ""]
    for s in content.systems:
        cov = content.coverage(s)
        counts = _coverage_counts(cov)
        imported = s.context.get("import_coverage") or {}
        found = (
            f"; {imported['found_items']} of {imported['listed_items']} listed items found locally (published: {imported['published_items']})"
            if imported
            else ""
        )
        lines.append(f"- **{s.label}**: {counts}{found}")
        lines += [f"  - `{e['id']}` {e['status']}: {e['reason']}" for e in cov["not_scored"]]
        lines += [f"  - `{u['id']}` ok, not scored by {u['metric']}: {u['reason']}" for u in cov["unscored"]]
    flagged = [(s, content.flags(s)) for s in content.systems]
    if any(f["items"] for _, f in flagged):
        lines += ["", "## Flagged items", "", FLAGGED_NOTE, ""]
        for s, f in flagged:
            for metric, counts in f["counts"].items():
                total = ", ".join(f"{kind} {n}" for kind, n in counts.items())
                lines.append(f"- **{s.label}** {metric}: {total}")
                lines += [
                    f"  - `{x['id']}`: {'; '.join(x['flags'])}" for x in f["items"] if x["metric"] == metric
                ]
    if content.worst:
        lines += [
            "",
            "## Worst items",
            "",
            "| metric | system | item | value | audio |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {w.metric} | {w.system} | {w.item} | {_fmt(w.value)} | {w.audio or ''} |"
            for w in content.worst
        ]
    lines += ["", "## Provenance", ""]
    for s in content.systems:
        lines += [
            f"### {s.label}",
            "",
            "```json",
            json.dumps(content.provenance(s), indent=1, default=str),
            "```",
            "",
        ]
    return "\n".join(lines) + "\n"


def _audio_tag(path: Path | None) -> str:
    if path is None or not path.is_file():
        return ""
    wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wave, -1.0, 1.0), rate, "PCM_16", format="WAV")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<audio controls preload="none" src="data:audio/wav;base64,{data}"></audio>'


def _table(headers: Sequence[str], rows: list[list[str]], css: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;font-size:.9em}
th{background:#f3f3f3}.note{background:#fff3cd;padding:.5em 1em;border-left:4px solid #e0a800}
figure{display:inline-block;margin:.5em}figure svg{max-width:100%;height:auto}.group-published td{color:#555}
tr.separator td{background:#eef;font-style:italic;border-top:2px solid #888}ol.footnotes{font-size:.8em}
.better{color:#1a7f37}.worse{color:#cf222e}pre{background:#f6f8fa;padding:.5em;overflow:auto;font-size:.8em}
"""


def render_html(content: ReportContent) -> str:
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{e(content.title)}</title>"]
    parts.append(f"<style>{STYLE}</style></head><body><h1>{e(content.title)}</h1>")
    parts += [f"<p class='note'>{e(n)}</p>" for n in content.notes]
    parts.append("<h2>Results</h2>" + "".join(table_html(t) for t in content.tables))
    if content.not_computed:
        parts.append(f"<h2>Not computed</h2><p>{e(NOT_COMPUTED_NOTE)}</p>")
        parts.append(
            _table(
                ["system", "metric", "why", "side", "items", "what to do"],
                [[e(cell) for cell in _not_computed_cells(x)] for x in content.not_computed],
            )
        )
    if content.series is not None:
        parts.append("<h2>Checkpoint series</h2>" + series_html(content.series))
    for comp in content.comparisons:
        crow = []
        for m in comp.metrics:
            cells = [e(cell) for cell in _comparison_cells(m)]
            css = {"better": "better", "worse": "worse"}.get(m.verdict, "")
            cells[7] = f"<span class='{css}'>{cells[7]}</span>"
            crow.append(cells)
        parts.append(
            f"<h2>Comparison: {e(comp.new)} vs {e(comp.base)}</h2><p>Delta = new - base; 95 % seeded bootstrap interval.</p>"
        )
        parts.append(_table(COMPARISON_HEADERS, crow, "comparison"))
    plots = all_plots(content)
    if plots:
        parts.append("<h2>Plots</h2>")
        parts += [
            f"<figure class='plot' title='{e(title)}'>{svg}<figcaption>{e(title)}</figcaption></figure>"
            for title, svg in plots
        ]
    parts.append("<h2>Coverage</h2>")
    for s in content.systems:
        cov = content.coverage(s)
        counts = _coverage_counts(cov)
        parts.append(f"<p><b>{e(s.label)}</b>: {e(counts)}</p>")
        rows = [[e(x["id"]), e(x["status"]), "every metric", e(x["reason"])] for x in cov["not_scored"]]
        rows += [[e(x["id"]), "ok", e(x["metric"]), e(x["reason"])] for x in cov["unscored"]]
        if rows:
            parts.append(_table(["item", "status", "not scored by", "reason"], rows))
    flagged = [(s, content.flags(s)) for s in content.systems]
    if any(f["items"] for _, f in flagged):
        parts.append(f"<h2>Flagged items</h2><p>{e(FLAGGED_NOTE)}</p>")
        for s, f in flagged:
            for metric, counts in f["counts"].items():
                total = ", ".join(f"{kind} {n}" for kind, n in counts.items())
                parts.append(f"<p><b>{e(s.label)}</b> {e(metric)}: {e(total)}</p>")
            rows = [[e(x["id"]), e(x["metric"]), e("; ".join(x["flags"]))] for x in f["items"]]
            if rows:
                parts.append(_table(["item", "metric", "flags"], rows))
    if content.worst:
        parts.append("<h2>Worst items</h2>")
        parts.append(
            _table(
                ["metric", "system", "item", "value", "audio"],
                [
                    [e(w.metric), e(w.system), e(w.item), _fmt(w.value), _audio_tag(w.audio)]
                    for w in content.worst
                ],
                "worst",
            )
        )
    parts.append("<h2>Provenance</h2>")
    for s in content.systems:
        parts.append(
            f"<h3>{e(s.label)}</h3><pre>{e(json.dumps(content.provenance(s), indent=1, default=str))}</pre>"
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


RENDERERS: dict[str, Callable[[ReportContent], str]] = {
    "md": render_md,
    "html": render_html,
    "csv": lambda content: long_csv(content.tables),
    "csv-wide": lambda content: wide_csv(content.tables),
    "tex": lambda content: render_tex(content.tables, content.title),
    "json": lambda content: json.dumps(content.to_dict(), indent=1, default=str) + "\n",
}


def write_report(
    run_dirs: Sequence[Path],
    out: Path,
    formats: Sequence[str],
    *,
    compare: bool = True,
    against_paper: bool = False,
    profile: Path | None = None,
    resamples: int = 1000,
) -> list[Path]:
    """Write the report files of `run_dirs` into `out` (names in FORMATS); returns their paths."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UsageError(f"--format {','.join(formats)}: choose from {', '.join(FORMATS)}")
    content = build_content(
        list(run_dirs), compare=compare, against_paper=against_paper, profile=profile, resamples=resamples
    )
    written = []
    for fmt in formats:
        text = RENDERERS[fmt](content)
        written.append(
            atomic_write(out / FORMATS[fmt], lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
        )
    return written
