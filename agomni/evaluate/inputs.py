"""Which files `agomni eval` scores: generated (pred) and reference (ref) audio per item id, and the
items that are missing.

Two sources:
- **folders** (``--pred DIR --ref DIR``): every audio file directly inside a folder is one item, its id
  the file name without extension (the naming contract of `agomni.manifest.pairing`, one sample per
  item). Other files are listed as ignored in provenance. Two files with the same id (``a.wav`` and
  ``a.flac``) are a `PairingError`.
- **a manifest** (``--manifest FILE --pred DIR``): generated files are paired with the manifest's items
  by `agomni.manifest.pair_outputs`; references come from ``--ref DIR`` (paired the same way) or from
  each item's ``reference_audio``.

Paired metrics (KL) need both files of an item. Without ``allow_missing`` an item lacking one side is
a `PairingError` naming every such id; with it, the item gets coverage status "missing" with the
reason. Set metrics (FD, KAD) do not pair: an id with one side only is a usable item of that set.
An item that is not covered "ok" contributes nothing to any metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agomni.errors import PairingError, UsageError
from agomni.io import AUDIO_EXTENSIONS
from agomni.manifest import load_manifest, pair_outputs
from agomni.results import CoverageEntry

MAX_LISTED = 20


@dataclass(frozen=True)
class EvalItem:
    """One item id with its generated (``pred``) and reference (``ref``) file, either may be None."""

    id: str
    pred: Path | None
    ref: Path | None

    def files(self) -> list[tuple[str, Path]]:
        """(side, path) for the sides present, pred first."""
        return [(side, path) for side, path in (("pred", self.pred), ("ref", self.ref)) if path is not None]


@dataclass(frozen=True)
class EvalInputs:
    """``items`` to score (input order), ``missing`` coverage entries, ``order`` (every id in coverage
    order), the manifest's SHA-256 (None for folders) and ``description`` (for provenance)."""

    items: tuple[EvalItem, ...]
    missing: tuple[CoverageEntry, ...]
    order: tuple[str, ...]
    manifest_sha256: str | None
    description: dict[str, Any]


def scan_folder(folder: Path, what: str) -> tuple[dict[str, Path], list[str]]:
    """Audio files directly inside ``folder`` by id (sorted), and the names of everything else."""
    if not folder.is_dir():
        raise UsageError(f"{what} folder {folder} not found (or not a folder)")
    found: dict[str, list[Path]] = {}
    ignored: list[str] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        ext = next((e for e in AUDIO_EXTENSIONS if entry.name.lower().endswith(e)), None)
        if ext is None or not entry.is_file() or len(entry.name) == len(ext):
            ignored.append(entry.name)
            continue
        found.setdefault(entry.name[: -len(ext)], []).append(entry)
    duplicates = [
        f"{stem}: {', '.join(p.name for p in paths)}" for stem, paths in found.items() if len(paths) > 1
    ]
    if duplicates:
        raise PairingError(f"{folder}: several {what} files for one id, keep one: " + "; ".join(duplicates))
    if not found:
        raise UsageError(
            f"{what} folder {folder} holds no audio files (extensions: {', '.join(AUDIO_EXTENSIONS)})"
        )
    return {stem: paths[0] for stem, paths in found.items()}, ignored


