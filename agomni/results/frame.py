"""A pandas DataFrame view of results: one row per (item, metric) score, per set-level metric and per
corpus-level error rate."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

from .flags import corpus_note, corpus_rates, item_flags
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
    "flag_reasons",
)
_Row = namedtuple("_Row", COLUMNS)


def to_frame(results: Results | str | Path):
    """DataFrame of `results` (a Results, a results.json path or a run folder holding one).

    Rows: ``level`` "set" for each set-level metric (``item`` empty, ``n`` and ``spread`` filled),
    ``level`` "corpus" for each corpus-level rate of WER / CER / PER (the "set" row is their utterance
    mean; ``profile`` says which convention is which, `agomni.results.flags`) and ``level`` "item" for
    each per-item score (with the item's coverage ``status`` and, in ``flag_reasons``, the reasons the
    metric flagged it, "; "-separated, "" when none); unit, direction and recipe (``profile``) on every
    row. Columns: COLUMNS.
    """
    import pandas as pd  # pandas is imported only by this view

    if not isinstance(results, Results):
        path = Path(results)
        results = read_results(path / "results.json" if path.is_dir() else path)
    by_name = {m.name: m for m in results.metrics}
    status = {c.id: c.status for c in results.coverage}
    flags, corpus = item_flags(results), corpus_rates(results)
    run_id = results.run.run_id
    rows = []
    for m in results.metrics:
        spread = None if m.spread is None else m.spread.value
        row = _Row(
            run_id, "set", "", m.name, m.value, m.unit, m.higher_is_better, m.profile, m.n, spread, "", ""
        )
        rows.append(row)
        if m.name in corpus:
            profile = f"{corpus_note(m.name)}; {m.profile}"
            rows.append(row._replace(level="corpus", value=corpus[m.name], profile=profile, spread=None))
    for item, scores in results.item_scores.items():
        for name, value in scores.items():
            m = by_name.get(name)
            unit, better, profile = (m.unit, m.higher_is_better, m.profile) if m else ("", None, "")
            state, why = status.get(item, ""), "; ".join(flags.get(name, {}).get(item, ()))
            rows.append(
                _Row(run_id, "item", item, name, value, unit, better, profile, None, None, state, why)
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))
