"""MS-CLAP 2023 (Microsoft CLAP, ``msclap`` 1.3.4 ``version='2023'``): audio and text towers, 1024-d.

Own implementation with msclap's parameter names, so that its checkpoint (``CLAP_weights_2023.pth``,
``{"model": state_dict}``) loads into each tower strictly, without ``msclap`` or ``transformers``;
tests/metrics/test_ms_clap.py proves equality with msclap's own ``CLAPWrapper`` on the same random weights.

Audio tower (``audio_encoder.*``): HTSAT-tiny (`agomni.metrics.embedders.clap.Htsat`: embed 96, depths
2-2-6-2, token-semantic head) under ``base.htsat``, then ``projection``. msclap's ``HTSATWrapper`` ignores
the rates of its config file and builds the front end from HTSAT's own ``config.py``: STFT n_fft 1024,
hop 320, and a mel matrix for **32 kHz**, 64 bands, 50-14000 Hz, although the audio it is fed is at
44.1 kHz. Those are the checkpoint's own tensors; random weights rebuild them the same way. A 7 s clip
(308700 samples) gives 965 frames, stretched to 1024 (bicubic) as in laion-clap's HTSAT; the embedding
is the mean of the final normalised tokens (``latent_output``).

Text tower (``caption_encoder.*``): GPT-2 (``base``: 12 layers, width 768, 12 heads, 1024 positions,
vocabulary 50257, tanh-GELU, LayerNorm eps 1e-5) read at ``count(ids != 0) - 1`` (see
`agomni.metrics.embedders.gpt2_bpe`), then ``projection``. Attention is causal, so the read-out position
never sees the padding that follows it; the attention mask therefore changes nothing and is not used.

``Projection`` (both towers): ``LayerNorm(l1(x) + l2(gelu(l1(x))))``, no biases in ``l1`` / ``l2``; the
dropout between is off at inference. ``logit_scale`` is not used (the score is a cosine).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from agomni import weights
from agomni.errors import WeightsError
from agomni.metrics.embedders.clap import HTSAT_TINY, Htsat, MelFrontEnd, init_random, numpy_scalar_globals
from agomni.metrics.embedders.common import weights_info
from agomni.metrics.embedders.gpt2_bpe import text_positions
from agomni.weights import load_strict

REGISTRY_ENTRY = "ms-clap-2023"
SAMPLE_RATE = 44100
DURATION_S = 7
CLIP_SAMPLES = SAMPLE_RATE * DURATION_S
#: msclap's HTSAT front end (HTSAT's config.py, not msclap's config_2023.yml): hop 320, mel for 32 kHz.
FRONT = MelFrontEnd(hop=320, mel_rate=32000, f_max=14000.0)
AUDIO_WIDTH = 768
JOINT_DIM = 1024
TOWERS = {"audio": "audio_encoder.", "text": "caption_encoder."}
#: In the checkpoint, used by neither tower: the contrastive temperature.
UNUSED = ("logit_scale",)
#: GPT-2 attention buffers older transformers saved with the weights (causal mask, its fill value): not
#: parameters, dropped when present.
GPT2_BUFFERS = (".attn.bias", ".attn.masked_bias")


@dataclass(frozen=True)
class Gpt2Size:
    """GPT-2 hyper-parameters (``transformers`` ``GPT2Config`` names); the default is ``gpt2``."""

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    layer_norm_epsilon: float = 1e-5


class Projection(nn.Module):
    """msclap's ``Projection``: ``LayerNorm(l1(x) + l2(gelu(l1(x))))``."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_in, d_out, bias=False)
        self.linear2 = nn.Linear(d_out, d_out, bias=False)
        self.layer_norm = nn.LayerNorm(d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.linear1(x)
        return self.layer_norm(first + self.linear2(F.gelu(first)))


class _Conv1D(nn.Module):
    """GPT-2's ``Conv1D``: a linear layer whose weight is stored [in, out]."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(d_in, d_out))
        self.bias = nn.Parameter(torch.zeros(d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)


class _Attention(nn.Module):
    def __init__(self, size: Gpt2Size) -> None:
        super().__init__()
        self.heads = size.n_head
        self.c_attn = _Conv1D(size.n_embd, 3 * size.n_embd)
        self.c_proj = _Conv1D(size.n_embd, size.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = (t.view(b, n, self.heads, -1).transpose(1, 2) for t in self.c_attn(x).split(c, dim=2))
        causal = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
        return self.c_proj((torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, n, c))


class _Mlp(nn.Module):
    def __init__(self, size: Gpt2Size) -> None:
        super().__init__()
        self.c_fc = _Conv1D(size.n_embd, 4 * size.n_embd)
        self.c_proj = _Conv1D(4 * size.n_embd, size.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class _Block(nn.Module):
    def __init__(self, size: Gpt2Size) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(size.n_embd, eps=size.layer_norm_epsilon)
        self.attn = _Attention(size)
        self.ln_2 = nn.LayerNorm(size.n_embd, eps=size.layer_norm_epsilon)
        self.mlp = _Mlp(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Gpt2(nn.Module):
    """GPT-2's transformer (``transformers`` ``GPT2Model`` names): ids [N, T] -> last hidden state."""

    def __init__(self, size: Gpt2Size) -> None:
        super().__init__()
        self.wte = nn.Embedding(size.vocab_size, size.n_embd)
        self.wpe = nn.Embedding(size.n_positions, size.n_embd)
        self.h = nn.ModuleList([_Block(size) for _ in range(size.n_layer)])
        self.ln_f = nn.LayerNorm(size.n_embd, eps=size.layer_norm_epsilon)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1], device=ids.device))
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


