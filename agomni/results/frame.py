"""A pandas DataFrame view of results: one row per (item, metric) score and per set-level metric."""

from __future__ import annotations

from pathlib import Path

from .schema import Results
from .store import read_results

COLUMNS = (
    "run",
    "level",
    "item",
    "metric",
    "value",
    "unit",
    "higher_is_better",
    "profile",
    "n",
    "spread",
    "status",
)


def to_frame(results: Results | str | Path):
    """DataFrame of `results` (a Results, a results.json path or a run folder holding one).

    Rows: ``level`` "set" for each set-level metric (``item`` empty, ``n`` and ``spread`` filled) and
    ``level`` "item" for each per-item score (with the item's coverage ``status``); unit, direction and
    recipe (``profile``) on every row. Columns: COLUMNS.
    """
    import pandas as pd  # pandas is imported only by this view

    if not isinstance(results, Results):
        path = Path(results)
        results = read_results(path / "results.json" if path.is_dir() else path)
    by_name = {m.name: m for m in results.metrics}
    status = {c.id: c.status for c in results.coverage}
    rows = []
    for m in results.metrics:
        spread = None if m.spread is None else m.spread.value
        rows.append(
            (
                results.run.run_id,
                "set",
                "",
                m.name,
                m.value,
                m.unit,
                m.higher_is_better,
                m.profile,
                m.n,
                spread,
                "",
            )
        )
    for item, scores in results.item_scores.items():
        for name, value in scores.items():
            m = by_name.get(name)
            unit, better, profile = (m.unit, m.higher_is_better, m.profile) if m else ("", None, "")
            rows.append(
                (
                    results.run.run_id,
                    "item",
                    item,
                    name,
                    value,
                    unit,
                    better,
                    profile,
                    None,
                    None,
                    status.get(item, ""),
                )
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))
