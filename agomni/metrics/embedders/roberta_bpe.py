"""RoBERTa's byte-level BPE tokenizer (GPT-2 style), from ``vocab.json`` and ``merges.txt`` files.

The text tower of LAION-CLAP reads captions through ``RobertaTokenizer.from_pretrained('roberta-base')``
called with ``padding="max_length", truncation=True, max_length=77``. This module reproduces that call
from the two files alone (no ``transformers``, no hub): the files come from the weights registry
(``roberta-base-vocab`` and ``roberta-base-merges``) or, in tests, from any directory holding a byte-level
BPE vocabulary in the same format.

Steps, as the reference does them:

1. special-token strings in the text (``<s>``, ``</s>``, ``<unk>``, ``<pad>``, ``<mask>``) become those
   tokens; ``<mask>`` also absorbs the whitespace before it (RoBERTa's ``lstrip`` on the mask token);
2. GPT-2 pre-tokenisation of the rest: contractions ``'s 't 're 've 'm 'll 'd``, an optional space plus a
   run of letters, of numbers, or of other non-space characters, then whitespace runs (a run followed by
   a non-space keeps its last character for the next piece). Letters and numbers are the Unicode general
   categories L* and N*, taken from Python's ``unicodedata`` (its Unicode version: a character assigned
   only in a later version is classed as "other" here, where the reference's tables may know it as a
   letter); whitespace is Unicode ``White_Space``;
3. each piece's UTF-8 bytes are mapped to printable characters (GPT-2's ``bytes_to_unicode``) and merged
   by BPE, lowest merge rank first;
4. ``<s>`` + tokens + ``</s>``, the tokens truncated (from the right) to ``max_length - 2``, then padded
   with ``<pad>`` to ``max_length``; the attention mask is 1 on real tokens, 0 on padding.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import torch

from agomni import weights
from agomni.errors import WeightsError

MAX_LENGTH = 77
CACHE_PIECES = 100_000
#: The weights-registry entries of roberta-base's ``vocab.json`` and ``merges.txt``.
REGISTRY_FILES: tuple[str, str] = ("roberta-base-vocab", "roberta-base-merges")
SPECIAL_TOKENS: tuple[str, ...] = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
#: Unicode White_Space code points (what ``\s`` matches in the reference's ``regex`` pattern).
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable characters: the printable Latin-1
    bytes map to themselves, the others to code points 256 and up, in byte order."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in kept}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _ranges(codes: list[int]) -> str:
    """A ``re`` character-class body for the sorted code points ``codes``."""
    out: list[str] = []
    start = prev = codes[0]
    for code in [*codes[1:], -1]:
        if code == prev + 1:
            prev = code
            continue
        out.append(
            re.escape(chr(start)) if start == prev else f"{re.escape(chr(start))}-{re.escape(chr(prev))}"
        )
        start = prev = code
    return "".join(out)


@functools.lru_cache(maxsize=1)
def pretokenizer() -> re.Pattern[str]:
    """GPT-2's pre-tokenisation pattern with the Unicode classes spelled out for Python's ``re``."""
    letters, numbers = [], []
    for code in range(sys.maxunicode + 1):
        major = unicodedata.category(chr(code))[0]
        if major == "L":
            letters.append(code)
        elif major == "N":
            numbers.append(code)
    letter, number, space = _ranges(letters), _ranges(numbers), re.escape(WHITE_SPACE)
    return re.compile(
        rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{letter}]+| ?[{number}]+| ?[^{space}{letter}{number}]+"
        rf"|[{space}]+(?![^{space}])|[{space}]+"
    )


class RobertaBPETokenizer:
    """``RobertaTokenizer`` as LAION-CLAP calls it, from ``vocab.json`` and ``merges.txt``.

    ``tokenizer(texts)`` -> ``{"input_ids": LongTensor [N, 77], "attention_mask": LongTensor [N, 77]}``.
    Raises ``WeightsError`` when a file is unreadable or lacks what RoBERTa needs (the special tokens, the
    256 byte characters, the tokens its merges produce).
    """

    #: what the error messages call the tokenizer, its special tokens and its registry files
    label = "RoBERTa"
    special_tokens: tuple[str, ...] = SPECIAL_TOKENS
    registry_files: tuple[str, str] = REGISTRY_FILES

    def __init__(self, vocab_file: str | Path, merges_file: str | Path, *, max_length: int = MAX_LENGTH):
        self.max_length = max_length
        try:
            vocab = json.loads(Path(vocab_file).read_text(encoding="utf-8"))
            lines = Path(merges_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise WeightsError(f"{self.label} tokenizer files unreadable: {err}") from err
        if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
            raise WeightsError(f"{vocab_file}: not a JSON object of token -> id")
        merges = [tuple(line.split()) for line in lines if line.strip() and not line.startswith("#version")]
        if any(len(pair) != 2 for pair in merges):
            raise WeightsError(f"{merges_file}: every line must hold two space-separated symbols")
        self.byte_chars = bytes_to_unicode()
        needed = [*self.special_tokens, *self.byte_chars.values(), *("".join(pair) for pair in merges)]
        missing = [token for token in needed if token not in vocab]
        if missing:
            raise WeightsError(
                f"{vocab_file}: {len(missing)} tokens {self.label} needs are missing, e.g. {missing[:5]}"
            )
        self.vocab: dict[str, int] = vocab
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.special = {token: vocab[token] for token in self.special_tokens}
        self.split_special = self.special_splitter()
        self.pattern = pretokenizer()
        self._cache: dict[str, tuple[int, ...]] = {}
        #: registry entry -> SHA-256 of the files read (empty when built from paths directly)
        self.files: dict[str, str] = {}

    @staticmethod
    def special_splitter() -> re.Pattern[str]:
        """Splits text around the special-token strings (``<mask>`` with the whitespace before it)."""
        space = re.escape(WHITE_SPACE)
        return re.compile(rf"([{space}]*<mask>|<s>|</s>|<unk>|<pad>)")

    @classmethod
    def from_registry(cls, *, max_length: int = MAX_LENGTH) -> RobertaBPETokenizer:
        """The tokenizer from the verified cached registry files `registry_files` (fetched by the weights
        registry when missing and not offline; never a hub call of ``transformers``)."""
        vocab, merges = (weights.resolve(name, progress=False) for name in cls.registry_files)
        tokenizer = cls(vocab, merges, max_length=max_length)
        tokenizer.files = {name: weights.sha256_of(name) for name in cls.registry_files}
        return tokenizer

    def _bpe(self, piece: str) -> tuple[int, ...]:
        """Token ids of one pre-tokenised piece (cached per tokenizer)."""
        if piece in self._cache:
            return self._cache[piece]
        word = [self.byte_chars[b] for b in piece.encode("utf-8")]
        while len(word) > 1:
            best = min(itertools.pairwise(word), key=lambda pair: self.ranks.get(pair, sys.maxsize))
            if best not in self.ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        ids = tuple(self.vocab[token] for token in word)
        if len(self._cache) < CACHE_PIECES:
            self._cache[piece] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without ``<s>`` / ``</s>``, untruncated."""
        ids: list[int] = []
        for part in self.split_special.split(text):
            if not part:
                continue
            stripped = part.lstrip(WHITE_SPACE)
            if stripped in self.special and (stripped == "<mask>" or stripped == part):
                ids.append(self.special[stripped])
                continue
            for piece in self.pattern.findall(part):
                ids.extend(self._bpe(piece))
        return ids

    def __call__(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        rows = []
        for text in texts:
            ids = self.encode(text)[: self.max_length - 2]
            rows.append([self.special["<s>"], *ids, self.special["</s>"]])
        return padded_batch(rows, self.max_length, self.special["<pad>"])


def padded_batch(rows: Sequence[Sequence[int]], width: int, pad_id: int) -> dict[str, torch.Tensor]:
    """``input_ids`` [N, width]: each row's ids, then ``pad_id`` to ``width``; ``attention_mask`` 1 on
    the ids, 0 on the padding."""
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, ids in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


__all__ = ["MAX_LENGTH", "REGISTRY_FILES", "RobertaBPETokenizer", "bytes_to_unicode", "pretokenizer"]
