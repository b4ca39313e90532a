"""The audio-visual stage of `agomni eval`: LSE-C / LSE-D, DeSync and IB-score on (video, generated audio).

Each generated audio file is judged against its item's video, which comes from the manifest's ``video``
field (so these metrics need ``--manifest``). Per network (the registry's ``network`` column) one
scorer runs over the items (LSE-C and LSE-D share one lip-sync run); each item's value goes into the
per-item scores, each item that could not be scored (no video in the manifest, no face, too short,
unreadable ...) is returned with the metric and the reason (the run's coverage entry of the item lists
it under ``unscored``) and listed in the metric's details, and the set value is the mean over the scored
items (`agomni.metrics.item_mean`). Scorers are built through `StageRequest.network`: once per stage run,
one network in memory at a time (`agomni.evaluate.item_stages` releases each before the next is built).
"""

from __future__ import annotations

from functools import partial

from agomni import suites, weights
from agomni.metrics.av import score as av_score
from agomni.metrics.stage import FamilyStage, ManifestNeed, StageRequest, StageScores

MANIFEST_NEED = ManifestNeed(
    "judge each generated audio against its item's video", "items with a 'video' field"
)


def manifest_need(names: tuple[str, ...]) -> ManifestNeed:
    """Every audio-visual metric reads its item's video from the manifest."""
    return MANIFEST_NEED


def score_audio_visual(request: StageRequest) -> StageScores:
    """The audio-visual metrics of ``request`` over its generated files, each judged against the
    manifest item's video (see `StageScores`), with ``request.batch_size`` windows / segments / clips
    per network call."""
    items = request.manifest_items(MANIFEST_NEED)
    videos = {item_id: item.video for item_id, item in items.items()}
    names, pred = request.names, request.pred
    specs = suites.load_metric_specs()
    out = StageScores(on_filed=request.on_filed)
    done: set[str] = set()
    for name in names:
        if name in done:
            continue
        # one scorer run gives every metric of its network (the lip-sync run both LSE numbers)
        family = [m for m in suites.network_rows("audio_visual", specs[name].network) if m in names]
        done.update(family)
        with out.isolated(family, request.strict):
            options = {} if request.batch_size is None else {"batch_size": request.batch_size}
            build = partial(
                av_score.build_scorer,
                name,
                random_weights=request.random_weights,
                seed=request.seed,
                device=request.device,
                **options,
            )
            scorer = request.network(specs[name].network, build)
            with_video = [
                av_score.AVItem(i, videos[i], path) for i, path in pred.items() if videos.get(i) is not None
            ]
            scored = av_score.score_items(
                scorer, with_video, progress=request.progress, timed=request.timed, label=name
            )
            scored += [
                scorer.item_type(item_id=i, error="the manifest gives no video", error_side="video")
                for i in sorted(pred)
                if videos.get(i) is None
            ]
            checkpoints = (
                {} if request.random_weights else {w: weights.sha256_of(w) for w in specs[name].weights}
            )
            labels = {**scorer.config(), "checkpoint_sha256": checkpoints}
            del scorer  # without ``request.networks``, released before the next network is built
            for metric in family:
                with out.isolated([metric], request.strict):
                    out.file(metric, av_score.config(metric, labels), av_score.outcomes(metric, scored))
    return out


STAGE = FamilyStage(score_audio_visual, manifest_need)
