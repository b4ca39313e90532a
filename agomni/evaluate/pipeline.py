"""The `agomni eval` pipeline: collect items -> prepare audio -> run networks (cached) -> metrics -> Results.

A *network* is one embedder under one input recipe. Per chunk of ``batch_size`` items:

1. for each file of the item and each distinct preparation (rate + recipe): hash the file, look its
   decoded-audio hash up in the cache's audio index, look each network's entry (all heads of the clip)
   up; decode and prepare (`agomni.io.prepare`) only when something is missing;
2. run each network on its misses, batched by equal length: one ``outputs()`` call gives every head;
   check they are finite and store them as one cache entry per network and clip;
3. an item whose files all worked feeds every metric that uses it (`agomni.evaluate.scoring`); an item
   with a failure is an error (``allow_missing``: coverage status "error" with the file and problem).

Memory does not grow with the number of clips: outputs live for one chunk, FD keeps streamed sufficient
statistics, and KAD's kept embeddings are bounded.

Under torchrun (`agomni.distributed`) each rank runs steps 1-3 on its contiguous block of items, then the
accumulators are synced and the item bookkeeping gathered in rank order, so every rank computes the same
values as one process would (sums differ only by float64 summation order). The per-item stages
(audio-visual, text-audio, speech: `agomni.evaluate.item_stages`) then score the items covered "ok".
"""

from __future__ import annotations

import contextlib
import gc
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from agomni import distributed, suites
from agomni.allocator import release_freed_memory
from agomni.errors import MediaError, MetricInputError, TooShortError, UsageError
from agomni.evaluate.destinations import check_destinations
from agomni.evaluate.inputs import EvalInputs, EvalItem, collect_inputs
from agomni.evaluate.item_stages import ItemStages
from agomni.evaluate.networks import Network, NetworkSummary, build_networks
from agomni.evaluate.profiles import PROFILES, Profile, get_profile
from agomni.evaluate.registry import MetricEntry, resolve_metric_names
from agomni.evaluate.scoring import MetricState, score
from agomni.evaluate.stage_cache import StageCache
from agomni.io.container import file_sha256
from agomni.io.prepare import load_prepared
from agomni.metrics.cache import (
    CacheStats,
    EmbeddingCache,
    EmbeddingKey,
    SourceKey,
    audio_sha256,
    decoder_fingerprint,
)
from agomni.metrics.stage import StageRequest, StageScores, family_stage
from agomni.results import CoverageEntry, NotComputed, Results, RunInfo, collect_provenance, write_results
from agomni.results.provenance import describe_device
from agomni.results.run_folder import (
    ITEMS_FILE,
    RESULTS_FILE,
    SIDES,
    ItemFile,
    ItemRecord,
    NetworkOutput,
    write_items,
)
from agomni.results.settings import CacheUse, EvalSettings

Outputs = dict[str, np.ndarray]


#: Chunks between two `agomni.allocator.release_freed_memory` calls: often enough that the heap's free
#: blocks do not add up with the number of clips, rarely enough that their page faults cost nothing
#: measurable (benchmarks/RESULTS.md, "Peak memory flat in N").
RELEASE_EVERY = 8


@dataclass(frozen=True)
class EvalRequest:
    """Everything `agomni eval` was asked for (see `agomni.evaluate.cli` for the options)."""

    pred_dir: Path
    ref_dir: Path | None = None
    manifest: Path | None = None
    suite: str | None = None
    metrics: tuple[str, ...] | None = None
    profile: str | None = None
    out: Path | None = None
    allow_missing: bool = False
    device: str = "cpu"
    batch_size: int = 16
    seed: int = 0
    cache_dir: Path | None = None
    use_cache: bool = True
    random_weights: bool = False
    command: tuple[str, ...] = ()
    progress: bool = True
    # Files the caller writes into pred_dir itself (e.g. `agomni run`'s replicate results): not unused.
    own_files: tuple[Path, ...] = ()
    ref_superset: bool = False
    overwrite: bool = False
    # --speech-backend: recogniser / speaker encoder of the speech metrics (agomni.metrics.speech.eval_stage)
    speech_backends: tuple[str, ...] = ()
    # --strict: a metric that cannot be computed ends the evaluation (default: a "not computed" entry)
    strict: bool = False


