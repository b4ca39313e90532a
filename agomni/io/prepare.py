"""Preprocessing: how an audio file becomes the waveform an embedder sees, in one place.

decode (`agomni.io.load_audio`) -> downmix -> DC removal -> resample -> crop to the first seconds ->
int16 quantisation -> zero padding to a minimum length -> peak normalisation. One `Recipe` describes
every step; `prepare_waveform` / `load_prepared` execute it. The embedder supplies only the target rate
(`agomni.metrics.embedders.InputNeeds`); which recipe a profile uses for an embedder is
`agomni.evaluate.profiles.Profile.recipe_for`.

The named recipes (`RECIPES`), one per reference toolkit's loader:

``"av-benchmark"`` (hkchengrex/av-benchmark ``AudioDataset.read_from_file``): average the channels,
    subtract the clip's mean (DC), resample with ``torchaudio.transforms.Resample`` (agomni.io policy
    ``"torchaudio-sinc"``), keep the first ``--audio_length`` seconds (``max_seconds``; the option has no default in
    av-benchmark, MMAudio's evaluation command passes 8, as the ``av-benchmark`` profile of `agomni eval`
    does; None keeps everything), no padding.
``"audioldm-eval"`` (haoheliu/audioldm_eval ``WaveDataset.read_from_file``): keep the first channel,
    subtract its mean, resample with ``torchaudio.functional.resample`` (policy
    ``"torchaudio-sinc-functional"``), zero-pad at the end to at least 32000 samples, no cropping.
``"stable-audio-metrics"`` (Stability-AI/stable-audio-metrics ``passt_kld``): ``librosa.load(sr, mono=True)``
    (channel mean, soxr HQ: policy ``"soxr-hq"``), then ``pyloudnorm.normalize.peak(audio, -1.0)``: the
    waveform scaled so that its largest absolute sample is -1 dBFS.
``"fadtk"`` (microsoft/fadtk ``FrechetAudioDistance.load_audio`` + ``ModelLoader.load_wav``, with
    ``TORCHAUDIO_RESAMPLING = True``, its default): channel mean, ``torchaudio.transforms.Resample`` with
    librosa's "kaiser_best" settings (lowpass_filter_width 64, rolloff 0.9475937167399596,
    ``sinc_interp_kaiser``, beta 14.769656459379492) - reproduced exactly (resampling policy ``"torchaudio-sinc-kaiser-best"``); the result
    is written as 16-bit PCM and read back as ``int16 / 32768``; a model's minimum length (VGGish: 1 s) is
    enforced by zero padding to ``ceil(min_len * sr)`` samples. Not exact: fadtk's 16-bit write goes
    through whichever torchaudio backend is installed; agomni quantises as FFmpeg's s16 encoder does
    (round to nearest, saturate at -32768 / 32767). That difference is stated in the recipe's ``notes``,
    which every `agomni eval` result carries.
``"agomni-offline"``: channel mean, ``"torchaudio-sinc"``, nothing else (the offline spectral embedders).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from agomni.errors import MetricInputError, UsageError
from agomni.io.audio import load_audio
from agomni.io.downmix import downmix
from agomni.io.records import AudioRecord
from agomni.io.resample import TORCHAUDIO_SINC_KAISER_BEST, resample, resample_parameters

#: int16 quantisation as a 16-bit PCM write and ``int16 / 32768`` read (fadtk): round, saturate.
INT16_PCM = "int16-pcm-round-saturate"
#: fadtk ModelLoader minimum lengths in seconds (only VGGish sets one: ``min_len=1``).
FADTK_MIN_SECONDS: dict[str, float] = {"vggish": 1.0}
#: The 8 s av-benchmark's ``--audio_length`` is given on the command line MMAudio's evaluation uses
#: (av-benchmark's option itself has no default).
AV_BENCHMARK_AUDIO_LENGTH_S = 8.0


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a reference toolkit turns an audio file into the waveform its embedder sees.

    ``downmix`` and ``resampler`` are agomni.io policy names; ``remove_dc`` subtracts
    the clip mean after the downmix and before resampling; ``max_seconds`` keeps only the first seconds
    after resampling (None: all); ``min_samples`` / ``min_seconds`` zero-pad the resampled waveform at the
    end to at least that many samples (``ceil(min_seconds * rate)``); ``quantize`` (`INT16_PCM` or None)
    rounds to 16-bit PCM and back; ``peak_dbfs`` scales the waveform so that its largest absolute sample
    is that level (None: no scaling), measured on the decoded audio over all kept channels when
    ``peak_before_resample`` (stable-audio-metrics' OpenL3 loader) and on the final waveform otherwise.
    ``reference`` names the code followed, ``notes`` where agomni is not exact.
    """

    name: str
    downmix: str
    remove_dc: bool
    resampler: str
    reference: str
    max_seconds: float | None = None
    min_samples: int | None = None
    min_seconds: float | None = None
    quantize: str | None = None
    peak_dbfs: float | None = None
    peak_before_resample: bool = False
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


