"""Flan-T5 text conditioner: the T5 encoder's last hidden states for a prompt (AudioGen-Omni's text stream).

AudioGen-Omni conditions on Flan-T5 text features (paper, Figure 1); agomni uses google/flan-t5-large,
whose width (d_model 1024) is the config's `text_dim`. The network is agomni's own T5 encoder (no
transformers at run time), with the parameter names of the Hugging Face checkpoint
(``shared.weight``, ``encoder.block.{i}.layer.{0,1}...``, ``encoder.final_layer_norm.weight``), so
``model.safetensors`` loads strictly; the decoder's keys are ignored. Recipe followed (T5 v1.1 /
Flan-T5, as in transformers' ``T5EncoderModel``): token embedding; per block a pre-norm (RMS norm
without mean or bias, eps 1e-6) self-attention without score scaling, with a learned bucketed
relative-position bias computed in the first block and shared by all, then a pre-norm gated-GELU
(tanh approximation) feed-forward; a final RMS norm. Tokenisation: the SentencePiece model
``spiece.model`` of the same repository, with ``</s>`` (id 1) appended and pad id 0, as T5's tokenizer does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ... import weights
from ...errors import UsageError, WeightsError
from ...weights import load_strict
from .loading import registry_state, select

FLAN_T5_WEIGHTS = "flan-t5-large"
FLAN_T5_TOKENIZER = "flan-t5-large-spiece"
PAD_ID = 0
EOS_ID = 1


@dataclass(frozen=True)
class T5EncoderConfig:
    """T5 encoder dimensions (names as in the Hugging Face config.json)."""

    vocab_size: int
    d_model: int
    d_kv: int
    d_ff: int
    num_layers: int
    num_heads: int
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6


# google/flan-t5-large config.json: gated-gelu (gelu_new), d_ff 2816, 24 layers, 16 heads of 64.
FLAN_T5_LARGE = T5EncoderConfig(
    vocab_size=32128, d_model=1024, d_kv=64, d_ff=2816, num_layers=24, num_heads=16
)


class RMSNorm(nn.Module):
    """T5's layer norm: x / sqrt(mean(x^2) + eps) * weight, statistics in float32, no mean, no bias."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.float().pow(2).mean(-1, keepdim=True)
        return self.weight * (x.float() * torch.rsqrt(variance + self.eps)).to(self.weight.dtype)


def relative_position_bucket(relative: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
    """Bidirectional T5 bucket of each (key - query) offset: half the buckets per direction, exact
    below num_buckets/4, logarithmic up to `max_distance`, the last bucket beyond."""
    half = num_buckets // 2
    bucket = (relative > 0).long() * half
    distance = relative.abs()
    exact = half // 2
    log_ratio = torch.log(distance.float().clamp(min=1) / exact) / math.log(max_distance / exact)
    far = (exact + (log_ratio * (half - exact)).long()).clamp(max=half - 1)
    return bucket + torch.where(distance < exact, distance, far)


class SelfAttention(nn.Module):
    def __init__(self, config: T5EncoderConfig, has_bias: bool):
        super().__init__()
        inner = config.num_heads * config.d_kv
        self.heads, self.d_kv = config.num_heads, config.d_kv
        self.q = nn.Linear(config.d_model, inner, bias=False)
        self.k = nn.Linear(config.d_model, inner, bias=False)
        self.v = nn.Linear(config.d_model, inner, bias=False)
        self.o = nn.Linear(inner, config.d_model, bias=False)
        if has_bias:
            self.relative_attention_bias = nn.Embedding(
                config.relative_attention_num_buckets, config.num_heads
            )
        self.config = config

    def position_bias(self, length: int, device: torch.device) -> torch.Tensor:
        """(1, heads, length, length) learned bias of each query/key offset."""
        pos = torch.arange(length, device=device)
        buckets = relative_position_bucket(
            pos[None, :] - pos[:, None],
            self.config.relative_attention_num_buckets,
            self.config.relative_attention_max_distance,
        )
        return self.relative_attention_bias(buckets).permute(2, 0, 1)[None]

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, self.d_kv).transpose(1, 2)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)).float() + bias  # T5: no 1/sqrt(d) scaling
        weights = scores.softmax(dim=-1).to(v.dtype)
        return self.o(torch.matmul(weights, v).transpose(1, 2).reshape(b, n, -1))


class AttentionLayer(nn.Module):
    def __init__(self, config: T5EncoderConfig, has_bias: bool):
        super().__init__()
        self.SelfAttention = SelfAttention(config, has_bias)
        self.layer_norm = RMSNorm(config.d_model, config.layer_norm_epsilon)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return x + self.SelfAttention(self.layer_norm(x), bias)


class GatedGelu(nn.Module):
    def __init__(self, config: T5EncoderConfig):
        super().__init__()
        self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wo(F.gelu(self.wi_0(x), approximate="tanh") * self.wi_1(x))


