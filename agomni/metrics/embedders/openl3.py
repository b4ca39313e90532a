"""OpenL3 audio embeddings (mel256, 512-d, one 1 s window every 0.5 s) as stable-audio-metrics computes
its FD_openl3, stereo included.

Reference: Stability-AI/stable-audio-metrics ``src/openl3_fd.py`` (``extract_embeddings``, the batched path
its examples and stored reference statistics use) on top of ``openl3`` 0.4.2 with its default "kapre"
frontend (kapre 0.3.7). Per file: ``librosa.load(sr=None, mono=False)``; ``pyloudnorm.normalize.peak(audio,
-1.0)`` over all channels; ``soxr.resample`` (quality HQ) to the evaluation rate (44100 Hz in every
example); each of the first two channels embedded on its own (a mono file is used as both); per channel
``openl3.get_audio_embedding(hop_size=0.5, center=True)``; the left and right 512-d frame embeddings
concatenated into 1024-d rows, and every frame of every file is one row of the Frechet distance.
Loading, peak normalisation and soxr are the profile's input recipe (``stable-audio-metrics-openl3`` in
`agomni.io.prepare`); this module does what ``openl3.get_audio_embedding`` does with each channel:

1. resample to 48 kHz with ``resampy.resample(filter="kaiser_best")`` (float32 in, float32 out);
2. frame: 24000 zeros before the signal (``center=True``), zeros after it up to a whole number of hops
   (at least one 48000-sample window), windows of 48000 samples every ``int(hop_size * 48000)``;
3. mel256 frontend of openl3 0.4.2 (kapre 0.3.7 ``get_melspectrogram_layer(n_fft=2048, hop_length=242,
   n_mels=256, sample_rate=48000, pad_end=True)`` plus openl3's decibel layer): STFT with a periodic
   Hann window, zero padding at the end only (199 frames per window), magnitude ``|X|``, librosa's Slaney
   mel filterbank (0 - 24000 Hz, Slaney norm), ``10 log10(max(m, 1e-10))`` minus its maximum over the
   window, floored at -80 (computed in float64: openl3 runs it in float32, where bands holding less than
   ~1e-7 of the peak amplitude, e.g. above 22.05 kHz for 44.1 kHz input, are FFT rounding noise);
4. the L3 audio network: BatchNorm, four blocks of two 3x3 conv + BatchNorm + ReLU (64, 128, 256, 512
   channels) with 2x2 max pooling after the first three, a last 3x3 conv (``audio_embedding_layer``) and a
   (32, 24) max pooling to 512 values.

Weights: torchopenl3's conversion of openl3's Keras weights (``torchopenl3_mel256_{env,music}_512``),
whose parameter names this network uses. Their ``speclayer.*`` buffers belong to torchopenl3's kapre 0.1.4
frontend (HTK mel, "same" padding), which openl3 0.4.2 no longer uses: they are dropped on load.
Equality with torchopenl3 (same seeded random weights; its framing and resampling; its network with the
openl3 0.4.2 frontend computed independently in numpy) is tests/metrics/test_openl3.py.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agomni.errors import MetricInputError, NotAvailableYet, UsageError
from agomni.metrics.embedders import InputNeeds, common
from agomni.metrics.embedders.logmel import librosa_mel_filterbank
from agomni.weights import load_strict

VERSION = "1"
NETWORK_RATE = 48000
WINDOW = NETWORK_RATE  # one second
N_FFT, STFT_HOP, N_MELS = 2048, 242, 256
AMIN, DYNAMIC_RANGE = 1e-10, 80.0
EMBEDDING_DIM = 512
CONTENT_TYPES = ("env", "music")
#: stable-audio-metrics' settings in every example: evaluation rate 44.1 kHz, hop 0.5 s.
DEFAULT_INPUT_RATE, DEFAULT_HOP_SECONDS = 44100, 0.5
#: Windows per network call: one 64-channel activation of 16 windows is 0.2 GB (float32, 256 x 199 each).
WINDOW_BATCH = 16
#: Checkpoint buffers of torchopenl3's kapre 0.1.4 frontend, unused by openl3 0.4.2's frontend.
TORCHOPENL3_FRONTEND_PREFIX = "speclayer."


def registry_name(content_type: str) -> str:
    """The weights registry entry of a content type."""
    return f"openl3-mel256-{content_type}-512"


# --- waveform -> 1 s windows at 48 kHz (openl3 core._preprocess_audio_batch) ------------------------------


def resample_to_network_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """1-D float32 audio at ``sample_rate`` -> 48 kHz with resampy's kaiser_best filter (as openl3)."""
    if sample_rate == NETWORK_RATE:
        return audio
    try:
        import resampy
    except ImportError as err:
        raise NotAvailableYet(
            "OpenL3 resamples to 48 kHz with resampy, which is not installed: pip install 'agomni[openl3]'"
        ) from err
    return resampy.resample(audio, sr_orig=sample_rate, sr_new=NETWORK_RATE, filter="kaiser_best")