RECIPES: dict[str, Recipe] = {
    "av-benchmark": Recipe(
        name="av-benchmark",
        downmix="mean",
        remove_dc=True,
        resampler="torchaudio-sinc",
        reference="hkchengrex/av-benchmark av_bench/data/audio_dataset.py AudioDataset.read_from_file",
    ),
    "audioldm-eval": Recipe(
        name="audioldm-eval",
        downmix="first",
        remove_dc=True,
        resampler="torchaudio-sinc-functional",
        min_samples=32000,
        reference="haoheliu/audioldm_eval audioldm_eval/datasets/load_mel.py WaveDataset.read_from_file",
    ),
    "stable-audio-metrics": Recipe(
        name="stable-audio-metrics",
        downmix="mean",
        remove_dc=False,
        resampler="soxr-hq",
        peak_dbfs=-1.0,
        reference="Stability-AI/stable-audio-metrics src/passt_kld.py (librosa.load mono, soxr_hq; "
        "pyloudnorm.normalize.peak -1 dB)",
    ),
    "stable-audio-metrics-openl3": Recipe(
        name="stable-audio-metrics-openl3",
        downmix="first-two",
        remove_dc=False,
        resampler="soxr-hq-float32",
        peak_dbfs=-1.0,
        peak_before_resample=True,
        reference="Stability-AI/stable-audio-metrics src/openl3_fd.py extract_embeddings (librosa.load "
        "sr=None mono=False; pyloudnorm.normalize.peak -1 dB over all channels; soxr.resample HQ to the "
        "evaluation rate; channels 0 and 1 embedded separately, mono copied to both)",
    ),
    "fadtk": Recipe(
        name="fadtk",
        downmix="mean",
        remove_dc=False,
        resampler=TORCHAUDIO_SINC_KAISER_BEST,
        quantize=INT16_PCM,
        reference="microsoft/fadtk fadtk/fad.py FrechetAudioDistance.load_audio (TORCHAUDIO_RESAMPLING) + "
        "fadtk/model_loader.py ModelLoader.load_wav / enforce_min_len",
        notes="fadtk writes the resampled audio as 16-bit PCM through the installed torchaudio backend and "
        "reads it back as int16/32768; agomni quantises in memory as FFmpeg's s16 encoder does (round to "
        "nearest, saturate), which can differ by one LSB from other backends. fadtk caches embeddings as "
        "float16; the fadtk profile rounds them to float16 too.",
    ),
    "agomni-offline": Recipe(
        name="agomni-offline",
        downmix="mean",
        remove_dc=False,
        resampler="torchaudio-sinc",
        reference="agomni (no external reference: offline spectral embedders)",
    ),
}


def recipe(name: str, *, max_seconds: float | None = None, min_seconds: float | None = None) -> Recipe:
    """The named recipe with av-benchmark's ``--audio_length`` crop set to `max_seconds` (seconds; None
    keeps the whole clip) and a minimum length `min_seconds` (zero padding; None: the recipe's own)."""
    if name not in RECIPES:
        raise UsageError(f"unknown input recipe {name!r}; choose one of {sorted(RECIPES)}")
    for label, value in (("max_seconds", max_seconds), ("min_seconds", min_seconds)):
        if value is not None and not value > 0:
            raise UsageError(f"{label} must be a positive number of seconds or None, got {value!r}")
    recipe = dataclasses.replace(RECIPES[name], max_seconds=max_seconds)
    return recipe if min_seconds is None else dataclasses.replace(recipe, min_seconds=min_seconds)


def quantize_int16_pcm(x: torch.Tensor) -> torch.Tensor:
    """16-bit PCM write and ``int16 / 32768`` read: ``clamp(round(x * 32768), -32768, 32767) / 32768``."""
    return torch.clamp(torch.round(x.to(torch.float64) * 32768.0), -32768.0, 32767.0).div(32768.0).float()


