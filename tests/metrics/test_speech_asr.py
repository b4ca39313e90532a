"""The offline recogniser (pocketsphinx, bundled en-us model) on committed clean synthetic speech."""

from __future__ import annotations

import numpy as np
import pytest

from agomni.manifest.language import script_language, script_mismatch
from agomni.metrics.speech.asr import NO_WORDS, PocketSphinxASR, SpeechItem, transcribe_and_score
from agomni.metrics.speech.items import NON_SPEECH
from tests.metrics.speech_fixtures import utterances


@pytest.fixture(scope="module")
def asr() -> PocketSphinxASR:
    return PocketSphinxASR()


@pytest.mark.slow
def test_wer_on_clean_speech_is_far_below_wer_against_shuffled_transcripts(asr: PocketSphinxASR) -> None:
    clips = {k: v for k, v in utterances().items() if k.startswith("f2_")}
    ids = sorted(clips)
    items = [SpeechItem(i, clips[i][0], clips[i][1]) for i in ids]
    result = transcribe_and_score(items, asr)
    # the same transcripts scored against every other item's text (a derangement: a rotation by one)
    shuffled = transcribe_and_score(
        [SpeechItem(i, clips[i][0], clips[ids[(k + 1) % len(ids)]][1]) for k, i in enumerate(ids)], asr
    )
    print(f"pocketsphinx en-us WER on {len(ids)} clean espeak-ng utterances: {result}; shuffled: {shuffled}")
    assert result.covered == len(ids) and result.errors == []
    assert result.utterance_mean < 0.6
    assert shuffled.utterance_mean > 0.9
    assert result.utterance_mean < 0.5 * shuffled.utterance_mean
    assert result.corpus < 0.5 * shuffled.corpus
    assert "pocketsphinx" in result.details["asr"] and "not comparable" in result.details["recipe"]


def test_unsupported_language_non_speech_and_empty_transcript_are_explicit(asr: PocketSphinxASR) -> None:
    audio, text = utterances()["f2_6"]
    rng = np.random.default_rng(0)
    items = [
        SpeechItem("speech", audio, text),
        SpeechItem("chinese", audio, "你好", language="zh"),
        SpeechItem("noise", 0.3 * rng.standard_normal(32000), "please call me back"),
        SpeechItem("silence", np.zeros(16000), "thank you"),
        SpeechItem("broken", np.full(16000, np.nan), "thank you"),
    ]
    result = transcribe_and_score(items, asr)
    by_id = {item.id: item for item in result.items}
    assert [item.id for item in result.items] == ["speech", "chinese", "noise", "silence", "broken"]
    assert "NaN or infinite" in by_id["broken"].error
    assert "not supported" in by_id["chinese"].error and by_id["chinese"].error_rate is None
    assert [e["id"] for e in result.errors] == ["chinese", "broken"]
    assert any(NON_SPEECH in flag for flag in by_id["noise"].flags)
    assert by_id["noise"].error_rate is not None
    assert NON_SPEECH in by_id["silence"].flags[0] and by_id["silence"].error_rate is not None
    assert by_id["speech"].flags == ()
    assert result.covered == 3


def test_a_text_in_another_script_than_the_item_s_language_is_never_scored(asr: PocketSphinxASR) -> None:
    """A Chinese line labelled English (and Latin-only text labelled Chinese) is an item error: the
    English recogniser gave such lines WERs of 1600 %. Latin letters inside a Chinese text are normal."""
    audio, text = utterances()["f2_6"]
    items = [
        SpeechItem("speech", audio, text),
        SpeechItem("zh-as-en", audio, "今天天气很好", language="en"),
        SpeechItem("en-as-zh", audio, text, language="zh"),
    ]
    by_id = {item.id: item for item in transcribe_and_score(items, asr).items}
    assert "written in Chinese characters (Han) but the item's language is 'en'" in by_id["zh-as-en"].error
    assert by_id["zh-as-en"].error_rate is None and by_id["speech"].error is None
    assert "not supported" in by_id["en-as-zh"].error  # the recogniser's own check comes first
    assert script_mismatch(text, "zh") is not None and script_mismatch("他说 OK 就走了", "zh") is None
    assert [script_language(t) for t in ("你好", "hi 你好", "Hello", "Ça va", "...!?", "", "123")] == [
        "zh", "zh", "en", "en", None, None, None
    ]  # fmt: skip


class SilentRecogniser(PocketSphinxASR):
    """pocketsphinx that hears nothing: checks how an empty transcript is scored and flagged."""

    def transcribe(self, audio: np.ndarray, language: str) -> str:
        super().transcribe(audio, language)
        return ""


def test_empty_transcript_is_scored_as_all_deletions_and_flagged() -> None:
    audio, text = utterances()["m1_0"]
    result = transcribe_and_score([SpeechItem("a", audio, text)], SilentRecogniser())
    item = result.items[0]
    assert NO_WORDS in item.flags and item.error_rate == 1.0 and item.deletions == len(text.split())
