"""The text-audio stage of `agomni eval`: the LAION-CLAP score of each generated clip against its item's
caption (the manifest's ``text`` field, so the metric needs ``--manifest``).

One scorer over the generated files; each item's cosine goes into the per-item scores, each item that
could not be scored (no caption, an undecodable or too short clip ...) is listed with its reason in the
metric's details and under ``unscored`` in the item's coverage entry, and the set value is the mean over the scored items (`clap_score.summarise`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from agomni.errors import UsageError
from agomni.evaluate.stage_scores import StageScores
from agomni.manifest import load_manifest
from agomni.metrics.text_audio import clap_score


def score_text_audio(
    names: Sequence[str],
    pred: dict[str, Path],
    manifest: Path | None,
    *,
    random_weights: bool,
    device: str,
    seed: int,
    progress: bool,
) -> StageScores:
    """The text-audio `names` over the generated files `pred` (id -> path), each scored against its
    manifest item's caption (see `StageScores`), one clip per network call."""
    if manifest is None:
        raise UsageError(
            f"{', '.join(names)} compares each generated audio with its item's caption: pass --manifest "
            "(items with a 'text' field)"
        )
    captions = {item.id: item.text for item in load_manifest(manifest).items}
    scorer = (
        clap_score.ClapScorer.random(seed, device=device)
        if random_weights
        else clap_score.ClapScorer.from_registry(device=device)
    )
    items = [clap_score.ClapTextItem(i, path, captions.get(i)) for i, path in pred.items()]
    out = StageScores()
    out.add_result(
        clap_score.NAME,
        clap_score.summarise(clap_score.score_items(scorer, items, progress=progress), scorer.config()),
    )
    return out
