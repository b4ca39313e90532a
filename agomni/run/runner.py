"""`agomni run`: a suite's items -> generator -> scores -> results.json of one run folder.

Run folder layout (RUN):
- ``run.json``: what was asked (suite, generator, seeds, samples, data root), the import coverage and the
  metrics skipped with the command that fetches their weights;
- ``seed-<s>/sample-<k>/``: the generated files of replicate (seed s, sample k), its ``results.json`` and
  ``items.jsonl`` (per item: the file scored, its hashes and cache entries; `agomni.results.run_folder`);
- ``items.jsonl``: every replicate's item records, each naming its replicate;
- ``cache/``: the embedding cache of this run (`agomni.metrics.cache`), so a re-run reuses every finished
  embedding;
- ``results.json``: the replicates combined: per metric the mean over replicates with the standard
  deviation across them (``spread.kind`` "std over N replicates (seeds x samples)"), per-item scores
  averaged over replicates, the first replicate's coverage (with the metrics that could not score an item
  in any replicate) and provenance plus every replicate's values;
- ``log.txt``: what each step did, including how many items were done already and not recomputed.

Sharded (``torchrun --nproc-per-node N -m agomni.cli run ...``, `agomni.distributed`): each rank
generates and embeds its contiguous block of items; statistics are reduced across ranks, so the numbers
equal a single process's. Rank 0 builds the test set, computes the validation loss and writes every file
of the run folder; the log names the rank of each line.

Resume: every generated file and every cache entry is written atomically, so after a kill -9 the same
command skips finished items (generation: files present; scoring: embeddings in the cache) and gives
the same numbers (generation noise depends only on seed, item id and sample; see agomni.model.generate).
A generated file is reused only when its sidecar names this run's generator, settings, seed and the
file's hash; any other is an error naming the mismatch, unless ``overwrite`` regenerates it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from agomni import distributed
from agomni.errors import UsageError
from agomni.evaluate.pipeline import EvalRequest, evaluate
from agomni.evaluate.registry import availability
from agomni.evaluate.stage_profile import format_breakdown, write_breakdown
from agomni.manifest import Manifest, load_manifest
from agomni.metrics.stage import FAMILY_MODULES, family_stage
from agomni.results import (
    CoverageEntry,
    ItemRecord,
    NotComputed,
    Results,
    RunFolder,
    RunInfo,
    SetMetric,
    Spread,
    write_items,
    write_results,
)
from agomni.results.run_folder import CACHE_DIR, ITEMS_FILE, RESULTS_FILE
from agomni.suites import Suite, get_suite, load_metric_specs
from agomni.weights.registry import get_entry
from agomni.weights.store import quick_status

from . import validation
from .generators import CheckpointGenerator, Failure, Generator, GenSettings, Replicate, parse_generator
from .importers import ImportCoverage
from .items import resolve_items, suite_run_spec

VALIDATION_PROFILE = "agomni-toy-training"


@dataclass(frozen=True)
class RunRequest:
    """Everything `agomni run` was asked for (see `agomni.run.cli`)."""

    suite: str
    out: Path
    generator: str
    data_root: Path | None = None
    manifest: Path | None = None
    seeds: tuple[int, ...] = (0,)
    num_samples: int = 1
    metrics: tuple[str, ...] | None = None
    settings: GenSettings = field(default_factory=GenSettings)
    batch_size: int = 16
    command: tuple[str, ...] = ()
    speech_backends: tuple[str, ...] = ()  # --speech-backend (agomni.metrics.speech.eval_stage)
    random_weights: bool = False  # score with seeded random networks (labelled; tests and latency only)
    overwrite: bool = False  # regenerate files this run would not have made (agomni.run.generators)
    strict: bool = False  # a metric that cannot be computed ends the run (default: "not computed" entry)
    profile_stages: bool = False  # --profile-stages: print each replicate's stage seconds, write timings.json


@dataclass(frozen=True)
class SkippedMetric:
    name: str
    reason: str
    command: str  # what makes it computable here ("" when nothing can)

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "reason": self.reason, "command": self.command}

    def not_computed(self) -> NotComputed:
        """The results' entry: weights to fetch (with the command), or not available in this version."""
        if self.command:
            return NotComputed(self.name, "weights", self.reason, hint=f"run: {self.command}")
        return NotComputed(self.name, "unavailable", self.reason)


