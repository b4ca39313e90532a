"""The `agomni eval` pipeline: collect items -> decode + preprocess -> embed (cached) -> metrics -> Results.

Data flow per chunk of ``batch_size`` items (item-major, so every metric sees the same items):

1. for each file of the item (generated, reference) and each distinct preprocessing: hash the file,
   look its decoded-audio hash up in the cache's audio index, look the embeddings up; decode only when
   something is missing (`agomni.evaluate.preprocess`: the profile's input recipe for that embedder,
   then its crop/pad);
2. embed the misses per embedder in batches of equal-length clips, check they are finite, store them;
3. an item whose files all decoded and embedded feeds every metric accumulator; an item with a failure
   is an error (``allow_missing``: coverage status "error" with the file and problem, and it feeds no
   metric; otherwise the run stops with that error).

Memory does not grow with the number of clips: outputs live for one chunk, FD keeps streamed sufficient
statistics, and KAD's kept embeddings are bounded (`agomni.evaluate.scoring`).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from agomni.errors import MediaError, MetricInputError, UsageError
from agomni.evaluate.inputs import EvalInputs, EvalItem, collect_inputs
from agomni.evaluate.preprocess import PrepConfig
from agomni.evaluate.profiles import PROFILES, Profile, get_profile
from agomni.evaluate.registry import (
    CheckpointIdentity,
    MetricEntry,
    build_embedder,
    checkpoint_identity,
    resolve_metric_names,
)
from agomni.evaluate.scoring import MetricState, score
from agomni.io.container import file_sha256
from agomni.metrics.cache import EmbeddingCache, EmbeddingKey, SourceKey, audio_sha256, decoder_fingerprint
from agomni.metrics.embedders import Embedder
from agomni.metrics.embedders.recipes import InputRecipe
from agomni.results import (
    CoverageEntry,
    Results,
    RunInfo,
    SetMetric,
    collect_provenance,
    write_results,
)
from agomni.results.provenance import describe_device
from agomni.suites import get_suite

RESULTS_FILE = "results.json"


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


@dataclass
class Group:
    """One embedder output (``head``) under one profile's preprocessing, and the metrics fed by it."""

    label: str
    entry: MetricEntry
    profile: Profile
    embedder: Embedder
    checkpoint: CheckpointIdentity
    prep: PrepConfig
    metrics: list[MetricState] = field(default_factory=list)

    def key(self, audio_hash: str) -> EmbeddingKey:
        return EmbeddingKey(
            audio_sha256=audio_hash,
            embedder=self.embedder.name,
            embedder_key=self.embedder.cache_key(),
            checkpoint=self.checkpoint.key,
            preprocessing=self.prep.to_dict(),
            head=self.entry.head,
        )

    def run(self, batch: torch.Tensor) -> np.ndarray:
        """This group's output (``embed`` or ``logits``) of a batch [B, samples], as numpy."""
        with torch.no_grad():
            return _numpy(getattr(self.embedder, self.entry.head)(batch))

    def run_both(self, batch: torch.Tensor) -> dict[str, np.ndarray]:
        """Embeddings and logits of a batch from one forward pass (``embed_and_logits``)."""
        with torch.no_grad():
            embedding, logits = self.embedder.embed_and_logits(batch)  # type: ignore[attr-defined]
        return {"embed": _numpy(embedding), "logits": _numpy(logits)}


def _numpy(out: torch.Tensor | np.ndarray) -> np.ndarray:
    return out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)


@dataclass(frozen=True)
class Job:
    """One file still to embed for one group: its item and side, the cache key, the prepared samples."""

    item: EvalItem
    side: str
    path: Path
    key: EmbeddingKey
    samples: torch.Tensor


class Timings:
    """Wall-clock seconds per stage, summed over calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


@dataclass(frozen=True)
class EvalOutcome:
    """The results, where they were written (None without --out), and the metrics' labels for printing."""

    results: Results
    path: Path | None
    comparable_with_published: bool


def _metric_profiles(request: EvalRequest) -> tuple[list[MetricEntry], dict[str, Profile]]:
    names = list(request.metrics) if request.metrics else None
    suite_profile = None
    if request.suite is not None:
        suite = get_suite(request.suite)
        names = names or [m.name for m in suite.metrics]
        suite_profile = suite.protocol if suite.protocol in PROFILES else None
    if not names:
        raise UsageError("no metrics named; pass --metrics a,b or --suite NAME")
    entries = resolve_metric_names(names)
    chosen = request.profile or suite_profile
    profiles = {e.name: get_profile(chosen or e.default_profile) for e in entries}
    for entry in entries:
        if entry.profiles and profiles[entry.name].name not in entry.profiles:
            raise UsageError(
                f"metric {entry.name} follows {', '.join(entry.profiles)} only; got profile "
                f"{profiles[entry.name].name!r} (drop --profile, or run it separately)"
            )
    return entries, profiles


