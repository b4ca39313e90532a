"""The text-audio stage of `agomni eval`: the LAION-CLAP score of each generated clip against its item's
caption (the manifest's ``text`` field, so the metric needs ``--manifest``).

One scorer over the generated files; each item's cosine goes into the per-item scores, each item that
could not be scored (no caption, an undecodable or too short clip ...) is listed with its reason in the
metric's details, and the set value is the mean over the scored items (`clap_score.summarise`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agomni.errors import UsageError
from agomni.manifest import load_manifest
from agomni.metrics.text_audio import clap_score
from agomni.results import SetMetric


def score_text_audio(
    names: Sequence[str],
    pred: dict[str, Path],
    manifest: Path | None,
    *,
    random_weights: bool,
    device: str,
    seed: int,
    progress: bool,
) -> tuple[list[SetMetric], dict[str, dict[str, float]], dict[str, Any]]:
    """Set metrics, per-item scores (id -> metric -> value) and details (per metric: configuration,
    checkpoint, errors) of the text-audio `names` over the generated files `pred` (id -> path)."""
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
    result = clap_score.summarise(clap_score.score_items(scorer, items, progress=progress), scorer.config())
    item_scores = {i: {clap_score.NAME: v} for i, v in result.details.pop("per_item").items()}
    details = {clap_score.NAME: {"unit": result.unit, "recipe": result.recipe, **result.details}}
    metric = SetMetric(
        name=clap_score.NAME,
        value=result.value,
        unit=result.unit,
        higher_is_better=result.higher_is_better,
        profile=result.recipe,
        n=result.details["items_scored"],
    )
    return [metric], item_scores, details
