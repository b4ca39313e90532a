"""The paper tables (`agomni.report.paper_tables`) and the checkpoint series as Markdown, HTML and CSV.

Markdown and HTML: per table a heading, one header row (metric, arrow, unit), the runs, a separator row,
the published rows; best values in bold; footnote marks as superscript numbers after the system; the
numbered footnotes (with links) under the table. CSV long: one row per table x system x metric; CSV
wide: one row per table x system, one column per metric (the header names unit and direction).
"""

from __future__ import annotations

import csv
import html
import io

from .latex import SAFE_URL
from .paper_tables import Cell, PaperTable, TableRow
from .series import Series

LONG_COLUMNS = (
    "system",
    "metric",
    "value",
    "unit",
    "direction",
    "task",
    "group",
    "spread",
    "interval_low",
    "interval_high",
    "n",
    "best",
    "not_comparable",
    "profile",
    "source",
    "url",
    "test_set",
    "footnotes",
    "flagged",
    "flags",
)


def _marks(row: TableRow) -> str:
    return ",".join(str(n) for n in row.footnotes)


def _md_cell(cell: Cell | None) -> str:
    if cell is None:
        return ""
    return f"**{cell.text}**" if cell.best else cell.text


def table_md(table: PaperTable) -> list[str]:
    cols = table.columns
    lines = [f"### {table.title}", ""]
    lines.append("| system | " + " | ".join(c.header for c in cols) + " |")
    lines.append("|---|" + "---|" * len(cols))
    for i, (group, rows) in enumerate(table.groups()):
        if i:
            lines.append(f"| *{group}* |" + " |" * len(cols))
        for r in rows:
            cells = " | ".join(_md_cell(r.cells.get(c.metric)) for c in cols)
            lines.append(f"| {r.name} <sup>{_marks(r)}</sup> | {cells} |")
    lines += [
        "",
        f"Bold: best per column among {table.best_among}. † not comparable (reason in its footnote).",
        "",
    ]
    for note in table.footnotes:
        link = f" <{note.url}>" if note.url else ""
        lines.append(f"{note.number}. {note.text}{link}")
    return [*lines, ""]


def series_md(series: Series) -> list[str]:
    lines = [
        "## Checkpoint series",
        "",
        "Each metric against checkpoint step; best checkpoint per metric in bold.",
        "",
    ]
    lines += [
        "| metric | "
        + " | ".join(f"step {p.step} ({p.system})" for p in series.metrics[0].points)
        + " | best |"
    ]
    lines.append("|---|" + "---|" * (len(series.metrics[0].points) + 1))
    for m in series.metrics:
        cells = []
        for p in m.points:
            text = f"{p.value:.4g}" + ("" if p.low is None else f" [{p.low:.4g}, {p.high:.4g}]")
            cells.append(f"**{text}**" if p.system == m.best else text)
        lines.append(f"| {m.metric} {m.arrow} ({m.unit}) | " + " | ".join(cells) + f" | {m.best} |")
    kinds = sorted({p.interval for m in series.metrics for p in m.points if p.interval})
    lines += ["", "Intervals: " + ("; ".join(kinds) if kinds else "none"), ""]
    return lines


def table_html(table: PaperTable) -> str:
    e = html.escape
    cols = table.columns
    head = "<th>system</th>" + "".join(f"<th>{e(c.header)}</th>" for c in cols)
    body = []
    for i, (group, rows) in enumerate(table.groups()):
        css = f"group-{group}"
        if i:
            body.append(f"<tr class='separator'><td colspan='{len(cols) + 1}'>{e(group)}</td></tr>")
        for r in rows:
            tds = []
            for c in cols:
                cell = r.cells.get(c.metric)
                text = "" if cell is None else e(cell.text)
                tds.append(
                    f"<td class='best'><b>{text}</b></td>" if cell and cell.best else f"<td>{text}</td>"
                )
            name = f"{e(r.name)}<sup>{_marks(r)}</sup>"
            body.append(
                f"<tr class='{css}{' dagger' if r.dagger else ''}'><td>{name}</td>{''.join(tds)}</tr>"
            )
    notes = "".join(
        f"<li value='{n.number}'>{e(n.text)}"
        + (f" <a href='{e(n.url)}'>{e(n.url)}</a>" if SAFE_URL.fullmatch(n.url) else f" {e(n.url)}")
        + "</li>"
        for n in table.footnotes
    )
    return (
        f"<h3>{e(table.title)}</h3><table class='paper' data-task='{e(table.task)}'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table><p>Bold: best per column among {e(table.best_among)}. "
        f"† not comparable (reason in its footnote).</p><ol class='footnotes'>{notes}</ol>"
    )


def series_html(series: Series) -> str:
    e = html.escape
    heads = "".join(f"<th>step {p.step} ({e(p.system)})</th>" for p in series.metrics[0].points)
    rows = []
    for m in series.metrics:
        tds = []
        for p in m.points:
            text = f"{p.value:.4g}" + ("" if p.low is None else f" [{p.low:.4g}, {p.high:.4g}]")
            tds.append(f"<td class='best'><b>{text}</b></td>" if p.system == m.best else f"<td>{text}</td>")
        rows.append(
            f"<tr><td>{e(m.metric)} {m.arrow} ({e(m.unit)})</td>{''.join(tds)}<td>{e(m.best)}</td></tr>"
        )
    return (
        "<table class='series'><thead><tr><th>metric</th>"
        f"{heads}<th>best</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _write(columns, rows) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def long_csv(tables: list[PaperTable]) -> str:
    out = []
    for t in tables:
        for r in t.rows:
            for c in t.columns:
                cell = r.cells.get(c.metric)
                if cell is None:
                    continue
                out.append(
                    {
                        "task": t.task,
                        "group": r.group,
                        "system": r.system,
                        "metric": c.metric,
                        "value": "" if cell.value is None else cell.value,
                        "spread": "" if cell.spread is None else cell.spread,
                        "interval_low": "" if cell.interval is None else cell.interval[0],
                        "interval_high": "" if cell.interval is None else cell.interval[1],
                        "n": cell.n or "",
                        "unit": c.unit,
                        "direction": "higher is better" if c.higher_is_better else "lower is better",
                        "best": cell.best,
                        "not_comparable": r.dagger,
                        "profile": cell.profile,
                        "source": cell.source,
                        "url": cell.url,
                        "test_set": cell.test_set,
                        "footnotes": " | ".join(
                            f"{n.number}. {n.text}" for n in t.footnotes if n.number in r.footnotes
                        ),
                        "flagged": "" if cell.flagged is None else cell.flagged,
                        "flags": cell.flags,
                    }
                )
    return _write(LONG_COLUMNS, out)


def wide_csv(tables: list[PaperTable]) -> str:
    """One row per table x system; a metric column per metric of any table, headed "name (unit, arrow)"."""
    headers: dict[str, str] = {}
    for t in tables:
        for c in t.columns:
            headers.setdefault(c.metric, f"{c.metric} ({c.unit}, {c.arrow})")
    columns = ("task", "group", "system", "not_comparable", *headers.values())
    out = []
    for t in tables:
        for r in t.rows:
            row = {"task": t.task, "group": r.group, "system": r.system, "not_comparable": r.dagger}
            for metric, header in headers.items():
                cell = r.cells.get(metric)
                row[header] = "" if cell is None or cell.value is None else cell.text
            out.append(row)
    return _write(columns, out)
