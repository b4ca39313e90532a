"""Which files `agomni eval` scores: generated (pred) and reference (ref) audio per item id.

Two sources:
- **folders** (``--pred DIR --ref DIR``): every audio file directly inside a folder is one item, its id
  the file name without extension (the naming contract of `agomni.manifest.pairing`, one sample per
  item). Two files with the same id (``a.wav`` and ``a.flac``) are a `PairingError`.
- **a manifest** (``--manifest FILE --pred DIR``): generated files are paired with the manifest's items
  by `agomni.manifest.pair_outputs`; references come from ``--ref DIR`` (paired the same way; the folder
  may hold more files than the manifest's items) or from each item's ``reference_audio``.

Nothing is dropped silently. Without ``allow_missing`` every id with a file on one side only, and every
entry of a folder that is not a usable audio file (another extension, a sub-folder, a broken link), is
an error naming them all. With ``allow_missing`` an unpaired item is kept with its one file (the profile
decides per metric whether it is used: `agomni.evaluate.profiles.Profile.uses_for`) and every unused
entry gets a coverage entry (status "error", id ``"<side>/<name>"``). ``ref_superset`` says the
reference folder legitimately holds more than the items (prompts beside references): reference ids
without a generated file and non-audio entries there are then expected, listed in provenance, and the
reference files belong to the reference set. When no metric needs references, only the generated side
is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agomni.errors import PairingError, UsageError
from agomni.io import AUDIO_EXTENSIONS
from agomni.manifest import load_manifest, pair_outputs
from agomni.manifest.pairing import folder_entries
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
    """``items`` to score (input order, unpaired ones included when allowed), ``unused`` coverage entries
    (files not used), ``order`` (every covered id in
    coverage order), the manifest's SHA-256 (None for folders) and ``description`` (for provenance)."""

    items: tuple[EvalItem, ...]
    unused: tuple[CoverageEntry, ...]
    order: tuple[str, ...]
    manifest_sha256: str | None
    description: dict[str, Any]