def _build_groups(
    entries: list[MetricEntry], profiles: dict[str, Profile], request: EvalRequest
) -> list[Group]:
    groups: dict[tuple[str, str, str], Group] = {}
    embedders: dict[tuple[str, str, str], Embedder] = {}
    for entry in entries:
        profile = profiles[entry.name]
        spec = entry.embedder
        options = dict(profile.embedder_options.get(spec.name, {}))
        recipe = profile.input_recipe_for(spec.name)
        embedder_id = (spec.name, profile.name, repr(sorted(options.items())))
        if embedder_id not in embedders:
            torch.manual_seed(request.seed)
            embedders[embedder_id] = build_embedder(
                spec,
                options,
                device=request.device,
                seed=request.seed,
                recipe=recipe,
                random_weights=request.random_weights,
            )
        embedder = embedders[embedder_id]
        if entry.head == "logits" and not callable(getattr(embedder, "logits", None)):
            raise UsageError(
                f"metric {entry.name}: embedder {spec.name!r} has no logits() method (class scores)"
            )
        group_id = (spec.name, entry.head, profile.name)
        if group_id not in groups:
            own = getattr(embedder, "recipe", None)
            if (
                isinstance(own, InputRecipe) and own != recipe
            ):  # VGGish/PANNs prepare files with the recipe they carry
                raise UsageError(f"embedder {spec.name!r} was built with another input recipe than {recipe}")
            prep = PrepConfig(embedder.sample_rate, recipe, profile.crop_pad_for(spec.name))
            label = f"{spec.name}.{entry.head}@{profile.name}"
            identity = checkpoint_identity(embedder, spec)
            groups[group_id] = Group(label, entry, profile, embedder, identity, prep)
        group = groups[group_id]
        pooling = profile.pooling_for(spec.name) if embedder.output == "frames" else "clip"
        group.metrics.append(MetricState(entry, profile, group.label, pooling, seed=request.seed))
    return list(groups.values())


