"""The audio codec of the reference model: wave <-> log-mel <-> VAE latent, and a vocoder back to wave.

Data flow (MMAudio's ``FeaturesUtils.encode_audio`` / ``decode`` / ``vocode``):
``encode``: wave [B, samples] -> log-mel [B, n_mels, 2 T] -> posterior over latent [B, T, C_latent];
``decode``: latent [B, T, C_latent] -> log-mel [B, n_mels, 2 T];
``vocode``: log-mel [B, n_mels, F] -> wave [B, F * hop].

Latent grid: one latent frame per ``2 * hop`` samples (512 at 16 kHz, 1024 at 44.1 kHz). ``encode``
zero-pads the end of a wave to the next multiple of ``2 * hop`` samples, so T = ceil(samples / (2 hop)),
the same count as MMAudio's ``SequenceConfig.latent_seq_len`` (250 / 345 frames for 8 s); the input
length is kept in :attr:`LatentPosterior.num_samples` so :meth:`AudioCodec.decode_to_wave` can trim
the padding off again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from agomni.errors import UsageError
from agomni.weights import load_strict

from .checkpoint import read_safetensors
from .mel import MEL_16K, MEL_44K, LogMel, MelSettings, mel_settings
from .vae import VAE_16K, VAE_44K, DiagonalGaussian, MelVAE, VAEConfig
from .vocoder import VOCODER_16K, VOCODER_44K, Vocoder, VocoderConfig

WeightsSource = str | Path | Mapping[str, torch.Tensor] | None


@dataclass(frozen=True)
class CodecConfig:
    """Mel front end, VAE and vocoder of one rate, and the registry names of their checkpoints."""

    mel: MelSettings
    vae: VAEConfig
    vocoder: VocoderConfig
    vae_weights_name: str
    vocoder_weights_name: str

    def __post_init__(self) -> None:
        if not self.mel.n_mels == self.vae.mel_channels == self.vocoder.n_mels:
            raise UsageError(
                f"codec parts disagree on mel bins: mel {self.mel.n_mels}, VAE {self.vae.mel_channels}, "
                f"vocoder {self.vocoder.n_mels}"
            )
        if self.vocoder.hop != self.mel.hop:
            raise UsageError(
                f"vocoder upsampling {self.vocoder.upsample_rates} (product {self.vocoder.hop}) "
                f"must equal the {self.mel.name} mel hop {self.mel.hop}"
            )
        if self.vae.time_downsample != self.mel.latent_downsample:
            raise UsageError("VAE time downsampling must equal the mel settings' latent_downsample")


CODEC_16K = CodecConfig(
    mel=MEL_16K, vae=VAE_16K, vocoder=VOCODER_16K,
    vae_weights_name="agomni-vae-16k", vocoder_weights_name="agomni-vocoder-16k",
)  # fmt: skip
CODEC_44K = CodecConfig(
    mel=MEL_44K, vae=VAE_44K, vocoder=VOCODER_44K,
    vae_weights_name="agomni-vae-44k", vocoder_weights_name="agomni-vocoder-44k",
)  # fmt: skip


def codec_config(rate: str | int, *, tiny: bool = False) -> CodecConfig:
    """Full-size config for ``"16k"``/``"44k"`` (or 16000/44100), or a tiny one for tests.

    The tiny config keeps the rate's real mel settings and upsampling factors (so every length is the
    real one) with narrow layers: VAE hidden 8, levels (1, 2), one residual block; vocoder 64 channels.
    """
    mel = mel_settings(rate)
    full = CODEC_16K if mel.name == "16k" else CODEC_44K
    if not tiny:
        return full
    return CodecConfig(
        mel=mel,
        vae=VAEConfig(
            mel_channels=mel.n_mels, latent_channels=full.vae.latent_channels, hidden=8,
            channel_mult=(1, 2), res_blocks=1, groups=4,
        ),
        vocoder=VocoderConfig(
            n_mels=mel.n_mels, upsample_rates=full.vocoder.upsample_rates,
            upsample_kernels=full.vocoder.upsample_kernels, initial_channels=64,
            resblock_kernels=(3,), resblock_dilations=(1,), tanh_output=full.vocoder.tanh_output,
            output_bias=full.vocoder.output_bias,
        ),
        vae_weights_name=full.vae_weights_name + "-tiny",
        vocoder_weights_name=full.vocoder_weights_name + "-tiny",
    )  # fmt: skip


@dataclass(frozen=True)
class LatentPosterior:
    """q(latent | wave): ``mean`` and ``std`` [B, T_latent, C_latent]; ``num_samples`` = input wave length."""

    mean: torch.Tensor
    std: torch.Tensor
    num_samples: int

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw mean + std * N(0, 1), [B, T_latent, C_latent]."""
        return DiagonalGaussian(self.mean, self.std).sample(generator)


