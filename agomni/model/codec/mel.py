"""Log-mel settings per sample rate and the log-mel transform the codec encodes.

Recipe followed: MMAudio (hkchengrex/MMAudio), ``mmaudio/ext/mel_converter.py``, function
``get_mel_converter`` and class ``MelConverter`` (itself from Make-An-Audio 2):

- ``'16k'``: ``sampling_rate=16_000, n_fft=1024, num_mels=80, hop_size=256, win_size=1024, fmin=0,
  fmax=8_000, norm_fn=torch.log10``.
- ``'44k'``: ``sampling_rate=44_100, n_fft=2048, num_mels=128, hop_size=512, win_size=2048, fmin=0,
  fmax=44100 / 2, norm_fn=torch.log``.
- ``MelConverter.forward``: clamp the wave to [-1, 1]; reflect-pad ``(n_fft - hop) // 2`` samples on
  both sides; ``torch.stft`` with ``center=False``, a periodic Hann window of ``win_size``,
  ``normalized=False``, one-sided; magnitude ``sqrt(re^2 + im^2 + 1e-9)``; multiply by the mel
  basis ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)`` (librosa defaults: Slaney mel
  scale, Slaney area normalisation); ``norm_fn(clamp(mel, min=1e-5))`` (``clip_val=1e-5`` in
  ``dynamic_range_compression_torch``).
- The latent is the mel downsampled 2x in time (``mmaudio/model/sequence_config.py``,
  ``latent_downsample_rate = 2``), so the latent frame rate is ``sr / hop / 2``: 31.25 fps at
  16 kHz and 43.07 fps at 44.1 kHz. ``SequenceConfig.latent_seq_len = ceil(duration * sr / hop / 2)``
  gives 250 (16 kHz) and 345 (44.1 kHz) latent frames for 8 s; MMAudio then reads exactly
  ``latent_seq_len * hop * 2`` samples (128000 and 353280), which is what
  :meth:`MelSettings.num_samples` returns.

The mel basis here is computed in this file (Slaney formulas, see :func:`slaney_mel_filterbank`);
the tests compare it with ``torchaudio.functional.melscale_fbanks(norm="slaney", mel_scale="slaney")``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from agomni.errors import UsageError

RateName = Literal["16k", "44k"]


@dataclass(frozen=True)
class MelSettings:
    """One sample rate's log-mel front end and latent grid (all lengths in samples or frames).

    ``log_base`` is ``"10"`` (log10) or ``"e"`` (natural log), as MMAudio's ``norm_fn``.
    """

    name: RateName
    sample_rate: int
    n_fft: int
    hop: int
    win: int
    n_mels: int
    fmin: float
    fmax: float
    log_base: Literal["10", "e"]
    log_floor: float = 1e-5
    magnitude_eps: float = 1e-9
    latent_downsample: int = 2

    @property
    def reflect_pad(self) -> int:
        """Samples of reflect padding on each side before the (uncentred) STFT."""
        return (self.n_fft - self.hop) // 2

    @property
    def mel_frame_rate(self) -> float:
        """Mel frames per second (sr / hop)."""
        return self.sample_rate / self.hop

    @property
    def latent_frame_rate(self) -> float:
        """Latent frames per second (sr / hop / latent_downsample): 31.25 at 16 kHz, ~43.07 at 44.1 kHz."""
        return self.mel_frame_rate / self.latent_downsample

    @property
    def samples_per_latent(self) -> int:
        """Samples covered by one latent frame (hop * latent_downsample)."""
        return self.hop * self.latent_downsample

    def latent_length(self, duration_s: float) -> int:
        """Latent frames for a duration in seconds: ceil(duration * sr / hop / 2), as MMAudio."""
        if not duration_s > 0:
            raise UsageError(f"duration must be > 0 seconds, got {duration_s}")
        return math.ceil(duration_s * self.sample_rate / self.samples_per_latent)

    def num_samples(self, duration_s: float) -> int:
        """Samples the codec reads for a duration: latent_length * hop * 2 (128000 / 353280 for 8 s)."""
        return self.latent_length(duration_s) * self.samples_per_latent

    def mel_frames(self, num_samples: int) -> int:
        """Mel frames the transform yields for a wave of ``num_samples`` samples (floor(n / hop))."""
        return (num_samples + 2 * self.reflect_pad - self.n_fft) // self.hop + 1


MEL_16K = MelSettings(
    name="16k", sample_rate=16_000, n_fft=1024, hop=256, win=1024, n_mels=80, fmin=0.0, fmax=8_000.0,
    log_base="10",
)  # fmt: skip
MEL_44K = MelSettings(
    name="44k", sample_rate=44_100, n_fft=2048, hop=512, win=2048, n_mels=128, fmin=0.0, fmax=22_050.0,
    log_base="e",
)  # fmt: skip
MEL_SETTINGS: dict[str, MelSettings] = {s.name: s for s in (MEL_16K, MEL_44K)}


def mel_settings(rate: str | int) -> MelSettings:
    """The settings for ``"16k"``/``"44k"`` or a sample rate in Hz (16000 / 44100)."""
    for s in MEL_SETTINGS.values():
        if rate in (s.name, s.sample_rate):
            return s
    known = ", ".join(f"{s.name!r} ({s.sample_rate} Hz)" for s in MEL_SETTINGS.values())
    raise UsageError(f"unknown codec rate {rate!r}; supported: {known}")


def _hz_to_mel_slaney(hz: np.ndarray) -> np.ndarray:
    """Slaney (Auditory Toolbox) mel scale: linear below 1 kHz (3 mel per 200 Hz), log above."""
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / f_sp
    log = min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep
    return np.where(hz >= min_log_hz, log, linear)


def _mel_to_hz_slaney(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_hz_to_mel_slaney`."""
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * f_sp
    log = min_log_hz * np.exp(logstep * (mel - min_log_mel))
    return np.where(mel >= min_log_mel, log, linear)


