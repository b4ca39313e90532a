"""`--profile-stages` of `agomni eval` / `agomni run`: where a run's wall-clock time went.

The stages are those `agomni.evaluate.pipeline.Timings` records in the results' ``provenance.timings``
(seconds of wall-clock time, each stage's own: a stage inside another is not counted in the outer one):

- ``collect_inputs``, ``load_embedders``: finding the files, building the embedder networks;
- ``hash_files`` (SHA-256 of input files), ``hash_audio`` (SHA-256 of decoded audio), ``cache_io``
  (embedding / stage cache reads and writes);
- ``decode`` (audio files to samples), ``resample`` (a profile's recipe: resampling and its other steps);
- ``embed:NETWORK``: one embedder network's forward passes (NETWORK: embedder@profile);
- ``metrics``: the metric maths (FD / KAD / KL / IS accumulators and their final values);
- per-item stages: ``load:NETWORK`` (building a network, once per stage run: the registry's ``network``,
  or the speech backend), ``decode:METRIC`` / ``decode:speech`` (video and audio decoding),
  ``network:METRIC`` (the scorer's preprocessing and network passes), and ``audio_visual`` /
  ``text_audio`` / ``speech`` for what is left of each stage;
- ``generate`` (`agomni run` only): the generator, outside the evaluation's ``total``.

The table lists them with their share of the whole (``total``, plus ``generate`` where present) and an
``untimed`` row for the rest (argument checks, writing results, progress bars).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agomni.atomic import atomic_write

TIMINGS_FILE = "timings.json"
OUTSIDE_TOTAL = ("generate",)


def breakdown(timings: Mapping[str, float]) -> dict[str, Any]:
    """The stages by decreasing seconds, each with its share of the whole; the whole, and the untimed
    rest (the whole minus every stage)."""
    whole = timings["total"] + sum(timings.get(name, 0.0) for name in OUTSIDE_TOTAL)
    stages = {name: seconds for name, seconds in timings.items() if name != "total"}
    ordered = sorted(stages.items(), key=lambda kv: (-kv[1], kv[0]))
    untimed = whole - sum(stages.values())
    return {
        "unit": "seconds (wall-clock); share: fraction of total_s",
        "total_s": whole,
        "stages": [
            {"stage": name, "seconds": s, "share": s / whole if whole else 0.0} for name, s in ordered
        ],
        "untimed_s": untimed,
    }


def format_breakdown(timings: Mapping[str, float]) -> str:
    """The breakdown as a text table: stage, seconds, share of the whole."""
    table = breakdown(timings)
    rows = [(row["stage"], f"{row['seconds']:.3f}", f"{100 * row['share']:.1f}%") for row in table["stages"]]
    whole = table["total_s"]
    share = table["untimed_s"] / whole if whole else 0.0
    rows.append(("untimed", f"{table['untimed_s']:.3f}", f"{100 * share:.1f}%"))
    rows.append(("total", f"{whole:.3f}", "100.0%"))
    header = ("stage", "seconds", "share")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = [f"{header[0].ljust(widths[0])}  {header[1].rjust(widths[1])}  {header[2].rjust(widths[2])}"]
    lines += [f"{a.ljust(widths[0])}  {b.rjust(widths[1])}  {c.rjust(widths[2])}" for a, b, c in rows]
    return "stage profile (wall-clock seconds, each stage's own time):\n" + "\n".join(lines)


def write_breakdown(timings: Mapping[str, float], folder: Path) -> Path:
    """``folder/timings.json``: the `breakdown` of ``timings``."""
    path = folder / TIMINGS_FILE
    text = json.dumps(breakdown(timings), indent=1) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path
