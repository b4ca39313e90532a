"""Generator adapters of `agomni run`: who makes the audio for a suite's items.

Spellings of ``--generator SPEC``:
- ``checkpoint:PATH``: the reference model (`agomni.model.generate.AudioGenerator`) with a checkpoint,
  built once per run on first use and reused for every seed and after a failed item;
- ``folder:DIR``: files generated elsewhere, named by the naming contract (``<id>.<ext>``, ext one of
  `agomni.io.AUDIO_EXTENSIONS`); with several seeds or samples, ``DIR/seed-<s>/sample-<k>/`` when that
  folder exists, else DIR for every replicate;
- ``python:module:function``: ``function(item)`` for one `agomni.manifest.Item` returns
  ``(waveform, sample_rate)`` (array-like [samples], [channels, samples] or [samples, channels]; float, or
  int16/int32 PCM) or a path of an audio file; checked by `agomni.run.output_checks`;
- ``ground-truth:reference``: each item's own reference audio (copied into the run folder, never
  touched where it lies), to score a test set's ground truth as if generated (`agomni calibrate`);
- ``command:TEMPLATE``: a program run once per item, without a shell: the template is split into
  arguments once (`shlex.split`, so quotes group words), then the fields ``{id} {text} {transcript}
  {lyrics} {video} {duration} {out}`` are substituted inside each argument (absent fields are empty
  strings; ``{out}`` is the WAV path the program must write). A field's text is never parsed by a shell,
  whatever quotes surround it; to use shell features, name a script (``bash gen.sh {out} {text}``). The
  program runs in its own process group with a per-item timeout; on a timeout or Ctrl-C the whole group
  is stopped.

Layout: replicate (seed s, sample k) of a run writes ``RUN/seed-<s>/sample-<k>/<id>.wav`` plus a JSON
sidecar, each file atomically, so an interrupted run keeps every finished item and a new run skips them
(resume). A file is reused only when its sidecar names this run's generator and settings
(`Generator.describe`), seed and sample, and its SHA-256 is the one the sidecar recorded; any other file
is an error naming the mismatch, or is regenerated with ``overwrite``. Every failure of one item
(exception or ``sys.exit`` in user code, non-zero exit, timeout, no file, unreadable file, a refused
output) becomes a `Failure` with the item id and reason, and the item's temporary files are removed; the
run goes on with the other items and the failure is a coverage entry of the results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import shlex
import shutil
import signal
import string
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf
import torch
from tqdm import tqdm

from agomni.atomic import atomic_write
from agomni.errors import AgomniError, UsageError
from agomni.io import AUDIO_EXTENSIONS
from agomni.manifest import Item
from agomni.manifest.fields import SAMPLE_SEPARATOR
from agomni.manifest.pairing import folder_entries
from agomni.model.checkpoint import file_sha256, load_model_checkpoint
from agomni.model.cli import write_output
from agomni.model.flow_matching import DEFAULT_CFG, DEFAULT_STEPS
from agomni.model.generate import AudioGenerator, GeneratedAudio

from .output_checks import OutputRejected, checked_audio

KINDS = ("checkpoint", "folder", "python", "command", "ground-truth")
TEMPLATE_FIELDS = ("id", "text", "transcript", "lyrics", "video", "duration", "out")
AUDIO_EXT = ".wav"


@dataclass(frozen=True)
class Failure:
    """One item a generator could not produce, and why (becomes a coverage entry)."""

    id: str
    reason: str


@dataclass(frozen=True)
class Replicate:
    """Where one (seed, sample) replicate of a run lives and what it needs."""

    seed: int
    sample: int
    folder: Path

    @property
    def name(self) -> str:
        return f"seed-{self.seed}/sample-{self.sample}"


@dataclass(frozen=True)
class GenSettings:
    """Settings every adapter may use: reference-model options and the checks on produced files."""

    steps: int = DEFAULT_STEPS
    cfg: float = DEFAULT_CFG
    device: str = "cpu"
    dtype: str = "fp32"
    sample_rate: int = 16000
    timeout_s: float = 600.0
    progress: bool = True


def _reuse_problem(wav: Path, sidecar: Path, expected: dict[str, Any], rep: Replicate) -> str | None:
    """Why `wav` is not what this run would have made (None when it is): its sidecar's generator and
    settings, seed, sample or file hash differ, or it has none."""
    if not sidecar.is_file():
        return f"it has no sidecar {sidecar.name} (put there by hand, or a run killed between the two writes)"
    try:
        doc = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"its sidecar {sidecar.name} is unreadable ({err})"
    if not isinstance(doc, dict):
        return f"its sidecar {sidecar.name} is not a JSON object"
    made_by = doc.get("generator")
    if made_by != expected:
        if not isinstance(made_by, dict):
            return f"its sidecar names no generator (this run: {expected['spec']!r})"
        if made_by.get("spec") != expected["spec"]:
            return f"made by generator {made_by.get('spec')!r}, this run's is {expected['spec']!r}"
        keys = sorted(k for k in {*made_by, *expected} if made_by.get(k) != expected.get(k))
        changed = ", ".join(f"{k} {made_by.get(k)!r} -> {expected.get(k)!r}" for k in keys)
        return f"made by the same generator with other settings ({changed})"
    for key, value in (("seed", rep.seed), ("sample", rep.sample)):
        if doc.get(key) != value:
            return f"its sidecar says {key} {doc.get(key)!r}, this replicate is {key} {value}"
    if doc.get("file_sha256") != file_sha256(wav):
        return "changed after it was generated (its SHA-256 differs from the one in its sidecar)"
    return None


class Generator:
    """Base: `spec` as given; `produce` makes the missing files of every replicate."""

    kind = ""

    def __init__(self, spec: str, settings: GenSettings):
        self.spec = spec
        self.settings = settings

    def describe(self) -> dict[str, Any]:
        return {"spec": self.spec, "kind": self.kind}

    def pred_dir(self, replicate: Replicate) -> Path:
        return replicate.folder

    def produce(
        self,
        items: Sequence[Item],
        replicates: Sequence[Replicate],
        log: Callable[[str], None],
        *,
        overwrite: bool = False,
    ) -> dict[str, list[Failure]]:
        """{replicate name: [Failure]} after making every item not yet done in all replicates of a seed;
        logs how many were done already (and are not recomputed). A file this run would not have made is
        a UsageError naming it and the mismatch, or (``overwrite``) regenerated."""
        failures: dict[str, list[Failure]] = {}
        for seed in sorted({rep.seed for rep in replicates}):
            reps = [rep for rep in replicates if rep.seed == seed]
            finished = set.intersection(*(self._reusable(rep, items, overwrite, log) for rep in reps))
            todo = [item for item in items if item.id not in finished]
            log(
                f"generate seed {seed}: {len(finished)} of {len(items)} items already done (not recomputed), "
                f"{len(todo)} to generate"
            )
            for rep in reps:
                rep.folder.mkdir(parents=True, exist_ok=True)
                for item in todo:  # nothing of an earlier attempt may stand in for a failed item
                    for stale in (rep.folder / f"{item.id}{AUDIO_EXT}", rep.folder / f"{item.id}.json"):
                        stale.unlink(missing_ok=True)
            made = self._make(todo, reps) if todo else []
            for rep in reps:
                failures[rep.name] = made
        return failures

    def _reusable(
        self, rep: Replicate, items: Sequence[Item], overwrite: bool, log: Callable[[str], None]
    ) -> set[str]:
        """Ids whose file in `rep` this run would have made (module docstring); mismatches raise a
        UsageError listing them, or with `overwrite` are logged and left to regenerate."""
        expected = json.loads(json.dumps(self.describe(), default=str))
        reusable: set[str] = set()
        problems: list[str] = []
        for item in items:
            wav = rep.folder / f"{item.id}{AUDIO_EXT}"
            sidecar = wav.with_suffix(".json")
            if not wav.is_file():
                continue
            problem = _reuse_problem(wav, sidecar, expected, rep)
            if problem is None:
                reusable.add(item.id)
            else:
                problems.append(f"{wav.name}: {problem}")
        if problems and not overwrite:
            more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
            raise UsageError(
                f"{rep.folder}: {len(problems)} generated file(s) were not made by this run's generator "
                f"{self.spec!r} with these settings: {'; '.join(problems[:5])}{more}. Use another --out, "
                "or pass --overwrite to regenerate them"
            )
        if problems:
            log(
                f"generate {rep.name}: --overwrite: regenerating {len(problems)} file(s): {'; '.join(problems[:5])}"
            )
        return reusable

    def _make(self, items: list[Item], reps: list[Replicate]) -> list[Failure]:
        """Make `items` for the replicates `reps` (one seed, its samples); the failures."""
        failures = []
        for rep in reps:
            bar = tqdm(
                items,
                desc=f"generate {rep.name}",
                unit="item",
                file=sys.stderr,
                disable=not self.settings.progress,
            )
            failures += [f for f in (self._one(item, rep) for item in bar) if f is not None]
        return failures

    def _one(self, item: Item, rep: Replicate) -> Failure | None:
        raise NotImplementedError

    def _write_wave(self, item: Item, rep: Replicate, wave: Any, rate: Any, meta: dict) -> Failure | None:
        """Check one produced waveform (`agomni.run.output_checks`) and write it as float WAV + sidecar."""
        try:
            data = checked_audio(wave, rate, self.settings.sample_rate, item.duration)
        except OutputRejected as err:
            return Failure(item.id, f"{self.spec}: output refused: {err}")
        self._store(item, rep, data, self.settings.sample_rate, meta)
        return None

    def _store(self, item: Item, rep: Replicate, data: Any, rate: int, meta: dict[str, Any]) -> None:
        """Write `item`'s float WAV into `rep`, then its sidecar (generator, file hash, `meta`, item, seed,
        sample), each atomically."""
        wav = rep.folder / f"{item.id}{AUDIO_EXT}"
        atomic_write(wav, lambda tmp: sf.write(tmp, data, rate, "FLOAT", format="WAV"))
        meta = {**meta, "item": item.id, "seed": rep.seed, "sample": rep.sample}
        doc = {"generator": self.describe(), "file": wav.name, "file_sha256": file_sha256(wav), **meta}
        text = json.dumps(doc, indent=1, default=str) + "\n"
        atomic_write(wav.with_suffix(".json"), lambda tmp: tmp.write_text(text, encoding="utf-8"))


class CheckpointGenerator(Generator):
    """The reference model (`agomni.model.generate.AudioGenerator`): the checkpoint is read when the
    generator is named; conditioners, network and codec are built on the first item to generate and
    reused for every seed and after failed items."""

    kind = "checkpoint"

    def __init__(self, spec: str, settings: GenSettings, path: str):
        super().__init__(spec, settings)
        self.checkpoint = load_model_checkpoint(path)
        self._model: AudioGenerator | None = None

    @property
    def model(self) -> AudioGenerator:
        """The built reference model (built on first use, then the same object)."""
        if self._model is None:
            self._model = AudioGenerator.from_checkpoint(
                self.checkpoint,
                steps=self.settings.steps,
                cfg=self.settings.cfg,
                device=self.settings.device,
                dtype=self.settings.dtype,
            )
        return self._model

    def describe(self) -> dict[str, Any]:
        ckpt = self.checkpoint
        return {
            **super().describe(),
            "checkpoint": {"path": str(ckpt.path), "sha256": ckpt.sha256, "step": ckpt.step},
            "steps": self.settings.steps,
            "cfg": self.settings.cfg,
            "dtype": self.settings.dtype,
        }

    def _make(self, items: list[Item], reps: list[Replicate]) -> list[Failure]:
        """All samples of one seed in one `AudioGenerator.generate` call (sample k goes to replicate k);
        after a failed item, a new call for the items after it."""
        failures: list[Failure] = []
        written: set[str] = set()
        by_sample = {rep.sample: rep for rep in reps}

        def sink(output: GeneratedAudio) -> None:
            rep = by_sample[output.sample]
            write_output(
                dataclasses.replace(output, num_samples=1), rep.folder, {"generator": self.describe()}
            )
            written.add(output.item_id)

        remaining = list(items)
        while remaining:
            try:
                self.model.generate(
                    remaining,
                    seed=reps[0].seed,
                    num_samples=len(reps),
                    progress=self.settings.progress,
                    sink=sink,
                    # One item per network call: a batch's floating-point results depend on which items
                    # share it, and a resumed run (fewer items left) must give bit-identical audio.
                    batch_size=1,
                )
                remaining = []
            except AgomniError as err:  # the item being generated failed: record it, go on with the rest
                at = next(i for i, item in enumerate(remaining) if item.id not in written)
                failures.append(Failure(remaining[at].id, f"generation failed: {err}"))
                remaining = remaining[at + 1 :]
        return failures


class FolderGenerator(Generator):
    """Files made elsewhere; nothing is generated."""

    kind = "folder"

    def __init__(self, spec: str, settings: GenSettings, folder: str):
        super().__init__(spec, settings)
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise UsageError(f"--generator {spec}: folder {self.folder} not found")

    def pred_dir(self, replicate: Replicate) -> Path:
        nested = self.folder / f"seed-{replicate.seed}" / f"sample-{replicate.sample}"
        return nested if nested.is_dir() else self.folder

    def produce(
        self,
        items: Sequence[Item],
        replicates: Sequence[Replicate],
        log: Callable[[str], None],
        *,
        overwrite: bool = False,
    ) -> dict[str, list[Failure]]:
        """Nothing to make; an item whose only file has an extension this version does not read is a
        `Failure` saying so."""
        failures = {}
        for rep in replicates:
            folder = self.pred_dir(rep)
            log(f"generate {rep.name}: using the files in {folder} (folder: generator)")
            failures[rep.name] = unreadable_extensions(folder, items)
        return failures


def unreadable_extensions(folder: Path, items: Sequence[Item]) -> list[Failure]:
    """A Failure per item that has files in `folder` only with extensions outside AUDIO_EXTENSIONS."""
    ids = {item.id for item in items}
    readable: set[str] = set()
    other: dict[str, list[str]] = {}
    for entry in folder_entries(folder, "generated files folder"):
        stem, dot, ext = entry.name.rpartition(".")
        item_id = stem.partition(SAMPLE_SEPARATOR)[0]
        if not dot or item_id not in ids or ext.lower() == "json":
            continue
        if f".{ext.lower()}" in AUDIO_EXTENSIONS:
            readable.add(item_id)
        else:
            other.setdefault(item_id, []).append(entry.name)
    known = ", ".join(AUDIO_EXTENSIONS)
    return [
        Failure(
            item_id,
            f"{folder / names[0]}: not an audio extension this version reads ({known}); "
            "convert the file to one of them (e.g. WAV)",
        )
        for item_id, names in other.items()
        if item_id not in readable
    ]


class PythonGenerator(Generator):
    """``module:function`` called with one item."""

    kind = "python"

    def __init__(self, spec: str, settings: GenSettings, target: str):
        super().__init__(spec, settings)
        module, _, name = target.rpartition(":")
        if not module or not name:
            raise UsageError(f"--generator {spec}: expected python:module:function")
        try:
            self.function = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as err:
            raise UsageError(f"--generator {spec}: cannot import {module}:{name} ({err})") from err

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "sample_rate": self.settings.sample_rate}

    def _one(self, item: Item, rep: Replicate) -> Failure | None:
        try:
            result = self.function(item)
            if isinstance(result, str | Path):
                wave, rate = sf.read(str(result), dtype="float32", always_2d=True)
            else:
                wave, rate = result
                wave = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else wave
        except SystemExit as err:  # sys.exit in user code ends this item, not the run (Ctrl-C still stops)
            return Failure(item.id, f"{self.spec} called sys.exit({err.code!r})")
        except Exception as err:  # a failure of user code is one item's coverage entry
            return Failure(item.id, f"{self.spec} raised {type(err).__name__}: {err}")
        return self._write_wave(item, rep, wave, rate, {})


class CommandGenerator(Generator):
    """A program run once per item, without a shell (module docstring)."""

    kind = "command"

    def __init__(self, spec: str, settings: GenSettings, template: str):
        super().__init__(spec, settings)
        try:
            self.arguments = shlex.split(template)
            names = {
                name for arg in self.arguments for _, name, _, _ in string.Formatter().parse(arg) if name
            }
        except ValueError as err:
            raise UsageError(f"--generator {spec}: bad template ({err})") from err
        if not self.arguments:
            raise UsageError(f"--generator {spec}: empty command template")
        unknown = sorted(names - set(TEMPLATE_FIELDS))
        if unknown:
            raise UsageError(
                f"--generator {spec}: unknown field(s) {', '.join(unknown)}; known: {', '.join(TEMPLATE_FIELDS)}"
            )
        program = self.arguments[0]
        if "{" not in program and shutil.which(program) is None:
            raise UsageError(
                f"--generator {spec}: program {program!r} not found (give its path, or a program on PATH; "
                "a shell script runs as 'bash SCRIPT ...')"
            )

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "timeout_s": self.settings.timeout_s,
            "sample_rate": self.settings.sample_rate,
        }

    def command(self, item: Item, out: Path) -> list[str]:
        """The argument list for `item`: each template argument with the item's fields substituted."""
        values = {
            "id": item.id,
            "text": item.text or "",
            "transcript": item.transcript or "",
            "lyrics": item.lyrics or "",
            "video": "" if item.video is None else str(item.video),
            "duration": "" if item.duration is None else f"{item.duration:g}",
            "out": str(out),
        }
        return [arg.format(**values) for arg in self.arguments]

    def produce(
        self,
        items: Sequence[Item],
        replicates: Sequence[Replicate],
        log: Callable[[str], None],
        *,
        overwrite: bool = False,
    ) -> dict[str, list[Failure]]:
        for rep in replicates:  # temporary outputs of a killed earlier attempt are never outputs
            for stale in rep.folder.glob(f".*.command{AUDIO_EXT}"):
                stale.unlink(missing_ok=True)
        return super().produce(items, replicates, log, overwrite=overwrite)

    def _one(self, item: Item, rep: Replicate) -> Failure | None:
        out = rep.folder / f".{item.id}.command{AUDIO_EXT}"
        out.unlink(missing_ok=True)
        try:
            return self._run(item, rep, out)
        finally:  # whatever happened, the temporary output never stays in the sample folder
            out.unlink(missing_ok=True)

    def _run(self, item: Item, rep: Replicate, out: Path) -> Failure | None:
        argv = self.command(item, out)
        shown = shlex.join(argv)
        try:  # own process group, so a timeout or Ctrl-C stops the program's children too
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,
            )
        except OSError as err:
            return Failure(item.id, f"command could not start ({err.strerror}): {shown}")
        try:
            stdout, stderr = proc.communicate(timeout=self.settings.timeout_s)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            return Failure(item.id, f"command timed out after {self.settings.timeout_s:g} s: {shown}")
        except BaseException:  # Ctrl-C (KeyboardInterrupt) or any other exit: no orphaned children
            _stop_group(proc)
            raise
        if proc.returncode != 0:
            tail = (stderr or stdout).strip().splitlines()[-1:] or [""]
            return Failure(item.id, f"command exited with status {proc.returncode}: {shown} ({tail[0]})")
        if not out.is_file():
            return Failure(item.id, f"command exited 0 but wrote no file at {{out}}: {shown}")
        try:
            wave, rate = sf.read(str(out), dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError) as err:
            return Failure(item.id, f"command wrote an unreadable file ({err}): {shown}")
        return self._write_wave(item, rep, wave, rate, {"command": argv})