class AudioCodec(nn.Module):
    """Frozen-codec interface of the reference model (see module docstring for shapes and the grid).

    Constructed directly, both parts have random weights; :meth:`load` loads checkpoints.
    ``random_weights`` is True when the VAE or the vocoder was not loaded from a checkpoint;
    ``provenance`` says, per part, where its weights came from.
    """

    def __init__(self, cfg: CodecConfig):
        super().__init__()
        self.cfg = cfg
        self.mel = LogMel(cfg.mel)
        self.vae = MelVAE(cfg.vae)
        self.vocoder = Vocoder(cfg.vocoder)
        self.provenance = {"vae": "random (global torch RNG)", "vocoder": "random (global torch RNG)"}
        self._loaded: set[str] = set()

    @property
    def random_weights(self) -> bool:
        """True unless both the VAE and the vocoder were loaded from checkpoints."""
        return self._loaded != {"vae", "vocoder"}

    @classmethod
    def load(
        cls, cfg: CodecConfig, *, vae: WeightsSource, vocoder: WeightsSource | nn.Module, seed: int = 0
    ) -> AudioCodec:
        """Build the codec; each part's weights come from a ``.safetensors`` path, an in-memory state
        dict, or ``None`` for random weights (initialised under ``torch.manual_seed(seed)``, labelled).

        ``vocoder`` may also be a ready module with the vocoder interface (log-mel [B, n_mels, F] ->
        wave [B, F * hop]), e.g. the weight-free ``GriffinLimVocoder``; it is used as is, and its
        ``provenance`` attribute (or class name) is recorded.

        Loading is strict: any missing, unexpected or mis-shaped key raises ``WeightsError``.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            codec = cls(cfg)
        if isinstance(vocoder, nn.Module):
            codec.vocoder = vocoder
            codec.provenance["vocoder"] = str(getattr(vocoder, "provenance", type(vocoder).__name__))
            codec._loaded.add("vocoder")
            vocoder = None
        for part, module, source in (("vae", codec.vae, vae), ("vocoder", codec.vocoder, vocoder)):
            if part in codec._loaded:
                continue
            if source is None:
                codec.provenance[part] = f"random (seed {seed})"
                continue
            if isinstance(source, str | Path):
                state, where = read_safetensors(source), str(source)
            else:
                state, where = source, "in-memory state dict"
            load_strict(module, state, where=f"{where} ({cfg.mel.name} {part})")
            codec.provenance[part] = where
            codec._loaded.add(part)
        return codec.eval()

    @property
    def settings(self) -> MelSettings:
        return self.cfg.mel

    @property
    def sample_rate(self) -> int:
        return self.cfg.mel.sample_rate

    @property
    def latent_channels(self) -> int:
        return self.cfg.vae.latent_channels

    @property
    def latent_frame_rate(self) -> float:
        """Latent frames per second (31.25 at 16 kHz, ~43.07 at 44.1 kHz)."""
        return self.cfg.mel.latent_frame_rate

    def encode(self, wave: torch.Tensor) -> LatentPosterior:
        """Wave [B, samples] at :attr:`sample_rate`, in [-1, 1] -> posterior over [B, T_latent, C_latent].

        The end is zero-padded to a multiple of ``2 * hop`` samples (module docstring); values outside
        [-1, 1] are clamped, as MMAudio's mel converter does. Non-finite samples raise ``UsageError``.
        """
        if wave.ndim != 2 or wave.shape[-1] == 0:
            raise UsageError(f"codec encode expects a wave [batch, samples > 0], got {tuple(wave.shape)}")
        if not torch.isfinite(wave).all():
            raise UsageError("codec encode got NaN or infinite samples")
        n = wave.shape[-1]
        step = self.cfg.mel.samples_per_latent
        padded = nn.functional.pad(wave, (0, -n % step))
        posterior = self.vae.encode(self.mel(padded))
        return LatentPosterior(
            mean=posterior.mean.transpose(1, 2), std=posterior.std.transpose(1, 2), num_samples=n
        )

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent [B, T_latent, C_latent] -> log-mel [B, n_mels, 2 T_latent]."""
        if latent.ndim != 3:
            raise UsageError(
                f"codec decode expects latent [batch, frames, channels], got {tuple(latent.shape)}"
            )
        return self.vae.decode(latent.transpose(1, 2))

    def vocode(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel [B, n_mels, F] -> wave [B, F * hop] in [-1, 1]."""
        return self.vocoder(mel)

    def decode_to_wave(self, latent: torch.Tensor, num_samples: int | None = None) -> torch.Tensor:
        """Latent [B, T_latent, C_latent] -> wave [B, T_latent * 2 * hop], cut to ``num_samples`` if given."""
        return self.trim(self.vocode(self.decode(latent)), num_samples, latent.shape[1])

    @staticmethod
    def trim(wave: torch.Tensor, num_samples: int | None, frames: int) -> torch.Tensor:
        """The first ``num_samples`` samples of the wave that `frames` latent frames decoded to (all: None)."""
        if num_samples is None:
            return wave
        if not 0 < num_samples <= wave.shape[-1]:
            raise UsageError(
                f"num_samples {num_samples} is outside 1..{wave.shape[-1]}, the samples that "
                f"{frames} latent frames decode to"
            )
        return wave[:, :num_samples]
