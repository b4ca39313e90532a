"""NISQA v2.0 (NISQA_DIM): speech quality MOS plus the noisiness, coloration, discontinuity and loudness
dimensions, in agomni's own code, equal to the ``nisqa`` package's model (2.0.post2) on the same weights.

Recipe (the arguments stored in the published ``nisqa.tar``):

- Audio: the file's own sample rate (``ms_sr: None``), channels averaged.
- Mel spectrogram (librosa's definition): STFT with n_fft 4096, a periodic Hann window of 20 ms centred in
  it, hop 10 ms (``int(rate * 0.01)`` samples), centred frames with reflect padding, magnitude (power 1);
  48 Slaney-normalised Slaney-scale mel bands from 0 Hz to 20 kHz; 20 log10 with amin 1e-4, ref 1, and
  top_db 80 (values below the clip's maximum minus 80 dB are raised to it).
- Segments: 15-frame windows of the spectrogram (48 x 15), every 4th one kept; at most 1300 segments
  (about 52 s of audio): longer clips are an error, as in the reference.
- Network: an adaptive-max-pool CNN per segment (six 3x3 conv + batch-norm + ReLU layers, pools 24x7,
  12x5, 6x3) -> 384 features; a linear layer to 64, layer norm, two post-norm self-attention layers
  (one head, feed-forward 64); five attention-pooling heads (feed-forward 128) giving, in this order,
  MOS, noisiness, discontinuity, coloration, loudness.

Scale about 1-5, higher is better for every output (a high noisiness score means little noise).
Per item: empty or non-finite audio, fewer than 15 spectrogram frames (shorter than about 0.15 s) and
more than 1300 segments are errors naming the item; non-speech audio is scored and flagged.

Weights: the authors' ``nisqa.tar`` (CC BY-NC-SA 4.0), a ``torch.save`` file holding ``args`` (plain
values) and ``model_state_dict``, loaded without pickled code.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from agomni.errors import MetricInputError, WeightsError
from agomni.metrics.speech.items import RANDOM_BACKEND, SetScore, mono_float, non_speech_flags, score_clips
from agomni.weights import load_checkpoint, load_strict

#: Output index -> metric name, in the order of the network's five pooling heads.
OUTPUTS = ("NISQA_MOS", "NISQA_NOI", "NISQA_DIS", "NISQA_COL", "NISQA_LOUD")
N_FFT = 4096
HOP_SECONDS = 0.01
WINDOW_SECONDS = 0.02
N_MELS = 48
F_MAX = 20000.0
TOP_DB = 80.0
AMIN = 1e-4
SEGMENT = 15
SEGMENT_HOP = 4
MAX_SEGMENTS = 1300
RECIPE = (
    "NISQA v2.0 (NISQA_DIM, nisqa.tar): native rate, 48-band mel (n_fft 4096, 20 ms / 10 ms), "
    "15-frame segments every 4th, CNN + self-attention + attention pooling"
)
#: Recipe values the published checkpoint's ``args`` must hold (checked on load).
EXPECTED_ARGS: dict[str, Any] = {
    "model": "NISQA_DIM",
    "ms_sr": None,
    "ms_n_fft": N_FFT,
    "ms_hop_length": HOP_SECONDS,
    "ms_win_length": WINDOW_SECONDS,
    "ms_n_mels": N_MELS,
    "ms_fmax": F_MAX,
    "ms_seg_length": SEGMENT,
    "ms_seg_hop_length": SEGMENT_HOP,
    "ms_max_segments": MAX_SEGMENTS,
    "cnn_model": "adapt",
    "td": "self_att",
    "td_2": "skip",
    "pool": "att",
    "td_sa_pos_enc": False,
}


def mel_spectrogram(audio: np.ndarray, sample_rate: int) -> torch.Tensor:
    """The recipe's dB mel spectrogram [48, frames] of one mono clip (float32)."""
    wav = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    hop, win = int(sample_rate * HOP_SECONDS), int(sample_rate * WINDOW_SECONDS)
    if wav.numel() <= N_FFT // 2:
        raise MetricInputError(
            f"{wav.numel()} samples at {sample_rate} Hz: too short for NISQA's {N_FFT}-point STFT "
            f"(needs more than {N_FFT // 2} samples and {SEGMENT} frames, about 0.15 s)"
        )
    spec = torch.stft(
        wav,
        N_FFT,
        hop_length=hop,
        win_length=win,
        window=torch.hann_window(win, periodic=True),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    ).abs()
    with warnings.catch_warnings():  # below 40 kHz the top bands lie above Nyquist and are empty, as in
        warnings.simplefilter("ignore", UserWarning)  # the reference (their dB values sit at the floor)
        bank = torchaudio.functional.melscale_fbanks(
            N_FFT // 2 + 1, 0.0, F_MAX, N_MELS, sample_rate, norm="slaney", mel_scale="slaney"
        )
    mel = bank.T @ spec
    db = 20.0 * torch.log10(mel.clamp(min=AMIN))
    return torch.maximum(db, db.max() - TOP_DB)


