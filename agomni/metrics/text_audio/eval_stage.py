"""The text-audio stage of `agomni eval`: the LAION-CLAP score (``clap``) and the MS-CLAP score
(``ms_clap``) of each generated clip against its item's caption (the manifest's ``text`` field, so the
metrics need ``--manifest``).

One scorer per metric over the generated files, built through `StageRequest.network` when its metric's
turn comes (once per stage run; `agomni.evaluate.item_stages` releases it before the next is built); each
item's cosine goes into the per-item scores, each item that could not be scored (no caption, an
undecodable or too short clip ...) is listed with its reason in the metric's details and under
``unscored`` in the item's coverage entry, and the set value is the mean over the scored items
(`agomni.metrics.item_outcomes.combine`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from agomni import suites
from agomni.metrics.item_outcomes import metric_config
from agomni.metrics.stage import FamilyStage, ManifestNeed, StageRequest, StageScores
from agomni.metrics.text_audio import clap_score, ms_clap_score

#: network (the registry's ``network`` column of the text-audio rows) -> (random-weights scorer from a
#: seed, registry scorer), each taking the device
SCORERS: dict[
    str, tuple[Callable[..., clap_score.TextAudioScorer], Callable[..., clap_score.TextAudioScorer]]
] = {
    "laion-clap": (clap_score.ClapScorer.random, clap_score.ClapScorer.from_registry),
    "ms-clap": (ms_clap_score.MsClapScorer.random, ms_clap_score.MsClapScorer.from_registry),
}
suites.check_known("text_audio", "network", SCORERS)


MANIFEST_NEED = ManifestNeed(
    "compares each generated audio with its item's caption", "items with a 'text' field"
)


def manifest_need(names: tuple[str, ...]) -> ManifestNeed:
    """Every text-audio metric reads its item's caption from the manifest."""
    return MANIFEST_NEED


def score_text_audio(request: StageRequest) -> StageScores:
    """The text-audio metrics of ``request`` over its generated files, each scored against its manifest
    item's caption (see `StageScores`), one clip per network call, one metric's network at a time."""
    manifest = request.manifest_items(MANIFEST_NEED)
    items = [
        clap_score.ClapTextItem(i, path, manifest[i].text if i in manifest else None)
        for i, path in request.pred.items()
    ]
    out = StageScores(on_filed=request.on_filed)
    for name in request.names:
        with out.isolated([name], request.strict):
            network = suites.network_of(name)
            random, registry = SCORERS[network]
            build = (
                partial(random, request.seed, device=request.device)
                if request.random_weights
                else partial(registry, device=request.device)
            )
            scorer = request.network(network, build)
            with request.timed(f"network:{name}"):
                scores = clap_score.score_items(scorer, items, progress=request.progress, name=name)
            config = metric_config(name, scorer.config())
            del scorer  # without ``request.networks``, released before the next network is built
            out.file(name, config, clap_score.outcomes(scores))
    return out


STAGE = FamilyStage(score_text_audio, manifest_need)
