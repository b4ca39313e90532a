"""Paraformer-zh through funasr: the seed-tts-eval Chinese CER recogniser.

The recipe (BytedanceSpeech/seed-tts-eval ``run_wer.py``): funasr ``AutoModel(model="paraformer-zh")``,
``generate(input=clip, batch_size_s=300)``, the first result's ``text`` converted to simplified Chinese
with ``zhconv.convert(text, "zh-cn")`` (the reference is not converted); then the named normaliser
(``seed-tts-eval``: punctuation removed except the apostrophe) and a character-level alignment (each
character a token, whitespace dropped) give the CER. funasr's ``paraformer-zh`` alias on its default hub
(ModelScope) is ``iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch``; its
files are in the weights registry (`REGISTRY_FILES`, ``agomni weights fetch paraformer-zh-config`` and
the three others). F5-TTS ``eval/utils_eval.py`` makes the same calls (``disable_update=True``, normaliser
``f5-tts``: the apostrophe removed too) on a local copy of the Hugging Face repo ``funasr/paraformer-zh``,
whose ``configuration.json`` names the plain Paraformer-large, not the SeACo one: for that variant, pass
its directory to `ParaformerASR.from_directory`. One difference from both: they hand funasr a file path
(funasr decodes and resamples it); agomni hands it the clip already decoded, downmixed and resampled to
16 kHz by ``agomni.io``.

Offline and safe by construction:

- funasr never sees a model name, only the configuration read from the cached ``config.yaml`` with the
  tokens, CMVN and segmentation-dictionary paths filled in, and ``model_conf`` present, so its hub
  download code is not reached; ``disable_update=True`` skips its PyPI version check.
- funasr (1.4.16, ``train_utils/load_pretrained_model.py``) loads ``model.pt`` with a bare
  ``torch.load(path, map_location=...)``: safe only where torch defaults to ``weights_only=True`` (torch
  2.6 and later, unless ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is set), and it keeps the model's random
  values for missing keys and shape mismatches with a log line. agomni does not let it load: ``init_param``
  is left unset and the state dict is read with `agomni.weights.load_checkpoint` (``weights_only=True``
  whatever the torch version; a file needing pickled code is refused), ``module.`` prefixes dropped as
  funasr does, and loaded strictly (every key once, every shape checked).
- funasr prints its version on construction and notices on import; they go to stderr, never to agomni's stdout (JSON output).
"""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agomni.errors import MetricInputError, UsageError, WeightsError
from agomni.metrics.speech.items import RANDOM_BACKEND, RANDOM_RECIPE
from agomni.weights import load_checkpoint, load_strict, resolve, unwrap_state_dict

SAMPLE_RATE = 16000
BATCH_SIZE_S = 300  # seed-tts-eval's generate(batch_size_s=300)
#: The weights-registry entry of each file of the paraformer-zh model directory that decoding reads (the
#: directory's ``seg_dict`` serves hotword and training tokenisation only).
REGISTRY_FILES = {
    "config": "paraformer-zh-config",
    "model": "paraformer-zh-model",
    "tokens": "paraformer-zh-tokens",
    "cmvn": "paraformer-zh-cmvn",
}
#: File names in funasr's model-directory layout (ModelScope / Hugging Face).
DIRECTORY_NAMES = {
    "config": "config.yaml",
    "model": "model.pt",
    "tokens": "tokens.json",
    "cmvn": "am.mvn",
    "seg_dict": "seg_dict",
}


def _funasr() -> Any:
    try:  # funasr prints notices on import (no ffmpeg, its version): to stderr, never agomni's stdout
        with contextlib.redirect_stdout(sys.stderr):
            import funasr
        import zhconv  # noqa: F401  (checked here so a missing zhconv fails at construction)
    except ImportError as err:
        raise UsageError(
            "the paraformer-zh recogniser needs funasr and zhconv (pip install 'agomni[chinese]')"
        ) from err
    return funasr


@dataclass(frozen=True)
class ParaformerFiles:
    """The files of one Paraformer model directory. ``seg_dict`` is optional (decoding does not read it)."""

    config: Path
    model: Path | None
    tokens: Path
    cmvn: Path
    seg_dict: Path | None = None

    @classmethod
    def from_directory(cls, directory: str | Path) -> ParaformerFiles:
        """The files of a model directory in funasr's layout (``config.yaml``, ``model.pt``, ...)."""
        directory = Path(directory)
        paths = {role: directory / name for role, name in DIRECTORY_NAMES.items()}
        absent = [str(p) for role, p in paths.items() if role != "seg_dict" and not p.is_file()]
        if absent:
            raise WeightsError(f"{directory}: not a Paraformer model directory; missing {', '.join(absent)}")
        if not paths["seg_dict"].is_file():
            paths["seg_dict"] = None
        return cls(**paths)

    @classmethod
    def from_registry(cls, *, with_model: bool = True) -> ParaformerFiles:
        """The verified files of the registry's paraformer-zh entries (each re-hashed on load);
        ``with_model=False``: all but ``model.pt`` (for seeded random weights)."""
        roles = [role for role in REGISTRY_FILES if with_model or role != "model"]
        paths = {role: resolve(REGISTRY_FILES[role], progress=False) for role in roles}
        return cls(**{"model": None, **paths})


