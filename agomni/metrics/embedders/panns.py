"""PANNs CNN14 at 16 kHz and 32 kHz: clip-level 2048-d embeddings (FD_PANNs) and 527 AudioSet logits
(KL_PANNs, IS_PANNs), as av-benchmark and audioldm_eval use them.

Our own code, not a wrapper: panns-inference 0.1.1 (the upstream PyPI package) runs ``wget`` into
``~/panns_data`` when imported and needs torchlibrosa, whose front end imports librosa, for the two
fixed matrices of its front end. Equality with ``panns_inference.models.Cnn14`` (random weights, real
audio, both input recipes) is what tests/metrics/test_panns.py checks; panns-inference and torchlibrosa
are test-only ("upstream") dependencies.

Configurations (`CNN14_CONFIGS`), as in av-benchmark ``extraction_models.py`` / audioldm_eval ``eval.py``
    ``panns-cnn14-16k``: ``Cnn14_16k_mAP=0.438.pth``, 16 kHz, window and n_fft 512, hop 160, 64 mels,
    50 - 8000 Hz (av-benchmark FD_PANNs / KL_PANNs / IS; audioldm_eval at 16 kHz).
    ``panns-cnn14-32k``: ``Cnn14_mAP=0.431.pth``, 32 kHz, window and n_fft 1024, hop 320, 64 mels,
    50 - 14000 Hz (audioldm_eval at 32 kHz; panns_inference's default).

Front end: `agomni.metrics.embedders.logmel` (torchlibrosa ``Spectrogram`` + ``LogmelFilterBank``) with
the configuration's n_fft, hop, mel bands and edges. Its matrices are also stored in the official
checkpoints (``spectrogram_extractor.stft.conv_{real,imag}.weight``, ``logmel_extractor.melW``): they are
loaded like every other tensor (so numerics follow the checkpoint, as upstream), after checking that they
agree with the ones computed for the configuration (max abs difference <= 1e-4 of the largest value;
otherwise WeightsError: the checkpoint belongs to another configuration).

Network: BatchNorm over the 64 mel bins; six ConvBlocks (two 3x3 conv + BN + ReLU, 2x2 average pooling,
none after the sixth); mean over frequency; max + mean over time; ``fc1`` + ReLU = the 2048-d
**embedding** (panns_inference ``embedding``, av-benchmark/audioldm_eval ``"2048"``); ``fc_audioset`` on
it = the 527 **logits**, i.e. the pre-sigmoid values (av-benchmark/audioldm_eval ``"logits"``;
panns_inference's ``clipwise_output`` is ``sigmoid(logits)``). av-benchmark's KL_PANNs
(``compute_kl``: ``kl_div(log_softmax(pred), log_softmax(gt), log_target=True, reduction="sum") / N``)
and IS (``compute_isc``: softmax) consume these pre-sigmoid logits through a softmax; its ``kl_sigmoid``
variant applies logsigmoid to the same logits. Dropout and SpecAugment are training-only and absent.

Lengths: a clip needs at least 31 hops (4960 samples at 16 kHz, 9920 at 32 kHz: 0.31 s) so that five
2x2 poolings leave one time step; shorter is a MetricInputError. Clips of different lengths are never
padded together: `agomni eval` batches equal lengths only (padding would change max/mean pooling).

Input recipes (downmix, DC removal, resampler, crop/pad): ``RECIPES`` in `agomni.io.prepare`
("av-benchmark", "audioldm-eval", "fadtk", ...), shared with the other embedders.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from agomni.errors import UsageError, WeightsError
from agomni.metrics.embedders import common
from agomni.metrics.embedders.logmel import AMIN, LogmelFilterBank, Spectrogram
from agomni.weights import load_strict

VERSION = "1"
EMBEDDING_DIM = 2048
FRONTEND_KEYS = (
    "spectrogram_extractor.stft.conv_real.weight",
    "spectrogram_extractor.stft.conv_imag.weight",
    "logmel_extractor.melW",
)
FRONTEND_TOLERANCE = 1e-4  # relative to the largest absolute value of each matrix
#: Seconds of audio per forward pass (a batch is split into passes of at most this many clip-seconds, at
#: least one clip each): each 8 s clip at 16 kHz holds 13 MB per convolution output and more in the
#: convolutions' unfolded inputs, so 16 clips at once were slower on the CPU than 4 and took more memory.
PASS_SECONDS = 32
#: Random weights: the AudioSet head is scaled to this logit std over classes on the calibration audio.
RANDOM_LOGIT_STD = 3.0


@dataclasses.dataclass(frozen=True)
class Cnn14Config:
    """One published CNN14 configuration (rates in Hz, sizes in samples)."""

    name: str
    checkpoint: str
    sample_rate: int
    window_size: int
    hop_size: int
    mel_bins: int
    fmin: float
    fmax: float
    classes_num: int = 527

    @property
    def min_samples(self) -> int:
        """Shortest input: 1 + samples // hop frames must reach 32 (five 2x2 poolings)."""
        return 31 * self.hop_size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