class FeedForwardLayer(nn.Module):
    def __init__(self, config: T5EncoderConfig):
        super().__init__()
        self.DenseReluDense = GatedGelu(config)
        self.layer_norm = RMSNorm(config.d_model, config.layer_norm_epsilon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.DenseReluDense(self.layer_norm(x))


class Block(nn.Module):
    def __init__(self, config: T5EncoderConfig, has_bias: bool):
        super().__init__()
        self.layer = nn.ModuleList([AttentionLayer(config, has_bias), FeedForwardLayer(config)])

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return self.layer[1](self.layer[0](x, bias))


class Stack(nn.Module):
    def __init__(self, config: T5EncoderConfig):
        super().__init__()
        self.block = nn.ModuleList([Block(config, has_bias=i == 0) for i in range(config.num_layers)])
        self.final_layer_norm = RMSNorm(config.d_model, config.layer_norm_epsilon)


class T5Encoder(nn.Module):
    """T5 encoder: token ids (B, L) and mask (B, L) (1 = token, 0 = padding) -> hidden states (B, L, d_model)."""

    def __init__(self, config: T5EncoderConfig):
        super().__init__()
        self.config = config
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = Stack(config)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.shared(ids)
        attention = self.encoder.block[0].layer[0].SelfAttention
        bias = attention.position_bias(ids.shape[1], ids.device)
        blocked = torch.finfo(torch.float32).min
        bias = bias + (1.0 - mask[:, None, None, :].float()) * blocked
        for block in self.encoder.block:
            x = block(x, bias)
        return self.encoder.final_layer_norm(x)


# Keys of a full T5 checkpoint that the encoder does not use (decoder, LM head, the tied embedding copy).
_IGNORED = ("decoder.", "lm_head.", "encoder.embed_tokens.")


def t5_encoder_state(state: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """The encoder's entries of a Hugging Face T5 checkpoint: ``shared.weight`` (else the tied
    ``encoder.embed_tokens.weight``) and ``encoder.*`` except ``encoder.embed_tokens``."""
    embedding = state.get("shared.weight", state.get("encoder.embed_tokens.weight"))
    if embedding is None:
        raise WeightsError(f"{where}: neither 'shared.weight' nor 'encoder.embed_tokens.weight' is present")
    rest = {k: v for k, v in state.items() if k not in ("shared.weight", "encoder.embed_tokens.weight")}
    encoder = select(rest, "encoder.", ("decoder.", "lm_head."), where)
    return {"shared.weight": embedding, **{f"encoder.{k}": v for k, v in encoder.items()}}


class SentencePieceTokenizer:
    """T5 tokenisation with a SentencePiece model file: pieces' ids + ``</s>``, padded with id 0."""

    def __init__(self, model_file: str | Path):
        try:
            import sentencepiece
        except ImportError as err:
            raise UsageError(
                "the Flan-T5 text encoder needs the sentencepiece package: pip install 'agomni[encoders]' "
                "(or pip install sentencepiece)"
            ) from err
        self.path = Path(model_file)
        self._sp = sentencepiece.SentencePieceProcessor(model_file=str(self.path))

    def encode(self, prompts: Sequence[str], length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids (B, length) long, mask (B, length) long). UsageError for an empty prompt or one whose
        tokens (with ``</s>``) exceed `length`."""
        ids = torch.full((len(prompts), length), PAD_ID, dtype=torch.long)
        mask = torch.zeros(len(prompts), length, dtype=torch.long)
        for i, prompt in enumerate(prompts):
            if not prompt.strip():
                raise UsageError(f"prompt {i} is empty; mark text absent instead of encoding an empty prompt")
            tokens = [*self._sp.encode(prompt), EOS_ID]
            if len(tokens) > length:
                raise UsageError(f"prompt {i} has {len(tokens)} T5 tokens (with </s>), more than {length}")
            ids[i, : len(tokens)] = torch.tensor(tokens)
            mask[i, : len(tokens)] = 1
        return ids, mask


class FlanT5TextConditioner:
    """`TextConditioner` with Flan-T5: prompts -> (B, length, d_model) last hidden states, float32.

    Padding positions (after ``</s>``) are zero, like the stand-in's; a prompt longer than `length`
    tokens is a UsageError, never cut. `random_weights` is True only for an encoder built without a
    checkpoint (tests); `checkpoint_sha256` / `tokenizer_sha256` are the SHA-256 of the files it was loaded from.
    """

    def __init__(
        self,
        encoder: T5Encoder,
        tokenizer: SentencePieceTokenizer,
        *,
        length: int = 77,
        random_weights: bool,
        checkpoint_sha256: str | None = None,
        tokenizer_sha256: str | None = None,
        device: str | torch.device = "cpu",
    ):
        self.encoder = encoder.eval().to(device)
        self.tokenizer = tokenizer
        self.length = length
        self.text_dim = encoder.config.d_model
        self.random_weights = random_weights
        self.checkpoint_sha256 = checkpoint_sha256
        self.tokenizer_sha256 = tokenizer_sha256
        self.device = torch.device(device)

    @classmethod
    def from_registry(
        cls,
        *,
        length: int = 77,
        device: str | torch.device = "cpu",
        weights_name: str = FLAN_T5_WEIGHTS,
        tokenizer_name: str = FLAN_T5_TOKENIZER,
        config: T5EncoderConfig = FLAN_T5_LARGE,
    ) -> FlanT5TextConditioner:
        """Flan-T5-large from the weights registry (OfflineError naming `agomni weights import` when a
        file is neither cached nor downloadable)."""
        tokenizer = SentencePieceTokenizer(weights.resolve(tokenizer_name))
        state, sha = registry_state(weights_name)
        with torch.device("meta"):
            encoder = T5Encoder(config)
        load_strict(encoder, t5_encoder_state(state, weights_name), where=weights_name, assign=True)
        return cls(
            encoder,
            tokenizer,
            length=length,
            random_weights=False,
            checkpoint_sha256=sha,
            tokenizer_sha256=weights.sha256_of(tokenizer_name),
            device=device,
        )

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        ids, mask = self.tokenizer.encode(prompts, self.length)
        with torch.inference_mode():
            hidden = self.encoder(ids.to(self.device), mask.to(self.device)).float()
            return hidden * mask.to(self.device)[..., None]
