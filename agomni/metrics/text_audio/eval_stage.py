"""The text-audio stage of `agomni eval`: the LAION-CLAP score of each generated clip against its item's
caption (the manifest's ``text`` field, so the metric needs ``--manifest``).

One scorer over the generated files; each item's cosine goes into the per-item scores, each item that
could not be scored (no caption, an undecodable or too short clip ...) is listed with its reason in the
metric's details and under ``unscored`` in the item's coverage entry, and the set value is the mean over the scored items (`clap_score.summarise`).
"""

from __future__ import annotations

from agomni.metrics.stage import StageRequest, StageScores
from agomni.metrics.text_audio import clap_score


def score_text_audio(request: StageRequest) -> StageScores:
    """The text-audio metrics of ``request`` over its generated files, each scored against its manifest
    item's caption (see `StageScores`), one clip per network call."""
    manifest = request.manifest_items(
        "compares each generated audio with its item's caption", "items with a 'text' field"
    )
    device = request.device
    scorer = (
        clap_score.ClapScorer.random(request.seed, device=device)
        if request.random_weights
        else clap_score.ClapScorer.from_registry(device=device)
    )
    items = [
        clap_score.ClapTextItem(i, path, manifest[i].text if i in manifest else None)
        for i, path in request.pred.items()
    ]
    out = StageScores()
    out.add_result(
        clap_score.NAME,
        clap_score.summarise(
            clap_score.score_items(scorer, items, progress=request.progress), scorer.config()
        ),
    )
    return out
