"""Weight-free vocoder: log-mel -> linear magnitude (filterbank pseudo-inverse) -> Griffin-Lim phase.

Recipe: the log is undone (``10 ** x`` or ``exp(x)``, as the settings' ``log_base``), the mel
magnitudes are mapped back to the ``n_fft // 2 + 1`` linear bins with the Moore-Penrose
pseudo-inverse of the Slaney filterbank of ``mel.py`` (negative values clamped to 0), and
``torchaudio.functional.griffinlim`` (power 1 magnitudes, periodic Hann window of ``win`` samples,
``n_iter`` iterations, momentum 0.99, ZERO initial phase: ``rand_init=False``) recovers a wave.
Deterministic: the same mel gives the same wave bit for bit on the same device.

Alignment: the codec's mel frame f is an uncentred STFT of the wave reflect-padded by
``(n_fft - hop) / 2`` samples, so its window is centred on sample ``f * hop + hop / 2``; Griffin-Lim
(``center=True``) centres frame f on sample ``f * hop``. The output is therefore delayed by
``hop / 2`` samples (zeros in front) so that time stamps agree with the codec's grid; a log-mel of
F frames gives exactly ``F * hop`` samples, as the neural vocoder does.

This plugs into ``AudioCodec.load(..., vocoder=GriffinLimVocoder(settings))`` (same interface as
``Vocoder``: ``forward(mel [B, n_mels, F]) -> wave [B, F * hop]`` in [-1, 1]).
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from agomni.errors import UsageError

from .mel import MelSettings, slaney_mel_filterbank

DEFAULT_ITERATIONS = 32
MOMENTUM = 0.99  # fast Griffin-Lim (Perraudin et al. 2013), torchaudio's default


class GriffinLimVocoder(nn.Module):
    """Log-mel [B, n_mels, F] -> wave [B, F * hop] in [-1, 1], no trained weights (module docstring)."""

    def __init__(self, settings: MelSettings, n_iter: int = DEFAULT_ITERATIONS):
        super().__init__()
        if n_iter < 1:
            raise UsageError(f"Griffin-Lim needs at least 1 iteration, got {n_iter}")
        self.settings, self.n_iter = settings, n_iter
        basis = slaney_mel_filterbank(
            settings.sample_rate, settings.n_fft, settings.n_mels, settings.fmin, settings.fmax
        )
        self.register_buffer("inverse_basis", torch.linalg.pinv(basis).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(settings.win, periodic=True), persistent=False)

    @property
    def provenance(self) -> str:
        """How this vocoder makes waves (recorded in the codec's provenance)."""
        return f"Griffin-Lim ({self.n_iter} iterations, zero initial phase, mel pseudo-inverse; no weights)"

    def linear_magnitude(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel [B, n_mels, F] -> non-negative linear STFT magnitude [B, n_fft // 2 + 1, F]."""
        mel = torch.pow(10.0, log_mel) if self.settings.log_base == "10" else torch.exp(log_mel)
        return torch.matmul(self.inverse_basis, mel.float()).clamp(min=0.0)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        s = self.settings
        if mel.ndim != 3 or mel.shape[1] != s.n_mels:
            raise UsageError(
                f"Griffin-Lim vocoder expects mel [batch, {s.n_mels}, frames], got {tuple(mel.shape)}"
            )
        if not torch.isfinite(mel).all():
            raise UsageError("Griffin-Lim vocoder got NaN or infinite log-mel values")
        frames = mel.shape[-1]
        delay = s.hop // 2
        wave = torchaudio.functional.griffinlim(
            self.linear_magnitude(mel),
            self.window,
            s.n_fft,
            s.hop,
            s.win,
            power=1.0,
            n_iter=self.n_iter,
            momentum=MOMENTUM,
            length=frames * s.hop - delay,
            rand_init=False,
        )
        return nn.functional.pad(wave, (delay, 0)).clamp(-1.0, 1.0)