@dataclass(frozen=True)
class EvalOutcome:
    """The results, where they were written (None without --out), and whether they compare with
    published numbers."""

    results: Results
    path: Path | None
    comparable_with_published: bool
    items: tuple[ItemRecord, ...] = ()  # one per covered id: what items.jsonl holds


class Timings:
    """Wall-clock seconds per stage, summed over calls. A stage entered inside another counts for itself
    only: its seconds are taken out of the enclosing stage's, so no second is counted twice and the stages
    add up to the time spent inside any of them (`agomni.evaluate.stage_profile` names the stages)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._inner: list[float] = []  # per open stage: seconds spent in the stages opened inside it

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        self._inner.append(0.0)
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[name] += elapsed - self._inner.pop()
            if self._inner:
                self._inner[-1] += elapsed


def _metric_profiles(
    request: EvalRequest, suite: suites.Suite | None
) -> tuple[list[MetricEntry], dict[str, Profile], ItemStages]:
    """Embedder metrics with their profiles, and the metrics of the per-item stages (`suite`: the
    request's suite, read once by `evaluate`)."""
    names = list(request.metrics) if request.metrics else None
    suite_profile = None
    if suite is not None:
        names = names or [m.name for m in suite.metrics]
        suite_profile = suite.protocol if suite.protocol in PROFILES else None
    if not names:
        raise UsageError("no metrics named; pass --metrics a,b or --suite NAME")
    stages, names = ItemStages.split(names, request.speech_backends)
    entries = resolve_metric_names(names) if names else []
    chosen = request.profile or suite_profile
    profiles = {e.name: get_profile(chosen or e.default_profile) for e in entries}
    for entry in entries:
        if entry.profiles and profiles[entry.name].name not in entry.profiles:
            raise UsageError(
                f"metric {entry.name} follows {', '.join(entry.profiles)} only; got profile "
                f"{profiles[entry.name].name!r} (drop --profile, or run it separately)"
            )
    return entries, profiles, stages


@dataclass(frozen=True)
class Job:
    """One clip still to run through one network."""

    item: EvalItem
    side: str
    path: Path
    file_hash: str | None
    network: str
    key: EmbeddingKey
    samples: torch.Tensor


class _Runner:
    """Runs the item loop of one evaluation (see the module docstring)."""

    def __init__(
        self,
        request: EvalRequest,
        networks: list[Network],
        metrics: list[MetricState],
        cache: EmbeddingCache,
        timings: Timings,
        need_reference: bool,
    ):
        self.request, self.networks, self.metrics = request, networks, metrics
        self.need_reference = need_reference
        self.cache, self.timings = cache, timings
        self.preparations: dict[str, list[Network]] = defaultdict(list)
        for network in networks:
            self.preparations[repr(network.preparation)].append(network)
        self.errors: dict[str, str] = {}
        self.failed: dict[str, tuple[str, str]] = {}  # item id -> (side, problem) of its first error
        self.broken: dict[str, Exception] = {}  # network label -> the exception that stopped it
        self.ok: list[str] = []
        self.files: dict[tuple[str, str], ItemFile] = {}  # (item id, side) -> what was scored (items.jsonl)

    def _fail(self, item: EvalItem, side: str, err: MediaError) -> None:
        if not self.request.allow_missing:
            raise type(err)(
                err.path,
                f"{err.problem} [{side} item {item.id!r}] (pass --allow-missing to record it in coverage "
                "and score the rest)",
            ) from err
        self.errors.setdefault(item.id, f"{side} file {err}")
        self.failed.setdefault(item.id, ("generated" if side == "pred" else "reference", err.problem))

    def _lookup(
        self, networks: list[Network], file_hash: str | None
    ) -> tuple[dict[str, Outputs], str | None]:
        """Cached outputs by network label through the audio index, and the indexed audio hash."""
        if file_hash is None:
            return {}, None
        net = networks[0]
        source_key = SourceKey(file_hash, net.preparation, decoder_fingerprint())
        with self.timings.stage("cache_io"):
            indexed = self.cache.get_audio(source_key)
            if indexed is None:
                return {}, None
            audio_hash = indexed["audio_sha256"]
            found = {n.label: self.cache.get(n.key(audio_hash), source=file_hash) for n in networks}
        return {label: out for label, out in found.items() if out is not None}, audio_hash

    def _file(self, item: EvalItem, side: str, path: Path) -> tuple[dict[str, Outputs], list[Job]]:
        """Outputs of one file per network label (cached), and the jobs still to run."""
        found: dict[str, Outputs] = {}
        jobs: list[Job] = []
        file_hash = None
        if self.cache.enabled:
            with self.timings.stage("hash_files"):
                file_hash = file_sha256(path)
        scored = self.files[(item.id, side)] = ItemFile(str(path), file_hash)
        for networks in self.preparations.values():
            cached, indexed_hash = self._lookup(networks, file_hash)
            found.update(cached)
            for network in networks:
                if network.label in cached and indexed_hash is not None:
                    scored.networks[network.label] = NetworkOutput(
                        indexed_hash, network.key(indexed_hash).digest()
                    )
            wanted = [n for n in networks if n.label not in cached]
            if not wanted:
                continue
            net = networks[0]
            samples, record, _ = load_prepared(
                path, net.embedder.needs.sample_rate, net.recipe, timed=self.timings.stage
            )
            with self.timings.stage("hash_audio"):
                fresh_hash = audio_sha256(samples)
            if file_hash is not None and fresh_hash != indexed_hash:
                source_key = SourceKey(file_hash, net.preparation, decoder_fingerprint())
                if indexed_hash is not None:
                    self.cache.reject_audio(
                        source_key, "audio-index entry names audio this file does not decode to"
                    )
                audio = {
                    "audio_sha256": fresh_hash,
                    "samples": record.samples,
                    "sample_rate": record.sample_rate,
                }
                with self.timings.stage("cache_io"):
                    self.cache.put_audio(source_key, audio)
            for network in wanted:
                key = network.key(fresh_hash)
                scored.networks[network.label] = NetworkOutput(fresh_hash, key.digest())
                outputs = None
                if fresh_hash != indexed_hash:
                    with self.timings.stage("cache_io"):
                        outputs = self.cache.get(key)
                        if outputs is not None and file_hash is not None:
                            self.cache.add_source(key, outputs, file_hash)
                if outputs is not None:
                    found[network.label] = outputs
                    continue
                needs = network.embedder.needs
                if samples.shape[-1] < needs.min_samples:
                    raise TooShortError(
                        path,
                        f"{samples.shape[-1]} samples at {needs.sample_rate} Hz after preparation; "
                        f"{network.embedder.name} needs at least {needs.min_samples} "
                        f"({needs.min_samples / needs.sample_rate:.3f} s)",
                    )
                jobs.append(Job(item, side, path, file_hash, network.label, key, samples))
        return found, jobs

    def _run_network(
        self, network: Network, jobs: list[Job], outputs: dict[tuple[str, str], dict[str, Outputs]]
    ) -> None:
        """Run ``jobs`` (equal length) through ``network`` in batches; one job at a time after a failure."""
        for start in range(0, len(jobs), self.request.batch_size):
            batch = jobs[start : start + self.request.batch_size]
            if network.label in self.broken:
                return
            try:
                with self.timings.stage(f"embed:{network.label}"), torch.no_grad():
                    heads = network.embedder.outputs(torch.stack([job.samples for job in batch]))
            except (RuntimeError, ValueError) as err:
                if self.request.strict:
                    raise
                self.broken[network.label] = err  # its metrics are "not computed" (trace said then)
                return
            except MetricInputError as err:
                if len(batch) > 1:
                    for job in batch:
                        self._run_network(network, [job], outputs)
                    continue
                problem = f"{network.embedder.name} cannot embed it: {err}"
                self._fail(batch[0].item, batch[0].side, MediaError(batch[0].path, problem))
                continue
            arrays = {head: value.detach().cpu().numpy() for head, value in heads.items()}
            for row, job in enumerate(batch):
                clip = {head: np.ascontiguousarray(value[row]) for head, value in arrays.items()}
                bad = [head for head, value in clip.items() if not np.isfinite(value).all()]
                if bad:
                    problem = f"{network.embedder.name} {', '.join(bad)} output holds NaN or infinite values"
                    self._fail(job.item, job.side, MediaError(job.path, problem))
                    continue
                with self.timings.stage("cache_io"):
                    self.cache.put(job.key, clip, source=job.file_hash)
                outputs[(job.item.id, job.side)][network.label] = clip

    def run(self, items: tuple[EvalItem, ...]) -> None:
        progress = tqdm(
            total=len(items),
            desc="decode+embed",
            unit="item",
            file=sys.stderr,
            disable=not self.request.progress,
        )
        with progress:
            for n, start in enumerate(range(0, len(items), self.request.batch_size), 1):
                chunk = items[start : start + self.request.batch_size]
                self._run_chunk(chunk)
                if n % RELEASE_EVERY == 0:
                    release_freed_memory()
                progress.update(len(chunk))
                progress.set_postfix(cache_hits=self.cache.stats.hits, errors=len(self.errors), refresh=False)

    def release_networks(self) -> None:
        """Drop the runner's references to its networks (their summary is taken first)."""
        self.networks = []
        self.preparations.clear()

    def gather(self, shard: distributed.Shard) -> None:
        """Under torchrun, after each rank ran its part: every rank's accumulators synced (sums reduced,
        rows and items gathered in rank order) and its item bookkeeping merged, so that every rank holds
        the whole evaluation. Nothing to do in a single process."""
        if shard.world == 1:
            return
        for metric in self.metrics:
            metric.accumulator.sync()
        parts = shard.gather(
            (
                self.errors,
                self.ok,
                self.cache.stats,
                [(m.rows, m.used, m.left_out) for m in self.metrics],
                self.failed,
                self.broken,
                self.files,
            )
        )
        self.errors = {item: why for errors, *_ in parts for item, why in errors.items()}
        self.ok = [item for _, ok, *_ in parts for item in ok]
        self.cache.stats = CacheStats.total([part[2] for part in parts])
        self.failed = {item: why for part in parts for item, why in part[4].items()}
        self.broken = {label: err for part in parts for label, err in part[5].items()}
        self.files = {key: f for part in parts for key, f in part[6].items()}
        for i, metric in enumerate(self.metrics):
            states = [part[3][i] for part in parts]
            metric.rows = {side: sum(rows[side] for rows, _, _ in states) for side in metric.rows}
            metric.used = {side: [x for _, used, _ in states for x in used[side]] for side in metric.used}
            metric.left_out = [x for _, _, left_out in states for x in left_out]

    def _run_chunk(self, chunk: tuple[EvalItem, ...]) -> None:
        outputs: dict[tuple[str, str], dict[str, Outputs]] = defaultdict(dict)
        pending: dict[str, dict[int, list[Job]]] = defaultdict(lambda: defaultdict(list))
        for item in chunk:
            for side, path in item.files():
                try:
                    found, jobs = self._file(item, side, path)
                except MediaError as err:
                    self._fail(item, side, err)
                    break
                outputs[(item.id, side)].update(found)
                for job in jobs:
                    pending[job.network][job.samples.shape[-1]].append(job)
        for network in self.networks:
            for jobs in pending.pop(network.label, {}).values():
                by_network = [job for job in jobs if job.item.id not in self.errors]
                self._run_network(network, by_network, outputs)
        with self.timings.stage("metrics"):
            for item in chunk:
                if item.id in self.errors or not item.files():
                    continue
                paired = item.pred is not None and (item.ref is not None or not self.need_reference)
                for metric in self.metrics:
                    if metric.network in self.broken:
                        continue
                    if not metric.wants(paired):
                        metric.left_out.append(item.id)
                        continue
                    for side, _ in item.files():
                        metric.add(item.id, side, outputs[(item.id, side)][metric.network][metric.entry.head])
                if paired:
                    self.ok.append(item.id)


def evaluate(request: EvalRequest) -> EvalOutcome:
    """Run one evaluation and (with ``request.out``) write ``out/results.json``.

    Raises the typed agomni errors: `UsageError` (arguments, unknown metric/profile/suite, an output or
    cache folder that cannot be written, results already there without ``overwrite``),
    `NotAvailableYet`, `PairingError` (unpaired ids or unused files, unless ``allow_missing``),
    `MediaError` subclasses naming the file (unless ``allow_missing``), `MetricInputError` (a metric that
    cannot be computed on what is left).
    """
    if request.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {request.batch_size}")
    started = time.perf_counter()
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    timings = Timings()
    describe_device(request.device)
    suite = None if request.suite is None else suites.get_suite(request.suite)
    entries, profiles, stages = _metric_profiles(request, suite)
    stages.check_manifest(request.manifest)
    check_destinations(
        request.out, RESULTS_FILE, request.overwrite, request.cache_dir if request.use_cache else None
    )
    need_reference = any("ref" in e.sides for e in entries)
    with timings.stage("collect_inputs"):
        inputs: EvalInputs = collect_inputs(
            pred_dir=request.pred_dir,
            ref_dir=request.ref_dir,
            manifest=request.manifest,
            need_reference=need_reference,
            allow_missing=request.allow_missing,
            ref_superset=request.ref_superset,
            own_files=(
                *request.own_files,
                *(() if request.out is None else (request.out / RESULTS_FILE, request.out / ITEMS_FILE)),
            ),
        )
    with timings.stage("load_embedders"):
        networks, metrics, unbuilt = build_networks(
            entries,
            profiles,
            device=request.device,
            seed=request.seed,
            random_weights=request.random_weights,
            strict=request.strict,
        )
    cache = EmbeddingCache(request.cache_dir, enabled=request.use_cache)
    runner = _Runner(request, networks, metrics, cache, timings, need_reference)
    shard = distributed.current()
    runner.run(tuple(shard.part(inputs.items)))
    runner.gather(shard)
    # the embedders are released before the per-item stages build theirs: peak memory is the largest
    # stage's, not the sum of every network a suite names
    summary = NetworkSummary.of(networks)
    runner.release_networks()
    del networks
    gc.collect()
    release_freed_memory()

    item_scores: dict[str, dict[str, float]] = {}
    scored = StageScores(not_computed=list(unbuilt))
    with timings.stage("metrics"):
        for metric in metrics:
            with scored.isolated([metric.entry.name], request.strict):
                if metric.network in runner.broken:
                    raise runner.broken[metric.network]
                set_metric, scored.details[metric.entry.name] = score(
                    metric, item_scores, _unused(metric, inputs, runner)
                )
                scored.metrics.append(set_metric)
    set_metrics, details = scored.metrics, scored.details
    ok = set(runner.ok)  # scores are kept for items covered "ok" only (results schema rule)
    backends = (
        request.speech_backends
        if suite is None
        else family_stage("speech").resolve_backends(suite.speech_backends, request.speech_backends)
    )
    stage_request = StageRequest(
        names=(),
        pred={i.id: i.pred for i in inputs.items if i.pred is not None and i.id in ok},
        manifest=request.manifest,
        random_weights=request.random_weights,
        device=request.device,
        seed=request.seed,
        progress=request.progress,
        batch_size=request.batch_size,
        backends=backends,
        protocol=None if suite is None else suite.protocol,
        strict=request.strict,
        timed=timings.stage,
    )
    # per-item metric results are kept in a run's own cache (`agomni run`, or `agomni eval --cache-dir`)
    stage_cache = StageCache(cache.root, enabled=request.use_cache and request.cache_dir is not None)
    per_item = stages.run(stage_request, shard, stage_cache)
    set_metrics += per_item.metrics
    details.update(per_item.details)
    for item_id, values in per_item.item_scores.items():
        item_scores.setdefault(item_id, {}).update(values)
    stages_random = bool(stages.names) and request.random_weights
    comparable = stages.comparable(per_item, request.random_weights) and summary.comparable
    settings = EvalSettings(
        profiles={name: get_profile(name).to_dict() for name in sorted({p.name for p in profiles.values()})},
        embedders=summary.described,
        metrics=details,
        comparable_with_published=comparable,
        inputs=inputs.description,
        cache=CacheUse.from_dict({**cache.describe(), **stage_cache.describe()}),
        allow_missing=request.allow_missing,
        batch_size=request.batch_size,
        processes=shard.world,
    )
    timings.seconds["total"] = time.perf_counter() - started
    provenance = collect_provenance(
        device=request.device,
        seed=request.seed,
        checkpoints=summary.checkpoints,
        preprocessing=settings.to_dict(),
        manifest_sha256=inputs.manifest_sha256,
        timings=dict(timings.seconds),
        random_weights=stages_random or summary.random_weights,
    )
    run = RunInfo(
        run_id=request.out.name if request.out is not None and request.out.name else f"eval-{created}",
        created_utc=created,
        command=request.command,
        suite=request.suite,
        pred_dir=str(request.pred_dir),
        ref_dir=None if request.ref_dir is None else str(request.ref_dir),
    )
    coverage = _coverage(inputs, runner, per_item.unscored)
    not_computed = _in_request_order([*scored.not_computed, *per_item.not_computed], entries, stages)
    results = Results(run, provenance, item_scores, tuple(set_metrics), coverage, not_computed)
    records = _item_records(coverage, runner)
    path = None
    if request.out is not None:
        write_items(records, request.out / ITEMS_FILE)
        path = write_results(results, request.out / RESULTS_FILE)
    return EvalOutcome(results, path, comparable, records)


def _item_records(coverage: tuple[CoverageEntry, ...], runner: _Runner) -> tuple[ItemRecord, ...]:
    """One record per covered id (items.jsonl): its status and the files it was scored on."""
    return tuple(
        ItemRecord(
            entry.id,
            entry.status,
            {side: runner.files[(entry.id, side)] for side in SIDES if (entry.id, side) in runner.files},
        )
        for entry in coverage
    )


def _unused(metric: MetricState, inputs: EvalInputs, runner: _Runner) -> dict[str, tuple[str, str]]:
    """Why each item the metric did not use was left out: (side, problem) of a file that failed, or the
    side absent for a metric that scores pairs only."""
    unused = dict(runner.failed)
    for item in inputs.items:
        if item.id in metric.left_out and item.id not in unused:
            lacking = "generated" if item.pred is None else "reference"
            unused[item.id] = (lacking, f"no {lacking} file ({metric.entry.name} scores pairs only)")
    return unused


def _in_request_order(
    entries: list[NotComputed], metrics: list[MetricEntry], stages: ItemStages
) -> tuple[NotComputed, ...]:
    """The not-computed entries in the order the metrics were requested."""
    order = [m.name for m in metrics] + [n for names in stages.names.values() for n in names]
    return tuple(sorted(entries, key=lambda e: order.index(e.name) if e.name in order else len(order)))


def _coverage(
    inputs: EvalInputs, runner: _Runner, unscored: dict[str, dict[str, str]]
) -> tuple[CoverageEntry, ...]:
    """Every id: "ok" (with the metrics that could not score it and why: `unscored`), "error" (with the
    file and problem), "missing" (one side absent: which metrics used its file), and the unused files of
    the inputs."""
    entries = {entry.id: entry for entry in inputs.unused}
    for item in inputs.items:
        if item.id in runner.errors:
            entries[item.id] = CoverageEntry(item.id, "error", runner.errors[item.id])
        elif item.id in runner.ok:
            entries[item.id] = CoverageEntry(item.id, "ok", "", unscored.get(item.id, {}))
        elif item.id in inputs.order:
            lacking = "generated" if item.pred is None else "reference"
            used = sorted(m.entry.name for m in runner.metrics if item.id in m.used["pred"] + m.used["ref"])
            left = sorted(m.entry.name for m in runner.metrics if item.id in m.left_out)
            entries[item.id] = CoverageEntry(
                item.id,
                "missing",
                f"no {lacking} file; its other file is used by {', '.join(used) or 'no metric'} "
                f"(all clips of each side) and not by {', '.join(left) or 'any other'} (pairs only)",
            )
    return tuple(entries[i] for i in inputs.order if i in entries)