def prepare_waveform(
    waveform: torch.Tensor, sample_rate: int, target_rate: int, recipe: Recipe
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Apply `recipe` to float audio ``[channels, samples]`` at `sample_rate` Hz.

    Order: downmix, DC removal, (peak normalisation when ``peak_before_resample``), resampling, crop to
    ``max_seconds``, int16 quantisation, zero padding to the minimum length, peak normalisation. Returns
    the float32 waveform at `target_rate` Hz, mono ``[samples_out]`` or, when the downmix keeps channels
    (``"first-two"``: always ``[2, samples_out]``; ``"keep"`` of a multichannel file), ``[channels,
    samples_out]``, and a record of each step (DC offset removed, resampling parameters, samples
    cropped and zero-padded, peak gain).
    """
    if waveform.ndim != 2 or not waveform.is_floating_point():
        raise UsageError(
            f"expected float audio [channels, samples], got {tuple(waveform.shape)} {waveform.dtype}"
        )
    x = downmix(waveform.to(torch.float32), recipe.downmix)
    dc = float(x.mean()) if recipe.remove_dc else 0.0
    if recipe.remove_dc:
        x = x - x.mean()
    steps: dict[str, Any] = {"recipe": recipe.to_dict(), "dc_offset_removed": dc}
    if recipe.peak_dbfs is not None and recipe.peak_before_resample:
        x, steps["peak_gain"] = _peak_normalise(x, recipe)
    if sample_rate != target_rate:
        x = resample(x, sample_rate, target_rate, recipe.resampler)
        steps["resample"] = resample_parameters(recipe.resampler, sample_rate, target_rate)
    cropped = 0
    if recipe.max_seconds is not None:
        keep = int(target_rate * recipe.max_seconds)
        cropped = max(0, x.shape[-1] - keep)
        x = x[..., :keep]
    if recipe.quantize == INT16_PCM:
        x = quantize_int16_pcm(x)
    elif recipe.quantize is not None:
        raise UsageError(f"recipe {recipe.name!r}: unknown quantisation {recipe.quantize!r}")
    minimum = max(
        recipe.min_samples or 0,
        math.ceil(recipe.min_seconds * target_rate) if recipe.min_seconds is not None else 0,
    )
    padded = max(0, minimum - x.shape[-1])
    if padded:
        x = torch.nn.functional.pad(x, (0, padded))
    if recipe.peak_dbfs is not None and not recipe.peak_before_resample:
        x, steps["peak_gain"] = _peak_normalise(x, recipe)
    steps.update(samples_cropped=cropped, samples_zero_padded=padded, sample_rate=target_rate)
    return (x[0] if x.shape[0] == 1 and recipe.downmix != "first-two" else x).contiguous(), steps


def _peak_normalise(x: torch.Tensor, recipe: Recipe) -> tuple[torch.Tensor, float]:
    """``x`` scaled so that its largest absolute sample (over all channels) is ``recipe.peak_dbfs``."""
    peak = float(x.abs().max())
    if peak == 0.0:
        raise MetricInputError(f"recipe {recipe.name!r}: peak normalisation of an all-zero waveform")
    gain = 10.0 ** (recipe.peak_dbfs / 20.0) / peak
    if recipe.peak_before_resample:  # pyloudnorm under numpy 1.x, as stable-audio-metrics pins it: float32
        return x.to(torch.float32) * torch.tensor(gain, dtype=torch.float32), gain
    return (x.to(torch.float64) * gain).float(), gain


def load_prepared(
    path: str | os.PathLike[str],
    target_rate: int,
    recipe: Recipe,
    *,
    allow_silence: bool = False,
    timed: Callable[[str], AbstractContextManager[Any]] = nullcontext,
) -> tuple[torch.Tensor, AudioRecord, dict[str, Any]]:
    """Decode `path` with agomni.io (no resampling there) and apply `recipe` (see `prepare_waveform`).

    Returns ``(waveform [samples] float32 at target_rate, AudioRecord of the decode, steps)``; the record's
    resampling fields say "not resampled" because resampling is one of the recipe's steps. ``timed(stage)``
    times the two steps: "decode", and "resample" (the recipe's resampling and its other steps).
    """
    with timed("decode"):
        audio, record = load_audio(path, sample_rate=None, downmix="keep", allow_silence=allow_silence)
    with timed("resample"):
        waveform, steps = prepare_waveform(audio, record.sample_rate, target_rate, recipe)
    return waveform, record, steps
