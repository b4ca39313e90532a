"""Named resampling policies for in-memory audio.

Every policy takes float audio shaped ``[..., samples]`` at ``orig_sr`` Hz and returns float32 audio
shaped ``[..., samples_out]`` at ``new_sr`` Hz. The policy name and `resample_parameters` go into every
`AudioRecord`, so a result always says how its audio was resampled.

Policies
--------
``"torchaudio-sinc"`` (default)
    ``torchaudio.transforms.Resample(orig_sr, new_sr)`` with its defaults written out:
    ``resampling_method="sinc_interp_hann", lowpass_filter_width=6, rolloff=0.99, beta=None``.
    This is exactly what av-benchmark (hkchengrex/av-benchmark) calls in
    ``av_bench/data/audio_dataset.py``: ``AudioDataset.read_from_file`` (the FD_PANNs / FD_VGG /
    FD_PaSST / KL / IS / CLAP audio, downmixed by the mean first) and
    ``SynchformerAudioDataset.sample`` (DeSync audio) both build ``torchaudio.transforms.Resample(sr,
    target)`` with no further arguments. The transform builds its sinc kernel in float64 and caches it as
    float32; the waveform is float32 (av-benchmark's ``torchaudio.load`` returns float32), so the
    convolution runs in **float32**. We run it in float32 too, because bit-equality with that recipe
    requires it.
``"torchaudio-sinc-functional"``
    ``torchaudio.functional.resample(x, orig_sr, new_sr, lowpass_filter_width=6, rolloff=0.99,
    resampling_method="sinc_interp_hann", beta=None)`` on float32 input: the same filter, but the kernel
    is built directly in float32. av-benchmark uses this call (with these defaults) in
    ``ImageBindAudioDataset.load_and_transform_audio_data`` (IB-score audio). It differs from
    ``"torchaudio-sinc"`` by float32 rounding of the kernel (about 1e-7), so the two are kept apart.
``"torchaudio-sinc-kaiser-best"``
    ``torchaudio.transforms.Resample(orig_sr, new_sr, lowpass_filter_width=64,
    rolloff=0.9475937167399596, resampling_method="sinc_interp_kaiser", beta=14.769656459379492)``:
    librosa's "kaiser_best" settings, as fadtk's loader calls it (``TORCHAUDIO_RESAMPLING = True``, its
    default); float32 like ``"torchaudio-sinc"``.
``"soxr-hq"`` / ``"soxr-vhq"``
    ``soxr.resample(x, orig_sr, new_sr, quality="HQ" | "VHQ")`` from the ``soxr`` package (libsoxr,
    one-shot, linear phase; HQ is 20-bit precision, VHQ 28-bit). Input and output are **float64**, so
    conversion adds no error beyond libsoxr's stated precision (VHQ exceeds float32's 24-bit mantissa);
    the result is cast to float32 once at the end.
``"soxr-hq-float32"``
    the same HQ call on **float32** samples, as ``librosa.load`` and stable-audio-metrics' OpenL3 loader
    pass them (libsoxr's float32 path; differs from ``"soxr-hq"`` by float32 rounding, about 1e-7).

When ``orig_sr == new_sr`` every policy returns the input as float32 unchanged.
"""

from __future__ import annotations

import functools
import numbers

import numpy as np
import torch
import torchaudio

from agomni.errors import UsageError

TORCHAUDIO_SINC = "torchaudio-sinc"
TORCHAUDIO_SINC_FUNCTIONAL = "torchaudio-sinc-functional"
TORCHAUDIO_SINC_KAISER_BEST = "torchaudio-sinc-kaiser-best"
SOXR_QUALITIES = {"soxr-hq": "HQ", "soxr-vhq": "VHQ", "soxr-hq-float32": "HQ"}

#: torchaudio's sinc resampler as av-benchmark uses it (the library defaults, written out).
AV_BENCHMARK_SINC_PARAMS: dict[str, str | int | float | None] = {
    "resampling_method": "sinc_interp_hann",
    "lowpass_filter_width": 6,
    "rolloff": 0.99,
    "beta": None,
}

#: librosa's "kaiser_best" settings of torchaudio's sinc resampler (fadtk's loader).
KAISER_BEST_PARAMS: dict[str, str | int | float | None] = {
    "resampling_method": "sinc_interp_kaiser",
    "lowpass_filter_width": 64,
    "rolloff": 0.9475937167399596,
    "beta": 14.769656459379492,
}
#: The parameters of each torchaudio ``Resample`` transform policy.
TRANSFORM_PARAMS = {
    TORCHAUDIO_SINC: AV_BENCHMARK_SINC_PARAMS,
    TORCHAUDIO_SINC_KAISER_BEST: KAISER_BEST_PARAMS,
}

