"""LAION-CLAP score: cosine between a generated clip's audio embedding and its caption's text embedding.

Recipe (av-benchmark ``extract.py`` + ``extract_text.py`` + ``evaluate.py``, as MMAudio and GenAU use
it): checkpoint ``music_speech_audioset_epoch_15_esc_89.98.pt`` (HTSAT-base + RoBERTa, fusion-less);
caption -> ``CLAP_Module.get_text_embedding([caption])`` (roberta-base tokenizer, 77 tokens, padded,
truncated); audio -> av-benchmark's loader (channel mean, DC removed, ``torchaudio`` sinc resampling to
48 kHz) -> ``get_audio_embedding_from_data(x, use_tensor=True)`` (no int16 round trip; clips under 10 s
repeat-padded as laion-clap does: ``int(480000 / n)`` whole copies, then zeros). Per item the cosine of
the two L2-normalised embeddings; the score is their mean over the scored items, **x1** (the cosine, as
av-benchmark prints it; some papers print x100).

Clips over 10 s: **the first 10 s** are embedded. laion-clap's ``rand_trunc`` crops at a uniformly random
offset; the first 10 s is that crop at offset 0, and what av-benchmark embeds whenever its
``--audio_length`` is at most 10 s (it keeps the first ``audio_length`` seconds of every file). A run is
therefore deterministic; the rule is stated in the results.

An item that cannot be scored (no caption or an empty one, an undecodable, silent or too short clip, a
non-finite embedding) is that item's error with the reason, never a crash or a skip.

Example (random weights: not a measurement; the tokenizer files still come from the registry)::

    from agomni.metrics.item_outcomes import combine, metric_config
    from agomni.metrics.text_audio.clap_score import ClapScorer, ClapTextItem, outcomes, score_items
    scorer = ClapScorer.from_registry()
    items = score_items(scorer, [ClapTextItem("a", "a.wav", "a dog barks")])
    print(combine("clap", metric_config("clap", scorer.config()), outcomes(items)).value)
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch
from tqdm import tqdm

from agomni.errors import MediaError, MetricInputError
from agomni.io.prepare import load_prepared, recipe
from agomni.metrics.embedders.clap import (
    CLIP_SAMPLES,
    SAMPLE_RATE,
    ClapAudioEmbedder,
    ClapWeights,
    load_clap_weights,
)
from agomni.metrics.embedders.clap_text import ClapTextNet, load_text_state
from agomni.metrics.embedders.roberta_bpe import RobertaBPETokenizer
from agomni.metrics.item_outcomes import ItemOutcome

NAME = "clap"
DEFAULT_MODEL = "music-speech-audioset-89.98"
#: av-benchmark's loader without its crop (the embedder keeps the first 10 s).
INPUT_RECIPE = recipe("av-benchmark")
LONG_CLIPS = "first 10 s (laion-clap rand_trunc at offset 0; av-benchmark with --audio_length <= 10)"


@dataclass(frozen=True)
class ClapTextItem:
    """One item: id, generated audio file, caption (None when the item has none)."""

    item_id: str
    audio: str | os.PathLike[str]
    caption: str | None


@dataclass(frozen=True)
class ClapItemScore:
    """The cosine of one item, or the reason it has none and the side at fault ("generated" or "text")."""

    item_id: str
    cosine: float | None
    error: str | None = None
    side: str = "generated"


class ClapScorer:
    """Audio and text towers of one LAION-CLAP checkpoint plus the roberta-base tokenizer.

    Build with `from_registry` (the registered checkpoint) or `random` (seeded random weights: tests and
    latency only, not comparable with published numbers), or pass loaded `ClapWeights` and a tokenizer.
    """

    def __init__(
        self,
        clap_weights: ClapWeights,
        tokenizer: RobertaBPETokenizer,
        *,
        device: str | torch.device = "cpu",
        text_batch_size: int = 32,
    ) -> None:
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.text_batch_size = text_batch_size
        self.audio = ClapAudioEmbedder(
            clap_weights.model, profile="av-benchmark", device=device, clap_weights=clap_weights
        )
        self.text = ClapTextNet()
        load_text_state(self.text, clap_weights.tower("text"), clap_weights.where)
        self.text.to(self.device, torch.float32).eval()
        # what the numbers came from; the tensors themselves now live in the two towers only
        self.clap_weights = replace(clap_weights, towers={})

    @classmethod
    def from_registry(cls, model: str = DEFAULT_MODEL, *, device: str | torch.device = "cpu") -> ClapScorer:
        return cls(load_clap_weights(model), RobertaBPETokenizer.from_registry(), device=device)

    @classmethod
    def random(
        cls, seed: int = 0, model: str = DEFAULT_MODEL, *, device: str | torch.device = "cpu"
    ) -> ClapScorer:
        weights = load_clap_weights(model, random_weights=True, seed=seed)
        return cls(weights, RobertaBPETokenizer.from_registry(), device=device)

    @property
    def random_weights(self) -> bool:
        return self.clap_weights.random_weights

    def config(self) -> dict[str, Any]:
        """What determined the numbers: checkpoint, tokenizer files, input recipe, the 10 s rule."""
        return {
            "model": self.clap_weights.model,
            "checkpoint": self.clap_weights.checkpoint,
            "random_weights": self.random_weights,
            "seed": self.clap_weights.seed if self.random_weights else None,
            "comparable_with_published": self.clap_weights.comparable_with_published,
            "tokenizer": {
                "kind": "roberta-base byte-level BPE",
                "max_length": self.tokenizer.max_length,
                "padding": "max_length",
                "truncation": True,
                "files_sha256": dict(self.tokenizer.files),
            },
            "input_recipe": INPUT_RECIPE.to_dict(),
            "sample_rate": SAMPLE_RATE,
            "clip_samples": CLIP_SAMPLES,
            "short_clips": "repeat-pad (laion-clap repeatpad)",
            "long_clips": LONG_CLIPS,
            "int16_round_trip": False,
            "scale": "mean cosine x1 (as av-benchmark prints it; some papers print x100)",
        }

    @torch.inference_mode()
    def embed_text(self, captions: Sequence[str]) -> torch.Tensor:
        """Captions -> L2-normalised text embeddings [N, 512] (float32, CPU)."""
        out = []
        for start in range(0, len(captions), self.text_batch_size):
            tokens = self.tokenizer(captions[start : start + self.text_batch_size])
            ids, mask = tokens["input_ids"].to(self.device), tokens["attention_mask"].to(self.device)
            out.append(self.text(ids, mask).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.audio.dim)

    def embed_audio(self, waveform: torch.Tensor) -> torch.Tensor:
        """[B, samples] float32 at 48 kHz -> L2-normalised audio embeddings [B, 512] (first 10 s)."""
        return self.audio.embed(waveform)

    def cosine(self, audio: str | os.PathLike[str], text_embedding: torch.Tensor) -> float:
        """The cosine of a generated file's audio embedding with a caption's (both L2-normalised)."""
        waveform, _, _ = load_prepared(audio, SAMPLE_RATE, INPUT_RECIPE)
        return float(torch.dot(self.embed_audio(waveform[None])[0].double(), text_embedding.double()))


class TextAudioScorer(Protocol):
    """What `score_items` needs of a scorer (`ClapScorer`, the MS-CLAP scorer)."""

    def embed_text(self, captions: Sequence[str]) -> torch.Tensor: ...

    def cosine(self, audio: str | os.PathLike[str], text_embedding: torch.Tensor) -> float:
        """Raises the `MediaError` or `MetricInputError` of a file it cannot embed."""


def score_clip(
    scorer: TextAudioScorer, item: ClapTextItem, text_embedding: torch.Tensor | None
) -> ClapItemScore:
    """One item's cosine, or its error (`text_embedding` None: the caption was missing, empty or could not
    be embedded)."""
    if item.caption is None:
        return ClapItemScore(item.item_id, None, "the item has no caption (manifest field 'text')", "text")
    if text_embedding is None:
        return ClapItemScore(item.item_id, None, "empty caption (only whitespace)", "text")
    try:
        cosine = scorer.cosine(item.audio, text_embedding)
    except (MediaError, MetricInputError) as err:
        return ClapItemScore(item.item_id, None, f"{type(err).__name__}: {err}")
    if not math.isfinite(cosine):
        return ClapItemScore(item.item_id, None, "the embeddings hold NaN or infinite values")
    return ClapItemScore(item.item_id, cosine)


def _embed_captions(
    scorer: TextAudioScorer, captions: list[str]
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Embeddings by caption, in one batched call; when that fails, one caption at a time, each failure
    kept as that caption's reason."""
    try:
        return dict(zip(captions, scorer.embed_text(captions), strict=True)), {}
    except MetricInputError:
        text, failed = {}, {}
        for caption in captions:
            try:
                text[caption] = scorer.embed_text([caption])[0]
            except MetricInputError as err:
                failed[caption] = f"{type(err).__name__}: {err}"
        return text, failed


