"""VGGish @16 kHz: frame-level 128-d embeddings for FD_VGG / FAD-VGGish, as av-benchmark and audioldm_eval use it.

Our own code, not a wrapper: the network is a dozen layers, the runtime needs neither the upstream package
(torchvggish 0.2 on PyPI, which pulls resampy and downloads weights and PCA parameters through
``torch.hub`` when its ``vggish()`` builder runs) nor its numpy pipeline. Equality with torchvggish 0.2's
``vggish_input.waveform_to_examples`` + ``VGG`` (random weights, real audio, both recipes below) is what
tests/metrics/test_vggish.py checks; torchvggish is a test-only ("upstream") dependency.

Network and checkpoint
    VGG(64, M, 128, M, 256, 256, M, 512, 512, M) of 3x3 convolutions, then Linear 12288 -> 4096 -> ReLU
    -> 4096 -> ReLU -> 128. The embedding is the **pre-activation of the last Linear** (no final ReLU, no
    PCA, no 8-bit quantisation): av-benchmark's ``av_bench/vggish/vggish.py`` removed the last ReLU "to
    match audioldm_eval", whose ``FrechetAudioDistance(use_pca=False, use_activation=False)`` drops it.
    Parameter names are those of torchvggish's ``VGG`` (``features.{0,3,6,8,11,13}.*``,
    ``embeddings.{0,2,4}.*``), i.e. of the published ``vggish-10086976.pth`` (registry entry ``vggish``),
    loaded strictly.

Features (torchvggish ``mel_features``, computed here in float64 like its numpy code, then cast to
float32 for the network)
    16 kHz mono; frames of 400 samples (25 ms) every 160 samples (10 ms), no centre padding (an incomplete
    last frame is dropped); periodic Hann window; |rfft| with n_fft 512 (magnitude, not power); 64 HTK-mel
    triangles from 125 to 7500 Hz on the 257 bins, DC bin weight 0, no area normalisation;
    ``ln(mel + 0.01)``. Examples: non-overlapping blocks of 96 frames (0.96 s) ``[E, 1, 96, 64]``; the
    frames after the last full block (the tail shorter than 0.96 s) are dropped, exactly as
    ``mel_features.frame`` does. A clip needs at least 400 + 95 * 160 = 15600 samples (0.975 s) for one
    example; a shorter clip is a ``MetricInputError`` (the references return no frame for it and say
    nothing). No clamping or peak normalisation of the waveform in either reference.

Input recipes (how a file becomes the 16 kHz waveform): `agomni.io.prepare` (``"av-benchmark"``,
    ``"audioldm-eval"``, ``"fadtk"``, ...), shared with the other network embedders. All feed the
    resampled 16 kHz waveform to VGGish, so torchvggish's own resampy branch never runs (it is not
    offered here). The DC removal happens before resampling, as in the references.

Output: ``embed([B, samples]) -> [B, E, 128]`` float32 for B clips of one length (`agomni eval` batches
equal lengths together). FD_VGG pools the frames of all clips.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from agomni.metrics.embedders.common import (
    CheckpointEmbedder,
    file_weights,
    he_init,
    nonempty_batch,
    registry_weights,
    weights_info,
)
from agomni.weights import load_strict

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 400  # 25 ms
HOP_SAMPLES = 160  # 10 ms
FFT_SIZE = 512  # next power of two >= 400
N_MELS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s, hop 0.96 s
EMBEDDING_DIM = 128
MIN_SAMPLES = WINDOW_SAMPLES + (EXAMPLE_FRAMES - 1) * HOP_SAMPLES  # 15600 samples = 0.975 s
EXAMPLES_PER_FORWARD = 256  # network calls are chunked to bound activation memory (results unchanged)
VERSION = "1"
REGISTRY_ENTRY = "vggish"
_LAYOUT = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")


# --- features ------------------------------------------------------------------------------------------


def hertz_to_htk_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def vggish_mel_matrix() -> np.ndarray:
    """[257, 64] float64 HTK triangles from 125 to 7500 Hz over the 257 rfft bins of 16 kHz audio, DC
    bin zeroed (torchvggish ``spectrogram_to_mel_matrix``)."""
    bins = FFT_SIZE // 2 + 1
    bin_mel = hertz_to_htk_mel(np.linspace(0.0, SAMPLE_RATE / 2, bins))
    edges = np.linspace(hertz_to_htk_mel(MEL_MIN_HZ), hertz_to_htk_mel(MEL_MAX_HZ), N_MELS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel[:, None] - lower) / (center - lower)
    falling = (upper - bin_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


def periodic_hann(length: int) -> np.ndarray:
    """0.5 - 0.5 cos(2 pi n / length), n = 0 .. length-1 (float64)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi / length * np.arange(length))