RESAMPLE_POLICIES: tuple[str, ...] = (
    TORCHAUDIO_SINC,
    TORCHAUDIO_SINC_FUNCTIONAL,
    TORCHAUDIO_SINC_KAISER_BEST,
    *SOXR_QUALITIES,
)


def _check(policy: str, orig_sr: int, new_sr: int) -> tuple[int, int]:
    """Validate the policy name and the rates; return the rates as Python ints."""
    if policy not in RESAMPLE_POLICIES:
        raise UsageError(
            f"unknown resampling policy {policy!r}; choose one of {', '.join(RESAMPLE_POLICIES)}"
        )
    for name, rate in (("orig_sr", orig_sr), ("new_sr", new_sr)):
        if isinstance(rate, bool) or not isinstance(rate, numbers.Integral) or rate <= 0:
            raise UsageError(f"{name} must be a positive integer number of Hz, got {rate!r}")
    return int(orig_sr), int(new_sr)


def resample_parameters(policy: str, orig_sr: int, new_sr: int) -> dict[str, str | int | float | None]:
    """The full parameter set of `policy` for this rate pair, as recorded in `AudioRecord`.

    Includes the implementation (call and package version), the compute dtype, and the filter settings.
    """
    orig_sr, new_sr = _check(policy, orig_sr, new_sr)
    if policy in SOXR_QUALITIES:
        import soxr

        return {
            "implementation": "soxr.resample",
            "package": f"soxr {soxr.__version__}",
            "quality": SOXR_QUALITIES[policy],
            "compute_dtype": "float32" if policy.endswith("-float32") else "float64",
            "orig_sr": orig_sr,
            "new_sr": new_sr,
        }
    transform = policy in TRANSFORM_PARAMS
    call = "torchaudio.transforms.Resample" if transform else "torchaudio.functional.resample"
    kernel = "float64 cast to float32" if transform else "float32"
    reference = (
        "microsoft/fadtk fadtk/fad.py (TORCHAUDIO_RESAMPLING)"
        if policy == TORCHAUDIO_SINC_KAISER_BEST
        else "hkchengrex/av-benchmark av_bench/data/audio_dataset.py"
    )
    return {
        "implementation": call,
        "package": f"torchaudio {torchaudio.__version__}",
        **TRANSFORM_PARAMS.get(policy, AV_BENCHMARK_SINC_PARAMS),
        "kernel_dtype": kernel,
        "compute_dtype": "float32",
        "orig_sr": orig_sr,
        "new_sr": new_sr,
        "reference": reference,
    }


@functools.lru_cache(maxsize=16)
def _sinc_transform(orig_sr: int, new_sr: int, device: str, policy: str) -> torchaudio.transforms.Resample:
    return torchaudio.transforms.Resample(orig_sr, new_sr, **TRANSFORM_PARAMS[policy]).to(device)


def resample(
    waveform: torch.Tensor, orig_sr: int, new_sr: int, policy: str = TORCHAUDIO_SINC
) -> torch.Tensor:
    """Resample float audio ``[..., samples]`` from `orig_sr` Hz to `new_sr` Hz with a named policy.

    Returns a float32 tensor ``[..., samples_out]`` on the input's device (soxr runs on the CPU). See the
    module docstring for each policy's exact call, parameters and compute dtype.
    Raises `UsageError` for an unknown policy, non-integer/non-positive rates or a non-float waveform.
    """
    orig_sr, new_sr = _check(policy, orig_sr, new_sr)
    if not isinstance(waveform, torch.Tensor) or not waveform.is_floating_point():
        raise UsageError(f"resample needs a floating-point torch.Tensor, got {type(waveform).__name__}")
    if orig_sr == new_sr:
        return waveform.to(torch.float32)
    if policy in TRANSFORM_PARAMS:
        transform = _sinc_transform(orig_sr, new_sr, str(waveform.device), policy)
        return transform(waveform.to(torch.float32))
    if policy == TORCHAUDIO_SINC_FUNCTIONAL:
        return torchaudio.functional.resample(
            waveform.to(torch.float32), orig_sr, new_sr, **AV_BENCHMARK_SINC_PARAMS
        )
    import soxr

    lead_shape = waveform.shape[:-1]
    compute = torch.float32 if policy.endswith("-float32") else torch.float64
    rows = waveform.detach().to("cpu", compute).reshape(-1, waveform.shape[-1]).numpy()
    # soxr wants [samples, channels]; every leading index is treated as one channel.
    out = soxr.resample(np.ascontiguousarray(rows.T), orig_sr, new_sr, quality=SOXR_QUALITIES[policy])
    out = np.asarray(out, dtype=rows.dtype).reshape(-1, rows.shape[0]).T
    return torch.from_numpy(out.astype(np.float32)).reshape(*lead_shape, -1).to(waveform.device)
