"""Score a set of (video, audio) items with one audio-visual metric: per-item results, then the set value.

One path for every caller (the benchmark, tests, `agomni eval`): `build_scorer` (registered checkpoints,
or seeded random weights for tests and latency), `score_items` (a progress bar; an unreadable or unusable
item becomes that item's error, never an exception), `outcomes` and `config` (what
`agomni.metrics.item_outcomes.combine` files as the metric's result, labelled from
evaluation/metrics.json). LSE-C and LSE-D come from one lip-sync run.

Example (random weights: the numbers are not measurements)::

    from agomni.metrics.av.score import AVItem, build_scorer, config, outcomes, score_items
    from agomni.metrics.item_outcomes import combine
    scorer = build_scorer("desync", random_weights=True)
    items = score_items(scorer, [AVItem("clip1", "clip1.mp4")])
    print(combine("desync", config("desync", scorer.config()), outcomes("desync", items)))
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from agomni import suites
from agomni.errors import UsageError
from agomni.metrics.av.desync import DeSyncItem, DeSyncScorer
from agomni.metrics.av.ib_score import IB_SCALE, IBItem, IBScorer
from agomni.metrics.av.imagebind import ImageBindTowers
from agomni.metrics.av.media import Decoded, decode
from agomni.metrics.av.synchformer_offsets import Synchformer
from agomni.metrics.item_outcomes import ItemOutcome, MetricConfig, metric_config

if TYPE_CHECKING:
    from agomni.metrics.av.lipsync import LipSyncItem, LipSyncScorer

    Scorer = LipSyncScorer | DeSyncScorer | IBScorer
    Item = LipSyncItem | DeSyncItem | IBItem

AV_METRICS = suites.family_names("audio_visual")  # the metric registry's audio-visual rows


def lipsync_module() -> ModuleType:
    """`agomni.metrics.av.lipsync`, imported on first use: it needs OpenCV, an optional dependency."""
    if importlib.util.find_spec("cv2") is None:
        raise UsageError("LSE-C / LSE-D need OpenCV (face crops, Haar fallback): pip install 'agomni[av]'")
    return importlib.import_module("agomni.metrics.av.lipsync")


@dataclass(frozen=True)
class AVItem:
    """One item: its id, the video, and the audio to judge against it (None: the video's own track)."""

    item_id: str
    video: str | os.PathLike[str]
    audio: str | os.PathLike[str] | None = None


def build_scorer(
    metric: str,
    *,
    random_weights: bool = False,
    seed: int = 0,
    device: str | torch.device = "cpu",
    detector: str = "s3fd",
    **options: Any,
) -> Scorer:
    """The scorer of `metric` (one of `AV_METRICS`) with the registered checkpoints, or with seeded random
    weights (`random_weights`; lip sync then finds faces with the Haar fallback, since an untrained S3FD
    finds none). `options` go to the scorer (``duration`` for DeSync / IB-score, ``tracking`` for LSE,
    ``batch_size`` for all: SyncNet windows, MotionFormer segments or ImageBind clips per network call on
    `device`; it does not change the numbers)."""
    if metric not in AV_METRICS:
        raise UsageError(f"unknown audio-visual metric {metric!r}; choose one of {', '.join(AV_METRICS)}")
    if detector not in ("s3fd", "haar"):
        raise UsageError(f"unknown face detector {detector!r}; choose s3fd (the reference) or haar (offline)")
    network = suites.network_of(metric)
    if network == "syncnet":
        lipsync = lipsync_module()
        if not random_weights:
            return lipsync.LipSyncScorer.from_registry(detector=detector, device=device, **options)
        torch.manual_seed(seed)
        return lipsync.LipSyncScorer(
            lipsync.SyncNet(), lipsync.HaarDetector(), random_weights=True, device=device, **options
        )
    if not random_weights:
        factory = DeSyncScorer if network == "synchformer" else IBScorer
        return factory.from_registry(device=device, **options)
    torch.manual_seed(seed)
    if network == "synchformer":
        return DeSyncScorer(Synchformer(), random_weights=True, device=device, **options)
    return IBScorer(ImageBindTowers(), random_weights=True, device=device, **options)


def score_items(
    scorer: Scorer,
    items: Sequence[AVItem],
    *,
    workers: int = 0,
    progress: bool = True,
    timed: Callable[[str], AbstractContextManager[Any]] = nullcontext,
    label: str = "av",
) -> list[Item]:
    """Per-item results in input order; a media problem is the item's `error` (see each scorer).

    `workers` > 0 decodes items in that many worker processes (spawned), at most 2 x `workers` items
    ahead of the scoring, so decoding overlaps the networks while memory stays bounded. ``timed(stage)``
    times the decoding as "decode:`label`" (with workers: the wait for a decode) and the scoring (the
    scorer's preprocessing and network) as "network:`label`".
    """
    bar = tqdm(total=len(items), desc=type(scorer).__name__, unit="video", disable=not progress)
    results: list[Item] = []
    if workers <= 0:
        for item in items:
            with timed(f"decode:{label}"):
                decoded = decode(scorer.media, item.video, item.audio)
            with timed(f"network:{label}"):
                results.append(scorer.score_decoded(item.item_id, decoded))
            bar.update()
        bar.close()
        return results
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: deque[tuple[AVItem, Future[Decoded]]] = deque()
        queue = iter(items)
        for item in itertools.islice(queue, 2 * workers):
            pending.append((item, pool.submit(decode, scorer.media, item.video, item.audio)))
        while pending:
            item, future = pending.popleft()
            with timed(f"decode:{label}"):
                decoded = future.result()
            with timed(f"network:{label}"):
                results.append(scorer.score_decoded(item.item_id, decoded))
            bar.update()
            for following in itertools.islice(queue, 1):
                pending.append(
                    (following, pool.submit(decode, scorer.media, following.video, following.audio))
                )
    bar.close()
    return results


def _value(metric: str, item: Item) -> float | None:
    if metric == "lse_c":
        return item.lse_c
    if metric == "lse_d":
        return item.lse_d
    if metric == "desync":
        return item.desync_s
    return None if item.cosine is None else item.cosine * IB_SCALE


#: The audio-visual networks (the registry's ``network`` column; `build_scorer` builds each) and the
#: per-item fields of their items kept in a result's ``item_details`` (what a user needs to debug one
#: item's number).
ITEM_DETAILS: dict[str, tuple[str, ...]] = {
    "syncnet": ("offset_frames", "frames_used", "video_frames", "face_track_coverage", "source_fps"),
    "synchformer": ("offsets_s", "source_fps"),
    "imagebind": ("video_clips", "audio_clips"),
}
suites.check_known("audio_visual", "network", ITEM_DETAILS)


def item_details(metric: str, item: Item) -> dict[str, Any]:
    """What one item's result says beyond its value: LSE's best offset (video frames at 25 fps), SyncNet
    windows scored (``frames_used``) and face tracks; DeSync's two window offsets; IB-score's clip counts."""
    network = suites.network_of(metric)
    found = {name: getattr(item, name) for name in ITEM_DETAILS[network]}
    if network == "syncnet":  # each face track's values of the lip-sync metrics (its fields are named so)
        lipsync = suites.network_rows("audio_visual", network)
        found["tracks"] = [
            {"first_frame": t.first_frame, "last_frame": t.last_frame, "windows": t.windows}
            | {"offset_frames": t.offset_frames}
            | {name: getattr(t, name) for name in lipsync}
            for t in item.tracks
        ]
    return {key: list(value) if isinstance(value, tuple) else value for key, value in found.items()}


def outcomes(metric: str, items: Sequence[Item]) -> dict[str, ItemOutcome]:
    """Each item's outcome of `metric`: its value and `item_details`, or its error and the side at fault."""
    return {
        item.item_id: ItemOutcome(None, item.error or "no value", item.error_side or "generated")
        if (value := _value(metric, item)) is None
        else ItemOutcome(float(value), entries={"item_details": item_details(metric, item)})
        for item in items
    }


def config(metric: str, scorer_config: dict[str, Any]) -> MetricConfig:
    """`metric`'s configuration: its catalogue entry and the scorer's ``config()`` (mean over the scored
    items; each scored item's `item_details`)."""
    labels = dict(scorer_config)
    if metric == "ib_score":
        labels["scale"] = f"mean cosine x{IB_SCALE:g} (as papers print it; av-benchmark prints x1)"
    return metric_config(metric, labels, keys=("item_details",))