class _Runner:
    """Runs the item loop of one evaluation (see the module docstring)."""

    def __init__(self, request: EvalRequest, groups: list[Group], cache: EmbeddingCache, timings: Timings):
        self.request = request
        self.groups = groups
        self.cache = cache
        self.timings = timings
        self.preps: dict[str, tuple[PrepConfig, list[Group]]] = {}
        for group in groups:
            prep_id = repr(group.prep.to_dict())
            self.preps.setdefault(prep_id, (group.prep, []))[1].append(group)
        self.errors: dict[str, str] = {}
        self.ok: list[str] = []

    def _fail(self, item: EvalItem, side: str, path: Path, err: MediaError) -> None:
        if not self.request.allow_missing:
            raise type(err)(
                err.path,
                f"{err.problem} [{side} item {item.id!r}] (pass --allow-missing to record it in coverage "
                "and score the rest)",
            ) from err
        self.errors.setdefault(item.id, f"{side} file {err}")

    def _lookup(
        self, path: Path
    ) -> tuple[dict[str, np.ndarray], list[tuple[Group, EmbeddingKey, torch.Tensor]]]:
        """Cached outputs by group label, and (group, key, samples) still to embed, for one file."""
        found: dict[str, np.ndarray] = {}
        todo: list[tuple[Group, EmbeddingKey, torch.Tensor]] = []
        file_hash = None
        if self.cache.enabled:
            with self.timings.stage("hash_files"):
                file_hash = file_sha256(path)
        for prep, groups in self.preps.values():
            source_key = None
            audio_hash = None
            wanted = list(groups)
            if file_hash is not None:
                source_key = SourceKey(file_hash, prep.to_dict(), decoder_fingerprint())
                with self.timings.stage("cache_io"):
                    indexed = self.cache.get_audio(source_key)
                if indexed is not None:
                    audio_hash = indexed["audio_sha256"]
                    wanted = []
                    for group in groups:
                        with self.timings.stage("cache_io"):
                            array = self.cache.get(group.key(audio_hash))
                        if array is None:
                            wanted.append(group)
                        else:
                            found[group.label] = array
            if not wanted:
                continue
            with self.timings.stage("decode"):
                samples, record = prep.prepare(path)
            with self.timings.stage("hash_audio"):
                fresh_hash = audio_sha256(samples)
            if source_key is not None and audio_hash is None:
                with self.timings.stage("cache_io"):
                    self.cache.put_audio(
                        source_key,
                        {
                            "audio_sha256": fresh_hash,
                            "samples": record.samples,
                            "sample_rate": record.sample_rate,
                        },
                    )
            for group in wanted:
                key = group.key(fresh_hash)
                array = None
                if audio_hash is None:  # not looked up above
                    with self.timings.stage("cache_io"):
                        array = self.cache.get(key)
                if array is None:
                    todo.append((group, key, samples))
                else:
                    found[group.label] = array
        return found, todo

    def _sibling(self, group: Group) -> Group | None:
        """The group with the same embedder and preprocessing but the other head, when the embedder
        computes both in one forward pass (``embed_and_logits``), else None."""
        if not callable(getattr(group.embedder, "embed_and_logits", None)):
            return None
        for other in self.groups:
            same = other.embedder is group.embedder and other.prep.to_dict() == group.prep.to_dict()
            if other is not group and same and other.entry.head != group.entry.head:
                return other
        return None

    def _embed(
        self, pending: dict[str, list[Job]], outputs: dict[tuple[str, str], dict[str, np.ndarray]]
    ) -> None:
        for group in self.groups:
            sibling = self._sibling(group)
            partners = {(j.item.id, j.side): j for j in pending.get(sibling.label, [])} if sibling else {}
            by_length: dict[int, list[Job]] = defaultdict(list)
            for job in pending.pop(group.label, []):
                if job.item.id not in self.errors:
                    by_length[job.samples.shape[-1]].append(job)
            for same_length in by_length.values():
                for start in range(0, len(same_length), self.request.batch_size):
                    batch = same_length[start : start + self.request.batch_size]
                    self._embed_batch(group, batch, outputs, sibling, partners)
            if sibling is not None:  # what the shared forward passes did not cover
                pending[sibling.label] = list(partners.values())

    def _embed_batch(
        self,
        group: Group,
        batch: list[Job],
        outputs: dict[tuple[str, str], dict[str, np.ndarray]],
        sibling: Group | None,
        partners: dict[tuple[str, str], Job],
    ) -> None:
        stacked = torch.stack([job.samples for job in batch])
        try:
            with self.timings.stage("embed"):
                if sibling is None:
                    result, other = group.run(stacked), None
                else:
                    both = group.run_both(stacked)
                    result, other = both[group.entry.head], both[sibling.entry.head]
        except MetricInputError as err:
            if len(batch) > 1:  # find the item(s) at fault one by one
                for job in batch:
                    self._embed_batch(group, [job], outputs, sibling, partners)
                return
            job = batch[0]
            problem = f"{group.embedder.name} cannot embed it: {err}"
            self._fail(job.item, job.side, job.path, MediaError(job.path, problem))
            return
        for row, job in enumerate(batch):
            if not self._store(group, job, result[row], outputs):
                continue
            twin = partners.pop((job.item.id, job.side), None)
            if twin is not None and other is not None:
                self._store(sibling, twin, other[row], outputs)

    def _store(
        self, group: Group, job: Job, array: np.ndarray, outputs: dict[tuple[str, str], dict[str, np.ndarray]]
    ) -> bool:
        """Check one output is finite, cache it and keep it for the metrics; False (item failed) if not."""
        if not np.isfinite(array).all():
            problem = f"{group.embedder.name} {group.entry.head} output holds NaN or infinite values"
            self._fail(job.item, job.side, job.path, MediaError(job.path, problem))
            return False
        with self.timings.stage("cache_io"):
            self.cache.put(job.key, array)
        outputs[(job.item.id, job.side)][group.label] = array
        return True

    def run(self, items: tuple[EvalItem, ...]) -> None:
        progress = tqdm(
            total=len(items),
            desc="decode+embed",
            unit="item",
            file=sys.stderr,
            disable=not self.request.progress,
        )
        with progress:
            for start in range(0, len(items), self.request.batch_size):
                chunk = items[start : start + self.request.batch_size]
                self._run_chunk(chunk)
                progress.update(len(chunk))
                progress.set_postfix(cache_hits=self.cache.stats.hits, errors=len(self.errors), refresh=False)

    def _run_chunk(self, chunk: tuple[EvalItem, ...]) -> None:
        outputs: dict[tuple[str, str], dict[str, np.ndarray]] = defaultdict(dict)
        pending: dict[str, list[Job]] = defaultdict(list)
        for item in chunk:
            for side, path in item.files():
                try:
                    found, todo = self._lookup(path)
                except MediaError as err:
                    self._fail(item, side, path, err)
                    break
                outputs[(item.id, side)].update(found)
                for group, key, samples in todo:
                    pending[group.label].append(Job(item, side, path, key, samples))
        self._embed(pending, outputs)
        with self.timings.stage("metrics"):
            for item in chunk:
                if item.id in self.errors:
                    continue
                for side, _ in item.files():
                    for group in self.groups:
                        for metric in group.metrics:
                            metric.add(item.id, side, outputs[(item.id, side)][group.label])
                self.ok.append(item.id)