def segments(spec: torch.Tensor) -> torch.Tensor:
    """[n, 1, 48, 15] windows of a [48, frames] spectrogram, every ``SEGMENT_HOP``-th one."""
    count = spec.shape[1] - (SEGMENT - 1)
    if count <= 0:
        raise MetricInputError(
            f"{spec.shape[1]} spectrogram frames: NISQA needs at least {SEGMENT} (about 0.15 s of audio)"
        )
    starts = torch.arange(0, count, SEGMENT_HOP)
    if starts.numel() > MAX_SEGMENTS:
        seconds = MAX_SEGMENTS * SEGMENT_HOP * HOP_SECONDS
        raise MetricInputError(
            f"{starts.numel()} segments: longer than NISQA's {MAX_SEGMENTS} (about {seconds:.0f} s); "
            "cut the clip or score shorter excerpts"
        )
    index = starts[:, None] + torch.arange(SEGMENT)[None, :]
    return spec[:, index].permute(1, 0, 2).unsqueeze(1)


@dataclass(frozen=True)
class NISQAConfig:
    """Network sizes (the published checkpoint's values are the defaults)."""

    channels: tuple[int, int, int] = (16, 32, 64)
    pools: tuple[tuple[int, int], ...] = ((24, 7), (12, 5), (6, 3))
    d_model: int = 64
    heads: int = 1
    layers: int = 2
    feed_forward: int = 64
    pool_hidden: int = 128


class _CNN(nn.Module):
    """Six conv + batch-norm + ReLU layers with adaptive max pooling after the 1st, 2nd and 4th."""

    def __init__(self, cfg: NISQAConfig):
        super().__init__()
        c1, c2, c3 = cfg.channels
        widths = [(1, c1), (c1, c2), (c2, c3), (c3, c3), (c3, c3), (c3, c3)]
        last_kernel = (3, cfg.pools[2][1])
        for k, (cin, cout) in enumerate(widths, start=1):
            kernel, pad = (last_kernel, (1, 0)) if k == 6 else ((3, 3), (1, 1))
            self.add_module(f"conv{k}", nn.Conv2d(cin, cout, kernel, padding=pad))
            self.add_module(f"bn{k}", nn.BatchNorm2d(cout))
        self.pools = cfg.pools
        self.fan_out = c3 * cfg.pools[2][0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool_after = {1: self.pools[0], 2: self.pools[1], 4: self.pools[2]}
        for k in range(1, 7):
            x = F.relu(getattr(self, f"bn{k}")(getattr(self, f"conv{k}")(x)))
            if k in pool_after:
                x = F.adaptive_max_pool2d(x, pool_after[k])
        return x.reshape(x.shape[0], self.fan_out)


class _AttentionLayer(nn.Module):
    """Post-norm self-attention + ReLU feed-forward, with the reference's parameter names."""

    def __init__(self, width: int, heads: int, hidden: int):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(width, heads)
        self.linear1 = nn.Linear(width, hidden)
        self.linear2 = nn.Linear(hidden, width)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, C]
        x = self.norm1(x + self.self_attn(x, x, x, need_weights=False)[0])
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


