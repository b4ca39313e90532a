"""faster-whisper large-v3, beam 5: the F5-TTS English WER recipe, as the ``faster-whisper`` recogniser.

The recipe (SWivid/F5-TTS ``src/f5_tts/eval/utils_eval.py``, ``load_asr_model`` / ``run_asr_wer``):
``WhisperModel("large-v3", device="cuda", compute_type="float16")``, then
``model.transcribe(wav, beam_size=5, language="en")`` with every other setting at faster-whisper's
default (temperature fallback 0.0, 0.2, ... 1.0 with the compression-ratio 2.4 / log-probability -1.0
thresholds, previous text as prompt, timestamps, no VAD); the segments' texts are joined with spaces.
Scoring follows with the ``f5-tts`` normaliser (punctuation including the apostrophe removed,
lowercased) and jiwer, as the mean of the per-utterance WERs. Its WERs are comparable with F5-TTS-style
numbers only, not with the seed-tts-eval Whisper-large-v3 greedy recipe (``whisper-large-v3``).

Differences, stated: the audio reaches the model as agomni's decoded 16 kHz mono samples (F5-TTS hands
faster-whisper the file, which it decodes with PyAV); on CPU the compute type is float32 (CTranslate2 has
no float16 on CPU); the random generator CTranslate2 samples with at temperatures above 0 is seeded
before every clip, so a transcript does not depend on the clips decoded before it.

The model is Systran/faster-whisper-large-v3, a CTranslate2 directory of five files, each a registry
entry (`FILES`) in agomni's weights cache. They are linked into one private temporary directory that
`WhisperModel` gets as a local path: faster-whisper never calls the hub for it (it would fetch a tokenizer
from the hub only when ``tokenizer.json`` is missing, which is refused here first).
"""

from __future__ import annotations

import os
import tempfile
from importlib.metadata import version
from pathlib import Path

import numpy as np

from agomni import weights
from agomni.errors import MetricInputError, UsageError, WeightsError
from agomni.metrics.speech.items import RANDOM_BACKEND, RANDOM_RECIPE

SAMPLE_RATE = 16000
#: Registry entry of each file of the CTranslate2 model directory.
FILES = {
    "faster-whisper-large-v3-model": "model.bin",
    "faster-whisper-large-v3-config": "config.json",
    "faster-whisper-large-v3-tokenizer": "tokenizer.json",
    "faster-whisper-large-v3-vocabulary": "vocabulary.json",
    "faster-whisper-large-v3-preprocessor": "preprocessor_config.json",
}
#: The F5-TTS settings of ``WhisperModel.transcribe`` (the rest are faster-whisper's defaults).
BEAM_SIZE = 5
RECIPE = (
    "F5-TTS: faster-whisper large-v3 (CTranslate2), English forced, beam 5, faster-whisper defaults "
    "otherwise (temperature fallback 0-1.0); comparable with F5-TTS-style WERs only"
)


def _device(device: str) -> tuple[str, int, str]:
    """CTranslate2 device, index and the recipe's compute type there (float16 on CUDA, float32 on CPU)."""
    kind, _, index = device.partition(":")
    if kind == "cuda":
        return "cuda", int(index or 0), "float16"
    if kind == "cpu":
        return "cpu", 0, "float32"
    raise UsageError(f"faster-whisper runs on 'cpu' or 'cuda[:N]', not {device!r}")


class FasterWhisperASR:
    """faster-whisper on a local CTranslate2 Whisper directory with the F5-TTS settings; English only."""

    languages = ("en",)
    sample_rate = SAMPLE_RATE
    _folder: tempfile.TemporaryDirectory[str] | None = None  # the linked model directory, if made here

    def __init__(
        self, model_dir: str | Path, *, random_weights: bool, device: str = "cpu", seed: int = 0
    ) -> None:
        try:
            import ctranslate2
            from faster_whisper import WhisperModel
        except ImportError as err:
            raise UsageError(
                "the faster-whisper recogniser needs faster-whisper (pip install 'agomni[fwhisper]')"
            ) from err
        model_dir = Path(model_dir)
        missing = [f for f in FILES.values() if not (model_dir / f).is_file()]
        if missing:
            raise WeightsError(f"{model_dir} is not a complete faster-whisper model: no {', '.join(missing)}")
        kind, index, self.compute_type = _device(device)
        self.model = WhisperModel(
            str(model_dir),
            device=kind,
            device_index=index,
            compute_type=self.compute_type,
            local_files_only=True,
        )
        self._seed_generator = ctranslate2.set_random_seed
        self.seed = seed
        self.random_weights = random_weights
        self.version = f"faster-whisper {version('faster-whisper')}, ctranslate2 {version('ctranslate2')}"
        self.name = "faster-whisper-large-v3" + (RANDOM_BACKEND if random_weights else "")
        self.recipe = f"{RECIPE}; compute type {self.compute_type}" + (
            RANDOM_RECIPE if random_weights else ""
        )

    @classmethod
    def from_registry(cls, device: str = "cpu", seed: int = 0) -> FasterWhisperASR:
        """The published model from the weights cache (each file verified), linked into a private directory."""
        folder = tempfile.TemporaryDirectory(prefix="agomni-faster-whisper-")
        for name, filename in FILES.items():
            os.symlink(weights.resolve(name), Path(folder.name) / filename)
        asr = cls(folder.name, random_weights=False, device=device, seed=seed)
        asr._folder = folder  # the links live as long as the recogniser
        return asr

    def transcribe(self, audio: np.ndarray, language: str) -> str:
        if language not in self.languages:
            raise MetricInputError(
                f"{self.name} is run with English forced (F5-TTS); {language!r} is not supported"
            )
        self._seed_generator(self.seed)
        segments, _ = self.model.transcribe(
            np.ascontiguousarray(audio, dtype=np.float32), beam_size=BEAM_SIZE, language=language
        )
        return " ".join(segment.text for segment in segments).strip()


def faster_whisper_asr(*, random_weights: bool, device: str, seed: int) -> FasterWhisperASR:
    """The ``faster-whisper`` backend of `agomni eval`; it has no random-weights mode (its CTranslate2 model
    is converted from a trained checkpoint, not built here)."""
    if random_weights:
        raise UsageError(
            "the faster-whisper backend has no random-weights mode in this version; use "
            "--speech-backend whisper-large-v3 with --random-weights, or fetch its model "
            f"(`{' && '.join(f'agomni weights fetch {n}' for n in FILES)}`)"
        )
    return FasterWhisperASR.from_registry(device=device, seed=seed)
