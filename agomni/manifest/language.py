"""The language a transcript is written in, read from its script, and whether an item's language fits it.

Speech metrics transcribe each item with a recogniser of one language and align the transcript with the
item's text. A Chinese text scored by an English recogniser (or the reverse) gives a number that means
nothing (CER 615 %, WER 1600 %), so the language comes from the text itself where the item does not say
it, and a stated language that its text's script contradicts is refused per item.

Scripts: Han (CJK unified ideographs, extension A and the compatibility block) -> "zh"; otherwise any
Latin letter (ASCII or Latin-1 / Latin Extended-A/B letters) -> "en"; no letter of either (empty,
punctuation, digits, other scripts) -> None. A text with any Han character counts as Chinese: Chinese
transcripts often hold Latin brand names or acronyms, English ones do not hold Han characters.
"""

from __future__ import annotations

import re

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]")
SCRIPTS = {"zh": "Chinese characters (Han)", "en": "Latin letters"}


def script_language(text: str) -> str | None:
    """ "zh" when ``text`` holds a Han character, else "en" when it holds a Latin letter, else None."""
    if _HAN.search(text):
        return "zh"
    if _LATIN.search(text):
        return "en"
    return None


def script_mismatch(text: str, language: str) -> str | None:
    """Why ``text`` cannot be scored as ``language`` (its script says another language), or None.

    Only "zh" and "en" are checked (the languages agomni's recognisers take); a text without letters has
    no script to contradict anything (an empty text is its own error)."""
    found = script_language(text)
    if language not in SCRIPTS or found is None or found == language:
        return None
    return (
        f"the text is written in {SCRIPTS[found]} but the item's language is {language!r}: a recogniser "
        f"for {language!r} would score it as {language!r} speech; set the item's language to {found!r} "
        "(and use a recogniser for it) or fix the text"
    )