def funasr_config(files: ParaformerFiles, device: str) -> dict[str, Any]:
    """The keyword arguments agomni gives ``funasr.AutoModel``: ``config.yaml`` with the file paths set."""
    from omegaconf import OmegaConf

    try:
        config = OmegaConf.to_container(OmegaConf.load(files.config), resolve=True)
    except Exception as err:  # omegaconf / yaml raise several unrelated types for a damaged file
        raise WeightsError(f"{files.config}: not a readable funasr config.yaml ({err})") from err
    if not isinstance(config, dict):
        raise WeightsError(f"{files.config}: not a funasr model config (a {type(config).__name__})")
    missing = [key for key in ("model", "model_conf", "tokenizer", "frontend") if key not in config]
    if missing:
        raise WeightsError(f"{files.config}: not a funasr model config (no {', '.join(missing)})")
    config.setdefault("tokenizer_conf", {})["token_list"] = str(files.tokens)
    if files.seg_dict is not None:
        config["tokenizer_conf"]["seg_dict"] = str(files.seg_dict)
    config.setdefault("frontend_conf", {})["cmvn_file"] = str(files.cmvn)
    config.update(
        init_param=None,  # agomni loads the weights itself, without pickled code
        device=device,
        ncpu=torch.get_num_threads(),  # funasr would otherwise set torch's process-wide thread count to 4
        disable_update=True,
        disable_pbar=True,
        disable_log=True,
        log_level="ERROR",
    )
    return config


@contextlib.contextmanager
def _quiet_and_seeded(seed: int) -> Iterator[None]:
    """funasr's prints to stderr; the Python, numpy and torch random states and torch's thread count
    restored afterwards (funasr seeds all three globally when it builds a model, and sets the process's
    thread count to the model's ``ncpu`` on every call)."""
    py_state, np_state, threads = random.getstate(), np.random.get_state(), torch.get_num_threads()
    with torch.random.fork_rng(), contextlib.redirect_stdout(sys.stderr):
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
            torch.set_num_threads(threads)


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    state = unwrap_state_dict(load_checkpoint(path), where=str(path))
    return {key.removeprefix("module."): tensor for key, tensor in state.items()}


class ParaformerASR:
    """Paraformer (funasr) on one model directory; Chinese only; transcripts in simplified Chinese."""

    name = "paraformer-zh"
    recipe = (
        "seed-tts-eval zh: Paraformer-zh (funasr AutoModel generate, batch_size_s=300), "
        "hypothesis converted to simplified Chinese (zhconv zh-cn)"
    )
    languages = ("zh",)
    sample_rate = SAMPLE_RATE

    def __init__(
        self, files: ParaformerFiles, *, random_seed: int | None = None, device: str = "cpu"
    ) -> None:
        """Weights from ``files.model`` or, with ``random_seed``, funasr's own seeded initialisation
        (tests and latency only; the name and recipe say so)."""
        funasr = _funasr()
        config = funasr_config(files, device)
        with _quiet_and_seeded(0 if random_seed is None else random_seed):
            config["seed"] = 0 if random_seed is None else random_seed
            self.model = funasr.AutoModel(**config)
        network = self.model.model
        if random_seed is None:
            if files.model is None:
                raise WeightsError(f"{self.name}: no model.pt given (and no random_seed)")
            load_strict(network, _state_dict(files.model), where=str(files.model))
        else:
            self.name += RANDOM_BACKEND
            self.recipe += RANDOM_RECIPE
        network.eval()
        self.random_weights = random_seed is not None
        self.files = files
        self.version = f"funasr {version('funasr')}, zhconv {version('zhconv')}"

    @classmethod
    def from_registry(cls, device: str = "cpu") -> ParaformerASR:
        """The published paraformer-zh files from the agomni weights cache (verified)."""
        return cls(ParaformerFiles.from_registry(), device=device)

    @classmethod
    def from_directory(
        cls, directory: str | Path, *, random_seed: int | None = None, device: str = "cpu"
    ) -> ParaformerASR:
        return cls(ParaformerFiles.from_directory(directory), random_seed=random_seed, device=device)

    def transcribe(self, audio: np.ndarray, language: str) -> str:
        if language not in self.languages:
            raise MetricInputError(f"{self.name} recognises Chinese (zh) only, not {language!r}")
        import zhconv

        clip = np.ascontiguousarray(audio, dtype=np.float32)
        # The fbank front end dithers when config.yaml asks for it; a fixed seed per clip makes a
        # transcript independent of the clips decoded before it.
        with _quiet_and_seeded(0), torch.no_grad():
            results = self.model.generate(input=clip, batch_size_s=BATCH_SIZE_S, disable_pbar=True)
        if not results or "text" not in results[0]:
            raise MetricInputError(f"{self.name} returned no result for this clip ({results!r})")
        return zhconv.convert(results[0]["text"], "zh-cn")