class _SelfAttention(nn.Module):
    def __init__(self, fan_in: int, cfg: NISQAConfig):
        super().__init__()
        self.linear = nn.Linear(fan_in, cfg.d_model)
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.layers = nn.ModuleList(
            _AttentionLayer(cfg.d_model, cfg.heads, cfg.feed_forward) for _ in range(cfg.layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C]
        x = self.norm1(self.linear(x).transpose(0, 1))
        for layer in self.layers:
            x = layer(x)
        return x.transpose(0, 1)


class _AttentionPool(nn.Module):
    """Softmax attention over the segments (scores from a ReLU feed-forward), then a linear output."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.linear1 = nn.Linear(width, hidden)
        self.linear2 = nn.Linear(hidden, 1)
        self.linear3 = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C] -> [B, 1]
        weights = torch.softmax(self.linear2(F.relu(self.linear1(x))), dim=1)
        return self.linear3((weights * x).sum(dim=1))


class _Wrapped(nn.Module):
    """Holds a submodule under ``model`` (the reference's state-dict nesting)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model


class NISQANetwork(nn.Module):
    """NISQA_DIM with the reference's parameter names (``cnn.model.*``, ``time_dependency.model.*``,
    ``pool_layers.<k>.model.*``)."""

    def __init__(self, cfg: NISQAConfig | None = None):
        super().__init__()
        cfg = cfg or NISQAConfig()
        cnn = _CNN(cfg)
        self.cnn = _Wrapped(cnn)
        self.time_dependency = _Wrapped(_SelfAttention(cnn.fan_out, cfg))
        self.pool_layers = nn.ModuleList(
            _Wrapped(_AttentionPool(cfg.d_model, cfg.pool_hidden)) for _ in OUTPUTS
        )

    def forward(self, segs: torch.Tensor) -> torch.Tensor:
        """The five outputs [5] of one clip's segments [n, 1, 48, 15]."""
        features = self.cnn.model(segs).unsqueeze(0)
        features = self.time_dependency.model(features)
        return torch.cat([pool.model(features) for pool in self.pool_layers], dim=1)[0]


def random_network(seed: int) -> NISQANetwork:
    """A `NISQANetwork` with seeded random weights for tests and latency: PyTorch's default initialisation
    gives nearly the same output for every input (relative spread about 0.002), so every weight is drawn
    with a standard deviation of 3 / sqrt(fan-in), layer-norm gains around 1 without offsets, batch-norm
    statistics near identity, and output biases 0."""
    network = NISQANetwork()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in network.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0, generator=generator)
            elif name.endswith("linear3.bias"):
                tensor.zero_()
            elif tensor.dim() >= 2:
                tensor.normal_(0.0, 3.0 / tensor[0].numel() ** 0.5, generator=generator)
            elif "norm" in name:
                tensor.normal_(1.0, 0.5, generator=generator) if name.endswith("weight") else tensor.zero_()
            else:
                tensor.normal_(0.0, 0.3, generator=generator)
    return network


def network_config(args: Mapping[str, Any], where: str) -> NISQAConfig:
    """The network sizes of a checkpoint's ``args``; WeightsError when its recipe is not this one."""
    differing = {k: args.get(k, "absent") for k, v in EXPECTED_ARGS.items() if args.get(k, "absent") != v}
    if differing:
        raise WeightsError(f"{where}: not the NISQA_DIM recipe agomni implements (differs in {differing})")
    try:
        return NISQAConfig(
            channels=(int(args["cnn_c_out_1"]), int(args["cnn_c_out_2"]), int(args["cnn_c_out_3"])),
            pools=tuple(tuple(int(v) for v in args[f"cnn_pool_{k}"]) for k in (1, 2, 3)),
            d_model=int(args["td_sa_d_model"]),
            heads=int(args["td_sa_nhead"]),
            layers=int(args["td_sa_num_layers"]),
            feed_forward=int(args["td_sa_h"]),
            pool_hidden=int(args["pool_att_h"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise WeightsError(f"{where}: NISQA args incomplete ({err})") from err


class NISQA:
    """Scores clips with a `NISQANetwork`."""

    def __init__(self, network: NISQANetwork, *, random_weights: bool, device: str = "cpu"):
        self.network = network.eval().to(device)
        self.device = device
        self.random_weights = random_weights
        self.backend = "agomni NISQA" + (RANDOM_BACKEND if random_weights else "")

    @classmethod
    def from_checkpoint(cls, path: str, device: str = "cpu") -> NISQA:
        """The authors' ``nisqa.tar`` (``{"args", "model_state_dict"}``), loaded without pickled code."""
        checkpoint = load_checkpoint(path)
        try:
            args, state = checkpoint["args"], checkpoint["model_state_dict"]
        except (KeyError, TypeError) as err:
            raise WeightsError(f"{path}: not a NISQA checkpoint ({err})") from err
        network = NISQANetwork(network_config(args, str(path)))
        load_strict(network, state, where=str(path), optional_suffixes=("num_batches_tracked",))
        return cls(network, random_weights=False, device=device)

    @torch.no_grad()
    def score(self, audio: np.ndarray, sample_rate: int) -> dict[str, float]:
        """The five outputs of one mono clip at its own rate."""
        segs = segments(mel_spectrogram(audio, sample_rate))
        out = self.network(segs.to(self.device)).cpu()
        return {name: float(out[k]) for k, name in enumerate(OUTPUTS)}


def nisqa(
    clips: Sequence[tuple[np.ndarray, int]],
    model: NISQA,
    *,
    ids: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, SetScore]:
    """NISQA of each clip (``(mono float array, sample rate)``): one ``SetScore`` per output."""

    def score(item_id: str, clip: tuple[np.ndarray, int]) -> tuple[dict[str, float], tuple[str, ...]]:
        audio, rate = mono_float(clip[0], f"item {item_id}"), clip[1]
        return model.score(audio, rate), non_speech_flags(audio, rate)

    return score_clips(
        clips, ids, score, OUTPUTS, "MOS (1-5)", RECIPE, model.backend, desc="NISQA", progress=progress
    )
