"""The ``faster-whisper`` recogniser (F5-TTS recipe) on a tiny Whisper with seeded random weights.

No real weights and no hub: a small ``WhisperForConditionalGeneration`` (transformers) with seeded random
weights is converted by CTranslate2's own ``TransformersConverter`` into the faster-whisper layout; its
``tokenizer.json`` is built offline from openai-whisper's bundled ``multilingual.tiktoken`` with
transformers' tiktoken converter, Whisper's special tokens appended in openai-whisper's order (so at
Whisper's ids). The five files go into a temporary weights cache through ``agomni weights``' import path.
Transcripts of ``agomni eval --speech-backend faster-whisper`` are checked against
``faster_whisper.WhisperModel`` called directly on the same directory with the F5-TTS settings, and the
WER against jiwer on those transcripts under F5-TTS's text handling written out here.
"""

from __future__ import annotations

import shutil
import socket
import string
from pathlib import Path

import ctranslate2
import jiwer
import numpy as np
import pytest
import soundfile as sf
import torch
import whisper
from faster_whisper import WhisperModel
from transformers import (
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperTokenizerFast,
)
from transformers.convert_slow_tokenizer import TikTokenConverter
from whisper.tokenizer import get_encoding
from zhon.hanzi import punctuation as hanzi_punctuation

from agomni import weights
from agomni.cli import main
from agomni.errors import EXIT_NOT_COMPUTED, UsageError, WeightsError
from agomni.metrics.speech.faster_whisper import FILES, FasterWhisperASR
from agomni.results import read_results
from tests.metrics.speech_fixtures import DATA, utterances

IDS = ["f2_0", "m1_0"]


