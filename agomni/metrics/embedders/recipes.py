"""Input recipes and helpers shared by the network embedders (VGGish, PANNs, PaSST, LAION-CLAP).

An input recipe is how a reference toolkit turns an audio file into the mono waveform its embedder sees:
downmix, DC removal, resampler, crop, minimum length, int16 quantisation, peak normalisation. The recipes
(`INPUT_RECIPES`, named like the `agomni eval` profiles):

``"av-benchmark"`` (hkchengrex/av-benchmark ``AudioDataset.read_from_file``): average the channels,
    subtract the clip's mean (DC), resample with ``torchaudio.transforms.Resample`` (agomni.io policy
    ``"torchaudio-sinc"``), keep the first ``--audio_length`` seconds (``max_seconds``; 8.0 by default in
    av-benchmark and in the ``av-benchmark`` profile of `agomni eval`; None keeps everything), no padding.
``"audioldm-eval"`` (haoheliu/audioldm_eval ``WaveDataset.read_from_file``): keep the first channel,
    subtract its mean, resample with ``torchaudio.functional.resample`` (policy
    ``"torchaudio-sinc-functional"``), zero-pad at the end to at least 32000 samples, no cropping.
``"stable-audio-metrics"`` (Stability-AI/stable-audio-metrics ``passt_kld``): ``librosa.load(sr, mono=True)``
    (channel mean, soxr HQ: policy ``"soxr-hq"``), then ``pyloudnorm.normalize.peak(audio, -1.0)``: the
    waveform scaled so that its largest absolute sample is -1 dBFS.
``"fadtk"`` (microsoft/fadtk ``FrechetAudioDistance.load_audio`` + ``ModelLoader.load_wav``, with
    ``TORCHAUDIO_RESAMPLING = True``, its default): channel mean, ``torchaudio.transforms.Resample`` with
    librosa's "kaiser_best" settings (lowpass_filter_width 64, rolloff 0.9475937167399596,
    ``sinc_interp_kaiser``, beta 14.769656459379492) - reproduced exactly here (`KAISER_BEST`); the result
    is written as 16-bit PCM and read back as ``int16 / 32768``; a model's minimum length (VGGish: 1 s) is
    enforced by zero padding to ``ceil(min_len * sr)`` samples. Not exact: fadtk's 16-bit write goes
    through whichever torchaudio backend is installed; agomni quantises as FFmpeg's s16 encoder does
    (round to nearest, saturate at -32768 / 32767). That difference is stated in the recipe's ``notes``,
    which every `agomni eval` result carries.
``"agomni-offline"``: channel mean, ``"torchaudio-sinc"``, nothing else (the offline spectral embedders).

Also here: `length_buckets` / `run_bucketed` (equal-length batching), `nonempty_batch` (the input check
of a network embedder), `weights_info` (the one provenance convention of the network embedders: their
``weights`` attribute) and `metadata_with_weights`. Strict checkpoint loading is
`agomni.weights.load_strict`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch
import torchaudio

from agomni.errors import MetricInputError, UsageError
from agomni.io import AudioRecord, downmix, load_audio, resample, resample_parameters
from agomni.io.resample import RESAMPLE_POLICIES
from agomni.metrics.embedders import Embedder
from agomni.weights.store import hash_file

#: fadtk's resampler: torchaudio.transforms.Resample with librosa's "kaiser_best" parameters.
KAISER_BEST = "torchaudio-sinc-kaiser-best"
KAISER_BEST_PARAMETERS: dict[str, Any] = {
    "lowpass_filter_width": 64,
    "rolloff": 0.9475937167399596,
    "resampling_method": "sinc_interp_kaiser",
    "beta": 14.769656459379492,
}
#: int16 quantisation as a 16-bit PCM write and ``int16 / 32768`` read (fadtk): round, saturate.
INT16_PCM = "int16-pcm-round-saturate"
#: fadtk ModelLoader minimum lengths in seconds (only VGGish sets one: ``min_len=1``).
FADTK_MIN_SECONDS: dict[str, float] = {"vggish": 1.0}
AV_BENCHMARK_AUDIO_LENGTH_S = 8.0


@dataclasses.dataclass(frozen=True)
class InputRecipe:
    """How a reference toolkit turns an audio file into the waveform its embedder sees.

    ``downmix`` and ``resampler`` are agomni.io policy names (or `KAISER_BEST`); ``remove_dc`` subtracts
    the clip mean after the downmix and before resampling; ``max_seconds`` keeps only the first seconds
    after resampling (None: all); ``min_samples`` / ``min_seconds`` zero-pad the resampled waveform at the
    end to at least that many samples (``ceil(min_seconds * rate)``); ``quantize`` (`INT16_PCM` or None)
    rounds to 16-bit PCM and back; ``peak_dbfs`` scales the waveform so that its largest absolute sample
    is that level (None: no scaling). ``reference`` names the code followed, ``notes`` where agomni is
    not exact.
    """

    name: str
    downmix: str
    remove_dc: bool
    resampler: str
    max_seconds: float | None
    min_samples: int | None
    reference: str
    min_seconds: float | None = None
    quantize: str | None = None
    peak_dbfs: float | None = None
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


INPUT_RECIPES: dict[str, InputRecipe] = {
    "av-benchmark": InputRecipe(
        name="av-benchmark",
        downmix="mean",
        remove_dc=True,
        resampler="torchaudio-sinc",
        max_seconds=None,
        min_samples=None,
        reference="hkchengrex/av-benchmark av_bench/data/audio_dataset.py AudioDataset.read_from_file",
    ),
    "audioldm-eval": InputRecipe(
        name="audioldm-eval",
        downmix="first",
        remove_dc=True,
        resampler="torchaudio-sinc-functional",
        max_seconds=None,
        min_samples=32000,
        reference="haoheliu/audioldm_eval audioldm_eval/datasets/load_mel.py WaveDataset.read_from_file",
    ),
    "stable-audio-metrics": InputRecipe(
        name="stable-audio-metrics",
        downmix="mean",
        remove_dc=False,
        resampler="soxr-hq",
        max_seconds=None,
        min_samples=None,
        peak_dbfs=-1.0,
        reference="Stability-AI/stable-audio-metrics src/passt_kld.py (librosa.load mono, soxr_hq; "
        "pyloudnorm.normalize.peak -1 dB)",
    ),
    "fadtk": InputRecipe(
        name="fadtk",
        downmix="mean",
        remove_dc=False,
        resampler=KAISER_BEST,
        max_seconds=None,
        min_samples=None,
        quantize=INT16_PCM,
        reference="microsoft/fadtk fadtk/fad.py FrechetAudioDistance.load_audio (TORCHAUDIO_RESAMPLING) + "
        "fadtk/model_loader.py ModelLoader.load_wav / enforce_min_len",
        notes="fadtk writes the resampled audio as 16-bit PCM through the installed torchaudio backend and "
        "reads it back as int16/32768; agomni quantises in memory as FFmpeg's s16 encoder does (round to "
        "nearest, saturate), which can differ by one LSB from other backends. fadtk caches embeddings as "
        "float16; the fadtk profile rounds them to float16 too.",
    ),
    "agomni-offline": InputRecipe(
        name="agomni-offline",
        downmix="mean",
        remove_dc=False,
        resampler="torchaudio-sinc",
        max_seconds=None,
        min_samples=None,
        reference="agomni (no external reference: offline spectral embedders)",
    ),
}


def input_recipe(
    name: str, *, max_seconds: float | None = None, min_seconds: float | None = None
) -> InputRecipe:
    """The named recipe with av-benchmark's ``--audio_length`` crop set to `max_seconds` (seconds; None
    keeps the whole clip) and a minimum length `min_seconds` (zero padding; None: the recipe's own)."""
    if name not in INPUT_RECIPES:
        raise UsageError(f"unknown input recipe {name!r}; choose one of {sorted(INPUT_RECIPES)}")
    for label, value in (("max_seconds", max_seconds), ("min_seconds", min_seconds)):
        if value is not None and not value > 0:
            raise UsageError(f"{label} must be a positive number of seconds or None, got {value!r}")
    recipe = dataclasses.replace(INPUT_RECIPES[name], max_seconds=max_seconds)
    return recipe if min_seconds is None else dataclasses.replace(recipe, min_seconds=min_seconds)


def recipe_for_embedder(name: str, embedder: str) -> InputRecipe:
    """The recipe `agomni eval` uses for `embedder` under profile `name`: av-benchmark cuts every file to
    its first 8 s (``--audio_length`` default), fadtk pads VGGish input to 1 s (``min_len``)."""
    if name == "av-benchmark":
        return input_recipe(name, max_seconds=AV_BENCHMARK_AUDIO_LENGTH_S)
    if name == "fadtk":
        return input_recipe(name, min_seconds=FADTK_MIN_SECONDS.get(embedder))
    return input_recipe(name)


def quantize_int16_pcm(x: torch.Tensor) -> torch.Tensor:
    """16-bit PCM write and ``int16 / 32768`` read: ``clamp(round(x * 32768), -32768, 32767) / 32768``."""
    return torch.clamp(torch.round(x.to(torch.float64) * 32768.0), -32768.0, 32767.0).div(32768.0).float()


def _resample(x: torch.Tensor, rate: int, target: int, policy: str) -> tuple[torch.Tensor, dict[str, Any]]:
    if policy == KAISER_BEST:
        transform = torchaudio.transforms.Resample(rate, target, **KAISER_BEST_PARAMETERS)
        params = {
            "policy": KAISER_BEST,
            "call": "torchaudio.transforms.Resample",
            "orig_sr": rate,
            "new_sr": target,
            "package": f"torchaudio {torchaudio.__version__}",
            **KAISER_BEST_PARAMETERS,
        }
        return transform(x[None])[0], params
    return resample(x[None], rate, target, policy)[0], resample_parameters(policy, rate, target)


def prepare_waveform(
    waveform: torch.Tensor, sample_rate: int, target_rate: int, recipe: InputRecipe
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Apply `recipe` to float audio ``[channels, samples]`` at `sample_rate` Hz.

    Order: downmix, DC removal, resampling, crop to ``max_seconds``, int16 quantisation, zero padding to
    the minimum length, peak normalisation. Returns the float32 mono waveform ``[samples_out]`` at
    `target_rate` Hz and a record of each step (DC offset removed, resampling parameters, samples cropped
    and zero-padded, peak gain).
    """
    if waveform.ndim != 2 or not waveform.is_floating_point():
        raise UsageError(
            f"expected float audio [channels, samples], got {tuple(waveform.shape)} {waveform.dtype}"
        )
    if recipe.resampler != KAISER_BEST and recipe.resampler not in RESAMPLE_POLICIES:
        raise UsageError(f"recipe {recipe.name!r}: unknown resampler {recipe.resampler!r}")
    x = downmix(waveform.to(torch.float32), recipe.downmix)[0]
    dc = float(x.mean()) if recipe.remove_dc else 0.0
    if recipe.remove_dc:
        x = x - x.mean()
    steps: dict[str, Any] = {"recipe": recipe.to_dict(), "dc_offset_removed": dc}
    if sample_rate != target_rate:
        x, steps["resample"] = _resample(x, sample_rate, target_rate, recipe.resampler)
    cropped = 0
    if recipe.max_seconds is not None:
        keep = int(target_rate * recipe.max_seconds)
        cropped = max(0, x.shape[0] - keep)
        x = x[:keep]
    if recipe.quantize == INT16_PCM:
        x = quantize_int16_pcm(x)
    elif recipe.quantize is not None:
        raise UsageError(f"recipe {recipe.name!r}: unknown quantisation {recipe.quantize!r}")
    minimum = max(
        recipe.min_samples or 0,
        math.ceil(recipe.min_seconds * target_rate) if recipe.min_seconds is not None else 0,
    )
    padded = max(0, minimum - x.shape[0])
    if padded:
        x = torch.nn.functional.pad(x, (0, padded))
    if recipe.peak_dbfs is not None:
        peak = float(x.abs().max())
        if peak == 0.0:
            raise MetricInputError(f"recipe {recipe.name!r}: peak normalisation of an all-zero waveform")
        gain = 10.0 ** (recipe.peak_dbfs / 20.0) / peak
        x = (x.to(torch.float64) * gain).float()
        steps["peak_gain"] = gain
    steps.update(samples_cropped=cropped, samples_zero_padded=padded, sample_rate=target_rate)
    return x.contiguous(), steps


def load_prepared(
    path: str | os.PathLike[str], target_rate: int, recipe: InputRecipe, *, allow_silence: bool = False
) -> tuple[torch.Tensor, AudioRecord, dict[str, Any]]:
    """Decode `path` with agomni.io (no resampling there) and apply `recipe` (see `prepare_waveform`).

    Returns ``(waveform [samples] float32 at target_rate, AudioRecord of the decode, steps)``; the record's
    resampling fields say "not resampled" because resampling is one of the recipe's steps.
    """
    audio, record = load_audio(path, sample_rate=None, downmix="keep", allow_silence=allow_silence)
    waveform, steps = prepare_waveform(audio, record.sample_rate, target_rate, recipe)
    return waveform, record, steps


# --- batching -------------------------------------------------------------------------------------------

T = TypeVar("T")


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of equal length (at most `batch_size` each), sorted by length."""
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        if batches and lengths[batches[-1][0]] == lengths[i] and len(batches[-1]) < batch_size:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def run_bucketed(
    waveforms: Sequence[torch.Tensor | np.ndarray],
    batch_size: int,
    run: Callable[[torch.Tensor], Sequence[T]],
    *,
    who: str,
) -> list[T]:
    """Call ``run([b, samples])`` on equal-length groups of 1-D `waveforms`; results in input order.

    `run` returns one item per row. A waveform that is not 1-D raises MetricInputError naming its index.
    """
    rows = []
    for i, w in enumerate(waveforms):
        t = torch.as_tensor(w)
        if t.ndim != 1:
            raise MetricInputError(f"{who}: waveform {i} must be 1-D [samples], got shape {tuple(t.shape)}")
        rows.append(t)
    out: list[T | None] = [None] * len(rows)
    for batch in length_buckets([r.shape[0] for r in rows], batch_size):
        results = run(torch.stack([rows[i] for i in batch]))
        for i, result in zip(batch, results, strict=True):
            out[i] = result
    return out  # type: ignore[return-value]


def nonempty_batch(
    embedder: Embedder, waveform: torch.Tensor | np.ndarray, *, min_samples: int
) -> torch.Tensor:
    """`embedder.check_waveform` (float32 CPU [B, samples], at least `min_samples` per row, finite) that
    also refuses an empty batch (B = 0) with MetricInputError naming the embedder."""
    x = embedder.check_waveform(waveform, min_samples=min_samples)
    if x.shape[0] == 0:
        raise MetricInputError(f"{embedder.name}: empty batch (0 waveforms)")
    return x


# --- checkpoints ----------------------------------------------------------------------------------------


def checkpoint_description(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Provenance of a checkpoint given by path: resolved path and SHA-256."""
    resolved = Path(path).resolve()
    return {"path": str(resolved), "sha256": hash_file(resolved).sha256}


Source = Literal["registry", "file", "random", "state-dict-argument"]


def weights_info(
    source: Source,
    *,
    provenance: Mapping[str, Any] | None = None,
    seed: int | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The ``weights`` record every network embedder exposes (one convention for `agomni eval`):

    ``{"source", "name", "sha256", "trust_class", "random_weights", "seed", "pinned", ...}`` where
    ``trust_class`` is "pinned" / "tofu" (a registry checkpoint, or a file hashed on this use),
    "random" (seeded random weights; ``seed`` set) or "unverified" (a state dict passed in memory: no
    hash, so its numbers cannot be traced). ``provenance``: `agomni.weights.provenance` of a registry
    entry, or `checkpoint_description` of a file.
    """
    prov = dict(provenance or {})
    if source == "random":
        if not isinstance(seed, int):
            raise UsageError("random weights need an integer seed")
        return {"source": source, "name": name, "sha256": None, "trust_class": "random",
                "random_weights": True, "seed": seed, "pinned": False}  # fmt: skip
    if source == "state-dict-argument":
        return {"source": source, "name": name, "sha256": None, "trust_class": "unverified",
                "random_weights": False, "seed": None, "pinned": False}  # fmt: skip
    trust = prov.get("trust_class", "tofu") if source == "registry" else "tofu"
    return {
        **prov,
        "source": source,
        "name": prov.get("name", name),
        "trust_class": trust,
        "random_weights": False,
        "seed": None,
        "pinned": trust == "pinned",
    }


def metadata_with_weights(
    metadata: dict[str, Any], *, random_weights: bool, weights: Mapping[str, Any]
) -> dict[str, Any]:
    """An embedder's `Embedder.metadata()` plus ``random_weights`` and its ``weights`` record
    (`weights_info`), for the embedders that keep the weights outside ``config()``."""
    metadata["random_weights"] = random_weights
    metadata["weights"] = weights
    return metadata


__all__ = [
    "AV_BENCHMARK_AUDIO_LENGTH_S",
    "FADTK_MIN_SECONDS",
    "INPUT_RECIPES",
    "INT16_PCM",
    "KAISER_BEST",
    "InputRecipe",
    "checkpoint_description",
    "input_recipe",
    "length_buckets",
    "load_prepared",
    "metadata_with_weights",
    "nonempty_batch",
    "prepare_waveform",
    "quantize_int16_pcm",
    "recipe_for_embedder",
    "run_bucketed",
    "weights_info",
]