CNN14_CONFIGS: dict[str, Cnn14Config] = {
    "panns-cnn14-16k": Cnn14Config(
        "panns-cnn14-16k", "Cnn14_16k_mAP=0.438.pth", 16000, 512, 160, 64, 50.0, 8000.0
    ),
    "panns-cnn14-32k": Cnn14Config(
        "panns-cnn14-32k", "Cnn14_mAP=0.431.pth", 32000, 1024, 320, 64, 50.0, 14000.0
    ),
}


# --- network (upstream parameter names) ------------------------------------------------------------------


class _ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, pool: int) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool) if pool > 1 else x


class Cnn14Network(nn.Module):
    """CNN14 with the published checkpoints' parameter names; forward -> (embedding, logits)."""

    def __init__(self, config: Cnn14Config):
        super().__init__()
        self.spectrogram_extractor = Spectrogram(config.window_size, config.hop_size)
        self.logmel_extractor = LogmelFilterBank(
            config.sample_rate, config.window_size, config.mel_bins, config.fmin, config.fmax
        )
        self.bn0 = nn.BatchNorm2d(config.mel_bins)
        widths = (1, 64, 128, 256, 512, 1024, 2048)
        for i in range(6):
            self.add_module(f"conv_block{i + 1}", _ConvBlock(widths[i], widths[i + 1]))
        self.fc1 = nn.Linear(2048, 2048)
        self.fc_audioset = nn.Linear(2048, config.classes_num)

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, samples] float32 -> (embedding [B, 2048], logits [B, classes])."""
        x = self.logmel_extractor(self.spectrogram_extractor(waveform))  # [B, 1, frames, mels]
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(6):
            x = getattr(self, f"conv_block{i + 1}")(x, pool=2 if i < 5 else 1)
        x = x.mean(dim=3)  # [B, 2048, time]
        x = x.max(dim=2).values + x.mean(dim=2)
        embedding = F.relu(self.fc1(x))
        return embedding, self.fc_audioset(embedding)


def check_frontend(state_dict: Mapping[str, torch.Tensor], network: Cnn14Network, *, where: str) -> None:
    """WeightsError unless the checkpoint's STFT/mel matrices match those computed for the configuration."""
    ours = network.state_dict()
    for key in FRONTEND_KEYS:
        if key not in state_dict or tuple(state_dict[key].shape) != tuple(ours[key].shape):
            continue  # reported by load_strict
        theirs = state_dict[key].to(torch.float64)
        scale = float(ours[key].abs().max())
        diff = float((theirs - ours[key].to(torch.float64)).abs().max())
        if diff > FRONTEND_TOLERANCE * scale:
            raise WeightsError(
                f"{where}: {key} differs from the matrix computed for this configuration by {diff:.3g} "
                f"(max abs; largest value {scale:.3g}); the checkpoint was made for other STFT/mel settings"
            )