def listed(ids: list[str]) -> str:
    """Up to 20 ids, quoted, and how many more."""
    more = len(ids) - MAX_LISTED
    return ", ".join(repr(i) for i in ids[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


def scan_folder(folder: Path, what: str) -> tuple[dict[str, Path], dict[str, str]]:
    """Audio files directly inside ``folder`` by id (sorted), and every other entry with why it is not
    used (another extension, a sub-folder, a broken link); "<stem>.json" sidecars of audio files are
    neither."""
    if not folder.is_dir():
        raise UsageError(f"{what} folder {folder} not found (or not a folder)")
    entries = folder_entries(folder, f"{what} folder")
    found: dict[str, list[Path]] = {}
    unused: dict[str, str] = {}
    for entry in entries:
        ext = next((e for e in AUDIO_EXTENSIONS if entry.name.lower().endswith(e)), None)
        if ext is None or len(entry.name) == len(ext):
            unused[entry.name] = f"not an audio file this version reads ({', '.join(AUDIO_EXTENSIONS)})"
        elif entry.is_symlink() and not entry.exists():
            unused[entry.name] = f"a broken symbolic link (to {entry.readlink()})"
        elif not entry.is_file():
            unused[entry.name] = "not a regular file (a folder?)"
        else:
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
    # A generator's "<stem>.json" sidecar beside its audio (agomni generate / run) is metadata, not unused.
    sidecars = [name for name in unused if name.endswith(".json") and name[: -len(".json")] in found]
    for name in sidecars:
        del unused[name]
    return {stem: paths[0] for stem, paths in found.items()}, unused


def _check_complete(
    items: list[EvalItem], unused: dict[str, dict[str, str]], allow_missing: bool, where: str
) -> list[CoverageEntry]:
    """Raise `PairingError` naming every unpaired id and unused file (unless ``allow_missing``); else
    the coverage entries of the unused files."""
    no_pred = [i.id for i in items if i.pred is None]
    no_ref = [i.id for i in items if i.ref is None]
    files = [f"{side}/{name} ({why})" for side, names in unused.items() for name, why in names.items()]
    if not allow_missing and (no_pred or no_ref or files):
        parts = []
        if no_pred:
            parts.append(f"{len(no_pred)} reference id(s) without a generated file: {listed(no_pred)}")
        if no_ref:
            parts.append(f"{len(no_ref)} generated id(s) without a reference file: {listed(no_ref)}")
        if files:
            parts.append(f"{len(files)} folder entr(ies) not used: {', '.join(files[:MAX_LISTED])}")
        raise PairingError(
            f"{where}: every item needs both files and every file must be used; "
            + "; ".join(parts)
            + " (pass --allow-missing to record them in coverage and score the rest; --ref-superset when "
            "the reference folder holds more files than the items)"
        )
    return [
        CoverageEntry(f"{side}/{name}", "error", f"{why}; not used")
        for side, names in unused.items()
        for name, why in names.items()
    ]


def collect_inputs(
    *,
    pred_dir: Path,
    ref_dir: Path | None,
    manifest: Path | None,
    need_reference: bool,
    allow_missing: bool,
    ref_superset: bool = False,
    own_files: tuple[Path, ...] = (),
) -> EvalInputs:
    """Items to score from folders or a manifest (see the module docstring).

    Args:
        pred_dir: folder of generated files.
        ref_dir: folder of reference files, or None (then the manifest's ``reference_audio``).
        manifest: a manifest file, or None for folder mode.
        need_reference: some metric needs reference audio (FD, KAD, KL).
        allow_missing: keep unpaired items and record unused files in coverage instead of raising.
        ref_superset: the reference folder may hold ids without a generated file, and other files.
        own_files: files this run itself writes (its results); one that lies in pred_dir (a run folder
            scored again, as `agomni run` resumes) is this run's output, not an unused file.
    """
    own = {path.resolve() for path in own_files}
    if manifest is None:
        return _from_folders(pred_dir, ref_dir, need_reference, allow_missing, ref_superset, own)
    return _from_manifest(manifest, pred_dir, ref_dir, need_reference, allow_missing, own)


def _not_own(folder: Path, unused: dict[str, str], own: set[Path]) -> dict[str, str]:
    return {name: why for name, why in unused.items() if (folder / name).resolve() not in own}


def _from_folders(
    pred_dir: Path,
    ref_dir: Path | None,
    need_reference: bool,
    allow_missing: bool,
    ref_superset: bool,
    own: set[Path],
) -> EvalInputs:
    if need_reference and ref_dir is None:
        raise UsageError("these metrics compare with reference audio: pass --ref DIR (or --manifest FILE)")
    preds, pred_unused = scan_folder(pred_dir, "generated (--pred)")
    pred_unused = _not_own(pred_dir, pred_unused, own)
    refs, ref_unused = ({}, {})
    if need_reference and ref_dir is not None:
        refs, ref_unused = scan_folder(ref_dir, "reference (--ref)")
    ids = sorted(set(preds) | set(refs))
    items = [EvalItem(i, preds.get(i), refs.get(i) if need_reference else None) for i in ids]
    extra_refs = sorted(set(refs) - set(preds)) if ref_superset else []
    checked = [i for i in items if need_reference and i.id not in extra_refs]
    unused = {"pred": pred_unused, "ref": {} if ref_superset else ref_unused}
    coverage = _check_complete(checked, unused, allow_missing, f"{pred_dir} vs {ref_dir}")
    description = {
        "mode": "folders",
        "pred_dir": str(pred_dir),
        "ref_dir": None if ref_dir is None else str(ref_dir),
        "n_pred_files": len(preds),
        "n_ref_files": len(refs),
        "ref_superset": ref_superset,
        "reference_only_ids": extra_refs,
        "unused": {"pred": sorted(pred_unused), "ref": sorted(ref_unused)},
    }
    order = (*(i for i in ids if i not in extra_refs), *(entry.id for entry in coverage))
    return EvalInputs(tuple(items), tuple(coverage), order, None, description)


def _from_manifest(
    manifest_path: Path,
    pred_dir: Path,
    ref_dir: Path | None,
    need_reference: bool,
    allow_missing: bool,
    own: set[Path],
) -> EvalInputs:
    manifest = load_manifest(manifest_path)
    pairing = pair_outputs(manifest, pred_dir, allow_missing=allow_missing)
    preds = {pair.item.id: pair.outputs[0] for pair in pairing.pairs}
    refs: dict[str, Path] = {}
    if need_reference and ref_dir is not None:
        refs = {
            pair.item.id: pair.outputs[0]
            for pair in pair_outputs(manifest, ref_dir, allow_missing=True).pairs
        }
    elif need_reference:
        refs = {item.id: item.reference_audio for item in manifest.items if item.reference_audio is not None}
    if need_reference and not refs:
        raise UsageError(
            f"{manifest.path}: no item has reference_audio and no --ref DIR was given; these metrics "
            "compare with reference audio"
        )
    items = [EvalItem(i, preds.get(i), refs.get(i)) for i in manifest.ids]
    checked = items if need_reference else []
    ignored = _not_own(
        pred_dir, dict.fromkeys(pairing.ignored, "not an audio output of the naming contract"), own
    )
    unused = {"pred": ignored}
    coverage = _check_complete(checked, unused, allow_missing, f"manifest {manifest.path}")
    description = {
        "mode": "manifest",
        "manifest": str(manifest.path),
        "pred_dir": str(pred_dir),
        "ref_dir": None if ref_dir is None else str(ref_dir),
        "references_from": "ref_dir" if ref_dir is not None else "manifest reference_audio",
        "n_items": len(manifest),
        "unused": {"pred": list(ignored)},
        "sidecars": {"pred": list(pairing.sidecars)},
    }
    order = (*manifest.ids, *(entry.id for entry in coverage))
    return EvalInputs(tuple(items), tuple(coverage), order, manifest.sha256, description)
