"""LAION-CLAP audio embeddings (HTSAT, fusion-less) at 48 kHz: 512-d, L2-normalised.

Used for FD-CLAP / FAD-CLAP (fadtk ``clap-laion-audio`` / ``clap-laion-music``) and for the audio side of
the CLAP score (av-benchmark / MMAudio; `agomni.metrics.text_audio`). The checkpoint is read once for both
towers (`load_clap_weights`); the text tower (RoBERTa + ``text_projection``) is
`agomni.metrics.embedders.clap_text`. Neither needs the ``transformers`` package.

Own implementation, not a wrapper: laion-clap 1.1.7 declares ``numpy<2`` (installing it with its
dependencies would change numpy), imports torchvision and transformers, and builds the RoBERTa text
encoder from the Hugging Face hub whenever ``CLAP_Module`` is constructed. HTSAT is re-derived here from
laion-clap's published ``clap_module/htsat.py`` (fusion-less path) and torchlibrosa's ``Spectrogram`` /
``LogmelFilterBank``; tests/metrics/test_clap.py proves equality with the upstream ``CLAP_Module`` (same
random weights, 1e-4 relative) on resampled stereo files, each side with its own preprocessing.
Runtime needs only torch and numpy.

Checkpoints (``model``): ``"630k-audioset-best"`` (HTSAT-tiny, 96-d patches, depths 2-2-6-2, 768-d
audio feature; fadtk ``clap-laion-audio``), ``"music-audioset-90.14"`` (HTSAT-base, 128-d, depths
2-2-12-2, 1024-d; fadtk ``clap-laion-music``), ``"music-speech-audioset-89.98"`` (HTSAT-base;
av-benchmark/MMAudio CLAP score). The official files hold ``{"state_dict": {"module.<name>": tensor}}``
plus numpy scalars (``epoch`` etc.). They are loaded with ``torch.load(weights_only=True)`` with exactly
these extra globals allowed, for the duration of that one call (``torch.serialization.safe_globals``):
``numpy.core.multiarray.scalar`` / ``numpy._core.multiarray.scalar`` (numpy's scalar constructor from a
dtype and raw bytes), ``numpy.dtype`` and the DType classes of the bool / integer / float dtypes (numpy
>= 1.25 rebuilds a dtype as e.g. ``numpy.dtypes.Float64DType``). All of them only rebuild plain data; numpy
arrays (``_reconstruct``), object dtypes and every other global stay refused, and full pickle is never
enabled. ``module.audio_branch.*`` + ``module.audio_projection.*`` (audio tower) and
``module.text_branch.*`` + ``module.text_projection.*`` (text tower) are each loaded strictly into their
tower (every key and shape must match); the training heads and temperatures (``text_transform``,
``audio_transform``, ``logit_scale_a``, ``logit_scale_t``) are left unused; any key outside these groups
is an error.

Front end (`agomni.metrics.embedders.logmel`, the checkpoint's own tensors): reflect-pad 512, Conv1d DFT
with periodic Hann (n_fft 1024, hop 480) -> power -> ``melW`` (Slaney mel, 64 bands, 50-14000 Hz) ->
``10 log10(max(x, 1e-10))`` -> ``bn0`` (BatchNorm over mel bins, running statistics) -> bicubic resize
(align_corners) of the 1001 frames to 1024 -> 4 x 256-frame strips stacked into a 256 x 256 image.
Network: Swin transformer (patch 4, window 8, shift 4 on odd blocks, patch merging), final LayerNorm,
mean over tokens -> ``audio_projection`` (Linear, ReLU, Linear -> 512) -> L2 normalisation.

Profiles (``profile``):

- ``"av-benchmark"`` (CLAP score of av-benchmark / MMAudio; ``get_audio_embedding_from_data(x,
  use_tensor=True)``): no int16 round trip; clips shorter than 10 s (480000 samples) are repeat-padded as
  laion-clap does (``int(480000 / n)`` whole copies, then zeros); longer clips are cropped. laion-clap crops
  at a uniformly random offset (``rand_trunc``); here the crop is deterministic: **the first 10 s**
  (the crop rand_trunc makes when its offset is 0, and the part av-benchmark keeps when it cuts files to
  their first ``audio_length`` seconds). Output: clip level [B, 512].
- ``"fadtk"`` (fadtk ``CLAPLaionModel._get_embedding``): int16 round trip (clip to [-1, 1], ``* 32767``,
  truncate toward zero, ``/ 32767``), then 10 s chunks starting every 1 s over the whole clip
  (``ceil(n / 48000)`` chunks), each zero-padded to 10 s. Output: frame level [B, chunks, 512].
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agomni import weights
from agomni.errors import UsageError, WeightsError
from agomni.metrics.embedders import Embedder, clap_text
from agomni.metrics.embedders.clap_text import ClapTextNet
from agomni.metrics.embedders.common import GeluMlp, check_network_options, weights_info
from agomni.metrics.embedders.logmel import LogmelFilterBank, Spectrogram
from agomni.weights import load_strict

SAMPLE_RATE = 48000
CLIP_SAMPLES = 480000
N_FFT = 1024
HOP_LENGTH = 480
N_MELS = 64
F_MIN = 50.0
F_MAX = 14000.0
SPEC_SIZE = 256
FREQ_RATIO = SPEC_SIZE // N_MELS  # 4
PATCH = 4
WINDOW = 8
NUM_HEADS = (4, 8, 16, 32)
N_CLASSES = 527
JOINT_DIM = 512
FADTK_HOP_SAMPLES = SAMPLE_RATE
INT16_SCALE = 32767.0
VERSION = "1"
#: numpy scalar types whose dtype class may be rebuilt while loading a checkpoint (bool, ints, floats).
NUMPY_SCALAR_CODES: tuple[str, ...] = ("?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8")

Profile = Literal["av-benchmark", "fadtk"]
PROFILES: tuple[str, ...] = ("av-benchmark", "fadtk")
#: The official checkpoint's top-level groups: each tower's, and those no embedding uses (the contrastive
#: training heads and temperatures).
TOWER_GROUPS: dict[str, tuple[str, ...]] = {
    "audio": ("audio_branch.", "audio_projection."),
    "text": ("text_branch.", "text_projection."),
}
UNUSED_GROUPS: tuple[str, ...] = ("text_transform.", "audio_transform.", "logit_scale_a", "logit_scale_t")
Tower = Literal["audio", "text"]


@dataclass(frozen=True)
class HtsatSize:
    """HTSAT width and depths: ``tiny`` (embed 96, 2-2-6-2) or ``base`` (embed 128, 2-2-12-2)."""

    name: str
    embed_dim: int
    depths: tuple[int, ...]

    @property
    def num_features(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)


HTSAT_TINY = HtsatSize("HTSAT-tiny", 96, (2, 2, 6, 2))


@dataclass(frozen=True)
class MelFrontEnd:
    """The torchlibrosa front end's settings: STFT hop and the rate / upper edge its mel matrix is built
    for (n_fft 1024, 64 Slaney bands from 50 Hz in every variant)."""

    hop: int
    mel_rate: int
    f_max: float


#: laion-clap: hop 480 at 48 kHz, bands up to 14 kHz.
LAION_FRONT = MelFrontEnd(HOP_LENGTH, SAMPLE_RATE, F_MAX)
HTSAT_BASE = HtsatSize("HTSAT-base", 128, (2, 2, 12, 2))

#: model name -> (registry entry, HTSAT size, reference recipe)
MODELS: dict[str, tuple[str, HtsatSize, str]] = {
    "630k-audioset-best": ("laion-clap-630k-audioset-best", HTSAT_TINY, "fadtk clap-laion-audio"),
    "music-audioset-90.14": ("laion-clap-music-audioset-90.14", HTSAT_BASE, "fadtk clap-laion-music"),
    "music-speech-audioset-89.98": (
        "laion-clap-music-speech-audioset-89.98",
        HTSAT_BASE,
        "av-benchmark / MMAudio LAION-CLAP score",
    ),
}


@contextmanager
def numpy_scalar_globals() -> Iterator[None]:
    """Allow, within the block only, the numpy globals LAION-CLAP checkpoints pickle next to their
    tensors: numpy's scalar constructor (under its numpy 1 and numpy 2 module names), ``numpy.dtype`` and
    the DType classes of bool / integer / float dtypes. Arrays, object dtypes and anything else stay refused."""
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    allowed: list[Any] = [
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
        # numpy >= 1.25 rebuilds a dtype as an instance of its DType class (e.g. numpy.dtypes.Float64DType)
        *sorted({type(np.dtype(code)) for code in NUMPY_SCALAR_CODES}, key=lambda t: t.__name__),
    ]
    with torch.serialization.safe_globals(allowed):
        yield


# --- Swin transformer (HTSAT layout) -----------------------------------------------------------------


def _relative_position_index(window: int) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]


def _windows(x: torch.Tensor, window: int) -> torch.Tensor:
    """[B, H, W, C] -> [B, nW, window*window, C]."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // window) * (w // window), window * window, c)


