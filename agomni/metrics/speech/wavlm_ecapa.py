"""SIM-o's speaker-verification model: WavLM-Large + ECAPA-TDNN, as in UniSpeech's speaker_verification
downstream (``ECAPA_TDNN_SMALL(feat_dim=1024, feat_type="wavlm_large")``), used by seed-tts-eval and F5-TTS.

Checkpoint: ``wavlm_large_finetune.pth`` (registry entry ``wavlm-large-ecapa-sv``), whose ``"model"`` entry is
the whole network's state dict: the WavLM-Large weights under ``feature_extract.model.`` (s3prl's upstream
wrapper holds the WavLM module as ``.model``), then ``feature_weight`` and the head (``layer1`` ...
``layer4``, ``conv``, ``pooling``, ``bn``, ``linear``). Every parameter of the network must be in it with
its shape (BatchNorm's ``num_batches_tracked`` may be absent); entries the network has no place for are
ignored, as the reference's ``load_state_dict(strict=False)`` ignores them, and listed in
``WavLMECAPA.ignored_keys`` and in the backend label.

Forward (one unpadded clip of mono 16 kHz float audio, as the references embed each file):

1. waveform layer normalisation (s3prl's WavLM wrapper does it for WavLM-Large, whose ``normalize`` is set);
2. WavLM-Large: the 25 hidden states s3prl returns (the input of each of the 24 layers, then the encoder
   output, i.e. the last layer's output after the encoder's final LayerNorm);
3. their weighted sum with softmax(``feature_weight``) weights, + 1e-6, instance normalisation over time
   (no affine parameters);
4. ECAPA-TDNN: a Conv1d(k=5)-ReLU-BatchNorm layer to 512 channels, three SE-Res2 blocks (kernel 3,
   dilations 2, 3, 4, scale 8, squeeze-excitation bottleneck 128; each convolution is followed by ReLU then
   BatchNorm), the three block outputs concatenated (1536 channels), Conv1d(k=1) + ReLU, attentive
   statistics pooling (tanh attention with 128 channels, softmax over time, weighted mean and standard
   deviation with the variance clamped at 1e-9), BatchNorm, and a linear layer to the 256-d embedding.

SIM-o of a pair is the cosine of the two embeddings (`agomni.metrics.speech.speaker.speaker_similarity`).
Audio preparation differs from the reference scripts in one documented way: stereo is downmixed (channel
mean) before resampling to 16 kHz, where seed-tts-eval keeps one channel and F5-TTS embeds each channel and
keeps the first channel's score; for mono files (the benchmark sets) the three agree.
"""

from __future__ import annotations

from importlib.metadata import version

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agomni.errors import MetricInputError
from agomni.metrics.speech.items import RANDOM_BACKEND
from agomni.metrics.speech.wavlm import WavLM, WavLMConfig
from agomni.weights import load_entry_state_dict, load_strict

SAMPLE_RATE = 16000
WEIGHTS = "wavlm-large-ecapa-sv"
#: WavLM-Large's architecture (the checkpoint's ``cfg``): layer-normalised convolutional features, biased
#: convolutions, 24 pre-LayerNorm layers of width 1024.
WAVLM_LARGE = WavLMConfig(
    extractor_mode="layer_norm",
    conv_bias=True,
    embed_dim=1024,
    ffn_dim=4096,
    heads=16,
    layers=24,
    layer_norm_first=True,
)
CHANNELS = 512
EMBEDDING_DIM = 256