class Log:
    """Lines to stderr and RUN/log.txt (appended: a resumed run shows both attempts)."""

    def __init__(self, path: Path, shard: distributed.Shard):
        self.path = path
        self.rank = f"rank {shard.rank}/{shard.world}: " if shard.world > 1 else ""
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, message: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
        print(f"[agomni run] {self.rank}{message}", file=sys.stderr)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {self.rank}{message}\n")


def plan_metrics(
    suite: Suite,
    requested: Sequence[str] | None,
    speech_backends: Sequence[str] = (),
    *,
    random_weights: bool = False,
) -> tuple[list[str], list[SkippedMetric]]:
    """The suite's (or the requested) metrics this machine computes offline now, and the others with why.

    Computable: available in this version (`agomni.evaluate.registry.availability`) and every checkpoint it
    needs already in the weights cache (a per-item metric's family says which: `FamilyStage.weights_needed`,
    e.g. a speech metric's chosen backend; with `random_weights` only the files that define a network, e.g.
    SongEval's MuQ configuration). Not computable: listed with the `agomni weights fetch` commands it needs.
    """
    specs = {m.name: m for m in suite.metrics}
    registry = load_metric_specs()
    names = list(requested) if requested else list(specs)
    run, skipped = [], []
    for name in names:
        available, why = availability(name)
        if not available:
            skipped.append(SkippedMetric(name, why, ""))  # why: "not available in this version: ..."
            continue
        family = registry[name].family if name in registry else "embedding"
        needed = family_stage(family).weights_needed if family in FAMILY_MODULES else None
        if needed is not None:
            weights = needed(name, speech_backends, random_weights)
        else:
            weights = () if random_weights else specs[name].weights if name in specs else ()
        absent = [w for w in weights if quick_status(get_entry(w)) != "cached"]
        if absent:
            fetch = " && ".join(f"agomni weights fetch {w}" for w in absent)
            skipped.append(SkippedMetric(name, f"weights not in the cache: {', '.join(absent)}", fetch))
            continue
        run.append(name)
    return run, skipped


def _validation_metric(generator: Generator, manifest: Manifest, run_dir: Path, log: Log) -> tuple | None:
    """(per-item losses, SetMetric, details) for a toy-trained checkpoint generator, else None."""
    if not isinstance(generator, CheckpointGenerator) or "train_config" not in generator.checkpoint.extra:
        return None
    if any(item.reference_audio is None for item in manifest):
        return None
    ckpt = generator.checkpoint
    log(f"flow-matching validation loss of {ckpt.path.name} on {len(manifest)} items")
    examples = validation.heldout_examples(ckpt, manifest.path, run_dir / CACHE_DIR / "examples")
    losses = validation.per_item_losses(ckpt, examples)
    value = float(np.mean(list(losses.values())))
    metric = SetMetric(validation.METRIC, value, validation.UNIT, False, VALIDATION_PROFILE, n=len(losses))
    return losses, metric, validation.describe(ckpt, len(losses))


def _with_run_parts(
    results: Results,
    failures: Sequence[Failure],
    imported: ImportCoverage,
    extra: tuple | None,
    run_info: RunInfo,
    context: dict[str, Any],
) -> Results:
    """A replicate's results plus generation failures, import coverage, validation loss and run context."""
    reasons = {f.id: f.reason for f in failures}
    coverage = [
        CoverageEntry(c.id, "error", reasons[c.id]) if c.id in reasons and c.status != "ok" else c
        for c in results.coverage
    ]
    coverage += [CoverageEntry(i, "missing", reason) for i, reason in imported.missing]
    scores = {k: dict(v) for k, v in results.item_scores.items()}
    metrics = list(results.metrics)
    settings = dataclasses.replace(results.provenance.settings, run=context)
    if extra is not None:
        losses, metric, details = extra
        ok = {c.id for c in coverage if c.status == "ok"}
        for item_id, loss in losses.items():  # item scores only for scored items (results schema rule)
            if item_id in ok:
                scores.setdefault(item_id, {})[metric.name] = loss
        metrics.append(metric)
        settings = dataclasses.replace(settings, metrics={**settings.metrics, metric.name: details})
    provenance = dataclasses.replace(results.provenance, preprocessing=settings.to_dict())
    return Results(run_info, provenance, scores, tuple(metrics), tuple(coverage), results.not_computed)


