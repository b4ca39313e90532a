"""SongEval (ASLP-lab/SongEval): five song-aesthetics scores on the MuQ music encoder, in agomni's own code.

Recipe (SongEval's eval.py and model.py, with MuQ-large-msd-iter as its backbone):

- Audio: 24 kHz mono (channels averaged; SongEval loads with librosa, whose default resampler is soxr
  "HQ"), the whole clip at once (no windows).
- MuQ features: a 128-band HTK mel power spectrogram (n_fft 2048, Hann window, hop 240, centred, reflect
  padding) in dB (10 log10 with floor 1e-10), its last frame dropped, normalised with the checkpoint's
  ``stat`` mean and std; two residual 2-D conv blocks (stride 2 x 2 each) and a linear layer to the
  encoder width; wav2vec2-conformer layers (half-step feed-forward, self-attention with rotary or
  relative positions as the configuration says, convolution module, half-step feed-forward, layer
  norm). SongEval reads ``hidden_states[6]``: the output of the 6th conformer layer (later layers are
  not computed).
- Head: a feed-forward layer (1024 -> 4096 -> 1024, ReLU) on every frame; four multi-head self-attention
  layers (8 heads, no residual connections) on its output; the time mean of their output concatenated
  with the time maximum of the feed-forward output; a linear layer to 5; ``tanh(x) * 2 + 3``.
- Outputs, in the head's order: coherence, musicality, memorability, clarity (of song structure),
  naturalness (of vocal breathing and phrasing). Scale 1-5, higher is better.

Per item: empty or non-finite audio and clips shorter than one conformer frame after subsampling
(``MIN_SECONDS``) are errors naming the item.

Weights (non-commercial only): MuQ-large-msd-iter (CC BY-NC 4.0: its ``config.json`` and
``model.safetensors``) and SongEval's head (CC BY-NC-SA 4.0, ``ckpt/model.safetensors``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from agomni.errors import MetricInputError, WeightsError
from agomni.metrics.speech.items import RANDOM_BACKEND, SetScore, mono_float, score_clips
from agomni.weights import load_checkpoint, load_strict

SAMPLE_RATE = 24000
HOP = 240
N_FFT = 2048
N_MELS = 128
LAYER = 6  # SongEval reads hidden_states[6]: the output of the 6th conformer layer
OUTPUTS = (
    "SONGEVAL_COHERENCE",
    "SONGEVAL_MUSICALITY",
    "SONGEVAL_MEMORABILITY",
    "SONGEVAL_CLARITY",
    "SONGEVAL_NATURALNESS",
)
MIN_SECONDS = 8 * HOP / SAMPLE_RATE  # enough mel frames for two stride-2 convolutions and one frame
RECIPE = (
    "SongEval (ASLP-lab): MuQ-large-msd-iter hidden_states[6] of the whole clip at 24 kHz, "
    "feed-forward + 4 self-attention layers, mean/max pooling, tanh*2+3"
)
_ACTIVATIONS = {"swish": F.silu, "silu": F.silu, "gelu": F.gelu, "relu": F.relu}
#: Checkpoint keys of MuQ that SongEval's features do not use (pre-training heads, unused modules).
_UNUSED = (
    "quantizer_",
    "linear.",
    "cls_token",
    "conformer.pos_conv_embed.",
    "conformer.layer_norm.",
    "conformer.embed_positions.",  # rotary frequencies: recomputed from the configuration
)


def mel_db(wav: torch.Tensor) -> torch.Tensor:
    """MuQ's input [B, 128, frames]: HTK mel power spectrogram in dB, the last frame dropped."""
    spec = torch.stft(
        wav.float(),
        N_FFT,
        hop_length=HOP,
        window=torch.hann_window(N_FFT, device=wav.device),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    bank = torchaudio.functional.melscale_fbanks(N_FFT // 2 + 1, 0.0, SAMPLE_RATE / 2, N_MELS, SAMPLE_RATE)
    mel = (spec.abs() ** 2).transpose(-1, -2) @ bank.to(wav.device)
    return 10.0 * torch.log10(mel.clamp(min=1e-10)).transpose(-1, -2)[..., :-1]


@dataclass(frozen=True)
class MuQConfig:
    """The MuQ sizes agomni reads from a MuQ ``config.json`` (its ``w2v2_config`` holds the conformer's)."""

    conv_dim: int
    encoder_dim: int
    encoder_depth: int
    heads: int
    intermediate: int
    kernel: int
    activation: str
    positions: str | None  # "rotary", "relative" or None
    rotary_base: float
    eps: float
    mean: float
    std: float

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> MuQConfig:
        try:
            w2v2, stat = data["w2v2_config"], data["stat"]
            if data.get("features", ["melspec_2048"]) != ["melspec_2048"] or data.get("label_rate", 25) != 25:
                raise WeightsError(f"{where}: a MuQ variant agomni does not implement ({data})")
            if data.get("n_mels", N_MELS) != N_MELS or data.get("hop_length", HOP) != HOP:
                raise WeightsError(f"{where}: MuQ mel settings differ from n_mels 128, hop 240")
            config = cls(
                conv_dim=int(data.get("conv_dim", 512)),
                encoder_dim=int(data.get("encoder_dim", 1024)),
                encoder_depth=int(data.get("encoder_depth", 12)),
                heads=int(w2v2["num_attention_heads"]),
                intermediate=int(w2v2["intermediate_size"]),
                kernel=int(w2v2["conv_depthwise_kernel_size"]),
                activation=str(w2v2["hidden_act"]),
                positions=w2v2.get("position_embeddings_type"),
                rotary_base=float(w2v2.get("rotary_embedding_base", 10000)),
                eps=float(w2v2.get("layer_norm_eps", 1e-5)),
                mean=float(stat["melspec_2048_mean"]),
                std=float(stat["melspec_2048_std"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise WeightsError(f"{where}: not a MuQ configuration ({err!r})") from err
        if config.activation not in _ACTIVATIONS or config.positions not in ("rotary", "relative", None):
            raise WeightsError(f"{where}: unsupported MuQ activation or position type ({config})")
        if config.encoder_depth < LAYER:
            raise WeightsError(
                f"{where}: MuQ has {config.encoder_depth} layers; SongEval reads layer {LAYER}"
            )
        return config


class _Res2d(nn.Module):
    def __init__(self, cin: int, cout: int, stride: tuple[int, int]):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, stride=stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv3 = nn.Conv2d(cin, cout, 3, padding=1, stride=stride)  # the shortcut (always resized here)
        self.bn3 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.bn3(self.conv3(x)))


class _Subsampling(nn.Module):
    def __init__(self, cfg: MuQConfig):
        super().__init__()
        self.conv = nn.Sequential(_Res2d(1, cfg.conv_dim, (2, 2)), _Res2d(cfg.conv_dim, cfg.conv_dim, (2, 2)))
        self.linear = nn.Linear(cfg.conv_dim * N_MELS // 4, cfg.encoder_dim)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:  # [B, mels, T] -> [B, T/4, C]
        x = self.conv(mel.unsqueeze(1))
        b, c, f, t = x.shape
        return self.linear(x.permute(0, 3, 1, 2).reshape(b, t, c * f))


class _FeedForward(nn.Module):
    def __init__(self, cfg: MuQConfig):
        super().__init__()
        self.intermediate_dense = nn.Linear(cfg.encoder_dim, cfg.intermediate)
        self.output_dense = nn.Linear(cfg.intermediate, cfg.encoder_dim)
        self.act = _ACTIVATIONS[cfg.activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_dense(self.act(self.intermediate_dense(x)))


class _ConvModule(nn.Module):
    def __init__(self, cfg: MuQConfig):
        super().__init__()
        width = cfg.encoder_dim
        self.layer_norm = nn.LayerNorm(width)
        self.pointwise_conv1 = nn.Conv1d(width, 2 * width, 1, bias=False)
        pad = (cfg.kernel - 1) // 2
        self.depthwise_conv = nn.Conv1d(width, width, cfg.kernel, padding=pad, groups=width, bias=False)
        self.batch_norm = nn.BatchNorm1d(width)
        self.pointwise_conv2 = nn.Conv1d(width, width, 1, bias=False)
        self.act = _ACTIVATIONS[cfg.activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.glu(self.pointwise_conv1(self.layer_norm(x).transpose(1, 2)), dim=1)
        y = self.act(self.batch_norm(self.depthwise_conv(y)))
        return self.pointwise_conv2(y).transpose(1, 2)


class _Attention(nn.Module):
    def __init__(self, cfg: MuQConfig):
        super().__init__()
        width = cfg.encoder_dim
        self.heads, self.size = cfg.heads, width // cfg.heads
        self.positions, self.rotary_base = cfg.positions, cfg.rotary_base
        self.linear_q = nn.Linear(width, width)
        self.linear_k = nn.Linear(width, width)
        self.linear_v = nn.Linear(width, width)
        self.linear_out = nn.Linear(width, width)
        if self.positions == "relative":
            self.linear_pos = nn.Linear(width, width, bias=False)
            self.pos_bias_u = nn.Parameter(torch.zeros(self.heads, self.size))
            self.pos_bias_v = nn.Parameter(torch.zeros(self.heads, self.size))

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C] -> [B, H, T, D]
        return x.view(x.shape[0], x.shape[1], self.heads, self.size).transpose(1, 2)

    def _rotate(self, x: torch.Tensor) -> torch.Tensor:
        """Rotary positions applied to the attention input, per head, before the q / k projections."""
        b, t, _ = x.shape
        inv_freq = 1.0 / (self.rotary_base ** (torch.arange(0, self.size, 2).float() / self.size))
        angles = torch.arange(t, dtype=torch.float32)[:, None] * inv_freq
        angles = torch.cat((angles, angles), dim=-1)[None, :, None, :].to(x.device)
        heads = x.view(b, t, self.heads, self.size)
        half = self.size // 2
        turned = torch.cat((-heads[..., half:], heads[..., :half]), dim=-1)
        return (heads * angles.cos() + turned * angles.sin()).reshape(b, t, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qk = self._rotate(x) if self.positions == "rotary" else x
        q, k, v = (
            self._split(self.linear_q(qk)),
            self._split(self.linear_k(qk)),
            self._split(self.linear_v(x)),
        )
        scale = self.size**-0.5
        if self.positions == "relative":
            t = x.shape[1]
            offsets = torch.arange(t - 1, -t, -1, dtype=torch.float32)[
                :, None
            ]  # relative positions t-1 .. 1-t
            div = torch.exp(torch.arange(0, x.shape[2], 2).float() * -(math.log(10000.0) / x.shape[2]))
            table = torch.stack((torch.sin(offsets * div), torch.cos(offsets * div)), dim=-1).flatten(1)
            pos = self._split(self.linear_pos(table.to(x)[None]))[0]  # [H, 2t-1, D]
            bd = (q + self.pos_bias_v[None, :, None]) @ pos.transpose(-1, -2)[None]  # [B, H, t, 2t-1]
            index = (t - 1) - torch.arange(t)[:, None] + torch.arange(t)[None, :]  # query i, key j
            bias = bd.gather(-1, index.to(x.device).expand(*bd.shape[:2], t, t)) * scale
            q = q + self.pos_bias_u[None, :, None]
        else:
            bias = None
        scores = (q @ k.transpose(-1, -2)) * scale
        if bias is not None:
            scores = scores + bias
        out = torch.softmax(scores, dim=-1) @ v
        return self.linear_out(out.transpose(1, 2).reshape(x.shape))


class _ConformerLayer(nn.Module):
    def __init__(self, cfg: MuQConfig):
        super().__init__()
        width = cfg.encoder_dim
        self.ffn1_layer_norm = nn.LayerNorm(width)
        self.ffn1 = _FeedForward(cfg)
        self.self_attn_layer_norm = nn.LayerNorm(width)
        self.self_attn = _Attention(cfg)
        self.conv_module = _ConvModule(cfg)
        self.ffn2_layer_norm = nn.LayerNorm(width)
        self.ffn2 = _FeedForward(cfg)
        self.final_layer_norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.ffn1(self.ffn1_layer_norm(x))
        x = x + self.self_attn(self.self_attn_layer_norm(x))
        x = x + self.conv_module(x)
        x = x + 0.5 * self.ffn2(self.ffn2_layer_norm(x))
        return self.final_layer_norm(x)


class _Conformer(nn.Module):
    def __init__(self, cfg: MuQConfig, depth: int):
        super().__init__()
        self.layers = nn.ModuleList(_ConformerLayer(cfg) for _ in range(depth))


class MuQFeatures(nn.Module):
    """MuQ up to the layer SongEval reads, with MuQ's parameter names (``conv.*``, ``conformer.layers.*``)."""

    def __init__(self, cfg: MuQConfig):
        super().__init__()
        self.cfg = cfg
        self.conv = _Subsampling(cfg)
        self.conformer = _Conformer(cfg, LAYER)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """``hidden_states[6]`` [B, frames, C] of 24 kHz waveforms [B, samples]."""
        x = self.conv((mel_db(wav) - self.cfg.mean) / self.cfg.std)
        for layer in self.conformer.layers:
            x = layer(x)
        return x


class SongEvalHead(nn.Module):
    """SongEval's scoring head with its parameter names (``ffd.*``, ``attn.<k>.*``, ``fc.*``)."""

    def __init__(self, width: int = 1024, hidden: int = 4096, layers: int = 4, heads: int = 8):
        super().__init__()
        self.attn = nn.ModuleList(
            nn.MultiheadAttention(width, heads, batch_first=True) for _ in range(layers)
        )
        self.ffd = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, width))
        self.fc = nn.Linear(2 * width, len(OUTPUTS))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Five scores [B, 5] of MuQ features [B, frames, width]."""
        x = self.ffd(features)
        y = x
        for attn in self.attn:
            y = attn(y, y, y, need_weights=False)[0]
        pooled = torch.cat((y.mean(dim=1), x.max(dim=1).values), dim=1)
        return torch.tanh(self.fc(pooled)) * 2.0 + 3.0


def muq_from_files(config_path: str | Path, weights_path: str | Path | None) -> MuQFeatures:
    """MuQ from its ``config.json`` and, unless None (random weights), its ``model.safetensors``."""
    try:
        data = json.loads(Path(config_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise WeightsError(f"{config_path}: unreadable MuQ configuration ({err})") from err
    network = MuQFeatures(MuQConfig.from_json(data, str(config_path)))
    if weights_path is not None:
        state = load_checkpoint(weights_path)
        state = {k.removeprefix("model."): v for k, v in state.items()}
        deep = tuple(f"conformer.layers.{k}." for k in range(LAYER, 64))
        kept = {k: v for k, v in state.items() if not k.startswith((*_UNUSED, *deep))}
        load_strict(network, kept, where=str(weights_path), optional_suffixes=("num_batches_tracked",))
    return network


def random_songeval(config_path: str | Path, seed: int, device: str = "cpu") -> SongEval:
    """SongEval with seeded random weights (tests and latency) on the MuQ size its ``config.json`` gives."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        muq = muq_from_files(config_path, None)
        head = SongEvalHead(width=muq.cfg.encoder_dim)
    return SongEval(muq, head, random_weights=True, device=device)


class SongEval:
    """MuQ features then SongEval's head, on one device."""

    sample_rate = SAMPLE_RATE

    def __init__(self, muq: MuQFeatures, head: SongEvalHead, *, random_weights: bool, device: str = "cpu"):
        self.muq, self.head = muq.eval().to(device), head.eval().to(device)
        self.device = device
        self.random_weights = random_weights
        self.backend = "agomni SongEval + MuQ" + (RANDOM_BACKEND if random_weights else "")

    @classmethod
    def from_files(
        cls, muq_config: str, muq_weights: str, head_weights: str, device: str = "cpu"
    ) -> SongEval:
        head = SongEvalHead()
        load_strict(head, load_checkpoint(head_weights), where=str(head_weights))
        return cls(muq_from_files(muq_config, muq_weights), head, random_weights=False, device=device)

    @torch.no_grad()
    def score(self, audio: np.ndarray) -> dict[str, float]:
        """The five scores of one mono 24 kHz clip."""
        if len(audio) < MIN_SECONDS * SAMPLE_RATE:
            raise MetricInputError(
                f"{len(audio) / SAMPLE_RATE:.3f} s: shorter than SongEval's minimum {MIN_SECONDS:.2f} s"
            )
        wav = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None].to(self.device)
        out = self.head(self.muq(wav))[0].cpu()
        return {name: float(out[k]) for k, name in enumerate(OUTPUTS)}


def songeval(
    clips: Sequence[np.ndarray], model: SongEval, *, ids: Sequence[str] | None = None, progress: bool = False
) -> dict[str, SetScore]:
    """SongEval of each clip (mono 24 kHz float arrays): one ``SetScore`` per output."""

    def score(item_id: str, clip: np.ndarray) -> tuple[dict[str, float], tuple[str, ...]]:
        return model.score(mono_float(clip, f"item {item_id}")), ()

    return score_clips(
        clips, ids, score, OUTPUTS, "score (1-5)", RECIPE, model.backend, desc="SongEval", progress=progress
    )
