"""Named transcript normalisers, applied to reference and hypothesis alike before scoring WER / CER.

Each reproduces one toolkit's text handling, so that a WER is comparable with the numbers that toolkit
publishes:

- ``seed-tts-eval`` (BytedanceSpeech/seed-tts-eval ``run_wer.py``): delete every ASCII punctuation
  character and every Chinese punctuation mark of ``zhon.hanzi.punctuation`` *except the apostrophe*,
  then lowercase. No number normalisation ("25" and "twenty five" differ).
- ``f5-tts`` (SWivid/F5-TTS ``eval/utils_eval.py``): the same, but the apostrophe is deleted too
  ("isn't" becomes "isnt").
- ``whisper-english``: OpenAI Whisper's ``EnglishTextNormalizer`` (package ``openai-whisper``):
  numbers spelled out become digits, British spellings American, contractions expanded, titles
  spelled out, punctuation and bracketed text removed. A separate, labelled option: its WERs are lower
  than the seed-tts-eval recipe's on the same transcripts.
- ``none``: the text as given (whitespace still splits words).

For CER (``unit="char"``) the normalised text's characters, whitespace excluded, are the tokens; this
is what seed-tts-eval does for Chinese (``" ".join(text)`` before a word-level alignment). One
difference: seed-tts-eval lowercases English only, so Latin letters inside a Chinese transcript keep
their case there and are case-folded here.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from functools import cache

from zhon.hanzi import punctuation as _HANZI_PUNCTUATION

from agomni.errors import UsageError

_ALL_PUNCTUATION = _HANZI_PUNCTUATION + string.punctuation
_DELETE_KEEP_APOSTROPHE = str.maketrans("", "", _ALL_PUNCTUATION.replace("'", ""))
_DELETE_ALL = str.maketrans("", "", _ALL_PUNCTUATION)


def seed_tts_eval(text: str) -> str:
    """seed-tts-eval: punctuation (ASCII + Chinese) removed except ``'``, lowercased."""
    return text.translate(_DELETE_KEEP_APOSTROPHE).lower()


def f5_tts(text: str) -> str:
    """F5-TTS eval: punctuation (ASCII + Chinese) removed including ``'``, lowercased."""
    return text.translate(_DELETE_ALL).lower()


@cache
def _whisper_english_normalizer() -> Callable[[str], str]:
    try:
        from whisper.normalizers import EnglishTextNormalizer
    except ImportError as err:
        raise UsageError(
            "the 'whisper-english' normaliser needs the openai-whisper package "
            "(pip install 'agomni[speech]'); use normalizer='seed-tts-eval' otherwise"
        ) from err
    return EnglishTextNormalizer()


def whisper_english(text: str) -> str:
    """OpenAI Whisper's EnglishTextNormalizer (numbers as digits, American spelling, no punctuation)."""
    return _whisper_english_normalizer()(text)


def unchanged(text: str) -> str:
    """No normalisation."""
    return text


NORMALIZERS: dict[str, Callable[[str], str]] = {
    "seed-tts-eval": seed_tts_eval,
    "f5-tts": f5_tts,
    "whisper-english": whisper_english,
    "none": unchanged,
}


def get_normalizer(name: str) -> Callable[[str], str]:
    """The normaliser called ``name`` (case-insensitive); UsageError listing the known names otherwise."""
    key = name.lower()
    if key not in NORMALIZERS:
        raise UsageError(f"unknown normalizer {name!r}; known: {', '.join(NORMALIZERS)}")
    return NORMALIZERS[key]


def tokens(text: str, unit: str) -> list[str]:
    """Word tokens (whitespace split) or character tokens (whitespace excluded) of normalised text."""
    if unit == "word":
        return text.split()
    if unit == "char":
        return [c for c in text if not c.isspace()]
    raise UsageError(f"unit must be 'word' (WER) or 'char' (CER), got {unit!r}")