def combine(replicates: Sequence[Results], names: Sequence[str], run_info: RunInfo) -> Results:
    """One Results for several replicates (module docstring): mean, std across replicates, per-item means."""
    first = replicates[0]
    n = len(replicates)
    metrics = []
    not_computed = _combined_not_computed(replicates, names)
    missing = {entry.name for entry in not_computed}
    for metric in first.metrics:
        if metric.name in missing:
            continue
        values = [next(m.value for m in r.metrics if m.name == metric.name) for r in replicates]
        spread = (
            Spread(f"std over {n} replicates (seeds x samples)", float(np.std(values, ddof=1)))
            if n > 1
            else None
        )
        metrics.append(dataclasses.replace(metric, value=float(np.mean(values)), spread=spread))
    scores: dict[str, dict[str, float]] = {}
    for item_id, item in first.item_scores.items():
        for name in item:
            values = [r.item_scores.get(item_id, {}).get(name) for r in replicates]
            if all(v is not None for v in values):
                scores.setdefault(item_id, {})[name] = float(np.mean(values))
    per_replicate = {
        name: {m.name: m.value for m in r.metrics} for name, r in zip(names, replicates, strict=True)
    }
    settings = dataclasses.replace(first.provenance.settings, replicates=per_replicate)
    if n > 1:
        settings = dataclasses.replace(settings, metrics=_combined_details(replicates, names))
    provenance = dataclasses.replace(first.provenance, preprocessing=settings.to_dict())
    coverage = _combined_coverage(replicates, names)
    return Results(run_info, provenance, scores, tuple(metrics), coverage, not_computed)


def _combined_not_computed(replicates: Sequence[Results], names: Sequence[str]) -> tuple[NotComputed, ...]:
    """Every metric some replicate could not compute: its entry, naming the replicates when there are
    several (a mean over only some replicates would not be the run's number)."""
    entries: dict[str, list[tuple[str, NotComputed]]] = {}
    for name, replicate in zip(names, replicates, strict=True):
        for entry in replicate.not_computed:
            entries.setdefault(entry.name, []).append((name, entry))
    combined = []
    for found in entries.values():
        entry = found[0][1]
        if len(replicates) > 1:
            which = ", ".join(name for name, _ in found)
            entry = dataclasses.replace(
                entry, reason=f"{entry.reason} (replicate(s) {which} of {len(replicates)})"
            )
        combined.append(entry)
    return tuple(combined)


def _combined_details(replicates: Sequence[Results], names: Sequence[str]) -> dict[str, Any]:
    """The first replicate's per-metric details, where a corpus-level rate (``corpus``) is the mean over
    the replicates, as the set value is, and ``flags`` lists every replicate's flags, each ending in
    "(replicate NAME)"."""
    details = copy.deepcopy(replicates[0].provenance.settings.metrics)
    for metric, entry in details.items():
        if not isinstance(entry, dict):
            continue
        per = [r.provenance.settings.metric(metric) for r in replicates]
        if entry.get("corpus") is not None:
            rates = [d.get("corpus") for d in per]
            entry["corpus"] = None if None in rates else float(np.mean(rates))
        if "flags" in entry:
            flags: dict[str, list[str]] = {}
            for name, d in zip(names, per, strict=True):
                for item in d.get("flags", []):
                    flags.setdefault(item["id"], []).extend(f"{f} (replicate {name})" for f in item["flags"])
            entry["flags"] = [{"id": i, "flags": f} for i, f in sorted(flags.items())]
    return details