def slaney_mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> torch.Tensor:
    """Triangular mel filters [n_mels, n_fft // 2 + 1] (float64) on the Slaney scale, Slaney area norm.

    Same definition as librosa.filters.mel(htk=False, norm="slaney"): band edges equally spaced in
    Slaney mel between fmin and fmax, each triangle scaled by 2 / (upper edge - lower edge) in Hz.
    """
    fft_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges_hz = _mel_to_hz_slaney(np.linspace(_hz_to_mel_slaney(fmin), _hz_to_mel_slaney(fmax), n_mels + 2))
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (fft_hz[None, :] - lower) / (centre - lower)
    falling = (upper - fft_hz[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= 2.0 / (upper - lower)
    return torch.from_numpy(weights)


class LogMel(nn.Module):
    """Wave [B, samples] in [-1, 1] at ``settings.sample_rate`` -> log-mel [B, n_mels, floor(samples / hop)].

    MMAudio's ``MelConverter`` recipe (module docstring). The mel basis and window are
    non-persistent buffers: rebuilt from the settings, never read from a checkpoint; they are computed
    in float64 and stored in ``dtype`` (the dtype the transform runs in).
    """

    def __init__(self, settings: MelSettings, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.settings = settings
        basis = slaney_mel_filterbank(
            settings.sample_rate, settings.n_fft, settings.n_mels, settings.fmin, settings.fmax
        )
        window = torch.hann_window(settings.win, periodic=True, dtype=torch.float64)
        self.register_buffer("mel_basis", basis.to(dtype), persistent=False)
        self.register_buffer("window", window.to(dtype), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        s = self.settings
        if wave.ndim != 2:
            raise UsageError(f"log-mel expects a wave of shape [batch, samples], got {tuple(wave.shape)}")
        if wave.shape[-1] <= s.reflect_pad:
            raise UsageError(
                f"wave of {wave.shape[-1]} samples is too short for the {s.name} log-mel: "
                f"needs more than {s.reflect_pad} samples"
            )
        x = wave.clamp(-1.0, 1.0).to(self.window.dtype)
        x = nn.functional.pad(x.unsqueeze(1), (s.reflect_pad, s.reflect_pad), mode="reflect").squeeze(1)
        spec = torch.stft(
            x, s.n_fft, hop_length=s.hop, win_length=s.win, window=self.window, center=False,
            normalized=False, onesided=True, return_complex=True,
        )  # fmt: skip
        magnitude = torch.sqrt(spec.real.square() + spec.imag.square() + s.magnitude_eps)
        mel = torch.matmul(self.mel_basis, magnitude).clamp(min=s.log_floor)
        return torch.log10(mel) if s.log_base == "10" else torch.log(mel)
