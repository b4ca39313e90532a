"""Pair generated audio files with manifest items by id, and say for every item whether it is covered.

Naming contract (what a generator writes, what `pair_outputs` reads), in one flat folder:
- one sample per item:        "<id><ext>", e.g. "dog_bark_01.wav"
- K samples per item (K > 1): "<id>__s<k><ext>" for k = 0 .. K-1, e.g. "dog_bark_01__s0.wav";
  k is written in plain decimal, without leading zeros.
`<ext>` is one of the audio extensions (matched without regard to letter case). Ids never contain
"__" (the manifest validator forbids it), so a name splits back into (id, k) one way only.
A generator's JSON sidecar "<stem>.json" beside an audio output "<stem><ext>" (what `agomni generate`
and `agomni run` write) is listed in `Pairing.sidecars`. Other files (logs, partial ".tmp" writes, other
extensions) and sub-folders are not outputs: they are listed in `Pairing.ignored`, not paired.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..errors import PairingError, UsageError
from ..results.schema import CoverageEntry
from .fields import SAMPLE_SEPARATOR
from .load import Item, Manifest

_SAMPLE_SUFFIX = re.compile(re.escape(SAMPLE_SEPARATOR) + r"s(0|[1-9][0-9]*)")


@dataclass(frozen=True)
class Pair:
    """An item and its generated files, ordered by sample index (one file when num_samples is 1)."""

    item: Item
    outputs: tuple[Path, ...]


@dataclass(frozen=True)
class Pairing:
    """The result of pairing: `pairs` (covered items, manifest order), `coverage` (every item, manifest
    order, status "ok" or "missing" with the reason), `ignored` (names in the folder that are neither
    audio outputs nor their sidecars) and `sidecars` (the outputs' "<stem>.json" metadata files)."""

    pred_dir: Path
    num_samples: int
    pairs: tuple[Pair, ...]
    coverage: tuple[CoverageEntry, ...]
    ignored: tuple[str, ...]
    sidecars: tuple[str, ...] = ()


def output_name(item_id: str, ext: str, *, sample: int = 0, num_samples: int = 1) -> str:
    """The file name a generator writes for sample `sample` of item `item_id` (see the module docstring)."""
    if num_samples == 1:
        return f"{item_id}{ext}"
    return f"{item_id}{SAMPLE_SEPARATOR}s{sample}{ext}"


def pair_outputs(
    manifest: Manifest,
    pred_dir: str | Path,
    *,
    allow_missing: bool = False,
    num_samples: int = 1,
    extensions: tuple[str, ...] | None = None,
) -> Pairing:
    """Pair the audio files directly inside `pred_dir` with `manifest`'s items (naming contract above).

    Raises PairingError listing every problem, each naming the id or file: outputs missing for an
    item (unless `allow_missing`), extra outputs matching no item or sample, names that break the
    contract, and duplicates (one item/sample with several files, e.g. "x.wav" and "x.flac").
    With `allow_missing`, an item lacking any of its samples gets coverage status "missing" with the
    reason and is left out of `pairs` (its present samples are not used); extras and duplicates
    still raise. `extensions` defaults to agomni.io.AUDIO_EXTENSIONS.
    """
    if num_samples < 1:
        raise UsageError(f"num_samples must be at least 1, got {num_samples}")
    if extensions is None:
        from ..io import AUDIO_EXTENSIONS  # here, not at the top: agomni.io imports torch (seconds)

        extensions = AUDIO_EXTENSIONS
    exts = tuple(ext.lower() for ext in extensions)
    bad_exts = [ext for ext in exts if not ext.startswith(".") or len(ext) < 2]
    if bad_exts:
        raise UsageError(f"extensions must look like '.wav', got {bad_exts}")
    folder = Path(pred_dir)
    if not folder.is_dir():
        raise PairingError(f"{folder}: output folder not found (or not a folder)")

    known = {item.id for item in manifest.items}
    found: dict[tuple[str, int], list[str]] = defaultdict(list)
    problems: list[str] = []
    ignored: list[str] = []
    audio_stems: set[str] = set()
    for entry in folder_entries(folder, "output folder"):
        ext = next((e for e in exts if entry.name.lower().endswith(e)), None)
        if ext is None or not entry.is_file():
            ignored.append(entry.name)
            continue
        stem = entry.name[: -len(ext)]
        audio_stems.add(stem)
        key, problem = _parse_stem(stem, num_samples, known)
        if problem is not None:
            problems.append(f"{entry.name}: {problem}")
        else:
            found[key].append(entry.name)

    for (item_id, sample), names in found.items():
        if len(names) > 1:
            which = f"id {item_id!r}" + (f" sample {sample}" if num_samples > 1 else "")
            problems.append(f"{which}: several outputs, keep one: {', '.join(names)}")

    pairs: list[Pair] = []
    coverage: list[CoverageEntry] = []
    for item in manifest.items:
        absent = [k for k in range(num_samples) if (item.id, k) not in found]
        if not absent:
            outputs = tuple(folder / found[(item.id, k)][0] for k in range(num_samples))
            pairs.append(Pair(item, outputs))
            coverage.append(CoverageEntry(item.id, "ok", ""))
            continue
        expected = ", ".join(
            output_name(item.id, ".<ext>", sample=k, num_samples=num_samples) for k in absent
        )
        reason = f"no output file in {folder} (expected {expected})"
        if len(absent) < num_samples:
            reason += f"; {num_samples - len(absent)} other sample(s) present but not used"
        if allow_missing:
            coverage.append(CoverageEntry(item.id, "missing", reason))
        else:
            problems.append(f"id {item.id!r}: {reason}")

    if problems:
        head = f"{folder}: {len(problems)} pairing problem(s) against manifest {manifest.path}"
        raise PairingError("\n".join([head, *problems]))
    sidecars = tuple(n for n in ignored if n.endswith(".json") and n[: -len(".json")] in audio_stems)
    others = tuple(n for n in ignored if n not in sidecars)
    return Pairing(folder, num_samples, tuple(pairs), tuple(coverage), others, sidecars)


def folder_entries(folder: Path, what: str) -> list[Path]:
    """The entries directly inside ``folder``, sorted by name; PairingError if it cannot be listed."""
    try:
        return sorted(folder.iterdir(), key=lambda p: p.name)
    except PermissionError as err:
        raise PairingError(
            f"{what} {folder} cannot be listed ({err.strerror}); check its permissions"
        ) from err


def _parse_stem(stem: str, num_samples: int, known: set[str]) -> tuple[tuple[str, int], str | None]:
    """(id, sample index) that file stem `stem` names, and a problem message or None."""
    head, sep, tail = stem.partition(SAMPLE_SEPARATOR)
    match = _SAMPLE_SUFFIX.fullmatch(sep + tail) if sep else None
    if num_samples == 1:
        if sep:
            hint = " (a sample-numbered name, but one sample per item was expected)" if match else ""
            return (stem, 0), f"matches no manifest item{hint}"
        if stem not in known:
            return (stem, 0), "matches no manifest item (extra output)"
        return (stem, 0), None
    if match is None:
        return (stem, 0), (
            f"not named '<id>{SAMPLE_SEPARATOR}s<k>.<ext>' as expected with {num_samples} samples per item"
        )
    sample = int(match.group(1))
    if head not in known:
        return (head, sample), "matches no manifest item (extra output)"
    if sample >= num_samples:
        return (head, sample), f"sample index {sample} out of range (num_samples={num_samples})"
    return (head, sample), None