def _combined_coverage(replicates: Sequence[Results], names: Sequence[str]) -> tuple[CoverageEntry, ...]:
    """The first replicate's coverage, where an "ok" item lists every metric that could not score it in
    any replicate (its per-item mean is then absent), with the reason per replicate."""
    unscored: dict[str, dict[str, list[str]]] = {}
    for name, replicate in zip(names, replicates, strict=True):
        for entry in replicate.coverage:
            for metric, reason in entry.unscored.items():
                label = f"{name}: {reason}" if len(replicates) > 1 else reason
                unscored.setdefault(entry.id, {}).setdefault(metric, []).append(label)
    return tuple(
        dataclasses.replace(c, unscored={m: "; ".join(r) for m, r in unscored.get(c.id, {}).items()})
        if c.status == "ok"
        else c
        for c in replicates[0].coverage
    )


def _gathered(shard: distributed.Shard, failures: dict[str, list[Failure]]) -> dict[str, list[Failure]]:
    """Every rank's generation failures per replicate, in rank order (all ranks' files exist on return)."""
    shard.barrier()
    parts = shard.gather(failures)
    return {name: [f for part in parts for f in part[name]] for name in failures}


def generated_with_random_weights(pred_dir: Path) -> bool:
    """True when any generated file's JSON sidecar says random weights were involved (the reference
    model labels every output it makes with random stand-in conditioners or an untrained network)."""
    for sidecar in sorted(Path(pred_dir).glob("*.json")):
        try:
            if json.loads(sidecar.read_text(encoding="utf-8")).get("random_weights") is True:
                return True
        except (OSError, ValueError, AttributeError):
            continue
    return False


