"""GPT-2's byte-level BPE tokenizer as MS-CLAP (msclap 1.3.4, ``CLAPWrapper.preprocess_text``) calls it.

msclap reads captions through ``AutoTokenizer.from_pretrained('gpt2')`` with ``'!'`` added as the pad
token, and tokenizes each caption as ``caption + ' <|endoftext|>'`` with ``add_special_tokens=True``
(GPT-2 adds no tokens of its own), ``max_length=77`` and ``padding='max_length'`` but no truncation:
longer captions keep all their tokens. This module reproduces that from GPT-2's ``vocab.json`` and
``merges.txt`` (weights-registry entries ``gpt2-vocab`` and ``gpt2-merges``; no ``transformers``, no
hub), with the pre-tokenisation and BPE of `agomni.metrics.embedders.roberta_bpe`:

1. ``<|endoftext|>`` in the text becomes that token (the appended one, and any the caption holds);
2. the rest is pre-tokenised and merged as RoBERTa's tokenizer does (both are GPT-2's algorithm);
3. the ids are padded at the end with the id of ``'!'`` (GPT-2's id 0) to 77; a caption that fills
   more keeps its length (a batch is padded to its longest row).

MS-CLAP's text tower reads the hidden state at ``count(ids != 0) - 1`` (`text_positions`): the last
non-``'!'`` position, which is the appended ``<|endoftext|>`` unless the caption itself holds ``'!'``
tokens (then an earlier position, exactly as the reference does).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from agomni.errors import MetricInputError
from agomni.metrics.embedders.roberta_bpe import RobertaBPETokenizer, padded_batch

MAX_LENGTH = 77
#: GPT-2's learned position table: the longest token sequence its text tower can read.
MAX_POSITIONS = 1024
END_OF_TEXT = "<|endoftext|>"
PAD = "!"
REGISTRY_FILES: tuple[str, str] = ("gpt2-vocab", "gpt2-merges")


class Gpt2BPETokenizer(RobertaBPETokenizer):
    """``GPT2TokenizerFast`` as msclap calls it, from ``vocab.json`` and ``merges.txt``.

    ``tokenizer(texts)`` -> ``{"input_ids": LongTensor [N, max(77, longest)], "attention_mask": ...}``.
    Raises ``WeightsError`` when a file is unreadable or lacks what GPT-2 needs, ``MetricInputError``
    when a caption needs more than 1024 tokens.
    """

    label = "GPT-2"
    special_tokens = (END_OF_TEXT,)
    registry_files = REGISTRY_FILES

    @staticmethod
    def special_splitter() -> re.Pattern[str]:
        return re.compile(f"({re.escape(END_OF_TEXT)})")

    def token_ids(self, text: str) -> list[int]:
        """The ids msclap feeds GPT-2 for one caption, before padding."""
        ids = self.encode(text + " " + END_OF_TEXT)
        if len(ids) > MAX_POSITIONS:
            raise MetricInputError(
                f"the caption needs {len(ids)} GPT-2 tokens; MS-CLAP's text tower reads at most {MAX_POSITIONS}"
            )
        return ids

    def __call__(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        rows = [self.token_ids(text) for text in texts]
        width = max([self.max_length, *(len(ids) for ids in rows)])
        return padded_batch(rows, width, self.vocab[PAD])


def text_positions(input_ids: torch.Tensor) -> torch.Tensor:
    """msclap's read-out position of each row: ``count(ids != 0) - 1`` (id 0 is ``'!'``, the pad)."""
    return torch.ne(input_ids, 0).sum(-1) - 1


__all__ = ["MAX_LENGTH", "REGISTRY_FILES", "Gpt2BPETokenizer", "text_positions"]
