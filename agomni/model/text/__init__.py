"""Text frontend of the LT (lyrics/transcription) encoder: graphemes or phonemes -> F5-style token ids."""

from .tokenizers import (
    FILLER_ID,
    LANGUAGES,
    PHONEME_SYMBOLS,
    Phonemization,
    estimate_frames,
    pad_to_frames,
    phonemize,
    tokenize,
    vocab_size,
)

__all__ = [
    "FILLER_ID",
    "LANGUAGES",
    "PHONEME_SYMBOLS",
    "Phonemization",
    "estimate_frames",
    "pad_to_frames",
    "phonemize",
    "tokenize",
    "vocab_size",
]
