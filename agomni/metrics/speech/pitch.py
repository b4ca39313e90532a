"""F0 (pitch) of speech and singing with torchcrepe (CREPE; real weights ship in the package).

Tracking (``track_f0``): mono 16 kHz audio, CREPE ``full`` (default) or ``tiny`` model, 10 ms hop,
centred frames, 50-1100 Hz, ``weighted_argmax`` decoding (local average of the pitch bins, sub-bin
resolution; Viterbi decoding snaps to 20-cent bins). A frame is voiced when CREPE's periodicity
(confidence) is at least ``voicing_threshold`` (0.5).

Metrics (recipe "agomni-crepe", labelled; no published toolkit fixes these choices):
- with a reference (singing voice synthesis against the sung reference): ``F0_RMSE`` in cents over
  frames voiced in both (frames aligned by index, the longer track truncated), and ``VUV_ERROR``, the
  fraction of frames whose voiced/unvoiced decisions differ; both lower is better;
- without one: ``F0_STABILITY``, the standard deviation in cents of the frame-to-frame F0 change over
  consecutive voiced frames (lower is steadier), with the pitch range (5th to 95th percentile of voiced
  F0, in semitones) and median F0 in each item's details.

Per item: audio shorter than one CREPE window (64 ms) or with no voiced frame is an error.

Decoding is torchcrepe's ``weighted_argmax`` (sigmoid of the network's output over the nine bins around
the arg-max, averaged in cents) with the bins at their exact centres. torchcrepe's own function adds a
random triangular dither of up to one bin (20 cents) to the 360 bin centres, drawn once per process from
NumPy's global generator, so the same audio gave other F0 values in each process (up to 2.8 Hz at
200 Hz); `local_average` is that decoding without the dither, and the numbers are reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version

import numpy as np
import torch
from tqdm import tqdm

from agomni.errors import MetricInputError, UsageError
from agomni.metrics.speech.items import ItemScore, SetScore, clip_ids, mono_float

SAMPLE_RATE = 16000
HOP = 160
WINDOW = 1024
#: The 360 CREPE pitch bins in cents (20 cents apart; torchcrepe's ``bins_to_cents`` before its dither)
BIN_CENTS = 20.0 * torch.arange(360, dtype=torch.float32) + 1997.3794084376191
RECIPE = (
    "agomni-crepe (torchcrepe, 10 ms hop, weighted-argmax decoding without dither, periodicity >= 0.5 voiced)"
)


@dataclass(frozen=True)
class F0Track:
    """Frame times (s), F0 in Hz (NaN where unvoiced), periodicity in [0, 1] and the voiced mask."""

    times: np.ndarray
    f0_hz: np.ndarray
    periodicity: np.ndarray
    voiced: np.ndarray
    model: str


def local_average(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """torchcrepe decoder ([B, 360, T] -> (arg-max bins [B, T], F0 in Hz [B, T])): the weighted mean of the
    bin centres `BIN_CENTS` over the arg-max bin and four on each side, weighted by the sigmoid of
    `logits`, as ``torchcrepe.decode.weighted_argmax`` without its random dither."""
    bins = logits.argmax(dim=1)
    index = torch.arange(logits.shape[1], device=logits.device)[None, :, None]
    near = (index >= bins[:, None, :] - 4) & (index < bins[:, None, :] + 5)
    weights = torch.sigmoid(logits) * near
    cents = (BIN_CENTS.to(logits.device)[None, :, None] * weights).sum(dim=1) / weights.sum(dim=1)
    return bins, 10.0 * 2.0 ** (cents / 1200.0)


def track_f0(
    audio: np.ndarray,
    *,
    model: str = "full",
    voicing_threshold: float = 0.5,
    fmin: float = 50.0,
    fmax: float = 1100.0,
    device: str = "cpu",
) -> F0Track:
    """CREPE F0 of mono 16 kHz float audio; see the module docstring."""
    try:
        import torchcrepe
    except ImportError as err:
        raise UsageError("F0 tracking needs torchcrepe (pip install 'agomni[speech]')") from err
    if model not in ("full", "tiny"):
        raise UsageError(f"CREPE model must be 'full' or 'tiny', got {model!r}")
    audio = mono_float(audio, "audio")
    if len(audio) < WINDOW:
        raise MetricInputError(f"{len(audio)} samples is shorter than one CREPE window ({WINDOW} at 16 kHz)")
    with torch.no_grad():
        f0, periodicity = torchcrepe.predict(
            torch.from_numpy(audio)[None],
            SAMPLE_RATE,
            HOP,
            fmin,
            fmax,
            model,
            decoder=local_average,
            return_periodicity=True,
            batch_size=512,
            device=device,
        )
    f0, periodicity = f0[0].cpu().numpy().astype(np.float64), periodicity[0].cpu().numpy().astype(np.float64)
    voiced = periodicity >= voicing_threshold
    return F0Track(
        times=np.arange(len(f0)) * HOP / SAMPLE_RATE,
        f0_hz=np.where(voiced, f0, np.nan),
        periodicity=periodicity,
        voiced=voiced,
        model=model,
    )


def cents(f_hz: np.ndarray, reference_hz: np.ndarray) -> np.ndarray:
    """1200 log2(f / reference)."""
    return 1200.0 * np.log2(np.asarray(f_hz, dtype=np.float64) / np.asarray(reference_hz, dtype=np.float64))


def compare_tracks(track: F0Track, reference: F0Track) -> tuple[float, float]:
    """(F0 RMSE in cents over frames voiced in both, voicing decision error fraction)."""
    n = min(len(track.f0_hz), len(reference.f0_hz))
    both = track.voiced[:n] & reference.voiced[:n]
    if not both.any():
        raise MetricInputError("no frame is voiced in both the audio and its reference")
    deviation = cents(track.f0_hz[:n][both], reference.f0_hz[:n][both])
    return float(np.sqrt(np.mean(deviation**2))), float(np.mean(track.voiced[:n] != reference.voiced[:n]))


def describe_track(track: F0Track) -> dict[str, float]:
    """Stability (cents), range (semitones) and median F0 (Hz) of the voiced frames."""
    voiced = track.f0_hz[track.voiced]
    if voiced.size == 0:
        raise MetricInputError("no voiced frame (CREPE periodicity below the threshold everywhere)")
    steps = cents(track.f0_hz[1:], track.f0_hz[:-1])[track.voiced[1:] & track.voiced[:-1]]
    low, high = np.percentile(voiced, [5, 95])
    return {
        "stability_cents": float(np.std(steps)) if steps.size else 0.0,
        "range_semitones": float(12 * np.log2(high / low)),
        "median_f0_hz": float(np.median(voiced)),
        "voiced_fraction": float(np.mean(track.voiced)),
    }


def _set(name: str, unit: str, items: list[ItemScore], model: str) -> SetScore:
    backend = f"torchcrepe {version('torchcrepe')} ({model} model)"
    return SetScore(name, unit, False, RECIPE, backend, tuple(items))


def pitch_metrics(
    clips: Sequence[np.ndarray],
    references: Sequence[np.ndarray] | None = None,
    *,
    ids: Sequence[str] | None = None,
    model: str = "full",
    progress: bool = False,
) -> dict[str, SetScore]:
    """F0_RMSE and VUV_ERROR against ``references`` when given, else F0_STABILITY (see module doc)."""
    ids = clip_ids(ids, len(clips))
    if references is not None and len(references) != len(clips):
        raise MetricInputError(f"{len(clips)} clips but {len(references)} references: unpaired")
    rmse, vuv, stability = [], [], []
    for k, item_id in enumerate(tqdm(ids, desc=f"CREPE ({model})", unit="clip", disable=not progress)):
        try:
            track = track_f0(clips[k], model=model)
            if references is None:
                info = describe_track(track)
                stability.append(ItemScore(item_id, info.pop("stability_cents"), extra=info))
                continue
            error_cents, voicing_error = compare_tracks(track, track_f0(references[k], model=model))
        except MetricInputError as err:
            failed = ItemScore(item_id, None, error=str(err))
            for bucket in (stability,) if references is None else (rmse, vuv):
                bucket.append(failed)
            continue
        rmse.append(ItemScore(item_id, error_cents))
        vuv.append(ItemScore(item_id, voicing_error))
    if references is None:
        return {"F0_STABILITY": _set("F0_STABILITY", "cents", stability, model)}
    return {
        "F0_RMSE": _set("F0_RMSE", "cents", rmse, model),
        "VUV_ERROR": _set("VUV_ERROR", "fraction", vuv, model),
    }
