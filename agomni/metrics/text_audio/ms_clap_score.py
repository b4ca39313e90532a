"""MS-CLAP score: cosine between a generated clip's MS-CLAP 2023 audio embedding and its caption's.

Recipe (av-benchmark ``extract.py`` + ``extract_text.py`` + ``evaluate.py``, which print it as
"MS-CLAP-Score" beside the LAION-CLAP score): ``msclap.CLAP(version='2023')``; caption ->
``get_text_embeddings([caption])`` (GPT-2 tokenizer, ``caption + ' <|endoftext|>'``, padded with ``'!'``
to 77 tokens, not truncated: `agomni.metrics.embedders.gpt2_bpe`); audio file ->
``get_audio_embeddings([path])``: decoded as float32 with every channel kept, resampled to 44.1 kHz with
``torchaudio.transforms.Resample`` defaults (policy ``"torchaudio-sinc"``), then **the channels are
concatenated** (msclap's ``reshape(-1)``: a stereo file becomes its left channel followed by its right
one), then fitted to 7 s (308700 samples): a shorter signal is repeated ``ceil(308700 / n)`` times and cut
to 308700; a longer one is cut to 7 s. The per-item value is ``torch.cosine_similarity`` of the two
(unnormalised) 1024-d embeddings; the score is the mean over the scored items, **x1** as av-benchmark
prints it.

Longer signals: msclap cuts at a uniformly random offset (``random.randrange``); here the cut is **the
first 7 s** (that crop at offset 0), so a run is deterministic; the rule is stated in the results.
Note that with the channel concatenation, the first 7 s of a stereo clip longer than 7 s are the left
channel's.

An item that cannot be scored (no caption or an empty one, an undecodable or silent clip, a caption over
GPT-2's 1024 positions, non-finite embeddings) is that item's error with the reason, never a crash or a
skip.

Example (random weights: not a measurement; the tokenizer files still come from the registry)::

    from agomni.metrics.item_outcomes import combine, metric_config
    from agomni.metrics.text_audio.clap_score import ClapTextItem, outcomes, score_items
    from agomni.metrics.text_audio.ms_clap_score import NAME, MsClapScorer
    scorer = MsClapScorer.random()
    items = score_items(scorer, [ClapTextItem("a", "a.wav", "a dog barks")], name=NAME)
    print(combine(NAME, metric_config(NAME, scorer.config()), outcomes(items)).value)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from agomni.errors import MetricInputError
from agomni.io.audio import load_audio
from agomni.io.resample import TORCHAUDIO_SINC
from agomni.metrics.embedders.gpt2_bpe import Gpt2BPETokenizer
from agomni.metrics.text_audio.ms_clap_net import (
    CLIP_SAMPLES,
    FRONT,
    JOINT_DIM,
    SAMPLE_RATE,
    MsClapWeights,
)

NAME = "ms_clap"
LONG_CLIPS = "first 7 s after the channel concatenation (msclap crops at a random offset; offset 0 here)"


def fit_to_clip(x: torch.Tensor, length: int = CLIP_SAMPLES) -> torch.Tensor:
    """msclap's ``load_audio_into_tensor`` on a 1-D signal: ``ceil(length / n)`` copies cut to ``length``
    when ``n <= length``, else the first ``length`` samples (msclap: a random offset)."""
    n = x.shape[-1]
    if n == 0:
        raise MetricInputError("no samples")
    if length >= n:
        return x.repeat(math.ceil(length / n))[:length]
    return x[:length]


def load_clip(path: Any) -> torch.Tensor:
    """A file as msclap's ``preprocess_audio`` sees it: [308700] float32 at 44.1 kHz (see the module
    docstring). Raises the `MediaError` of an undecodable or silent file."""
    audio, _ = load_audio(path, sample_rate=SAMPLE_RATE, downmix="keep", resampler=TORCHAUDIO_SINC)
    return fit_to_clip(audio.reshape(-1))


class MsClapScorer:
    """MS-CLAP 2023's two towers plus GPT-2's tokenizer.

    Build with `from_registry` (the registered checkpoint and tokenizer files) or `random` (seeded random
    weights: tests and latency only, not comparable with published numbers), or pass `MsClapWeights`
    and a tokenizer.
    """

    def __init__(
        self,
        ms_weights: MsClapWeights,
        tokenizer: Gpt2BPETokenizer,
        *,
        device: str | torch.device = "cpu",
        text_batch_size: int = 32,
    ) -> None:
        self.device = torch.device(device)
        self.tokenizer = tokenizer
        self.text_batch_size = text_batch_size
        self.ms_weights = ms_weights
        self.audio = ms_weights.audio.to(self.device, torch.float32).eval()
        self.text = ms_weights.text.to(self.device, torch.float32).eval()

    @classmethod
    def from_registry(cls, *, device: str | torch.device = "cpu") -> MsClapScorer:
        return cls(MsClapWeights.from_registry(), Gpt2BPETokenizer.from_registry(), device=device)

    @classmethod
    def random(cls, seed: int = 0, *, device: str | torch.device = "cpu") -> MsClapScorer:
        return cls(MsClapWeights.random(seed), Gpt2BPETokenizer.from_registry(), device=device)

    @property
    def random_weights(self) -> bool:
        return self.ms_weights.random_weights

    def config(self) -> dict[str, Any]:
        """What determined the numbers: checkpoint, tokenizer files, input handling, the 7 s rule."""
        return {
            "model": "MS-CLAP 2023 (msclap 1.3.4 version='2023')",
            "checkpoint": self.ms_weights.checkpoint,
            "weights": dict(self.ms_weights.weights),
            "random_weights": self.random_weights,
            "seed": self.ms_weights.seed if self.random_weights else None,
            "comparable_with_published": self.ms_weights.comparable_with_published,
            "tokenizer": {
                "kind": "GPT-2 byte-level BPE, caption + ' <|endoftext|>', pad '!'",
                "max_length": self.tokenizer.max_length,
                "padding": "max_length",
                "truncation": False,
                "files_sha256": dict(self.tokenizer.files),
            },
            "input": {
                "decode": "float32, all channels",
                "resampler": TORCHAUDIO_SINC,
                "sample_rate": SAMPLE_RATE,
                "channels": "concatenated (msclap reshape(-1))",
                "clip_samples": CLIP_SAMPLES,
                "short_clips": "repeat ceil(308700 / n) times, cut to 308700 (msclap)",
                "long_clips": LONG_CLIPS,
            },
            "front_end": {"n_fft": 1024, "hop": FRONT.hop, "mel_rate": FRONT.mel_rate, "f_max": FRONT.f_max},
            "embedding_dim": JOINT_DIM,
            "scale": "mean cosine x1 (as av-benchmark prints it; some papers print x100)",
        }

    @torch.inference_mode()
    def embed_text(self, captions: Sequence[str]) -> torch.Tensor:
        """Captions -> text embeddings [N, 1024] (float32, CPU, not normalised)."""
        out = []
        for start in range(0, len(captions), self.text_batch_size):
            ids = self.tokenizer(captions[start : start + self.text_batch_size])["input_ids"]
            out.append(self.text(ids.to(self.device)).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, JOINT_DIM)

    @torch.inference_mode()
    def embed_audio(self, waveform: torch.Tensor) -> torch.Tensor:
        """[B, 308700] float32 at 44.1 kHz -> audio embeddings [B, 1024] (float32, CPU, not normalised)."""
        if waveform.ndim != 2 or waveform.shape[-1] != CLIP_SAMPLES:
            raise MetricInputError(f"MS-CLAP embeds [B, {CLIP_SAMPLES}] clips, got {tuple(waveform.shape)}")
        return self.audio(waveform.to(self.device, torch.float32)).float().cpu()

    def cosine(self, audio: Any, text_embedding: torch.Tensor) -> float:
        """``torch.cosine_similarity`` of a generated file's audio embedding with a caption's."""
        embedding = self.embed_audio(load_clip(audio)[None])[0]
        return float(torch.cosine_similarity(embedding.double(), text_embedding.double(), dim=0))


__all__ = ["NAME", "MsClapScorer", "fit_to_clip", "load_clip"]
