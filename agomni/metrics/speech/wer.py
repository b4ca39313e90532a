"""Word and character error rates of transcripts, per item and over a set.

``wer(references, hypotheses, normalizer="seed-tts-eval")`` normalises both sides with the named
normaliser (see ``normalize.py``), aligns each pair with jiwer 4 (``process_words``, a minimum edit
distance alignment) and returns:

- ``utterance_mean``: the mean of the per-item error rates (seed-tts-eval and F5-TTS; papers print it
  x100 as "WER %");
- ``corpus``: the summed errors over the summed reference lengths (VERSA, most ASR papers);
- ``items``: per item, the normalised texts and the substitutions / deletions / insertions / hits.

Both rates are fractions (0.05 is 5 %), lower is better, and can exceed 1 (insertions).

Degenerate items are explicit, never skipped silently:
- an empty (or whitespace / punctuation-only) *hypothesis* is scored: every reference token is a
  deletion, error rate 1.0, and the item is flagged ``empty hypothesis``;
- an empty *reference* (nothing left after normalisation) has no defined error rate: the item carries
  ``error="empty reference ..."``, ``error_rate=None``, and is left out of both means; ``covered`` and
  ``errors`` say how many and which.
If no item has a usable reference, MetricInputError is raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

import jiwer

from agomni.errors import MetricInputError
from agomni.metrics.speech.normalize import get_normalizer, tokens

EMPTY_HYPOTHESIS = (
    "empty hypothesis (nothing left after normalisation): every reference token counted as a deletion"
)


@dataclass(frozen=True)
class ErrorCounts:
    """One item's alignment: the normalised texts and the edit counts."""

    id: str
    reference: str
    hypothesis: str
    substitutions: int
    deletions: int
    insertions: int
    hits: int
    reference_length: int
    error_rate: float | None
    flags: tuple[str, ...] = ()
    error: str | None = None

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions


@dataclass(frozen=True)
class ErrorRateResult:
    """WER (``unit="word"``) or CER (``unit="char"``) of a set; rates are fractions, lower is better."""

    unit: str
    normalizer: str
    utterance_mean: float
    corpus: float
    items: tuple[ErrorCounts, ...]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return "WER" if self.unit == "word" else "CER"

    @property
    def covered(self) -> int:
        return sum(item.error is None for item in self.items)

    @property
    def errors(self) -> list[dict[str, str]]:
        return [{"id": item.id, "reason": item.error} for item in self.items if item.error is not None]

    def __str__(self) -> str:
        return (
            f"{self.name} = {self.utterance_mean:.4f} utterance mean, {self.corpus:.4f} corpus "
            f"[fraction; lower is better; normaliser {self.normalizer}; {self.covered}/{len(self.items)} items]"
        )


def _align(item_id: str, reference: str, hypothesis: str, unit: str) -> ErrorCounts:
    ref_tokens, hyp_tokens = tokens(reference, unit), tokens(hypothesis, unit)
    if not ref_tokens:
        return ErrorCounts(
            item_id, reference, hypothesis, 0, 0, 0, 0, 0, None,
            error="empty reference (nothing left after normalisation): error rate undefined",
        )  # fmt: skip
    if not hyp_tokens:
        n = len(ref_tokens)
        return ErrorCounts(item_id, reference, hypothesis, 0, n, 0, 0, n, 1.0, flags=(EMPTY_HYPOTHESIS,))
    out = jiwer.process_words(" ".join(ref_tokens), " ".join(hyp_tokens))
    n = out.hits + out.substitutions + out.deletions
    return ErrorCounts(
        item_id,
        reference,
        hypothesis,
        out.substitutions,
        out.deletions,
        out.insertions,
        out.hits,
        n,
        (out.substitutions + out.deletions + out.insertions) / n,
    )


def error_rate(
    references: Sequence[str],
    hypotheses: Sequence[str],
    *,
    normalizer: str = "seed-tts-eval",
    unit: str = "word",
    ids: Sequence[str] | None = None,
) -> ErrorRateResult:
    """WER (``unit="word"``) or CER (``unit="char"``) of paired transcripts; see the module docstring."""
    if isinstance(references, str) or isinstance(hypotheses, str):
        raise MetricInputError("references and hypotheses must be sequences of strings, not one string")
    if len(references) != len(hypotheses):
        raise MetricInputError(f"{len(references)} references but {len(hypotheses)} hypotheses: unpaired")
    ids = [str(i) for i in range(len(references))] if ids is None else [str(i) for i in ids]
    if len(ids) != len(references):
        raise MetricInputError(f"{len(ids)} ids for {len(references)} transcript pairs")
    for what, texts in (("reference", references), ("hypothesis", hypotheses)):
        bad = [ids[k] for k, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise MetricInputError(f"{what} is not a string for item(s) {', '.join(bad[:10])}")
    normalize = get_normalizer(normalizer)
    items = tuple(
        _align(item_id, normalize(ref), normalize(hyp), unit)
        for item_id, ref, hyp in zip(ids, references, hypotheses, strict=True)
    )
    scored = [item for item in items if item.error is None]
    if not scored:
        raise MetricInputError(f"no item has a non-empty reference after {normalizer!r} normalisation")
    corpus = sum(item.errors for item in scored) / sum(item.reference_length for item in scored)
    mean = sum(item.error_rate for item in scored) / len(scored)
    return ErrorRateResult(
        unit=unit,
        normalizer=normalizer.lower(),
        utterance_mean=float(mean),
        corpus=float(corpus),
        items=items,
        details={"aligner": f"jiwer {version('jiwer')} process_words"},
    )


def wer(
    references: Sequence[str],
    hypotheses: Sequence[str],
    normalizer: str = "seed-tts-eval",
    *,
    ids: Sequence[str] | None = None,
) -> ErrorRateResult:
    """Word error rate (fractions): ``utterance_mean``, ``corpus`` and per-item counts."""
    return error_rate(references, hypotheses, normalizer=normalizer, unit="word", ids=ids)


def cer(
    references: Sequence[str],
    hypotheses: Sequence[str],
    normalizer: str = "seed-tts-eval",
    *,
    ids: Sequence[str] | None = None,
) -> ErrorRateResult:
    """Character error rate (fractions, whitespace not counted): as ``wer`` on characters."""
    return error_rate(references, hypotheses, normalizer=normalizer, unit="char", ids=ids)