def _tiny_model(folder: Path) -> Path:
    """A seeded random tiny Whisper (large-v3 vocabulary and 128 mel bands) in CTranslate2's layout."""
    encoding = get_encoding("multilingual", num_languages=100)  # large-v3: 100 languages, 51866 tokens
    specials = sorted(encoding._special_tokens, key=encoding._special_tokens.get)
    ranks = Path(whisper.__file__).parent / "assets" / "multilingual.tiktoken"
    tok = TikTokenConverter(vocab_file=str(ranks), pattern=encoding._pat_str, extra_special_tokens=specials)
    tokenizer = tok.converted()
    assert tokenizer.get_vocab_size() == encoding.n_vocab == 51866
    for token in ("<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"):
        assert tokenizer.token_to_id(token) == encoding._special_tokens[token]
    assert tokenizer.encode(" Hello, world!", add_special_tokens=False).ids == encoding.encode(
        " Hello, world!"
    )
    hf = folder / "hf"
    eot = "<|endoftext|>"
    fast = WhisperTokenizerFast(
        tokenizer_object=tokenizer, unk_token=eot, bos_token=eot, eos_token=eot, pad_token=eot
    )
    fast.save_pretrained(hf)
    config = WhisperConfig(
        vocab_size=51866,
        num_mel_bins=128,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=encoding._special_tokens["<|startoftranscript|>"],
        pad_token_id=encoding.eot_token,
        bos_token_id=encoding.eot_token,
        eos_token_id=encoding.eot_token,
        init_std=0.5,  # large random weights, so that the audio changes the tokens
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = WhisperForConditionalGeneration(config)
    model.save_pretrained(hf)
    WhisperFeatureExtractor(feature_size=128).save_pretrained(hf)
    out = folder / "ct2"
    converter = ctranslate2.converters.TransformersConverter(
        str(hf), copy_files=["tokenizer.json", "preprocessor_config.json"]
    )
    converter.convert(str(out), force=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES.values())
    return out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_model(tmp_path_factory.mktemp("tiny_faster_whisper"))


def _f5_tts_text(text: str) -> str:
    """F5-TTS ``run_asr_wer``'s English handling: every ASCII and Chinese punctuation mark removed, lower."""
    for mark in hanzi_punctuation + string.punctuation:
        text = text.replace(mark, "")
    return text.replace("  ", " ").lower()


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.slow
def test_eval_transcripts_equal_faster_whisper_and_wer_equals_jiwer(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "home"))
    for name, filename in FILES.items():
        weights.import_file(name, tiny_model / filename)
    _no_network(monkeypatch)
    pred = tmp_path / "pred"
    pred.mkdir()
    texts = {i: utterances()[i][1] for i in IDS}
    lines = []
    for item_id in IDS:
        shutil.copy(DATA / f"{item_id}.flac", pred / f"{item_id}.flac")
        lines.append(f'{{"id": "{item_id}", "task": "tts", "transcript": "{texts[item_id]}"}}')
    manifest = tmp_path / "items.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = ["eval", "--pred", str(pred), "--manifest", str(manifest), "--metrics", "wer"]
    argv += ["--speech-backend", "faster-whisper", "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 0
    results = read_results(tmp_path / "out" / "results.json")

    direct = WhisperModel(str(tiny_model), device="cpu", compute_type="float32")
    hypotheses = {}
    for item_id in IDS:
        audio, rate = sf.read(str(pred / f"{item_id}.flac"), dtype="float32")
        assert rate == 16000 and audio.ndim == 1
        ctranslate2.set_random_seed(0)  # the run's --seed (default 0)
        segments, _ = direct.transcribe(audio, beam_size=5, language="en")
        hypotheses[item_id] = "".join(" " + segment.text for segment in segments)
    print({i: h[:80] for i, h in hypotheses.items()})
    assert len({" ".join(_f5_tts_text(h).split()) for h in hypotheses.values()}) == len(IDS), (
        "the random model gave the same transcript for different inputs"
    )

    wer = next(m for m in results.metrics if m.name == "wer")
    assert wer.unit == "% WER" and not wer.higher_is_better
    assert "F5-TTS" in wer.profile and "beam 5" in wer.profile and "normaliser f5-tts" in wer.profile
    details = results.provenance.preprocessing["metrics"]["wer"]
    assert details["normalizer"] == "f5-tts" and details["errors"] == []
    expected = {}
    for item_id in IDS:
        reference, hypothesis = _f5_tts_text(texts[item_id]), _f5_tts_text(hypotheses[item_id])
        assert details["items"][item_id]["hypothesis"].split() == hypothesis.split()
        expected[item_id] = 100 * jiwer.wer(reference, hypothesis)
        assert results.item_scores[item_id]["wer"] == pytest.approx(expected[item_id], abs=1e-9)
    assert wer.value == pytest.approx(np.mean(list(expected.values())), abs=1e-9)


@pytest.mark.slow  # builds the tiny model (~20 s) when run alone
def test_random_weights_are_labelled_and_a_model_without_its_tokenizer_is_refused(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_network(monkeypatch)
    asr = FasterWhisperASR(tiny_model, random_weights=True)
    assert "RANDOM WEIGHTS" in asr.name and "RANDOM WEIGHTS" in asr.recipe and "F5-TTS" in asr.recipe
    partial = tmp_path / "partial"
    shutil.copytree(tiny_model, partial)
    (partial / "tokenizer.json").unlink()
    with pytest.raises(WeightsError, match=r"no tokenizer\.json"):
        FasterWhisperASR(partial, random_weights=False)


def test_an_uncached_faster_whisper_names_the_fetch_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGOMNI_HOME", str(tmp_path / "empty-home"))
    _no_network(monkeypatch)
    pred = tmp_path / "pred"
    pred.mkdir()
    shutil.copy(DATA / "f2_0.flac", pred / "f2_0.flac")
    manifest = tmp_path / "items.jsonl"
    manifest.write_text('{"id": "f2_0", "task": "tts", "transcript": "hello"}\n', encoding="utf-8")
    argv = ["eval", "--pred", str(pred), "--manifest", str(manifest), "--metrics", "wer"]
    argv += ["--speech-backend", "faster-whisper", "--out", str(tmp_path / "out"), "--no-progress"]
    fetch = " && ".join(f"agomni weights fetch {name}" for name in FILES)
    assert main(argv) == EXIT_NOT_COMPUTED  # the results list it as not computed, with the commands
    assert "wer: NOT COMPUTED (weights): faster-whisper" in capsys.readouterr().out
    argv += ["--strict", "--overwrite"]  # fail-fast: the typed error
    assert main(argv) == UsageError.exit_code
    assert f"not in the weights cache: run `{fetch}`" in capsys.readouterr().err
    assert main([*argv, "--random-weights"]) == UsageError.exit_code
    assert "faster-whisper backend has no random-weights mode" in capsys.readouterr().err
