"""Our Whisper (front end, network, greedy decoding) equals openai-whisper with the same random weights,
loaded through the weights registry from an OpenAI-layout checkpoint ({"dims", "model_state_dict"})."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import whisper
from whisper.audio import N_SAMPLES, log_mel_spectrogram
from whisper.decoding import DecodingOptions, decode

from agomni import weights
from agomni.errors import MetricInputError
from agomni.metrics.speech.whisper import WhisperASR, WhisperDims, log_mel
from tests.metrics.speech_fixtures import utterances

# large-v3's vocabulary, mel bands and contexts (so the real tokenizer and front end apply); small widths
SMALL_V3 = WhisperDims(128, 1500, 64, 4, 2, 51866, 448, 64, 4, 2)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """(ours from the registry, openai-whisper's model) holding the same seeded random weights."""
    home = tmp_path_factory.mktemp("whisper_home")
    source = WhisperASR.random(SMALL_V3, seed=7)
    state = {k: v.clone() for k, v in source.network.state_dict().items()}
    checkpoint = home / "large-v3.pt"
    torch.save({"dims": dataclasses.asdict(SMALL_V3), "model_state_dict": state}, checkpoint)
    entry = dataclasses.replace(weights.get_entry("whisper-large-v3"), pin=None, size_bytes=None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AGOMNI_HOME", str(home / "cache"))
        mp.setenv("AGOMNI_OFFLINE", "1")
        with weights.registered(entry):
            weights.import_file(entry, checkpoint)
            ours = WhisperASR.from_registry()
    reference = whisper.model.Whisper(whisper.model.ModelDimensions(**dataclasses.asdict(SMALL_V3)))
    reference.load_state_dict(state)
    return ours, reference.eval()


def test_log_mel_equals_openai_whisper() -> None:
    audio = utterances()["f2_0"][0].astype(np.float32)
    expected = log_mel_spectrogram(audio, 128, padding=N_SAMPLES)[:, :3000]
    got = log_mel(audio, 128)
    assert got.shape == (128, 3000)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(MetricInputError, match="at most 30 s"):
        log_mel(np.zeros(31 * 16000, dtype=np.float32))


def test_network_logits_equal_openai_whisper_with_the_same_random_weights(loaded) -> None:
    ours, reference = loaded
    assert ours.random_weights is False  # loaded as the registry's file (random test weights here)
    mel = log_mel(utterances()["m1_0"][0], 128)[None]
    tokens = torch.tensor([[*ours.start, 400, 1000, 220]])
    with torch.no_grad():
        expected = reference(mel, tokens)
        got = ours.network(mel, tokens)
        expected_audio = reference.embed_audio(mel)
        got_audio = ours.network.encoder(mel)
    torch.testing.assert_close(
        got_audio, expected_audio, rtol=1e-4, atol=1e-4 * expected_audio.abs().max().item()
    )
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
    assert expected.std() > 0.1  # random weights give logits that vary meaningfully


@pytest.mark.slow
def test_greedy_english_transcription_equals_openai_decode(loaded) -> None:
    ours, reference = loaded
    for name in ("m1_2",):
        audio = utterances()[name][0].astype(np.float32)
        mel = log_mel_spectrogram(audio, 128, padding=N_SAMPLES)[:, :3000]
        # 48 new tokens at most on both sides (random weights never emit end-of-text; 224 is the default)
        options = DecodingOptions(
            language="en", task="transcribe", without_timestamps=True, fp16=False, sample_len=48
        )
        ours.max_new_tokens = 48
        expected = decode(reference, mel, options)
        got = ours.decode_tokens(audio)
        assert got == expected.tokens and len(got) == 48
        assert ours.transcribe(audio, "en") == expected.text
    with pytest.raises(MetricInputError, match="English forced"):
        ours.transcribe(audio, "zh")
