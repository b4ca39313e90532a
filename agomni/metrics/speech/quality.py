"""DNSMOS (ITU-T P.835 SIG / BAK / OVRL, plus P.808 MOS): non-intrusive speech quality, offline.

Computed by the ``speechmos`` package's DNSMOS class on the ONNX models that ship inside it
(``dnsmos_models/sig_bak_ovr.onnx``, ``model_v8.onnx``; Microsoft's DNS-Challenge DNSMOS, non-
personalised): mono 16 kHz float audio in [-1, 1]; clips shorter than 9.01 s are repeated to that
length; 9.01 s windows with 1 s hop; the raw P.835 outputs pass the published polynomial fit; each
score is the mean over windows. Scale 1-5, higher is better.

Per item: samples outside [-1, 1] (speechmos refuses them; normalise first), empty or non-finite audio
are errors; non-speech
audio is scored and flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

import numpy as np

from agomni.errors import MetricInputError, UsageError
from agomni.metrics.speech.items import SetScore, mono_float, non_speech_flags, score_clips

SAMPLE_RATE = 16000
AXES = {
    "sig_mos": "DNSMOS_SIG",
    "bak_mos": "DNSMOS_BAK",
    "ovrl_mos": "DNSMOS_OVRL",
    "p808_mos": "DNSMOS_P808",
}
RECIPE = "DNSMOS P.835 (speechmos; Microsoft DNS-Challenge sig_bak_ovr.onnx + P.808 model_v8.onnx)"


class DNSMOS:
    """speechmos's DNSMOS with its bundled ONNX models, one session per instance."""

    sample_rate = SAMPLE_RATE

    def __init__(self) -> None:
        try:
            from speechmos import dnsmos as speechmos_dnsmos
        except ImportError as err:
            raise UsageError("DNSMOS needs speechmos and onnxruntime (pip install 'agomni[speech]')") from err
        models = Path(speechmos_dnsmos.__file__).parent / "dnsmos_models"
        self._model = speechmos_dnsmos.DNSMOS(str(models / "sig_bak_ovr.onnx"), str(models / "model_v8.onnx"))
        self.backend = f"speechmos {version('speechmos')}, onnxruntime {version('onnxruntime')}"

    def score(self, audio: np.ndarray) -> dict[str, float]:
        """``{"sig_mos", "bak_mos", "ovrl_mos", "p808_mos"}`` of one clip (mono 16 kHz, in [-1, 1])."""
        peak = float(np.abs(audio).max())
        if peak > 1.0:
            raise MetricInputError(f"samples reach {peak:.3f}, outside [-1, 1]; normalise the audio first")
        scores = self._model(np.asarray(audio, dtype=np.float32), self.sample_rate, False)
        return {key: float(scores[key]) for key in AXES}


def dnsmos(
    clips: Sequence[np.ndarray],
    *,
    ids: Sequence[str] | None = None,
    model: DNSMOS | None = None,
    progress: bool = False,
) -> dict[str, SetScore]:
    """DNSMOS of each clip (mono 16 kHz float arrays): one ``SetScore`` per axis (SIG, BAK, OVRL, P808)."""
    model = DNSMOS() if model is None else model

    def score(item_id: str, clip: np.ndarray) -> tuple[dict[str, float], tuple[str, ...]]:
        audio = mono_float(clip, f"item {item_id}")
        values = {AXES[key]: value for key, value in model.score(audio).items()}
        return values, non_speech_flags(audio, SAMPLE_RATE)

    return score_clips(
        clips,
        ids,
        score,
        tuple(AXES.values()),
        "MOS (1-5)",
        RECIPE,
        model.backend,
        desc="DNSMOS",
        progress=progress,
        name_item=False,
    )
