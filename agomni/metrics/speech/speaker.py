"""Speaker similarity (SIM): cosine between the speaker embeddings of generated audio and its prompt.

Backends (each embeds mono 16 kHz float audio; stereo must be downmixed first, e.g. by
``agomni.io.load_audio(path, sample_rate=16000, downmix="mean")``):

- ``resemblyzer`` (offline default): resemblyzer's GE2E speaker encoder, whose weights ship inside the
  package (``pretrained.pt``, checked loadable without pickled code before use). Its own preprocessing
  (volume normalisation to -30 dBFS, webrtcvad trimming of long silences) then ``embed_utterance``
  (1.6 s partials, 50 % overlap, mean of the L2-normalised partial embeddings, 256-d). *Not* the
  SIM-o recipe of the papers (WavLM-Large + ECAPA-TDNN): its values are not comparable with theirs.
- ``speechbrain-ecapa``: speechbrain's ECAPA-TDNN (``spkrec-ecapa-voxceleb``, 192-d), built from
  speechbrain's classes with the checkpoint from the agomni weights registry
  (``ecapa-voxceleb-embedding``), never a hub call; 80-band fbank, sentence mean normalisation, then
  the embedding network (as ``EncoderClassifier.encode_batch`` on one unpadded clip). Its real
  weights must be fetched once (``agomni weights fetch ecapa-voxceleb-embedding``).
- ``wavlm-ecapa``: the SIM-o recipe of seed-tts-eval and F5-TTS, UniSpeech's WavLM-Large + ECAPA-TDNN
  (`agomni.metrics.speech.wavlm_ecapa.WavLMECAPA`, 256-d), checkpoint ``wavlm-large-ecapa-sv``
  (``agomni weights import``; it has no direct download).

Per item: a prompt shorter than 1 s, and empty or non-finite audio, are errors; non-speech audio (generated
or prompt) is flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from agomni.errors import MetricInputError, UsageError
from agomni.metrics.speech.items import (
    MIN_PROMPT_SECONDS,
    RANDOM_BACKEND,
    ItemScore,
    SetScore,
    clip_ids,
    mono_float,
    non_speech_flags,
)
from agomni.metrics.speech.wavlm_ecapa import WavLMECAPA
from agomni.weights import load_checkpoint, load_entry_state_dict, load_strict

SAMPLE_RATE = 16000


class ResemblyzerEncoder:
    """resemblyzer's GE2E encoder with its bundled weights (offline)."""

    name = "resemblyzer"
    recipe = "agomni-offline (resemblyzer GE2E; not comparable with WavLM+ECAPA SIM-o)"
    sample_rate = SAMPLE_RATE

    def __init__(self, device: str = "cpu") -> None:
        try:
            import resemblyzer
        except ImportError as err:
            raise UsageError(
                "the resemblyzer backend needs resemblyzer (pip install --no-deps resemblyzer==0.1.4, "
                "with agomni[speech])"
            ) from err
        weights = Path(resemblyzer.__file__).parent / "pretrained.pt"
        load_checkpoint(weights)  # raises if the file would need pickled code
        self._preprocess = resemblyzer.preprocess_wav
        self._encoder = resemblyzer.VoiceEncoder(device, verbose=False, weights_fpath=weights)
        self.version = version("resemblyzer")

    def embed(self, audio: np.ndarray) -> np.ndarray:
        wav = self._preprocess(np.asarray(audio, dtype=np.float32))
        if len(wav) == 0:
            raise MetricInputError("resemblyzer's voice-activity trimming left no audio")
        return self._encoder.embed_utterance(wav)


def _ecapa_network() -> torch.nn.Module:
    """speechbrain's ECAPA-TDNN with the spkrec-ecapa-voxceleb hyperparameters."""
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

    return ECAPA_TDNN(
        80,
        channels=[1024, 1024, 1024, 1024, 3072],
        kernel_sizes=[5, 3, 3, 3, 1],
        dilations=[1, 2, 3, 4, 1],
        attention_channels=128,
        lin_neurons=192,
    )