def score_items(
    scorer: TextAudioScorer, items: Sequence[ClapTextItem], *, progress: bool = True, name: str = NAME
) -> list[ClapItemScore]:
    """Per-item cosines in input order (captions embedded in batches first; a problem is the item's
    error)."""
    captions = sorted({i.caption for i in items if i.caption is not None and i.caption.strip()})
    text, failed = _embed_captions(scorer, captions)
    bar = tqdm(items, desc=f"{name} score", unit="clip", file=sys.stderr, disable=not progress)
    return [
        ClapItemScore(item.item_id, None, failed[item.caption], "text")
        if item.caption in failed
        else score_clip(scorer, item, text.get(item.caption) if item.caption else None)
        for item in bar
    ]


def outcomes(items: Sequence[ClapItemScore]) -> dict[str, ItemOutcome]:
    """Each item's cosine, or its reason and the side at fault (what `agomni.metrics.item_outcomes.combine`
    averages over the scored items)."""
    return {
        i.item_id: ItemOutcome(None, i.error or "no value", i.side)
        if i.cosine is None
        else ItemOutcome(float(i.cosine))
        for i in items
    }


__all__ = [
    "DEFAULT_MODEL",
    "ClapItemScore",
    "ClapScorer",
    "ClapTextItem",
    "TextAudioScorer",
    "outcomes",
    "score_items",
]
