"""Checks on what a `python:` or `command:` generator hands back, before it is written and scored.

A generator's output is checked, not trusted (`checked_audio`):
- the sample rate is a whole number of Hz equal to the run's ``--sample-rate`` (16000.7 is refused, not
  truncated);
- float samples are used as they are; integer PCM is scaled as audio libraries (soundfile, torchaudio)
  read it: int16 / 32768 and int32 / 2**31; other integer, boolean or complex types are refused;
- a 1-D array is mono; a 2-D array is [channels, samples] or [samples, channels], told apart by its
  shorter axis, which must hold at most `MAX_CHANNELS` channels while the other is longer (a shape such
  as (4, 4) or (100, 200) is refused as ambiguous);
- every sample is finite and there is at least one;
- for an item with a ``duration``, the output is at most `max_duration(duration)` seconds long
  (twice the duration plus 10 s); a longer output is refused.
Each refusal is an `OutputRejected` whose message says what was wrong and what to return instead.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

MAX_CHANNELS = 8
#: Integer sample types and the divisor that maps them to [-1, 1), as soundfile reads PCM files.
INT_SCALES = {np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31}


class OutputRejected(ValueError):
    """A generator output that cannot be used as audio; the message says why."""


def max_duration(duration_s: float) -> float:
    """The longest output (s) accepted for an item of `duration_s` seconds: 2 x duration + 10 s."""
    return 2.0 * duration_s + 10.0


def checked_rate(rate: object, expected: int) -> int:
    """`rate` as an int when it is a whole number of Hz equal to `expected`; else OutputRejected."""
    if isinstance(rate, bool) or not isinstance(rate, Real):
        raise OutputRejected(f"sample rate {rate!r} is not a number of Hz")
    value = float(rate)
    if not math.isfinite(value) or not value.is_integer():
        raise OutputRejected(f"sample rate {rate!r} Hz is not a whole number of Hz")
    if int(value) != expected:
        raise OutputRejected(f"generator returned {int(value)} Hz audio; this run expects {expected} Hz")
    return int(value)


def as_float(samples: np.ndarray) -> np.ndarray:
    """Float32 samples: floats as they are, int16/int32 PCM scaled (module docstring); else refused."""
    kind = samples.dtype.kind
    if kind == "f":
        return samples.astype(np.float32)
    if samples.dtype in INT_SCALES:
        return (samples.astype(np.float64) / INT_SCALES[samples.dtype]).astype(np.float32)
    what = "integer" if kind in "iu" else "non-audio"
    raise OutputRejected(
        f"{what} samples of type {samples.dtype}: return floats in [-1, 1], or int16/int32 PCM "
        "(scaled by 1/32768 and 1/2**31)"
    )


def as_samples_channels(samples: np.ndarray) -> np.ndarray:
    """[samples] or [samples, channels] from a 1-D or 2-D array (module docstring); else refused."""
    if samples.ndim == 1:
        return samples
    if samples.ndim == 2:
        short, long_ = sorted(samples.shape)
        if short <= MAX_CHANNELS and short < long_:
            return samples.T if samples.shape[0] == short else samples
        raise OutputRejected(
            f"cannot tell channels from samples in an array of shape {samples.shape}: return [samples], "
            f"[channels, samples] or [samples, channels] with at most {MAX_CHANNELS} channels"
        )
    raise OutputRejected(
        f"an array of shape {samples.shape}: return [samples], [channels, samples] or [samples, channels]"
    )


def checked_audio(wave: object, rate: object, expected_rate: int, duration_s: float | None) -> np.ndarray:
    """Float32 [samples] or [samples, channels] ready to write at `expected_rate`; OutputRejected naming
    the problem (module docstring)."""
    rate = checked_rate(rate, expected_rate)
    try:
        samples = np.asarray(wave)
    except (TypeError, ValueError) as err:
        raise OutputRejected(f"the waveform is not an array of samples ({err})") from err
    data = as_samples_channels(as_float(samples))
    if data.shape[0] == 0:
        raise OutputRejected(f"an empty waveform (shape {samples.shape})")
    if not np.isfinite(data).all():
        raise OutputRejected("NaN or infinite samples")
    seconds = data.shape[0] / rate
    if duration_s is not None and seconds > max_duration(duration_s):
        raise OutputRejected(
            f"an output of {seconds:.1f} s for an item of {duration_s:g} s (at most "
            f"{max_duration(duration_s):g} s, twice the item's duration plus 10 s, is accepted)"
        )
    return data