class _HtsatHolder(nn.Module):
    """msclap's ``HTSATWrapper``: the HTSAT under ``htsat``."""

    def __init__(self) -> None:
        super().__init__()
        self.htsat = Htsat(HTSAT_TINY, FRONT)


class MsClapAudio(nn.Module):
    """``audio_encoder``: [B, 308700] at 44.1 kHz -> [B, 1024] (not normalised)."""

    def __init__(self) -> None:
        super().__init__()
        self.base = _HtsatHolder()
        self.projection = Projection(AUDIO_WIDTH, JOINT_DIM)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.projection(self.base.htsat(waveform))


class MsClapText(nn.Module):
    """``caption_encoder``: GPT-2 ids [N, T] -> [N, 1024] (not normalised), read at `text_positions`."""

    def __init__(self, size: Gpt2Size | None = None) -> None:
        super().__init__()
        self.size = size or Gpt2Size()
        self.base = Gpt2(self.size)
        self.projection = Projection(self.size.n_embd, JOINT_DIM)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden = self.base(ids)
        return self.projection(hidden[torch.arange(ids.shape[0], device=ids.device), text_positions(ids)])


def split_towers(state: Mapping[str, torch.Tensor], where: str) -> dict[str, dict[str, torch.Tensor]]:
    """The tensors of an MS-CLAP state dict by tower (prefix removed); ``logit_scale`` and old GPT-2
    attention buffers dropped; any other key raises ``WeightsError`` naming it."""
    towers: dict[str, dict[str, torch.Tensor]] = {tower: {} for tower in TOWERS}
    unknown = []
    for key, value in state.items():
        tower = next((t for t, prefix in TOWERS.items() if key.startswith(prefix)), None)
        if tower is not None and not key.endswith(GPT2_BUFFERS):
            towers[tower][key[len(TOWERS[tower]) :]] = value
        elif tower is None and key not in UNUSED:
            unknown.append(key)
    if unknown:
        shown = ", ".join(unknown[:6]) + (f", ... ({len(unknown)} in all)" if len(unknown) > 6 else "")
        raise WeightsError(f"{where}: keys outside the MS-CLAP layout: {shown}")
    return towers


def _init_text(net: MsClapText, seed: int) -> None:
    """GPT-2's initialisation, seeded: normal std 0.02 for weights and embeddings, zero biases, unit
    LayerNorms."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if ".ln_" in name or "layer_norm" in name or name.startswith("base.ln_f"):
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.normal_(0.0, 0.02, generator=gen)


@dataclass(frozen=True)
class MsClapWeights:
    """Both towers of one MS-CLAP model, built and loaded, and where their weights came from."""

    audio: MsClapAudio
    text: MsClapText
    checkpoint: str
    weights: Mapping[str, Any]
    provenance: Mapping[str, Any] | None
    random_weights: bool
    seed: int

    @property
    def comparable_with_published(self) -> bool:
        return self.provenance is not None

    @classmethod
    def from_state_dict(
        cls,
        state: Mapping[str, torch.Tensor],
        *,
        text_size: Gpt2Size | None = None,
        where: str = "state_dict",
    ) -> MsClapWeights:
        """Towers loaded strictly from a state dict in msclap's layout (e.g. a test's)."""
        audio, text = _load(state, text_size, where)
        info = weights_info("state-dict-argument", name=REGISTRY_ENTRY)
        return cls(audio, text, "state-dict-argument", info, None, False, 0)

    @classmethod
    def from_registry(cls) -> MsClapWeights:
        """The registered checkpoint (verified cache; ``torch.load(weights_only=True)``, the ``model``
        entry, numpy scalars allowed as for LAION-CLAP checkpoints)."""
        where = f"{REGISTRY_ENTRY} ({weights.cached_path(weights.get_entry(REGISTRY_ENTRY))})"
        with numpy_scalar_globals():
            state = weights.load_entry_state_dict(REGISTRY_ENTRY)
        audio, text = _load(state, None, where)
        provenance = weights.provenance(REGISTRY_ENTRY)
        info = weights_info("registry", provenance=provenance)
        return cls(audio, text, provenance["sha256"], info, provenance, False, 0)

    @classmethod
    def random(cls, seed: int = 0) -> MsClapWeights:
        """Seeded random weights (tests and latency only): HTSAT as `init_random` does for LAION-CLAP,
        with msclap's front end; GPT-2 and the projections as `_init_text`."""
        audio, text = MsClapAudio(), MsClapText()
        init_random(audio, seed)
        _init_text(text, seed + 1)
        info = weights_info("random", seed=seed, name=REGISTRY_ENTRY)
        return cls(audio, text, f"random-weights:{seed}", info, None, True, seed)


def _load(
    state: Mapping[str, torch.Tensor], text_size: Gpt2Size | None, where: str
) -> tuple[MsClapAudio, MsClapText]:
    towers = split_towers(state, where)
    audio, text = MsClapAudio(), MsClapText(text_size)
    load_strict(audio, towers["audio"], where=f"{where} audio_encoder")
    load_strict(text, towers["text"], where=f"{where} caption_encoder")
    return audio, text


__all__ = [
    "CLIP_SAMPLES",
    "FRONT",
    "JOINT_DIM",
    "REGISTRY_ENTRY",
    "SAMPLE_RATE",
    "Gpt2",
    "Gpt2Size",
    "MsClapAudio",
    "MsClapText",
    "MsClapWeights",
    "Projection",
    "split_towers",
]