def _stop_group(proc: subprocess.Popen) -> None:
    """Kill the process group `proc` leads (it and every child it started) and reap `proc`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


class GroundTruthGenerator(Generator):
    """The test set's own reference audio as the "generated" side (calibration)."""

    kind = "ground-truth"

    def __init__(self, spec: str, settings: GenSettings, which: str):
        super().__init__(spec, settings)
        if which != "reference":
            raise UsageError(f"--generator {spec!r}: the ground-truth generator is ground-truth:reference")

    def _one(self, item: Item, rep: Replicate) -> Failure | None:
        if item.reference_audio is None or not item.reference_audio.is_file():
            return Failure(item.id, "no reference audio to score as ground truth")
        try:
            wave, rate = sf.read(str(item.reference_audio), dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError) as err:
            return Failure(item.id, f"unreadable reference audio {item.reference_audio}: {err}")
        self._store(item, rep, wave, int(rate), {"ground_truth": str(item.reference_audio)})
        return None


def parse_generator(spec: str, settings: GenSettings) -> Generator:
    """The adapter for ``--generator SPEC`` (module docstring); UsageError naming the valid kinds."""
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in KINDS or not rest:
        raise UsageError(f"--generator {spec!r}: expected KIND:VALUE with KIND one of {', '.join(KINDS)}")
    classes = {
        "checkpoint": CheckpointGenerator,
        "folder": FolderGenerator,
        "python": PythonGenerator,
        "command": CommandGenerator,
        "ground-truth": GroundTruthGenerator,
    }
    return classes[kind](spec, settings, rest)
