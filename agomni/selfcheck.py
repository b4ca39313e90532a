"""`agomni selfcheck`: exercise the installation end to end on data it generates, with no network.

Each check does real work on real files and compares with an independent expectation (a tone's
frequency measured with numpy's FFT, a problem count we planted). It prints one line per check and
exits 1 if any fails. With --out the generated media, manifest and results JSON are kept there.
The checks that need torch or PyAV (decoding, the weights registry) import those parts of agomni
themselves, so that a broken torch or PyAV fails its own check, with its error, rather than the whole
command.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import EmptyMediaError, NonFiniteAudioError, UsageError
from .manifest import load_manifest, pair_outputs, validate_manifest
from .paths import agomni_home, offline
from .results import Results, RunInfo, SetMetric, collect_provenance, read_results, write_results

TONES_HZ = {"tone_a": 440.0, "tone_b": 660.0, "tone_c": 880.0}
FILE_RATE, CHECK_RATE, SECONDS = 22050, 16000, 1.0


@dataclass
class Workspace:
    root: Path
    facts: dict[str, object] = field(default_factory=dict)


def _tone(freq: float, rate: int, channels: int) -> np.ndarray:
    t = np.arange(int(rate * SECONDS)) / rate
    return np.stack([0.4 * np.sin(2 * np.pi * freq * t)] * channels, axis=1)


def _write_mp3(path: Path, samples: np.ndarray, rate: int) -> None:
    import av

    with av.open(str(path), "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            samples.T.astype(np.float32).reshape(1, -1), format="fltp", layout="mono"
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _dominant_hz(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return float(np.fft.rfftfreq(wave.size, 1 / rate)[np.argmax(spectrum)])


def check_decode(ws: Workspace) -> str:
    """Write wav (stereo), flac and mp3 tones; decode, downmix and resample; measure the frequency."""
    audio = ws.root / "audio"
    audio.mkdir()
    sf.write(audio / "tone_a.wav", _tone(440.0, FILE_RATE, 2), FILE_RATE, subtype="PCM_16")
    sf.write(audio / "tone_b.flac", _tone(660.0, FILE_RATE, 1), FILE_RATE)
    _write_mp3(audio / "tone_c.mp3", _tone(880.0, FILE_RATE, 1), FILE_RATE)
    from .io import load_audio

    found = []
    for path in sorted(audio.iterdir()):
        wave, record = load_audio(path, sample_rate=CHECK_RATE)
        hz = _dominant_hz(wave[0].numpy().astype(np.float64), CHECK_RATE)
        if abs(hz - TONES_HZ[path.stem]) > 2.0:
            raise AssertionError(
                f"{path.name}: dominant frequency {hz:.1f} Hz, wrote {TONES_HZ[path.stem]} Hz"
            )
        found.append(f"{path.suffix[1:]} {hz:.0f} Hz")
        ws.facts[path.stem] = record.to_dict()
    return f"{', '.join(found)} at {CHECK_RATE} Hz (torchaudio-sinc, mean downmix)"


def check_bad_media(ws: Workspace) -> str:
    """An empty file and a NaN wav must raise their typed errors."""
    from .io import load_audio

    empty, nan = ws.root / "empty.wav", ws.root / "nan.wav"
    empty.write_bytes(b"")
    sf.write(nan, np.full((1600, 1), np.nan, dtype=np.float32), CHECK_RATE, subtype="FLOAT")
    for path, expected in ((empty, EmptyMediaError), (nan, NonFiniteAudioError)):
        try:
            load_audio(path)
        except expected as err:
            if path.name not in str(err):
                raise AssertionError(f"{expected.__name__} does not name the file: {err}") from err
        else:
            raise AssertionError(f"{path.name} decoded without {expected.__name__}")
    return "empty file -> EmptyMediaError, NaN wav -> NonFiniteAudioError"


def check_manifest(ws: Workspace) -> str:
    """A valid manifest validates; a copy with a planted duplicate id gives exactly one problem."""
    lines = [
        {"id": stem, "task": "t2a", "text": f"a steady {hz:.0f} Hz tone", "reference_audio": f"audio/{name}"}
        for (stem, hz), name in zip(
            TONES_HZ.items(), sorted(p.name for p in (ws.root / "audio").iterdir()), strict=True
        )
    ]
    good = ws.root / "manifest.jsonl"
    good.write_text("".join(json.dumps(line) + "\n" for line in lines))
    bad = ws.root / "manifest_bad.jsonl"
    bad.write_text(good.read_text() + json.dumps(lines[0]) + "\n")
    problems = validate_manifest(bad)
    if len(problems) != 1 or problems[0].line != len(lines) + 1:
        raise AssertionError(
            f"planted one duplicate on line {len(lines) + 1}, got: {[str(p) for p in problems]}"
        )
    manifest = load_manifest(good)
    ws.facts["manifest"] = manifest
    return f"{len(manifest)} items valid; planted duplicate reported on line {problems[0].line}"


def check_pairing(ws: Workspace) -> str:
    """Outputs named by item id pair one to one; a missing one is recorded with --allow-missing."""
    manifest = ws.facts["manifest"]
    pred = ws.root / "generated"
    pred.mkdir()
    for item in list(manifest)[:-1]:
        (pred / f"{item.id}.wav").write_bytes(item.reference_audio.read_bytes())
    pairing = pair_outputs(manifest, pred, allow_missing=True)
    statuses = [c.status for c in pairing.coverage]
    if statuses.count("ok") != len(manifest) - 1 or statuses.count("missing") != 1:
        raise AssertionError(f"expected one missing item, coverage is {statuses}")
    ws.facts["pairing"] = pairing
    return f"{statuses.count('ok')} paired, 1 missing recorded in coverage"


def check_weights(ws: Workspace) -> str:
    """The registry loads and the cache location is reported; nothing is downloaded."""
    from .weights import entries

    items = entries()
    pinned = sum(1 for e in items if e.pin is not None)
    mode = "offline" if offline() else "online allowed"
    return f"{len(items)} entries ({pinned} with a published checksum); cache {agomni_home()} ({mode})"


def check_results(ws: Workspace) -> str:
    """Write a results JSON with provenance and coverage, read it back, compare."""
    manifest, pairing = ws.facts["manifest"], ws.facts["pairing"]
    from .io import load_audio

    errors = {}
    for pair in pairing.pairs:
        wave, _ = load_audio(pair.outputs[0], sample_rate=CHECK_RATE)
        hz = _dominant_hz(wave[0].numpy().astype(np.float64), CHECK_RATE)
        errors[pair.item.id] = {"frequency_error_hz": abs(hz - TONES_HZ[pair.item.id])}
    results = Results(
        run=RunInfo(
            run_id="selfcheck",
            created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            command=("agomni", "selfcheck"),
            pred_dir=str(ws.root / "generated"),
        ),
        provenance=collect_provenance(
            seed=0, manifest_sha256=manifest.sha256, preprocessing={"sample_rate": CHECK_RATE}
        ),
        item_scores=errors,
        metrics=(
            SetMetric(
                name="frequency_error_hz",
                value=float(np.mean([e["frequency_error_hz"] for e in errors.values()])),
                unit="Hz",
                higher_is_better=False,
                profile="agomni-selfcheck (FFT peak of a decoded test tone)",
                n=len(errors),
            ),
        ),
        coverage=pairing.coverage,
    )
    path = write_results(results, ws.root / "results.json")
    if read_results(path) != results:
        raise AssertionError("results JSON read back differs from what was written")
    return f"{path.name} written and read back (schema v{results.schema_version}, git {results.provenance.git.commit or 'n/a'})"


CHECKS: tuple[tuple[str, Callable[[Workspace], str]], ...] = (
    ("decode audio", check_decode),
    ("reject bad media", check_bad_media),
    ("validate manifest", check_manifest),
    ("pair outputs", check_pairing),
    ("weights registry", check_weights),
    ("results + provenance", check_results),
)


def run_selfcheck(root: Path) -> list[tuple[str, bool, str, float]]:
    """Run every check in `root` (an empty folder); returns (name, passed, detail, seconds) per check.

    A check whose prerequisite failed is reported as failed with that reason, never skipped silently.
    """
    ws, rows = Workspace(root), []
    for name, check in CHECKS:
        start = time.perf_counter()
        try:
            detail, ok = check(ws), True
        except Exception as err:  # a self-check reports every failure, including bugs, and goes on
            detail, ok = f"{type(err).__name__}: {err}".splitlines()[0], False
            ws.facts.setdefault("tracebacks", []).append(traceback.format_exc())
        rows.append((name, ok, detail, time.perf_counter() - start))
    return rows


def cli_selfcheck(args: argparse.Namespace) -> int:
    out = getattr(args, "out", None)
    with tempfile.TemporaryDirectory(prefix="agomni-selfcheck-") as tmp:
        root = Path(out) if out else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        if any(root.iterdir()):
            raise UsageError(f"--out {root} is not empty; give a new or empty folder")
        rows = run_selfcheck(root)
    width = max(len(name) for name, *_ in rows)
    for name, ok, detail, seconds in rows:
        print(f"{'PASS' if ok else 'FAIL'}  {name:<{width}}  {seconds:6.2f} s  {detail}")
    failed = sum(not ok for _, ok, *_ in rows)
    print(
        f"selfcheck: {len(rows) - failed} passed, {failed} failed"
        + (f" (files kept in {out})" if out else "")
    )
    return 1 if failed else 0