def evaluate(request: EvalRequest) -> EvalOutcome:
    """Run one evaluation and (with ``request.out``) write ``out/results.json``.

    Raises the typed agomni errors: `UsageError` (arguments, unknown metric/profile/suite),
    `NotAvailableYet` (an embedder not landed), `PairingError`, `MediaError` subclasses naming the file
    (unless ``allow_missing``), `MetricInputError` (a metric that cannot be computed on what is left).
    """
    if request.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {request.batch_size}")
    started = time.perf_counter()
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    timings = Timings()
    describe_device(request.device)
    entries, profiles = _metric_profiles(request)
    with timings.stage("collect_inputs"):
        inputs: EvalInputs = collect_inputs(
            pred_dir=request.pred_dir,
            ref_dir=request.ref_dir,
            manifest=request.manifest,
            paired=any(e.kind == "kl" for e in entries),
            need_reference=any(e.kind != "is" for e in entries),
            allow_missing=request.allow_missing,
        )
    with timings.stage("load_embedders"):
        groups = _build_groups(entries, profiles, request)
    cache = EmbeddingCache(request.cache_dir, enabled=request.use_cache)
    runner = _Runner(request, groups, cache, timings)
    runner.run(inputs.items)

    item_scores: dict[str, dict[str, float]] = {}
    set_metrics: list[SetMetric] = []
    metric_details: dict[str, Any] = {}
    with timings.stage("metrics"):
        for group in groups:
            for metric in group.metrics:
                set_metric, details = score(metric, item_scores)
                set_metrics.append(set_metric)
                metric_details[set_metric.name] = details
    order = {name: i for i, name in enumerate(e.name for e in entries)}
    set_metrics.sort(key=lambda m: order[m.name])

    coverage = _coverage(inputs, runner)
    comparable = all(g.embedder.comparable_with_published and not g.checkpoint.random_weights for g in groups)
    checkpoints = {g.checkpoint.record_name: g.checkpoint.record for g in groups if g.checkpoint.record}
    preprocessing = {
        "profiles": {
            name: get_profile(name).to_dict() for name in sorted({p.name for p in profiles.values()})
        },
        "embedders": {
            g.label: {
                **g.embedder.metadata(),
                "cache_key": g.embedder.cache_key(),
                "checkpoint": g.checkpoint.key,
                "random_weights": g.checkpoint.random_weights,
                "head": g.entry.head,
                "profile": g.profile.name,
                "preprocessing": g.prep.to_dict(),
            }
            for g in groups
        },
        "metrics": metric_details,
        "comparable_with_published": comparable,
        "inputs": inputs.description,
        "cache": cache.describe(),
        "allow_missing": request.allow_missing,
        "batch_size": request.batch_size,
    }
    timings.seconds["total"] = time.perf_counter() - started
    provenance = collect_provenance(
        device=request.device,
        seed=request.seed,
        checkpoints=checkpoints,
        preprocessing=preprocessing,
        manifest_sha256=inputs.manifest_sha256,
        timings=dict(timings.seconds),
        random_weights=any(g.checkpoint.random_weights for g in groups),
    )
    run = RunInfo(
        run_id=request.out.name if request.out is not None and request.out.name else f"eval-{created}",
        created_utc=created,
        command=request.command,
        suite=request.suite,
        pred_dir=str(request.pred_dir),
        ref_dir=None if request.ref_dir is None else str(request.ref_dir),
    )
    results = Results(run, provenance, item_scores, tuple(set_metrics), coverage)
    path = write_results(results, request.out / RESULTS_FILE) if request.out is not None else None
    return EvalOutcome(results, path, comparable)


def _coverage(inputs: EvalInputs, runner: _Runner) -> tuple[CoverageEntry, ...]:
    entries = {entry.id: entry for entry in inputs.missing}
    for item_id, reason in runner.errors.items():
        entries[item_id] = CoverageEntry(item_id, "error", reason)
    for item_id in runner.ok:
        entries[item_id] = CoverageEntry(item_id, "ok", "")
    return tuple(entries[i] for i in inputs.order)
