"""Speech and song metrics: WER / CER, speaker similarity, quality (DNSMOS) and pitch (F0)."""

from agomni.metrics.speech.normalize import NORMALIZERS, get_normalizer
from agomni.metrics.speech.wer import ErrorCounts, ErrorRateResult, cer, error_rate, wer

__all__ = ["NORMALIZERS", "ErrorCounts", "ErrorRateResult", "cer", "error_rate", "get_normalizer", "wer"]
