"""`agomni generate` and `agomni profile`: argument handling around agomni.model.generate / .profile."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import soundfile as sf

from ..atomic import atomic_write
from ..errors import UsageError
from ..manifest import Manifest, load_manifest, output_name
from ..suites import get_suite
from .checkpoint import file_sha256
from .config import model_config
from .flow_matching import DEFAULT_CFG, DEFAULT_STEPS
from .generate import DEFAULT_BATCH_SIZE, GeneratedAudio, generate
from .params import format_param_table
from .profile import ProfileSettings, format_profile, profile_generation

AUDIO_EXT = ".wav"
SIDECAR_EXT = ".json"


def resolve_manifest(
    manifest: str | None, suite: str | None, split: str | None
) -> tuple[Manifest, str | None]:
    """The manifest to generate for, and the suite name when one was given.

    manifest: a JSONL file, or a folder holding ``<split>/manifest.jsonl`` (the toy-corpus layout, with
    --split) or ``manifest.jsonl``. suite: a suite name; suites bundle no item list yet, so a suite needs
    --manifest, and every item's task must be the suite's.
    """
    suite_obj = None if suite is None else get_suite(suite)
    if manifest is None:
        if suite_obj is None:
            raise UsageError("name the items to generate: --manifest FILE (or a suite with --manifest)")
        raise UsageError(
            f"suite {suite_obj.name!r} bundles no item list (test set {suite_obj.test_set}, "
            f"{suite_obj.test_set_size} items, from {suite_obj.test_set_source}); pass --manifest FILE listing them"
        )
    path = Path(manifest)
    if path.is_dir():
        candidate = path / split / "manifest.jsonl" if split else path / "manifest.jsonl"
        if not candidate.is_file():
            hint = "" if split else " (pass --split NAME for a folder of splits, e.g. a toy corpus)"
            raise UsageError(f"{path}: no {candidate.relative_to(path)} in this folder{hint}")
        path = candidate
    elif split is not None:
        raise UsageError(f"--split {split} needs --manifest to be a folder of splits, not the file {path}")
    loaded = load_manifest(path)
    if suite_obj is not None:
        wrong = [f"{item.id} ({item.task})" for item in loaded if item.task != suite_obj.task]
        if wrong:
            shown = ", ".join(wrong[:10]) + (f", ... ({len(wrong)} items)" if len(wrong) > 10 else "")
            raise UsageError(
                f"{loaded.path}: suite {suite_obj.name} is task {suite_obj.task}; items of other tasks: {shown}"
            )
    return loaded, suite


def output_names(manifest: Manifest, num_samples: int) -> list[str]:
    """Every WAV name a run writes (naming contract of agomni.manifest.output_name), in item order."""
    return [
        output_name(item.id, AUDIO_EXT, sample=k, num_samples=num_samples)
        for item in manifest
        for k in range(num_samples)
    ]


def check_out_dir(out_dir: Path, names: Sequence[str]) -> None:
    """UsageError when `out_dir` already holds any of the WAVs or JSON sidecars a run would write."""
    taken = [
        n for n in names for ext in (AUDIO_EXT, SIDECAR_EXT) if (out_dir / Path(n).with_suffix(ext)).exists()
    ]
    if taken:
        raise UsageError(
            f"{out_dir}: already holds {', '.join(sorted(set(taken))[:5])}; use a new or empty --out folder"
        )


def write_output(output: GeneratedAudio, out_dir: Path, run: Mapping[str, Any]) -> Path:
    """Write one output as 32-bit float mono WAV named by the naming contract, plus ``<stem>.json``
    holding `run` (manifest, suite, command), the WAV's name and SHA-256 and the output's metadata.
    Each file is written atomically (temporary name, then rename)."""
    wav = out_dir / output.file_name(AUDIO_EXT)
    data = output.wave.numpy()
    atomic_write(wav, lambda tmp: sf.write(tmp, data, output.sample_rate, "FLOAT", format="WAV"))
    sidecar = {**run, "file": wav.name, "file_sha256": file_sha256(wav), **output.metadata}
    text = json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n"
    atomic_write(wav.with_suffix(SIDECAR_EXT), lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return wav


def command_line(args: argparse.Namespace) -> list[str]:
    """``agomni generate`` with every option that was set (recorded in each sidecar)."""
    options = [
        f"--{key.replace('_', '-')}={value}"
        for key, value in sorted(vars(args).items())
        if key != "command" and value is not None and value is not False
    ]
    if getattr(args, "compile", None) is False:  # --no-compile (a BooleanOptionalAction)
        options.append("--no-compile")
    return ["agomni", "generate", *options]


def _given(args: argparse.Namespace, name: str, default: Any) -> Any:
    """The option's value, or the model's default when it was not given (None)."""
    value = getattr(args, name, None)
    return default if value is None else value


def cli_generate(args: argparse.Namespace) -> int:
    """`agomni generate`: one WAV + JSON sidecar per item and sample in --out, written as items finish."""
    manifest, suite = resolve_manifest(
        getattr(args, "manifest", None), args.suite, getattr(args, "split", None)
    )
    out = Path(args.out)
    check_out_dir(out, output_names(manifest, args.num_samples))
    out.mkdir(parents=True, exist_ok=True)
    run = {
        "manifest": str(manifest.path),
        "manifest_sha256": manifest.sha256,
        "suite": suite,
        "command": command_line(args),
    }
    written: list[Path] = []
    random: list[str] = []

    def sink(output: GeneratedAudio) -> None:
        written.append(write_output(output, out, run))
        random[:] = output.metadata["random_parts"]

    generate(
        manifest.items,
        args.checkpoint,
        seed=args.seed,
        num_samples=args.num_samples,
        duration=getattr(args, "duration", None),
        steps=_given(args, "steps", DEFAULT_STEPS),
        cfg=_given(args, "cfg", DEFAULT_CFG),
        device=getattr(args, "device", "cpu"),
        dtype=getattr(args, "dtype", None),
        compile=getattr(args, "compile", None),
        batch_size=_given(args, "batch_size", DEFAULT_BATCH_SIZE),
        progress=True,
        sink=sink,
    )
    print(
        f"wrote {len(written)} audio files ({len(manifest)} items x {args.num_samples} samples, 32-bit float "
        f"WAV) and their JSON sidecars to {out}"
    )
    if random:
        print(f"RANDOM WEIGHTS in {', '.join(random)}: every file is labelled random_weights: true")
    return 0


def cli_profile(args: argparse.Namespace) -> int:
    """`agomni profile`: --params prints the parameter table (no network run); otherwise times a generation."""
    if args.params:
        print(format_param_table(model_config(args.size, args.duration)))
        return 0
    settings = ProfileSettings(
        size=args.size,
        duration=args.duration,
        steps=_given(args, "steps", DEFAULT_STEPS),
        cfg=_given(args, "cfg", DEFAULT_CFG),
        device=args.device,
        dtype=getattr(args, "dtype", None),
        batch=getattr(args, "batch", 1),
        repeats=getattr(args, "repeats", 3),
        compile=getattr(args, "compile", None),
    )
    print(
        "warning: RANDOM WEIGHTS: agomni profile times random-weight networks; no audio is meaningful",
        file=sys.stderr,
    )
    report = profile_generation(settings, progress=lambda msg: print(msg, file=sys.stderr))
    print(format_profile(report))
    if getattr(args, "json", None):
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"json: {path}")
    return 0
