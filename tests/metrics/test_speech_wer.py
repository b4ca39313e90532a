"""WER / CER under each named normaliser, against jiwer 4 on the toolkits' own text handling.

The reference side of each check re-implements the toolkit's normalisation loop as written in its
source (seed-tts-eval ``run_wer.py``: replace every punctuation character but the apostrophe, collapse
double spaces, lowercase English; F5-TTS ``utils_eval.py``: the same including the apostrophe; Whisper:
``whisper.normalizers.EnglishTextNormalizer`` called directly), then scores with jiwer 4 directly:
per-pair ``jiwer.wer`` for the utterance mean and one ``jiwer.process_words`` over all pairs for the
corpus rate. A few values are also counted by hand.
"""

from __future__ import annotations

import string

import jiwer
import pytest
from whisper.normalizers import EnglishTextNormalizer
from zhon.hanzi import punctuation as hanzi_punctuation

from agomni.errors import MetricInputError, UsageError
from agomni.metrics import cer, wer

PAIRS = [
    ("Hello, world!", "hello world"),
    ("It's twenty-five dollars.", "its 25 dollars"),
    ("Mr. Smith isn't home; he's at 10 Downing St.", "mister smith is not home he is at ten downing street"),
    ("The colour of the sea, 1999.", "the color of the see nineteen ninety nine"),
    ("the cat", "the big cat runs"),
    ("I can't — won't — go", "i cant wont go"),
    ("Good morning", "good morning good morning"),
]


def seed_tts_eval_reference(text: str) -> str:
    for x in hanzi_punctuation + string.punctuation:
        if x == "'":
            continue
        text = text.replace(x, "")
    return text.replace("  ", " ").lower()


def f5_tts_reference(text: str) -> str:
    for x in hanzi_punctuation + string.punctuation:
        text = text.replace(x, "")
    return text.replace("  ", " ").lower()


REFERENCE_NORMALISERS = {
    "seed-tts-eval": seed_tts_eval_reference,
    "f5-tts": f5_tts_reference,
    "whisper-english": EnglishTextNormalizer(),
}


@pytest.mark.parametrize("name", sorted(REFERENCE_NORMALISERS))
def test_wer_equals_jiwer_on_the_toolkit_normalisation(name: str) -> None:
    normalise = REFERENCE_NORMALISERS[name]
    refs = [normalise(r) for r, _ in PAIRS]
    hyps = [normalise(h) for _, h in PAIRS]
    result = wer([r for r, _ in PAIRS], [h for _, h in PAIRS], normalizer=name)

    per_item = [jiwer.wer(r, h) for r, h in zip(refs, hyps, strict=True)]
    assert result.utterance_mean == pytest.approx(sum(per_item) / len(per_item), rel=1e-12)
    assert result.corpus == pytest.approx(jiwer.process_words(refs, hyps).wer, rel=1e-12)
    for item, r, h in zip(result.items, refs, hyps, strict=True):
        expected = jiwer.process_words(r, h)
        assert (item.substitutions, item.deletions, item.insertions, item.hits) == (
            expected.substitutions,
            expected.deletions,
            expected.insertions,
            expected.hits,
        )
        assert item.error is None and item.flags == ()
    assert result.covered == len(PAIRS) and result.errors == []


def test_normalisers_differ_where_the_toolkits_differ() -> None:
    """Hand-counted: "it's twentyfive dollars" vs "its 25 dollars" is 2 substitutions under seed-tts-eval
    (apostrophe kept, hyphen deleted), 1 under F5-TTS (apostrophe deleted too); Whisper's normaliser maps
    both sides' amounts to "$25" and expands "it's", leaving "it is $25" vs "its $25"."""
    ref, hyp = ["It's twenty-five dollars."], ["its 25 dollars"]
    seed = wer(ref, hyp, "seed-tts-eval")
    assert seed.items[0].reference == "it's twentyfive dollars"
    assert (seed.items[0].substitutions, seed.utterance_mean) == (2, pytest.approx(2 / 3))
    assert wer(ref, hyp, "f5-tts").utterance_mean == pytest.approx(1 / 3)
    whisper = wer(ref, hyp, "whisper-english")
    assert (whisper.items[0].reference, whisper.items[0].hypothesis) == ("it is $25", "its $25")
    assert whisper.utterance_mean == pytest.approx(2 / 3)  # "it is" -> "its": 1 substitution + 1 deletion


def test_utterance_mean_and_corpus_differ_as_counted_by_hand() -> None:
    # item 0: 1 deletion of 4 words (0.25); item 1: 2 insertions on 1 word (2.0)
    result = wer(["a b c d", "e"], ["a b c", "e f g"], "none")
    assert result.utterance_mean == pytest.approx((0.25 + 2.0) / 2)
    assert result.corpus == pytest.approx(3 / 5)
    assert [(i.deletions, i.insertions) for i in result.items] == [(1, 0), (0, 2)]


@pytest.mark.parametrize("hypothesis", ["", "   ", "?!...", "。，"])
def test_empty_or_punctuation_only_hypothesis_counts_all_deletions_and_is_flagged(hypothesis: str) -> None:
    result = wer(["see you soon", "hello"], [hypothesis, "hello"])
    item = result.items[0]
    assert (item.deletions, item.error_rate, item.error) == (3, 1.0, None)
    assert "empty hypothesis" in item.flags[0]
    assert result.utterance_mean == pytest.approx(0.5)
    assert result.corpus == pytest.approx(3 / 4)
    assert jiwer.wer("see you soon", "") == pytest.approx(item.error_rate)  # jiwer 4 agrees


def test_empty_reference_is_an_item_error_left_out_of_both_means() -> None:
    result = wer(["...", "the cat"], ["hello", "the hat"], ids=["u1", "u2"])
    assert result.errors == [{"id": "u1", "reason": result.items[0].error}]
    assert "empty reference" in result.items[0].error and result.items[0].error_rate is None
    assert result.covered == 1
    assert result.utterance_mean == pytest.approx(0.5) and result.corpus == pytest.approx(0.5)
    with pytest.raises(MetricInputError, match="no item has a non-empty reference"):
        wer(["!"], ["a"])


def test_cer_on_chinese_matches_seed_tts_eval_character_split() -> None:
    refs, hyps = ["你好，世界。", "今天天气好"], ["你好世界", "今天天汽"]

    def split(text: str) -> str:
        return " ".join(seed_tts_eval_reference(text))

    expected = [jiwer.wer(split(r), split(h)) for r, h in zip(refs, hyps, strict=True)]
    result = cer(refs, hyps)
    assert [i.error_rate for i in result.items] == pytest.approx(expected)
    assert expected == pytest.approx([0.0, 0.4])  # by hand: 1 substitution + 1 deletion of 5
    assert result.unit == "char" and result.name == "CER"


def test_bad_arguments_are_typed_errors() -> None:
    with pytest.raises(MetricInputError, match="unpaired"):
        wer(["a", "b"], ["a"])
    with pytest.raises(MetricInputError, match="not one string"):
        wer("a b", "a b")
    with pytest.raises(MetricInputError, match="not a string"):
        wer(["a", None], ["a", "b"], ids=["x", "y"])
    with pytest.raises(UsageError, match="unknown normalizer"):
        wer(["a"], ["a"], normalizer="seed")
    assert "lower is better" in str(wer(["a"], ["a"]))