class SpeechBrainECAPA:
    """speechbrain ECAPA-TDNN (VoxCeleb) from registry weights; see the module docstring."""

    name = "speechbrain-ecapa"
    recipe = "speechbrain spkrec-ecapa-voxceleb (ECAPA-TDNN, 192-d)"
    sample_rate = SAMPLE_RATE
    weights = "ecapa-voxceleb-embedding"

    def __init__(self, state: dict[str, torch.Tensor], *, random_weights: bool, device: str = "cpu") -> None:
        """Use ``from_registry()`` (the published checkpoint) or ``random(seed)`` (tests, latency)."""
        from speechbrain.lobes.features import Fbank
        from speechbrain.processing.features import InputNormalization

        self.features = Fbank(n_mels=80)
        self.norm = InputNormalization(norm_type="sentence", std_norm=False)
        self.model = _ecapa_network()
        load_strict(self.model, state, where=self.weights, optional_suffixes=("num_batches_tracked",))
        self.model.eval().to(device)
        self.device = device
        self.random_weights = random_weights
        self.version = version("speechbrain") + (RANDOM_BACKEND if random_weights else "")

    @classmethod
    def from_registry(cls, device: str = "cpu") -> SpeechBrainECAPA:
        """The published VoxCeleb checkpoint, from the agomni weights cache (fetched if allowed)."""
        return cls(load_entry_state_dict(cls.weights), random_weights=False, device=device)

    @classmethod
    def random(cls, seed: int = 0, device: str = "cpu") -> SpeechBrainECAPA:
        """Seeded random weights: for tests and latency only; every result says so."""
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            net = _ecapa_network()
        return cls(net.state_dict(), random_weights=True, device=device)

    def embed(self, audio: np.ndarray) -> np.ndarray:
        wav = torch.as_tensor(np.asarray(audio, dtype=np.float32), device=self.device)[None]
        lengths = torch.ones(1, device=self.device)
        with torch.no_grad():
            feats = self.norm(self.features(wav), lengths)
            return self.model(feats, lengths)[0, 0].cpu().numpy()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def speaker_similarity(
    generated: Sequence[np.ndarray],
    prompts: Sequence[np.ndarray],
    *,
    ids: Sequence[str] | None = None,
    encoder: ResemblyzerEncoder | SpeechBrainECAPA | WavLMECAPA | None = None,
) -> SetScore:
    """SIM between each generated clip and its prompt (mono 16 kHz float arrays), per item and mean.

    ``encoder`` defaults to ``ResemblyzerEncoder()`` (offline). Items whose prompt is shorter than
    1 s get an error; non-speech generated or prompt audio is scored and flagged.
    """
    if len(generated) != len(prompts):
        raise MetricInputError(f"{len(generated)} generated clips but {len(prompts)} prompts: unpaired")
    ids = clip_ids(ids, len(generated), "generated clip")
    encoder = ResemblyzerEncoder() if encoder is None else encoder
    items = []
    for item_id, gen, prompt in zip(ids, generated, prompts, strict=True):
        try:
            gen = mono_float(gen, f"item {item_id} generated audio")
            prompt = mono_float(prompt, f"item {item_id} prompt audio")
        except MetricInputError as err:
            items.append(ItemScore(item_id, None, error=str(err)))
            continue
        seconds = len(prompt) / encoder.sample_rate
        if seconds < MIN_PROMPT_SECONDS:
            items.append(
                ItemScore(
                    item_id,
                    None,
                    error=f"prompt audio is {seconds:.3f} s, shorter than {MIN_PROMPT_SECONDS} s",
                )
            )
            continue
        flags = tuple(
            f"{what}: {why}"
            for what, audio in (("generated", gen), ("prompt", prompt))
            for why in non_speech_flags(audio, encoder.sample_rate)
        )
        try:
            value = cosine(encoder.embed(gen), encoder.embed(prompt))
        except MetricInputError as err:
            items.append(ItemScore(item_id, None, flags=flags, error=str(err)))
            continue
        items.append(ItemScore(item_id, value, flags=flags))
    return SetScore(
        name="SIM",
        unit="cosine",
        higher_is_better=True,
        recipe=encoder.recipe,
        backend=f"{encoder.name} {encoder.version}",
        items=tuple(items),
        details={"sample_rate": encoder.sample_rate},
    )