class VGGishFeatures(nn.Module):
    """Waveform [B, samples] (16 kHz) -> log-mel examples [B, E, 96, 64], computed in float64."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.from_numpy(periodic_hann(WINDOW_SAMPLES)), persistent=False)
        self.register_buffer("mel", torch.from_numpy(vggish_mel_matrix()), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = waveform.to(torch.float64)
        frames = x.unfold(-1, WINDOW_SAMPLES, HOP_SAMPLES) * self.window  # [B, T, 400]
        magnitude = torch.fft.rfft(frames, n=FFT_SIZE).abs()  # [B, T, 257]
        log_mel = torch.log(magnitude @ self.mel + LOG_OFFSET)  # [B, T, 64]
        examples = log_mel.shape[1] // EXAMPLE_FRAMES
        return log_mel[:, : examples * EXAMPLE_FRAMES].reshape(x.shape[0], examples, EXAMPLE_FRAMES, N_MELS)


class VGGishNetwork(nn.Module):
    """The VGGish network with torchvggish's parameter names; output: the last Linear's pre-activation."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for item in _LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU()]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 128)
        )

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        """[N, 1, 96, 64] float32 -> [N, 128]."""
        x = self.features(examples)  # [N, 512, 6, 4]
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # TF layout (time, freq, channel) flattening
        return self.embeddings(x)


class VGGishEmbedder(CheckpointEmbedder):
    """VGGish frame embeddings ``[B, E, 128]`` (0.96 s per frame) for FD_VGG / FAD-VGGish.

    Build with `from_registry` (the pinned ``vggish`` checkpoint; comparable with published numbers),
    `from_checkpoint` (any file with the official keys) or `random` (seeded random weights, for tests
    and latency; ``random_weights: true`` in the metadata).
    """

    name = "vggish"
    sample_rate = SAMPLE_RATE
    min_samples = MIN_SAMPLES
    version = VERSION
    output = "frames"

    def __init__(
        self,
        state_dict: Mapping[str, torch.Tensor] | None,
        *,
        weights: dict[str, Any],
        device: str | torch.device = "cpu",
        where: str = "state dict",
    ):
        self.set_weights_record(weights, device)
        self.network = VGGishNetwork()
        if state_dict is not None:
            load_strict(self.network, state_dict, where=where)
        self.network.eval().to(self.device)
        self.frontend = VGGishFeatures().to(self.device)

    @classmethod
    def from_registry(cls, *, device: str | torch.device = "cpu") -> VGGishEmbedder:
        """The registry's ``vggish`` checkpoint (verified; fetched unless offline)."""
        state, info = registry_weights(REGISTRY_ENTRY)
        return cls(state, weights=info, device=device, where=REGISTRY_ENTRY)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        *,
        device: str | torch.device = "cpu",
    ) -> VGGishEmbedder:
        """Weights from a file (.pth/.pt loaded weights_only, or .safetensors) with the official keys."""
        state, info = file_weights(path)
        return cls(state, weights=info, device=device, where=str(path))

    @classmethod
    def random(cls, seed: int = 0, *, device: str | torch.device = "cpu") -> VGGishEmbedder:
        """Seeded random weights (`he_init`: N(0, 2 / fan_in), zero biases), for tests and latency.

        Embeddings of different clips then spread by 0.58 (mean over dimensions of the std across 12
        two-second tone / noise / gated-noise clips over the mean |value|), against 0.075 with PyTorch's
        default initialisation, whose outputs sit on the biases."""
        network = VGGishNetwork()
        he_init(network, seed)
        state = network.state_dict()
        info = weights_info("random", seed=seed, name=REGISTRY_ENTRY)
        return cls(state, weights=info, device=device, where=f"random seed {seed}")

    def config(self) -> dict[str, Any]:
        return {
            "sample_rate": SAMPLE_RATE,
            "window_samples": WINDOW_SAMPLES,
            "hop_samples": HOP_SAMPLES,
            "fft_size": FFT_SIZE,
            "window": "periodic hann",
            "spectrum": "magnitude",
            "center": False,
            "n_mels": N_MELS,
            "mel_scale": "htk",
            "f_min": MEL_MIN_HZ,
            "f_max": MEL_MAX_HZ,
            "log": f"ln(mel + {LOG_OFFSET})",
            "feature_dtype": "float64",
            "example_frames": EXAMPLE_FRAMES,
            "example_hop_frames": EXAMPLE_FRAMES,
            "tail": "frames after the last full 0.96 s example dropped",
            "embedding": "pre-activation of the last Linear (no ReLU, no PCA, no quantisation)",
        }

    def examples(self, waveform: torch.Tensor) -> torch.Tensor:
        """Log-mel examples [B, E, 96, 64] float32 of a batch [B, samples] (16 kHz, >= 15600 samples)."""
        x = nonempty_batch(self, waveform, min_samples=MIN_SAMPLES)
        with torch.inference_mode():
            return self.frontend(x.to(self.device)).to(torch.float32)

    def embed(self, waveform: torch.Tensor) -> torch.Tensor:
        """[B, samples] float32 at 16 kHz (each >= 15600 samples) -> [B, E, 128] float32 on the CPU."""
        examples = self.examples(waveform)
        b, e = examples.shape[:2]
        flat = examples.reshape(b * e, 1, EXAMPLE_FRAMES, N_MELS)
        with torch.inference_mode():
            out = [self.network(chunk).cpu() for chunk in flat.split(EXAMPLES_PER_FORWARD)]
        return torch.cat(out).reshape(b, e, EMBEDDING_DIM)


__all__ = ["VGGishEmbedder", "VGGishFeatures", "VGGishNetwork", "vggish_mel_matrix"]