def _listed(ids: list[str]) -> str:
    more = len(ids) - MAX_LISTED
    return ", ".join(repr(i) for i in ids[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


def _split_unpaired(
    items: list[EvalItem], paired: bool, allow_missing: bool, where: str
) -> tuple[list[EvalItem], list[CoverageEntry]]:
    """For paired metrics, move items lacking a side to "missing" (allow_missing) or raise."""
    if not paired:
        return items, []
    lacking = [item for item in items if item.pred is None or item.ref is None]
    if lacking and not allow_missing:
        no_pred = [i.id for i in lacking if i.pred is None]
        no_ref = [i.id for i in lacking if i.ref is None]
        parts = []
        if no_pred:
            parts.append(f"{len(no_pred)} reference id(s) without a generated file: {_listed(no_pred)}")
        if no_ref:
            parts.append(f"{len(no_ref)} generated id(s) without a reference file: {_listed(no_ref)}")
        raise PairingError(
            f"{where}: paired metrics (KL) need both files of every item; "
            + "; ".join(parts)
            + " (pass --allow-missing to record them as missing and score the rest)"
        )
    missing = [
        CoverageEntry(
            item.id,
            "missing",
            f"no generated file (reference {item.ref})"
            if item.pred is None
            else f"no reference file (generated {item.pred}); paired metrics need both",
        )
        for item in lacking
    ]
    return [item for item in items if item not in lacking], missing


def collect_inputs(
    *,
    pred_dir: Path,
    ref_dir: Path | None,
    manifest: Path | None,
    paired: bool,
    need_reference: bool,
    allow_missing: bool,
) -> EvalInputs:
    """Items to score from folders or a manifest (see the module docstring).

    Args:
        pred_dir: folder of generated files.
        ref_dir: folder of reference files, or None (then the manifest's ``reference_audio``).
        manifest: a manifest file, or None for folder mode.
        paired: some metric pairs pred and ref by id (KL).
        need_reference: some metric needs reference audio (FD, KAD, KL).
        allow_missing: record unpaired/missing items in coverage instead of raising.
    """
    if manifest is None:
        return _from_folders(pred_dir, ref_dir, paired, need_reference, allow_missing)
    return _from_manifest(manifest, pred_dir, ref_dir, paired, need_reference, allow_missing)


def _from_folders(
    pred_dir: Path, ref_dir: Path | None, paired: bool, need_reference: bool, allow_missing: bool
) -> EvalInputs:
    if need_reference and ref_dir is None:
        raise UsageError("these metrics compare with reference audio: pass --ref DIR (or --manifest FILE)")
    preds, pred_ignored = scan_folder(pred_dir, "generated (--pred)")
    refs, ref_ignored = scan_folder(ref_dir, "reference (--ref)") if ref_dir is not None else ({}, [])
    ids = sorted(set(preds) | set(refs))
    items = [EvalItem(i, preds.get(i), refs.get(i)) for i in ids]
    usable, missing = _split_unpaired(items, paired, allow_missing, f"{pred_dir} vs {ref_dir}")
    description = {
        "mode": "folders",
        "pred_dir": str(pred_dir),
        "ref_dir": None if ref_dir is None else str(ref_dir),
        "n_pred_files": len(preds),
        "n_ref_files": len(refs),
        "ignored": {"pred": pred_ignored, "ref": ref_ignored},
    }
    return EvalInputs(tuple(usable), tuple(missing), tuple(ids), None, description)


def _from_manifest(
    manifest_path: Path,
    pred_dir: Path,
    ref_dir: Path | None,
    paired: bool,
    need_reference: bool,
    allow_missing: bool,
) -> EvalInputs:
    manifest = load_manifest(manifest_path)
    pairing = pair_outputs(manifest, pred_dir, allow_missing=allow_missing)
    preds = {pair.item.id: pair.outputs[0] for pair in pairing.pairs}
    missing = [entry for entry in pairing.coverage if entry.status != "ok"]
    ref_ignored: list[str] = []
    if ref_dir is not None:
        ref_pairing = pair_outputs(manifest, ref_dir, allow_missing=True)
        refs = {pair.item.id: pair.outputs[0] for pair in ref_pairing.pairs}
        ref_ignored = list(ref_pairing.ignored)
    else:
        refs = {item.id: item.reference_audio for item in manifest.items if item.reference_audio is not None}
    if need_reference and not refs:
        raise UsageError(
            f"{manifest.path}: no item has reference_audio and no --ref DIR was given; these metrics "
            "compare with reference audio"
        )
    taken = {entry.id for entry in missing}
    items = [EvalItem(i, preds.get(i), refs.get(i)) for i in manifest.ids if i not in taken]
    usable, unpaired = _split_unpaired(items, paired, allow_missing, f"manifest {manifest.path}")
    description = {
        "mode": "manifest",
        "manifest": str(manifest.path),
        "pred_dir": str(pred_dir),
        "ref_dir": None if ref_dir is None else str(ref_dir),
        "references_from": "ref_dir" if ref_dir is not None else "manifest reference_audio",
        "n_items": len(manifest),
        "ignored": {"pred": list(pairing.ignored), "ref": ref_ignored},
    }
    return EvalInputs(tuple(usable), tuple(missing + unpaired), manifest.ids, manifest.sha256, description)
