"""The committed test utterances (tests/metrics/speech_data, made by make_utterances.py), loaded with
soundfile independently of agomni.io: 16 kHz mono float64 arrays by file stem, and their texts."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf

DATA = Path(__file__).parent / "speech_data"


@cache
def utterances() -> dict[str, tuple[np.ndarray, str]]:
    """``{"f2_0": (audio, text), ...}``: voice f2 speaks 8 sentences, voice m1 the first 3."""
    with (DATA / "utterances.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    out = {}
    for row in rows:
        audio, rate = sf.read(str(DATA / row["file"]), dtype="float64")
        assert rate == 16000
        out[Path(row["file"]).stem] = (audio, row["text"])
    return out