class ConvReluBN(nn.Module):
    """Conv1d, ReLU, BatchNorm1d (in that order)."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv1d(channels_in, channels_out, kernel, padding=padding)
        self.bn = nn.BatchNorm1d(channels_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


class Res2Conv(nn.Module):
    """Res2Net convolution: ``scale`` channel groups; group i (but the last, passed through) is convolved
    after adding the previous group's output, each convolution followed by ReLU then BatchNorm."""

    def __init__(self, channels: int, kernel: int, dilation: int, scale: int):
        super().__init__()
        self.width = channels // scale
        self.convs = nn.ModuleList(
            nn.Conv1d(self.width, self.width, kernel, padding=dilation, dilation=dilation)
            for _ in range(scale - 1)
        )
        self.bns = nn.ModuleList(nn.BatchNorm1d(self.width) for _ in range(scale - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = torch.split(x, self.width, dim=1)
        outputs: list[torch.Tensor] = []
        for group, conv, bn in zip(groups, self.convs, self.bns, strict=False):
            outputs.append(bn(F.relu(conv(group if not outputs else group + outputs[-1]))))
        return torch.cat([*outputs, groups[-1]], dim=1)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, bottleneck: int):
        super().__init__()
        self.linear1 = nn.Linear(channels, bottleneck)
        self.linear2 = nn.Linear(bottleneck, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.linear2(F.relu(self.linear1(x.mean(dim=2)))))
        return x * gate[..., None]


class SERes2Block(nn.Module):
    """1x1 ConvReluBN, Res2 convolution, 1x1 ConvReluBN, squeeze-excitation, plus the input (same width)."""

    def __init__(self, channels: int, dilation: int, scale: int = 8, bottleneck: int = 128):
        super().__init__()
        self.Conv1dReluBn1 = ConvReluBN(channels, channels)
        self.Res2Conv1dReluBn = Res2Conv(channels, 3, dilation, scale)
        self.Conv1dReluBn2 = ConvReluBN(channels, channels)
        self.SE_Connect = SqueezeExcitation(channels, bottleneck)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.Conv1dReluBn2(self.Res2Conv1dReluBn(self.Conv1dReluBn1(x)))
        return x + self.SE_Connect(y)


class AttentiveStatsPool(nn.Module):
    """Attention-weighted mean and standard deviation over time, [B, C, T] -> [B, 2C]."""

    def __init__(self, channels: int, attention: int = 128):
        super().__init__()
        self.linear1 = nn.Conv1d(channels, attention, kernel_size=1)
        self.linear2 = nn.Conv1d(attention, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.linear2(torch.tanh(self.linear1(x))), dim=2)
        mean = (weights * x).sum(dim=2)
        variance = (weights * x * x).sum(dim=2) - mean * mean
        return torch.cat([mean, variance.clamp(min=1e-9).sqrt()], dim=1)


class S3PRLUpstream(nn.Module):
    """Holds WavLM as ``.model``, the attribute name s3prl's wrapper gives it in the checkpoint."""

    def __init__(self, cfg: WavLMConfig):
        super().__init__()
        self.model = WavLM(cfg)


class WavLMECAPANetwork(nn.Module):
    """The verification network; parameter names are those of ``wavlm_large_finetune.pth``."""

    def __init__(self, cfg: WavLMConfig = WAVLM_LARGE):
        super().__init__()
        self.cfg = cfg
        self.feature_extract = S3PRLUpstream(cfg)
        self.feature_weight = nn.Parameter(torch.zeros(cfg.layers + 1))
        self.instance_norm = nn.InstanceNorm1d(cfg.embed_dim)
        self.layer1 = ConvReluBN(cfg.embed_dim, CHANNELS, kernel=5, padding=2)
        self.layer2 = SERes2Block(CHANNELS, dilation=2)
        self.layer3 = SERes2Block(CHANNELS, dilation=3)
        self.layer4 = SERes2Block(CHANNELS, dilation=4)
        pooled = 3 * CHANNELS
        self.conv = nn.Conv1d(pooled, pooled, kernel_size=1)
        self.pooling = AttentiveStatsPool(pooled)
        self.bn = nn.BatchNorm1d(2 * pooled)
        self.linear = nn.Linear(2 * pooled, EMBEDDING_DIM)

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """[1, samples] -> instance-normalised weighted sum of the WavLM hidden states, [1, width, frames]."""
        wavlm = self.feature_extract.model
        states, _ = wavlm.hidden_states(F.layer_norm(wav, wav.shape[1:]))
        if self.cfg.layer_norm_first:  # s3prl's last state is the encoder output, after its final LayerNorm
            states[-1] = wavlm.encoder.layer_norm(states[-1])
        weights = torch.softmax(self.feature_weight, dim=0)
        mixed = (weights[:, None, None, None] * torch.stack(states)).sum(dim=0)
        return self.instance_norm(mixed.transpose(1, 2) + 1e-6)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """[1, samples] mono 16 kHz -> [1, 256] speaker embedding."""
        out1 = self.layer1(self.features(wav))
        out2 = self.layer2(out1)
        out3 = self.layer3(out2)
        out4 = self.layer4(out3)
        out = F.relu(self.conv(torch.cat([out2, out3, out4], dim=1)))
        return self.linear(self.bn(self.pooling(out)))


def min_samples(cfg: WavLMConfig) -> int:
    """Shortest clip giving two WavLM frames (instance normalisation over time needs more than one)."""
    receptive, stride = 1, 1
    for _, kernel, step in cfg.conv_layers:
        receptive += (kernel - 1) * stride
        stride *= step
    return receptive + stride


class WavLMECAPA:
    """WavLM-Large + ECAPA-TDNN speaker embeddings (the seed-tts-eval SIM-o recipe); see the module docstring."""

    name = "wavlm-ecapa"
    recipe = "seed-tts-eval SIM-o (UniSpeech WavLM-Large + ECAPA-TDNN, 256-d)"
    sample_rate = SAMPLE_RATE
    weights = WEIGHTS

    def __init__(
        self,
        state: dict[str, torch.Tensor],
        *,
        random_weights: bool,
        device: str = "cpu",
        cfg: WavLMConfig = WAVLM_LARGE,
    ) -> None:
        """Use ``from_registry()`` (the published checkpoint) or ``random(seed)`` (tests, latency)."""
        self.network = WavLMECAPANetwork(cfg)
        own = self.network.state_dict()
        self.ignored_keys = sorted(k for k in state if k not in own)
        used = {k: v for k, v in state.items() if k in own}
        load_strict(self.network, used, where=self.weights, optional_suffixes=("num_batches_tracked",))
        self.network.eval().to(device)
        self.device = device
        self.random_weights = random_weights
        self.min_samples = min_samples(cfg)
        ignored = (
            f" ({len(self.ignored_keys)} checkpoint entries the network has no place for ignored, as the "
            f"reference's strict=False load does: {', '.join(self.ignored_keys[:5])})"
            if self.ignored_keys
            else ""
        )
        self.version = f"torch {version('torch')}{ignored}" + (RANDOM_BACKEND if random_weights else "")

    @classmethod
    def from_registry(cls, device: str = "cpu", cfg: WavLMConfig = WAVLM_LARGE) -> WavLMECAPA:
        """``wavlm_large_finetune.pth`` from the agomni weights cache (verified; loaded without pickled code).
        ``cfg`` is WavLM's architecture: WavLM-Large for the published file (a smaller one in tests)."""
        return cls(load_entry_state_dict(cls.weights), random_weights=False, device=device, cfg=cfg)

    @classmethod
    def random(cls, seed: int = 0, device: str = "cpu", cfg: WavLMConfig | None = None) -> WavLMECAPA:
        """Seeded random weights (WavLM-Large size unless ``cfg``): tests and latency only; results say so."""
        cfg = WAVLM_LARGE if cfg is None else cfg
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            state = WavLMECAPANetwork(cfg).state_dict()
        return cls(state, random_weights=True, device=device, cfg=cfg)

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """256-d embedding of mono 16 kHz float audio."""
        if len(audio) < self.min_samples:
            raise MetricInputError(
                f"{len(audio)} samples is too short for WavLM-Large + ECAPA-TDNN (at least "
                f"{self.min_samples} at 16 kHz, {1000 * self.min_samples / SAMPLE_RATE:.0f} ms)"
            )
        wav = torch.as_tensor(np.asarray(audio, dtype=np.float32), device=self.device)[None]
        with torch.no_grad():
            return self.network(wav)[0].cpu().numpy()
