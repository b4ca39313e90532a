"""Generator adapters of `agomni run`: who makes the audio for a suite's items.

Spellings of ``--generator SPEC``:
- ``checkpoint:PATH``: the reference model (`agomni.model.generate.generate`) with a checkpoint;
- ``folder:DIR``: files generated elsewhere, named by the naming contract (``<id>.<ext>``); with several
  seeds or samples, ``DIR/seed-<s>/sample-<k>/`` when that folder exists, else DIR for every replicate;
- ``python:module:function``: ``function(item)`` for one `agomni.manifest.Item` returns
  ``(waveform, sample_rate)`` (array-like [samples] or [channels, samples]) or a path of an audio file;
- ``ground-truth:reference``: each item's own reference audio (copied into the run folder, never
  touched where it lies), to score a test set's ground truth as if generated (`agomni calibrate`);
- ``command:TEMPLATE``: a shell command per item with the fields ``{id} {text} {transcript} {lyrics}
  {video} {duration} {out}`` (each shell-quoted; absent fields are empty strings; ``{out}`` is the WAV
  path the command must write), run with a per-item timeout and its exit status checked.

Layout: replicate (seed s, sample k) of a run writes ``RUN/seed-<s>/sample-<k>/<id>.wav`` plus a JSON
sidecar, each file atomically, so an interrupted run keeps every finished item and a new run skips them
(resume). Every failure of one item (exception, non-zero exit, timeout, no file, unreadable file, wrong
sample rate) becomes a `Failure` with the item id and reason; the run goes on with the other items and
the failure is a coverage entry of the results.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shlex
import signal
import string
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from agomni.atomic import atomic_write
from agomni.errors import AgomniError, UsageError
from agomni.manifest import Item
from agomni.model.checkpoint import file_sha256, load_model_checkpoint
from agomni.model.cli import write_output
from agomni.model.generate import GeneratedAudio, generate

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

    steps: int = 25
    cfg: float = 4.5
    device: str = "cpu"
    dtype: str = "fp32"
    sample_rate: int = 16000
    timeout_s: float = 600.0
    progress: bool = True


def done_items(folder: Path, items: Sequence[Item]) -> set[str]:
    """Ids whose WAV and sidecar are both in `folder` (each written atomically, sidecar last)."""
    return {
        item.id
        for item in items
        if (folder / f"{item.id}{AUDIO_EXT}").is_file() and (folder / f"{item.id}.json").is_file()
    }


class Generator:
    """Base: `spec` as given; `produce` makes the missing files of every replicate."""

    kind = ""
    writes = True  # False: the files exist already (folder:)

    def __init__(self, spec: str, settings: GenSettings):
        self.spec = spec
        self.settings = settings

    def describe(self) -> dict[str, Any]:
        return {"spec": self.spec, "kind": self.kind}

    def pred_dir(self, replicate: Replicate) -> Path:
        return replicate.folder

    def produce(
        self, items: Sequence[Item], replicates: Sequence[Replicate], log: Callable[[str], None]
    ) -> dict[str, list[Failure]]:
        """{replicate name: [Failure]} after making every item not yet done in all replicates of a seed;
        logs how many were done already (and are not recomputed)."""
        failures: dict[str, list[Failure]] = {}
        for seed in sorted({rep.seed for rep in replicates}):
            reps = [rep for rep in replicates if rep.seed == seed]
            finished = set.intersection(*(done_items(rep.folder, items) for rep in reps))
            todo = [item for item in items if item.id not in finished]
            log(
                f"generate seed {seed}: {len(finished)} of {len(items)} items already done (not recomputed), "
                f"{len(todo)} to generate"
            )
            for rep in reps:
                rep.folder.mkdir(parents=True, exist_ok=True)
            made = self._make(todo, reps) if todo else []
            for rep in reps:
                failures[rep.name] = made
        return failures

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

    def _write_wave(
        self, item: Item, rep: Replicate, wave: np.ndarray, rate: int, meta: dict
    ) -> Failure | None:
        """Check and write one produced waveform (mono or [channels, samples]) as float WAV + sidecar."""
        data = np.asarray(wave, dtype=np.float32)
        if data.ndim == 2:
            data = data.T  # soundfile wants [samples, channels]
        if data.ndim not in (1, 2) or data.shape[0] == 0:
            return Failure(item.id, f"generator returned an empty or badly shaped waveform {np.shape(wave)}")
        if int(rate) != self.settings.sample_rate:
            return Failure(
                item.id,
                f"generator returned {rate} Hz audio; this run expects {self.settings.sample_rate} Hz",
            )
        if not np.isfinite(data).all():
            return Failure(item.id, "generator returned NaN or infinite samples")
        wav = rep.folder / f"{item.id}{AUDIO_EXT}"
        atomic_write(wav, lambda tmp: sf.write(tmp, data, int(rate), "FLOAT", format="WAV"))
        self._sidecar(wav, {**meta, "item": item.id, "seed": rep.seed, "sample": rep.sample})
        return None

    def _sidecar(self, wav: Path, meta: dict[str, Any]) -> None:
        doc = {"generator": self.describe(), "file": wav.name, "file_sha256": file_sha256(wav), **meta}
        text = json.dumps(doc, indent=1, default=str) + "\n"
        atomic_write(wav.with_suffix(".json"), lambda tmp: tmp.write_text(text, encoding="utf-8"))


class CheckpointGenerator(Generator):
    """The reference model (`agomni.model.generate.generate`), loaded once per run."""

    kind = "checkpoint"

    def __init__(self, spec: str, settings: GenSettings, path: str):
        super().__init__(spec, settings)
        self.checkpoint = load_model_checkpoint(path)

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
        """All samples of one seed in one `generate` call (sample k goes to replicate k)."""
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
                generate(
                    remaining,
                    self.checkpoint,
                    seed=reps[0].seed,
                    num_samples=len(reps),
                    steps=self.settings.steps,
                    cfg=self.settings.cfg,
                    device=self.settings.device,
                    dtype=self.settings.dtype,
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
    writes = False

    def __init__(self, spec: str, settings: GenSettings, folder: str):
        super().__init__(spec, settings)
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise UsageError(f"--generator {spec}: folder {self.folder} not found")

    def pred_dir(self, replicate: Replicate) -> Path:
        nested = self.folder / f"seed-{replicate.seed}" / f"sample-{replicate.sample}"
        return nested if nested.is_dir() else self.folder

    def produce(
        self, items: Sequence[Item], replicates: Sequence[Replicate], log: Callable[[str], None]
    ) -> dict:
        for rep in replicates:
            log(f"generate {rep.name}: using the files in {self.pred_dir(rep)} (folder: generator)")
        return {rep.name: [] for rep in replicates}


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

    def _one(self, item: Item, rep: Replicate) -> Failure | None:
        try:
            result = self.function(item)
            if isinstance(result, str | Path):
                wave, rate = sf.read(str(result), dtype="float32", always_2d=True)
                wave = wave.T
            else:
                wave, rate = result
                wave = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else wave
        except Exception as err:  # a failure of user code is one item's coverage entry
            return Failure(item.id, f"{self.spec} raised {type(err).__name__}: {err}")
        return self._write_wave(item, rep, wave, rate, {})


class CommandGenerator(Generator):
    """A shell command template run once per item (module docstring)."""

    kind = "command"

    def __init__(self, spec: str, settings: GenSettings, template: str):
        super().__init__(spec, settings)
        if not template.strip():
            raise UsageError(f"--generator {spec}: empty command template")
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        except ValueError as err:
            raise UsageError(f"--generator {spec}: bad template ({err})") from err
        unknown = sorted(names - set(TEMPLATE_FIELDS))
        if unknown:
            raise UsageError(
                f"--generator {spec}: unknown field(s) {', '.join(unknown)}; known: {', '.join(TEMPLATE_FIELDS)}"
            )
        self.template = template

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "timeout_s": self.settings.timeout_s,
            "sample_rate": self.settings.sample_rate,
        }

    def command(self, item: Item, out: Path) -> str:
        values = {
            "id": item.id,
            "text": item.text or "",
            "transcript": item.transcript or "",
            "lyrics": item.lyrics or "",
            "video": "" if item.video is None else str(item.video),
            "duration": "" if item.duration is None else f"{item.duration:g}",
            "out": str(out),
        }
        return self.template.format(**{k: shlex.quote(v) for k, v in values.items()})

    def _one(self, item: Item, rep: Replicate) -> Failure | None:
        out = rep.folder / f".{item.id}.command{AUDIO_EXT}"
        out.unlink(missing_ok=True)
        cmd = self.command(item, out)
        # Own process group, so a timeout ends the command's children too (they hold its pipes).
        proc = subprocess.Popen(
            cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            stdout, stderr = proc.communicate(timeout=self.settings.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            out.unlink(missing_ok=True)
            return Failure(item.id, f"command timed out after {self.settings.timeout_s:g} s: {cmd}")
        if proc.returncode != 0:
            tail = (stderr or stdout).strip().splitlines()[-1:] or [""]
            return Failure(item.id, f"command exited with status {proc.returncode}: {cmd} ({tail[0]})")
        if not out.is_file():
            return Failure(item.id, f"command exited 0 but wrote no file at {{out}}: {cmd}")
        try:
            wave, rate = sf.read(str(out), dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError) as err:
            return Failure(item.id, f"command wrote an unreadable file ({err}): {cmd}")
        finally:
            out.unlink(missing_ok=True)
        return self._write_wave(item, rep, wave.T, rate, {"command": cmd})


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
        wav = rep.folder / f"{item.id}{AUDIO_EXT}"
        atomic_write(wav, lambda tmp: sf.write(tmp, wave, int(rate), "FLOAT", format="WAV"))
        self._sidecar(wav, {"ground_truth": str(item.reference_audio), "item": item.id})
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
