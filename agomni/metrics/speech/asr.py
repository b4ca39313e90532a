"""Speech recognisers behind WER / CER, and ``transcribe_and_score`` which runs one over a set.

``PocketSphinxASR`` is the offline default: pocketsphinx 5 with the US-English acoustic model,
language model and dictionary that ship inside the package (no download). It is a CMU Sphinx HMM
recogniser, far weaker than Whisper-large-v3: its WERs are *not* comparable with the seed-tts-eval or
F5-TTS numbers papers print (those use Whisper-large-v3 / faster-whisper); every result says so in its
``recipe``. English only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib.metadata import version
from typing import Protocol

import numpy as np
from tqdm import tqdm

from agomni.errors import MetricInputError, UsageError
from agomni.manifest.language import script_mismatch
from agomni.metrics.speech.items import mono_float, non_speech_flags
from agomni.metrics.speech.wer import ErrorCounts, ErrorRateResult, error_rate

SAMPLE_RATE = 16000
NO_WORDS = "the recogniser returned no words"


class Transcriber(Protocol):
    """What WER needs from a recogniser."""

    name: str
    recipe: str
    languages: tuple[str, ...]
    sample_rate: int

    def transcribe(self, audio: np.ndarray, language: str) -> str:
        """The transcript of mono float audio at ``sample_rate`` in ``language`` (ISO 639-1)."""


class PocketSphinxASR:
    """pocketsphinx 5 with its bundled en-us model: offline, English only, not a published recipe."""

    name = "pocketsphinx-en-us"
    recipe = "agomni-offline (pocketsphinx en-us; not comparable with Whisper-large-v3 WERs)"
    languages = ("en",)
    sample_rate = SAMPLE_RATE

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as err:
            raise UsageError(
                "the offline recogniser needs pocketsphinx (pip install 'agomni[speech]')"
            ) from err
        self._decoder = Decoder(samprate=self.sample_rate, logfn="/dev/null")
        self.version = version("pocketsphinx")

    def transcribe(self, audio: np.ndarray, language: str) -> str:
        if language not in self.languages:
            raise MetricInputError(
                f"{self.name} recognises {', '.join(self.languages)} only, not {language!r}"
            )
        pcm = np.round(np.clip(audio, -1.0, 32767 / 32768) * 32768).astype(np.int16)
        # pocketsphinx carries feature state (cepstral mean, noise estimate) from one utterance to the next;
        # resetting it makes a clip's transcript independent of the clips decoded before it.
        self._decoder.reinit_feat()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm.tobytes(), full_utt=True)
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""


@dataclass(frozen=True)
class SpeechItem:
    """One utterance to transcribe: mono float audio at the recogniser's rate, its text and language."""

    id: str
    audio: np.ndarray
    text: str
    language: str = "en"


def transcribe_and_score(
    items: Sequence[SpeechItem],
    asr: Transcriber,
    *,
    normalizer: str = "seed-tts-eval",
    unit: str = "word",
    progress: bool = False,
) -> ErrorRateResult:
    """Transcribe every item and score WER / CER against its text.

    Per item: a language the recogniser does not support, a text whose script contradicts the item's
    language (`agomni.manifest.language.script_mismatch`: a recogniser of one language never scores a
    text of another), and audio it cannot take (empty, non-finite, longer than Whisper's 30 s), are item
    errors; audio that does not look
    like speech (``items.speech_like``) is transcribed and scored but flagged; an empty transcript is
    scored as all deletions (see ``wer``) and flagged. ``details`` name the recogniser and its recipe.
    """
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise MetricInputError("item ids must be unique")
    hypotheses, flags, errors = [], {}, {}
    for item in tqdm(items, desc=f"ASR ({asr.name})", unit="clip", disable=not progress):
        hypotheses.append("")
        if item.language not in asr.languages:
            errors[item.id] = (
                f"language {item.language!r} is not supported by {asr.name} ({', '.join(asr.languages)})"
            )
            continue
        mismatch = script_mismatch(item.text, item.language)
        if mismatch is not None:
            errors[item.id] = mismatch
            continue
        try:
            audio = mono_float(item.audio, f"item {item.id}")
            text = asr.transcribe(audio, item.language)
        except MetricInputError as err:  # empty / non-finite audio, a clip the recogniser cannot take
            errors[item.id] = str(err)
            continue
        flags[item.id] = non_speech_flags(audio, asr.sample_rate)
        if not text.strip():
            flags[item.id] = (*flags[item.id], NO_WORDS)
        hypotheses[-1] = text
    usable = [k for k, item in enumerate(items) if item.id not in errors]
    if not usable:
        raise MetricInputError(f"no item could be transcribed: {next(iter(errors.values()))}")
    scored = error_rate(
        [items[k].text for k in usable],
        [hypotheses[k] for k in usable],
        normalizer=normalizer,
        unit=unit,
        ids=[ids[k] for k in usable],
    )
    by_id: dict[str, ErrorCounts] = {c.id: c for c in scored.items}
    merged = []
    for item in items:
        if item.id in errors:
            merged.append(ErrorCounts(item.id, item.text, "", 0, 0, 0, 0, 0, None, error=errors[item.id]))
            continue
        counts = by_id[item.id]
        merged.append(replace(counts, flags=(*flags.get(item.id, ()), *counts.flags)))
    return replace(
        scored,
        items=tuple(merged),
        details={**scored.details, "asr": asr.name, "recipe": asr.recipe},
    )