def _unwindows(x: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    b, c = x.shape[0], x.shape[-1]
    x = x.view(b, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def _shift_mask(resolution: int, window: int, shift: int) -> torch.Tensor:
    """Swin's attention mask for shifted windows: 0 within a region, -100 across regions [nW, N, N]."""
    img = torch.zeros(1, resolution, resolution, 1)
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for hs in bounds:
        for ws in bounds:
            img[:, hs, ws, :] = label
            label += 1
    regions = _windows(img, window).reshape(-1, window * window)
    diff = regions.unsqueeze(1) - regions.unsqueeze(2)
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


class _WindowAttention(nn.Module):
    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.heads = heads
        self.window = window
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer("relative_position_index", _relative_position_index(window))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x [B, nW, N, C], mask [nW, N, N] or None -> [B, nW, N, C]."""
        b, nw, n, c = x.shape
        qkv = self.qkv(x).reshape(b, nw, n, 3, self.heads, c // self.heads).permute(3, 0, 1, 4, 2, 5)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B, nW, heads, N, d]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, -1).permute(2, 0, 1)[None, None]  # [1, 1, heads, N, N]
        if mask is not None:
            bias = bias + mask[None, :, None]
        attn = torch.softmax((q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1) + bias, dim=-1)
        out = (attn @ v).permute(0, 1, 3, 2, 4).reshape(b, nw, n, c)
        return self.proj(out)


class _SwinBlock(nn.Module):
    def __init__(self, dim: int, heads: int, resolution: int, shift: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.window = min(WINDOW, resolution)
        self.shift = 0 if resolution <= WINDOW else shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _WindowAttention(dim, heads, self.window)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = GeluMlp(dim)
        mask = _shift_mask(resolution, self.window, self.shift) if self.shift > 0 else None
        self.register_buffer("attn_mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        r = self.resolution
        h = self.norm1(x).view(b, r, r, c)
        if self.shift:
            h = torch.roll(h, shifts=(-self.shift, -self.shift), dims=(1, 2))
        h = _unwindows(self.attn(_windows(h, self.window), self.attn_mask), self.window, r, r)
        if self.shift:
            h = torch.roll(h, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + h.reshape(b, r * r, c)
        return x + self.mlp(self.norm2(x))


class _PatchMerging(nn.Module):
    def __init__(self, dim: int, resolution: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        x = x.view(b, self.resolution, self.resolution, c)
        parts = [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]]
        return self.reduction(self.norm(torch.cat(parts, dim=-1).reshape(b, -1, 4 * c)))


class _Stage(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, resolution: int, downsample: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [_SwinBlock(dim, heads, resolution, 0 if i % 2 == 0 else WINDOW // 2) for i in range(depth)]
        )
        self.downsample = _PatchMerging(dim, resolution) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x) if self.downsample is not None else x


class _PatchEmbed(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, dim, kernel_size=PATCH, stride=PATCH)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class Htsat(nn.Module):
    """Fusion-less HTSAT audio encoder with laion-clap's parameter names.

    ``forward(waveform [B, 480000]) -> [B, num_features]`` (mean of the final normalised tokens, laion's
    ``"embedding"`` output). ``tscam_conv`` and ``head`` (the AudioSet tagging head) are part of the
    checkpoint and loaded strictly, but not used for the embedding.
    """

    def __init__(self, size: HtsatSize, front: MelFrontEnd = LAION_FRONT) -> None:
        super().__init__()
        self.size = size
        self.spectrogram_extractor = Spectrogram(N_FFT, front.hop)
        self.logmel_extractor = LogmelFilterBank(front.mel_rate, N_FFT, N_MELS, F_MIN, front.f_max)
        self.bn0 = nn.BatchNorm2d(N_MELS)
        self.patch_embed = _PatchEmbed(size.embed_dim)
        grid = SPEC_SIZE // PATCH
        self.layers = nn.ModuleList(
            [
                _Stage(
                    size.embed_dim * 2**i,
                    depth,
                    NUM_HEADS[i],
                    grid // 2**i,
                    downsample=i < len(size.depths) - 1,
                )
                for i, depth in enumerate(size.depths)
            ]
        )
        self.norm = nn.LayerNorm(size.num_features)
        sf = SPEC_SIZE // 2 ** (len(size.depths) - 1) // PATCH // FREQ_RATIO
        self.tscam_conv = nn.Conv2d(size.num_features, N_CLASSES, kernel_size=(sf, 3), padding=(0, 1))
        self.head = nn.Linear(N_CLASSES, N_CLASSES)

    def image(self, waveform: torch.Tensor) -> torch.Tensor:
        """[B, 480000] -> the normalised log-mel 'image' [B, 1, 256, 256] the Swin layers see."""
        x = self.logmel_extractor(self.spectrogram_extractor(waveform))  # [B, 1, 1001, 64]
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        target_t = SPEC_SIZE * FREQ_RATIO
        if x.shape[2] < target_t:
            x = F.interpolate(x, (target_t, x.shape[3]), mode="bicubic", align_corners=True)
        b = x.shape[0]
        x = x.permute(0, 1, 3, 2).reshape(b, 1, N_MELS, FREQ_RATIO, target_t // FREQ_RATIO)
        return x.permute(0, 1, 3, 2, 4).reshape(b, 1, N_MELS * FREQ_RATIO, target_t // FREQ_RATIO)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(self.image(waveform))
        for stage in self.layers:
            x = stage(x)
        return self.norm(x).mean(dim=1)


class ClapAudioNet(nn.Module):
    """HTSAT audio branch + ``audio_projection``: [B, 480000] -> L2-normalised [B, 512]."""

    def __init__(self, size: HtsatSize) -> None:
        super().__init__()
        self.audio_branch = Htsat(size)
        self.audio_projection = nn.Sequential(
            nn.Linear(size.num_features, JOINT_DIM), nn.ReLU(), nn.Linear(JOINT_DIM, JOINT_DIM)
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.audio_projection(self.audio_branch(waveform)), dim=-1)


def split_state(state: Mapping[str, torch.Tensor], where: str) -> dict[str, dict[str, torch.Tensor]]:
    """The tensors of a LAION-CLAP state dict by tower (``"audio"``, ``"text"``; ``module.`` prefix removed
    when every key has it); the unused groups are dropped. Keys outside the known groups raise
    ``WeightsError`` naming them."""
    keys = list(state)
    prefix = "module." if keys and all(k.startswith("module.") for k in keys) else ""
    towers: dict[str, dict[str, torch.Tensor]] = {tower: {} for tower in TOWER_GROUPS}
    unknown = []
    for key, value in state.items():
        name = key[len(prefix) :]
        tower = next((t for t, groups in TOWER_GROUPS.items() if name.startswith(groups)), None)
        if tower is not None:
            towers[tower][name] = value
        elif not name.startswith(UNUSED_GROUPS):
            unknown.append(key)
    if unknown:
        shown = ", ".join(unknown[:6]) + (f", ... ({len(unknown)} in all)" if len(unknown) > 6 else "")
        raise WeightsError(f"{where}: keys outside the LAION-CLAP layout: {shown}")
    return towers


@dataclass(frozen=True)
class ClapWeights:
    """The tensors of one LAION-CLAP checkpoint by tower, and where they came from: ``checkpoint`` (the
    SHA-256, ``random-weights:<seed>`` or ``state-dict-argument``), ``weights`` (the embedders' provenance
    convention, `weights_info`), ``provenance`` (the registry record; None otherwise) and ``where`` (for
    error messages)."""

    model: str
    towers: Mapping[str, Mapping[str, torch.Tensor]]
    checkpoint: str
    weights: Mapping[str, Any]
    provenance: Mapping[str, Any] | None
    where: str
    random_weights: bool
    seed: int

    @property
    def comparable_with_published(self) -> bool:
        return self.provenance is not None

    def tower(self, name: Tower) -> Mapping[str, torch.Tensor]:
        """The tensors of tower ``name``; WeightsError when the checkpoint holds none."""
        if not self.towers.get(name):
            raise WeightsError(f"{self.where}: holds no {name} tower ({', '.join(TOWER_GROUPS[name])}*)")
        return self.towers[name]


def _random_state(tower: Tower, size: HtsatSize, seed: int) -> dict[str, torch.Tensor]:
    if tower == "audio":
        net: nn.Module = ClapAudioNet(size)
        init_random(net, seed)
    else:
        net = ClapTextNet()
        clap_text.init_random(net, torch.Generator().manual_seed(seed))
    return net.state_dict()


def load_clap_weights(
    model: str,
    *,
    towers: tuple[Tower, ...] = ("audio", "text"),
    random_weights: bool = False,
    seed: int = 0,
    state_dict: Mapping[str, torch.Tensor] | None = None,
) -> ClapWeights:
    """One LAION-CLAP checkpoint, read once for both towers: the registry file of ``model`` (``torch.load``
    with ``weights_only=True`` and the narrow numpy allowlist, see the module docstring), a state dict in
    the official layout (``state_dict``; e.g. from a test), or seeded random weights for ``towers`` (the
    others are not built)."""
    if model not in MODELS:
        raise UsageError(f"CLAP: unknown model {model!r}; choose one of {sorted(MODELS)}")
    if random_weights and state_dict is not None:
        raise UsageError("CLAP: pass random_weights or state_dict, not both")
    entry, size, _ = MODELS[model]
    if random_weights:
        return ClapWeights(
            model,
            {tower: _random_state(tower, size, seed) for tower in towers},
            f"random-weights:{seed}",
            weights_info("random", seed=seed, name=entry),
            None,
            f"{entry} (random weights, seed {seed})",
            True,
            seed,
        )
    if state_dict is not None:
        where = "CLAP state_dict"
        info = weights_info("state-dict-argument", name=entry)
        return ClapWeights(
            model, split_state(state_dict, where), "state-dict-argument", info, None, where, False, seed
        )
    where = f"{entry} ({weights.cached_path(weights.get_entry(entry))})"
    with numpy_scalar_globals():
        state = weights.load_entry_state_dict(entry)
    provenance = weights.provenance(entry)
    return ClapWeights(
        model,
        split_state(state, where),
        provenance["sha256"],
        weights_info("registry", provenance=provenance),
        provenance,
        where,
        False,
        seed,
    )


def init_random(net: nn.Module, seed: int) -> None:
    """Seeded random weights in laion-clap's style (truncated normal std 0.02 for Linear weights and
    relative-position tables, zero biases, unit LayerNorms, default convolutions and BatchNorm); the fixed
    torchlibrosa front end (built exact with the network, ``requires_grad`` off) is left as it is."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        modules = dict(net.named_modules())
        for name, p in net.named_parameters():
            owner = modules[name.rsplit(".", 1)[0]]
            if not p.requires_grad:
                continue
            elif isinstance(owner, nn.LayerNorm):
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif isinstance(owner, nn.BatchNorm2d):
                continue
            elif name.endswith("bias"):
                p.zero_()
            elif isinstance(owner, nn.Conv2d):
                bound = 1.0 / math.sqrt(p[0].numel())
                p.uniform_(-bound, bound, generator=gen)
            else:
                p.normal_(0.0, 0.02, generator=gen).clamp_(-0.04, 0.04)


def repeat_pad(x: torch.Tensor, length: int = CLIP_SAMPLES) -> torch.Tensor:
    """laion-clap's ``repeatpad`` for [B, n] with n < length: ``int(length / n)`` whole copies, then
    zeros to ``length``; clips of at least ``length`` samples keep their first ``length`` samples."""
    n = x.shape[-1]
    if n >= length:
        return x[..., :length]
    return F.pad(x.repeat(1, int(length / n)), (0, length - n * int(length / n)))


def int16_round_trip(x: torch.Tensor) -> torch.Tensor:
    """fadtk / laion-clap quantisation: clip to [-1, 1], ``* 32767``, truncate toward zero, ``/ 32767``."""
    return torch.trunc(torch.clamp(x, -1.0, 1.0) * INT16_SCALE) / INT16_SCALE


def fadtk_chunks(x: torch.Tensor) -> torch.Tensor:
    """[B, n] -> [B, ceil(n / 48000), 480000]: 10 s chunks starting every 1 s, zero-padded (fadtk)."""
    chunks = [x[:, s : s + CLIP_SAMPLES] for s in range(0, x.shape[-1], FADTK_HOP_SAMPLES)]
    return torch.stack([F.pad(c, (0, CLIP_SAMPLES - c.shape[-1])) for c in chunks], dim=1)


class ClapAudioEmbedder(Embedder):
    """LAION-CLAP audio embeddings at 48 kHz: [B, 512] (``av-benchmark``) or [B, chunks, 512] (``fadtk``).

    Build with ``ClapAudioEmbedder(model)`` (official checkpoint via ``agomni.weights``, see the module
    docstring for the narrow numpy allowlist), ``random_weights=True, seed=...`` (seeded random weights;
    not comparable with published numbers) or ``state_dict=...`` (official layout, e.g. from a test).
    Inference: float32, ``torch.inference_mode``, on ``device``, ``batch_size`` 10 s clips at a time.
    """

    sample_rate = SAMPLE_RATE
    version = VERSION

    def __init__(
        self,
        model: str = "630k-audioset-best",
        *,
        profile: Profile = "av-benchmark",
        device: str | torch.device = "cpu",
        batch_size: int = 8,
        random_weights: bool = False,
        seed: int = 0,
        state_dict: Mapping[str, torch.Tensor] | None = None,
        min_samples: int = N_FFT,
        clap_weights: ClapWeights | None = None,
    ) -> None:
        if model not in MODELS:
            raise UsageError(f"CLAP: unknown model {model!r}; choose one of {sorted(MODELS)}")
        if profile not in PROFILES:
            raise UsageError(f"CLAP: unknown profile {profile!r}; choose one of {PROFILES}")
        check_network_options("CLAP", batch_size, random_weights, state_dict)
        if clap_weights is None:
            clap_weights = load_clap_weights(
                model, towers=("audio",), random_weights=random_weights, seed=seed, state_dict=state_dict
            )
        elif random_weights or state_dict is not None:
            raise UsageError("CLAP: pass clap_weights, or random_weights / state_dict, not both")
        elif clap_weights.model != model:
            raise UsageError(f"CLAP: weights of {clap_weights.model!r} given for model {model!r}")
        _, size, recipe = MODELS[model]
        self.model = model
        self.size = size
        self.recipe = recipe
        self.profile = profile
        self.name = f"clap-laion-{model}-{profile}"
        self.output = "clip" if profile == "av-benchmark" else "frames"
        self.batch_size = batch_size
        self.min_samples = max(1, int(min_samples))
        self.random_weights = clap_weights.random_weights
        self.seed = clap_weights.seed
        self.device = torch.device(device)
        self.net = ClapAudioNet(size)
        load_strict(self.net, clap_weights.tower("audio"), where=clap_weights.where)
        self.checkpoint = clap_weights.checkpoint
        self.weights = dict(clap_weights.weights)
        self.provenance = None if clap_weights.provenance is None else dict(clap_weights.provenance)
        self.comparable_with_published = clap_weights.comparable_with_published
        self.net.to(self.device, torch.float32).eval()

    def config(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "arch": self.size.name,
            "checkpoint": self.checkpoint,
            "random_weights": self.random_weights,
            "seed": self.seed if self.random_weights else None,
            "profile": self.profile,
            "recipe": self.recipe,
            "clip_samples": CLIP_SAMPLES,
            "short_clips": "repeat-pad (laion-clap repeatpad)"
            if self.profile == "av-benchmark"
            else "zero-pad each chunk (fadtk)",
            "long_clips": "first 10 s (deterministic; laion-clap crops at random)"
            if self.profile == "av-benchmark"
            else "10 s chunks every 1 s (fadtk)",
            "int16_round_trip": self.profile == "fadtk",
            "n_fft": N_FFT,
            "hop_length": HOP_LENGTH,
            "n_mels": N_MELS,
            "f_min": F_MIN,
            "f_max": F_MAX,
            "normalised": "L2",
            "min_samples": self.min_samples,
        }

    @property
    def dim(self) -> int:
        """Size of the last axis of ``embed``'s output (512)."""
        return JOINT_DIM

    def _forward(self, clips: torch.Tensor) -> torch.Tensor:
        out = []
        for start in range(0, clips.shape[0], self.batch_size):
            out.append(self.net(clips[start : start + self.batch_size].to(self.device)).float().cpu())
        return torch.cat(out)

    @torch.inference_mode()
    def embed(self, waveform: torch.Tensor) -> torch.Tensor:
        """[B, samples] float32 at 48 kHz -> [B, 512] (av-benchmark) or [B, ceil(samples / 48000), 512]
        (fadtk), L2-normalised."""
        x = self.check_waveform(waveform, min_samples=self.min_samples)
        if self.profile == "av-benchmark":
            return self._forward(repeat_pad(x))
        chunks = fadtk_chunks(int16_round_trip(x))
        b, n = chunks.shape[:2]
        return self._forward(chunks.reshape(b * n, CLIP_SAMPLES)).reshape(b, n, JOINT_DIM)


__all__ = [
    "HTSAT_TINY",
    "LAION_FRONT",
    "MODELS",
    "PROFILES",
    "ClapAudioEmbedder",
    "ClapAudioNet",
    "ClapWeights",
    "Htsat",
    "MelFrontEnd",
    "fadtk_chunks",
    "init_random",
    "int16_round_trip",
    "load_clap_weights",
    "numpy_scalar_globals",
    "repeat_pad",
    "split_state",
]
