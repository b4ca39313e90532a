"""Items a metric scored but flagged, and corpus-level error rates: read from a run's results.

The per-item stages record, per metric, in ``provenance.settings.metrics[NAME]`` (`agomni.results.settings`): ``flags``
(``[{"id", "flags": [reason, ...]}]``: items scored but suspicious, e.g. non-speech audio or no words
recognised; they keep their value) and, for WER / CER / PER, ``corpus`` (total errors over total
reference words or characters x100, as jiwer computes over the whole set) beside the set value, which is
the utterance mean (the mean of the per-item rates x100). The report and `to_frame` show both from here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from .schema import Results

_KIND_END = re.compile(r" \(|: ")
CORPUS_RATE = (
    "corpus rate: total errors / total reference {units} over the scored items x100 (jiwer over the "
    "whole set); the {name} row is the utterance mean (mean of the per-item rates x100), the convention "
    "of seed-tts-eval and F5-TTS, whose published rows use it"
)


def _details(results: Results) -> Mapping[str, Any]:
    return results.provenance.settings.metrics


def item_flags(results: Results) -> dict[str, dict[str, list[str]]]:
    """Metric -> item id -> its flags, for the metrics of ``results`` that flagged items."""
    out: dict[str, dict[str, list[str]]] = {}
    names = {m.name for m in results.metrics}
    for name, details in _details(results).items():
        entries = details.get("flags") if isinstance(details, Mapping) and name in names else None
        for entry in entries or ():
            out.setdefault(name, {})[str(entry["id"])] = [str(f) for f in entry["flags"]]
    return out


def flag_kind(flag: str) -> str:
    """The reason of a flag without its measured numbers: "non-speech audio (voiced ...)" -> "non-speech
    audio"."""
    return _KIND_END.split(flag, maxsplit=1)[0]


def flag_counts(flags: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Reason (`flag_kind`) -> number of items flagged with it, most frequent first."""
    counts = Counter(kind for item in flags.values() for kind in dict.fromkeys(map(flag_kind, item)))
    return dict(counts.most_common())


def flags_summary(flags: Mapping[str, Sequence[str]]) -> str:
    """ "non-speech audio: 2 (a, b); the recogniser returned no words: 1 (c)" ("" when none)."""
    parts = []
    for kind, count in flag_counts(flags).items():
        ids = [i for i, item in flags.items() if kind in map(flag_kind, item)]
        parts.append(f"{kind}: {count} ({', '.join(ids)})")
    return "; ".join(parts)


def corpus_rates(results: Results) -> dict[str, float]:
    """Metric -> its corpus-level rate (same unit as the metric) for the metrics that record one."""
    names = {m.name for m in results.metrics}
    return {
        name: float(details["corpus"])
        for name, details in _details(results).items()
        if name in names and isinstance(details, Mapping) and details.get("corpus") is not None
    }


def corpus_note(name: str) -> str:
    """What the corpus row of metric ``name`` is, and which convention the published rows use."""
    units = "characters" if name == "cer" else "phones" if name == "per" else "words"
    return CORPUS_RATE.format(units=units, name=name)