def frame_windows(audio: np.ndarray, hop_seconds: float) -> np.ndarray:
    """1-D audio at 48 kHz -> windows [n, 48000]: centred (24000 leading zeros), zero-padded at the end to a
    whole number of hops, one window every ``int(hop_seconds * 48000)`` samples."""
    hop = int(hop_seconds * NETWORK_RATE)
    x = np.concatenate([np.zeros(WINDOW // 2, dtype=audio.dtype), audio])
    if x.size < WINDOW:
        pad = WINDOW - x.size
    else:
        pad = int(np.ceil((x.size - WINDOW) / float(hop))) * hop - (x.size - WINDOW)
    x = np.pad(x, (0, max(pad, 0)))
    n = 1 + (x.size - WINDOW) // hop
    return np.lib.stride_tricks.sliding_window_view(x, WINDOW)[::hop][:n].copy()


# --- network -------------------------------------------------------------------------------------------


class Mel256Frontend(nn.Module):
    """Windows [n, 48000] -> decibel mel spectrogram [n, 1, 256, 199] (openl3 0.4.2 kapre frontend)."""

    def __init__(self) -> None:
        super().__init__()
        melw = librosa_mel_filterbank(NETWORK_RATE, N_FFT, N_MELS, 0.0, NETWORK_RATE / 2)
        self.register_buffer("mel_basis", torch.from_numpy(melw).double(), persistent=False)  # [bins, mels]
        window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)
        self.register_buffer("window", window, persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        # float64: the 80 dB range of 10 log10(|X|) spans amplitude ratios down to 1e-8, below float32's
        # resolution, so in float32 the bands a 44.1 kHz signal leaves empty (above 22.05 kHz) are FFT
        # rounding noise that differs between FFT libraries; float64 gives the exact values.
        n_stft = -(-frames.shape[-1] // STFT_HOP)  # tf.signal.stft(pad_end=True): ceil(len / hop) frames
        x = F.pad(frames.double(), (0, (n_stft - 1) * STFT_HOP + N_FFT - frames.shape[-1]))
        spec = torch.stft(x, N_FFT, STFT_HOP, window=self.window, center=False, return_complex=True).abs()
        mel = spec.transpose(1, 2) @ self.mel_basis  # [n, time, mels]
        db = 10.0 * torch.log10(torch.clamp(mel, min=AMIN))
        db = db - db.amax(dim=(1, 2), keepdim=True)
        return torch.clamp(db, min=-DYNAMIC_RANGE).transpose(1, 2)[:, None].float()


class OpenL3Network(nn.Module):
    """openl3's mel256 audio network with torchopenl3's parameter names; windows [n, 48000] -> [n, 512]."""

    WIDTHS = (1, 64, 64, 128, 128, 256, 256, 512)

    def __init__(self) -> None:
        super().__init__()
        self.frontend = Mel256Frontend()
        self.batch_normalization_1 = nn.BatchNorm2d(1, eps=1e-3)
        for i in range(7):
            self.add_module(f"conv2d_{i + 1}", nn.Conv2d(self.WIDTHS[i], self.WIDTHS[i + 1], 3, padding=1))
            self.add_module(f"batch_normalization_{i + 2}", nn.BatchNorm2d(self.WIDTHS[i + 1], eps=1e-3))
        self.audio_embedding_layer = nn.Conv2d(512, EMBEDDING_DIM, 3, padding=1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.batch_normalization_1(self.frontend(frames))
        for i in range(7):
            conv, norm = getattr(self, f"conv2d_{i + 1}"), getattr(self, f"batch_normalization_{i + 2}")
            x = F.relu(norm(conv(x)))
            if i in (1, 3, 5):
                x = F.max_pool2d(x, 2)
        x = self.audio_embedding_layer(x)
        return F.max_pool2d(x, kernel_size=(32, 24)).flatten(1)


class OpenL3Embedder(common.CheckpointEmbedder):
    """Frame embeddings [B, frames, 1024] (left then right channel, 512 each) of stereo input
    [B, 2, samples] (mono [B, samples] counts as both channels) at ``sample_rate`` (44.1 kHz).

    Build with `from_registry` (torchopenl3's conversion of the openl3 weights of ``content_type``),
    `from_checkpoint` or `random` (seeded random weights; ``random_weights: true`` in the metadata).
    """

    version = VERSION
    output = "frames"
    min_samples = 1

    def __init__(
        self,
        content_type: str,
        state_dict: Mapping[str, torch.Tensor] | None,
        *,
        weights: dict[str, Any],
        input_rate: int = DEFAULT_INPUT_RATE,
        hop_seconds: float = DEFAULT_HOP_SECONDS,
        device: str | torch.device = "cpu",
        where: str = "state dict",
    ):
        if content_type not in CONTENT_TYPES:
            raise UsageError(f"unknown OpenL3 content type {content_type!r}; choose one of {CONTENT_TYPES}")
        if not (isinstance(input_rate, int) and input_rate > 0 and hop_seconds > 0):
            raise UsageError(
                f"OpenL3 needs a positive input rate and hop, got {input_rate!r}, {hop_seconds!r}"
            )
        self.content_type = content_type
        self.name = f"openl3-{content_type}"
        self.sample_rate = input_rate
        self.hop_seconds = float(hop_seconds)
        self.set_weights_record(weights, device)
        self.network = OpenL3Network()
        if state_dict is not None:
            body = {k: v for k, v in state_dict.items() if not k.startswith(TORCHOPENL3_FRONTEND_PREFIX)}
            load_strict(self.network, body, where=where, optional_suffixes=("num_batches_tracked",))
        self.network.eval().to(self.device)

    @property
    def needs(self) -> InputNeeds:
        return InputNeeds(self.sample_rate, 2, self.min_samples)

    @classmethod
    def from_registry(
        cls, content_type: str = "music", *, device: str | torch.device = "cpu", **options: Any
    ):
        """The registry checkpoint of ``content_type`` (verified; fetched unless offline)."""
        name = registry_name(content_type) if content_type in CONTENT_TYPES else content_type
        state, info = common.registry_weights(name)
        return cls(content_type, state, weights=info, device=device, where=name, **options)

    @classmethod
    def from_checkpoint(
        cls,
        content_type: str,
        path: str | os.PathLike[str],
        *,
        device: str | torch.device = "cpu",
        **options: Any,
    ) -> OpenL3Embedder:
        """Weights from a file with torchopenl3's keys (.pth weights_only or .safetensors)."""
        state, info = common.file_weights(path)
        return cls(content_type, state, weights=info, device=device, where=str(path), **options)

    @classmethod
    def random(
        cls, content_type: str = "music", seed: int = 0, *, device: str | torch.device = "cpu", **options: Any
    ) -> OpenL3Embedder:
        """Seeded random weights with a realistic spread: `he_init` convolutions, BatchNorm statistics
        from one pass over seeded synthetic 1 s windows (`calibrate_batchnorm`), and the last layer's bias
        set so that each output's mean over those windows is 0 (without it the (32, 24) max pooling left
        every clip near the same large positive values: spread 0.11 over six 1 s clips' mean rows)."""
        info = common.weights_info("random", seed=seed, name=registry_name(content_type))
        embedder = cls(content_type, None, weights=info, device="cpu", **options)
        common.he_init(embedder.network, seed)
        calibration = common.calibration_audio(seed, NETWORK_RATE)
        common.calibrate_batchnorm(embedder.network, calibration)
        with torch.no_grad():  # centre each output on the calibration windows (max pooling commutes with it)
            embedder.network.audio_embedding_layer.bias.sub_(embedder.network(calibration).mean(dim=0))
        embedder.network.to(torch.device(device))
        embedder.device = torch.device(device)
        return embedder

    def config(self) -> dict[str, Any]:
        return {
            "input_repr": "mel256",
            "content_type": self.content_type,
            "embedding_size": EMBEDDING_DIM,
            "input_rate": self.sample_rate,
            "resampler_to_48k": "resampy kaiser_best",
            "hop_seconds": self.hop_seconds,
            "center": True,
            "frontend": "openl3 0.4.2 / kapre 0.3.7: |STFT| (2048, hop 242, periodic hann, pad_end), "
            "Slaney mel 256, 10 log10(max(m, 1e-10)) - max, floor -80",
            "channels": "first two embedded separately, concatenated L|R (mono used as both)",
        }

    def stereo_batch(self, waveform: torch.Tensor | np.ndarray) -> np.ndarray:
        """[B, samples] (mono) or [B, 2, samples] -> float32 numpy [B, 2, samples] (MetricInputError
        otherwise)."""
        x = torch.as_tensor(waveform)
        if x.ndim == 2:
            x = x[:, None].expand(-1, 2, -1)
        if x.ndim != 3 or x.shape[1] != 2 or x.shape[0] == 0 or x.shape[2] == 0:
            raise MetricInputError(
                f"{self.name}: expected [B, samples] or [B, 2, samples] with B, samples > 0, got {tuple(x.shape)}"
            )
        if not x.is_floating_point() or not bool(torch.isfinite(x).all()):
            raise MetricInputError(f"{self.name}: expected finite float samples")
        return x.detach().cpu().to(torch.float32).numpy()

    def embed_channel(self, audio: np.ndarray) -> torch.Tensor:
        """1-D float32 audio at ``sample_rate`` -> [frames, 512] (what openl3 returns for one channel)."""
        frames = torch.from_numpy(
            frame_windows(resample_to_network_rate(audio, self.sample_rate), self.hop_seconds)
        )
        with torch.inference_mode():  # WINDOW_BATCH windows at a time: memory stays bounded for long files
            parts = [self.network(chunk.to(self.device)).cpu() for chunk in frames.split(WINDOW_BATCH)]
        return torch.cat(parts)

    def embed(self, waveform: torch.Tensor | np.ndarray) -> torch.Tensor:
        """[B, samples] or [B, 2, samples] float32 at ``sample_rate`` -> [B, frames, 1024] float32."""
        x = self.stereo_batch(waveform)
        rows = [torch.cat([self.embed_channel(c[0]), self.embed_channel(c[1])], dim=1) for c in x]
        return torch.stack(rows)


__all__ = ["OpenL3Embedder", "OpenL3Network", "frame_windows", "registry_name", "resample_to_network_rate"]
