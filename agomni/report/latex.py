"""The paper tables as a LaTeX document (booktabs): one `table` per task, best values in \\textbf,
footnote marks as superscript numbers, a dagger on rows not comparable, the numbered sources under each
table, the runs and the published rows separated by a \\midrule. Every text from a run folder or a
published table is escaped, so the file compiles whatever the system names hold.
"""

from __future__ import annotations

import re

from .paper_tables import PaperTable

# a link is emitted only in this form (anything else is printed as text): no TeX specials, no scripts
SAFE_URL = re.compile(r"https://[A-Za-z0-9._~:/?=&+-]+")

_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "±": r"$\pm$",
    "†": r"$^\dagger$",
    "∞": r"$\infty$",
}


def escape(text: str) -> str:
    """`text` as LaTeX source (specials escaped; characters outside ASCII other than the arrows, ±, †
    and ∞ become '?', so pdflatex never meets an undeclared character)."""
    out = []
    for ch in str(text):
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 128 and ch.isprintable():
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


def table_tex(table: PaperTable) -> list[str]:
    cols = table.columns
    lines = [
        r"\begin{table}[ht]",
        r"\centering\small",
        rf"\caption{{{escape(table.title)}}}",
        r"\begin{tabular}{l" + "r" * len(cols) + "}",
        r"\toprule",
        "System & " + " & ".join(escape(c.header) for c in cols) + r" \\",
        r"\midrule",
    ]
    for i, (_, rows) in enumerate(table.groups()):
        if i:
            lines.append(r"\midrule")
        for r in rows:
            cells = []
            for c in cols:
                cell = r.cells.get(c.metric)
                text = "" if cell is None else escape(cell.text)
                cells.append(rf"\textbf{{{text}}}" if cell is not None and cell.best else text)
            marks = ",".join(str(n) for n in r.footnotes)
            lines.append(f"{escape(r.name)}$^{{{marks}}}$ & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    lines.append(
        r"\par\footnotesize Bold: best per column among "
        + escape(table.best_among)
        + r". $^\dagger$ not comparable (reason in its footnote).\par"
    )
    for note in table.footnotes:
        url = ""
        if note.url:
            url = rf" \url{{{note.url}}}" if SAFE_URL.fullmatch(note.url) else " " + escape(note.url)
        lines.append(rf"$^{{{note.number}}}$ {escape(note.text)}{url}\par")
    lines += [r"\end{table}", ""]
    return lines


def render_tex(tables: list[PaperTable], title: str) -> str:
    lines = [
        r"\documentclass{article}",
        r"\usepackage[margin=1.5cm,landscape]{geometry}",
        r"\usepackage{booktabs}",
        r"\usepackage{url}",
        r"\begin{document}",
        rf"\section*{{{escape(title)}}}",
        "",
    ]
    for table in tables:
        lines += table_tex(table)
    lines.append(r"\end{document}")
    return "\n".join(lines) + "\n"