class PannsCnn14Embedder(common.CheckpointEmbedder):
    """CNN14 clip embeddings [B, 2048] (`embed`) and pre-sigmoid AudioSet logits [B, 527] (`logits`).

    Build with `from_registry` (the pinned checkpoint of the configuration; comparable with published
    numbers), `from_checkpoint` (a file with the official keys, e.g. ``{"model": state_dict}``) or
    `random` (seeded random weights; ``random_weights: true`` in the metadata).
    """

    version = VERSION
    output = "clip"
    heads = ("embed", "logits")

    def __init__(
        self,
        config: Cnn14Config | str,
        state_dict: Mapping[str, torch.Tensor] | None,
        *,
        weights: dict[str, Any],
        device: str | torch.device = "cpu",
        where: str = "state dict",
    ):
        if isinstance(config, str):
            if config not in CNN14_CONFIGS:
                raise UsageError(
                    f"unknown CNN14 configuration {config!r}; choose one of {sorted(CNN14_CONFIGS)}"
                )
            config = CNN14_CONFIGS[config]
        self.cnn14 = config
        self.name = config.name
        self.sample_rate = config.sample_rate
        self.min_samples = config.min_samples
        self.set_weights_record(weights, device)
        self.network = Cnn14Network(config)
        if state_dict is not None:
            check_frontend(state_dict, self.network, where=where)
            load_strict(self.network, state_dict, where=where, optional_suffixes=("num_batches_tracked",))
        self.network.eval().to(self.device)

    @classmethod
    def from_registry(
        cls,
        config: str = "panns-cnn14-16k",
        *,
        device: str | torch.device = "cpu",
    ) -> PannsCnn14Embedder:
        """The registry entry named like the configuration (verified; fetched unless offline)."""
        if config not in CNN14_CONFIGS:
            raise UsageError(f"unknown CNN14 configuration {config!r}; choose one of {sorted(CNN14_CONFIGS)}")
        state, info = common.registry_weights(config)
        return cls(config, state, weights=info, device=device, where=config)

    @classmethod
    def from_checkpoint(
        cls,
        config: str,
        path: str | os.PathLike[str],
        *,
        device: str | torch.device = "cpu",
    ) -> PannsCnn14Embedder:
        """Weights from a file (.pth/.pt weights_only or .safetensors; a ``{"model": ...}`` wrapper is
        unwrapped by agomni.weights.load_state_dict)."""
        state, info = common.file_weights(path)
        return cls(config, state, weights=info, device=device, where=str(path))

    @classmethod
    def random(
        cls,
        config: str = "panns-cnn14-16k",
        seed: int = 0,
        *,
        device: str | torch.device = "cpu",
    ) -> PannsCnn14Embedder:
        """Seeded random weights with a realistic spread (the fixed STFT/mel matrices stay exact):
        `he_init` convolutions and linear layers, BatchNorm statistics from one pass over seeded
        synthetic audio (`calibrate_batchnorm`), and the AudioSet head scaled so that logits spread over
        classes like a tagger's (std `RANDOM_LOGIT_STD` on that audio). Measured on 12 two-second tone / noise / gated-noise
        clips (spread = mean over dimensions of the std across clips / mean |value|): embeddings 0.99,
        logits 0.96, KL(ref||gen) over 6 pairs 5.9 nats, IS (2 splits) 2.03; PyTorch's default
        initialisation gave 0.029, 0.0098, 3.5e-8 nats and 1 + 6e-9."""
        info = common.weights_info("random", seed=seed, name=config)
        embedder = cls(config, None, weights=info, device="cpu")
        common.he_init(embedder.network, seed)
        calibration = common.calibration_audio(seed, embedder.sample_rate)
        common.calibrate_batchnorm(embedder.network, calibration)
        with torch.no_grad():
            logits = embedder.network(calibration)[1]
            embedder.network.fc_audioset.weight.mul_(RANDOM_LOGIT_STD / float(logits.std(dim=1).mean()))
        embedder.network.to(torch.device(device))
        embedder.device = torch.device(device)
        return embedder

    def config(self) -> dict[str, Any]:
        return {
            **self.cnn14.to_dict(),
            "window": "periodic hann",
            "center": True,
            "pad_mode": "reflect",
            "spectrum": "power",
            "mel": "librosa.filters.mel (Slaney scale, Slaney norm)",
            "log": f"10 log10(max(mel, {AMIN})), ref 1.0, no top_db",
            "embedding": "relu(fc1) after max+mean time pooling (2048-d)",
            "logits": "fc_audioset(embedding), pre-sigmoid",
        }

    def embed_and_logits(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, samples] float32 at ``sample_rate`` -> (embedding [B, 2048], logits [B, 527]) on the CPU."""
        x = common.nonempty_batch(self, waveform, min_samples=self.cnn14.min_samples)
        rows = max(1, PASS_SECONDS * self.sample_rate // x.shape[1])
        with torch.inference_mode():
            passes = [self.network(part.to(self.device)) for part in x.split(rows)]
        return torch.cat([p[0] for p in passes]).cpu(), torch.cat([p[1] for p in passes]).cpu()

    def outputs(self, waveform: torch.Tensor) -> dict[str, torch.Tensor]:
        """Both heads of one forward pass: ``{"embed": [B, 2048], "logits": [B, 527]}``."""
        embedding, logits = self.embed_and_logits(waveform)
        return {"embed": embedding, "logits": logits}

    def embed(self, waveform: torch.Tensor) -> torch.Tensor:
        """[B, samples] float32 at ``sample_rate`` -> [B, 2048] float32."""
        return self.embed_and_logits(waveform)[0]

    def logits(self, waveform: torch.Tensor) -> torch.Tensor:
        """[B, samples] float32 at ``sample_rate`` -> pre-sigmoid AudioSet logits [B, 527] float32."""
        return self.embed_and_logits(waveform)[1]


__all__ = [
    "CNN14_CONFIGS",
    "Cnn14Config",
    "Cnn14Network",
    "PannsCnn14Embedder",
]