def run_suite(request: RunRequest) -> Path:
    """Generate, score and write RUN/results.json (module docstring); returns its path."""
    if not request.seeds:
        raise UsageError("--seeds needs at least one seed")
    if request.num_samples < 1:
        raise UsageError(f"--num-samples must be at least 1, got {request.num_samples}")
    started = time.perf_counter()
    out = request.out
    folder = RunFolder(out)
    shard = distributed.current()
    log = Log(folder.log_path, shard)
    suite = get_suite(request.suite)
    if request.manifest is not None:
        manifest = load_manifest(request.manifest)
        imported = ImportCoverage("manifest", len(manifest), suite.test_set_size)
    else:
        default_root = out / "data" if suite_run_spec(suite.name).importer == "toycorpus" else None
        with shard.main_first():
            manifest, imported = resolve_items(
                suite.name, suite.test_set_size, request.data_root or default_root, out
            )
    log(f"suite {suite.name}: {imported.summary()}")
    speech_backends = family_stage("speech").resolve_backends(suite.speech_backends, request.speech_backends)
    names, skipped = plan_metrics(
        suite, request.metrics, speech_backends, random_weights=request.random_weights
    )
    if request.random_weights:
        log("scoring with seeded RANDOM network weights: for tests and latency only, not measurements")
    for skip in skipped:
        log(
            f"skipped metric {skip.name}: {skip.reason}" + (f" (run: {skip.command})" if skip.command else "")
        )
    if not names:
        raise UsageError(f"suite {suite.name}: no metric can be computed here; see the skipped list above")
    generator = parse_generator(request.generator, request.settings)
    replicates = [
        Replicate(s, k, folder.replicate(s, k).path)
        for s in request.seeds
        for k in range(request.num_samples)
    ]
    context = {
        "suite": suite.name,
        "generator": generator.describe(),
        "seeds": list(request.seeds),
        "num_samples": request.num_samples,
        "manifest": os.path.relpath(manifest.path, out.resolve()),  # relative: the run folder may move
        "import_coverage": imported.to_dict(),
        "metrics_run": names,
        "metrics_skipped": [s.to_dict() for s in skipped],
        "random_weights": request.random_weights,
    }
    t0 = time.perf_counter()
    produced = generator.produce(shard.part(manifest.items), replicates, log, overwrite=request.overwrite)
    failures = _gathered(shard, produced)
    if shard.main:  # after generation: a run refused for files it did not make leaves run.json as it was
        folder.write_context(context)
    generation_s = time.perf_counter() - t0
    extra = shard.from_main(lambda: _validation_metric(generator, manifest, out, log))
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    combined = []
    records: list[ItemRecord] = []
    for rep in replicates:
        pred_dir = generator.pred_dir(rep)
        outcome = evaluate(
            EvalRequest(
                pred_dir=pred_dir,
                manifest=manifest.path,
                suite=suite.name,
                metrics=tuple(names),
                allow_missing=True,
                seed=rep.seed,
                cache_dir=folder.cache_dir,
                batch_size=request.batch_size,
                device=request.settings.device,
                random_weights=request.random_weights,
                command=request.command,
                progress=request.settings.progress,
                own_files=(pred_dir / RESULTS_FILE, pred_dir / ITEMS_FILE),
                speech_backends=speech_backends,
                strict=request.strict,
            )
        )
        cache = outcome.results.provenance.settings.cache
        log(
            f"scored {rep.name}: {cache.embedding_hits} embeddings read from the cache (not recomputed), "
            f"{cache.embedding_writes} computed"
            + (
                f"; read back from the stage cache, not recomputed: {', '.join(cache.stage_hits)}"
                if cache.stage_hits
                else ""
            )
        )
        info = RunInfo(
            f"{out.name}/{rep.name}",
            created,
            request.command,
            suite.name,
            str(pred_dir),
            None,
            request.num_samples,
        )
        timings = {**outcome.results.provenance.timings, "generate": generation_s}
        rep_context = {**context, "replicate": {"seed": rep.seed, "sample": rep.sample}}
        results = _with_run_parts(outcome.results, failures[rep.name], imported, extra, info, rep_context)
        results = dataclasses.replace(
            results, not_computed=(*results.not_computed, *(s.not_computed() for s in skipped))
        )
        random = results.provenance.random_weights or generated_with_random_weights(pred_dir)
        provenance = dataclasses.replace(results.provenance, timings=timings, random_weights=random)
        results = dataclasses.replace(results, provenance=provenance)
        scored = _item_records(results, outcome.items, rep.name)
        records += scored
        if shard.main:
            write_items([dataclasses.replace(r, replicate=None) for r in scored], rep.folder / ITEMS_FILE)
            write_results(results, rep.folder / RESULTS_FILE)
            if request.profile_stages:
                print(f"{rep.name}: {format_breakdown(timings)}")
                write_breakdown(timings, rep.folder)
        combined.append(results)
    info = RunInfo(out.name, created, request.command, suite.name, str(out), None, request.num_samples)
    final = combine(combined, [r.name for r in replicates], info)
    path = folder.results_path
    if shard.main:
        write_items(records, folder.items_path)
        write_results(final, path)
        ok = sum(c.status == "ok" for c in final.coverage)
        partly = sum(bool(c.unscored) for c in final.coverage)
        some = f" ({partly} of them not by every metric: see 'unscored' in its coverage)" if partly else ""
        for entry in final.not_computed:
            log(
                f"not computed: {entry.name} ({entry.kind}): {entry.reason}"
                + (f"; {entry.hint}" if entry.hint else "")
            )
        log(
            f"wrote {path}: {ok} of {len(final.coverage)} items scored{some}, "
            f"{time.perf_counter() - started:.1f} s"
        )
    shard.barrier()  # the other ranks return once the run folder is complete
    return path


def load_run(run_dir: str | Path) -> tuple[Results, dict[str, Any]]:
    """A run folder's combined results and its run.json ({} for a folder written by `agomni eval`)."""
    folder = RunFolder.open(run_dir)
    return folder.results(), folder.context()


def _item_records(results: Results, scored: tuple[ItemRecord, ...], replicate: str) -> list[ItemRecord]:
    """items.jsonl lines of one replicate: every id of its final coverage (generation failures and
    import gaps included) with the files it was scored on."""
    files = {record.id: record.files for record in scored}
    return [ItemRecord(c.id, c.status, files.get(c.id, {}), replicate) for c in results.coverage]
