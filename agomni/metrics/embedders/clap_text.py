"""LAION-CLAP text tower: RoBERTa-base (``text_branch``) + ``text_projection`` -> L2-normalised [N, 512].

laion-clap (``tmodel="roberta"``, every released checkpoint) builds ``RobertaModel.from_pretrained(
'roberta-base')`` and embeds a caption as ``text_projection(pooler_output)``, normalised: the pooler is
``tanh(dense(h[:, 0]))`` over the last hidden state of the ``<s>`` token. The checkpoint holds the
fine-tuned RoBERTa under ``text_branch.*``; this module re-derives RoBERTa with the same parameter names
(``transformers``' ``RobertaModel`` layout), so the checkpoint loads strictly without ``transformers``.

RoBERTa-base: vocabulary 50265, width 768, 12 layers, 12 heads, feed-forward 3072 (exact GELU), 514
positions, one token type, LayerNorm eps 1e-5. Positions count real tokens only: ``cumsum(mask) * mask
+ pad_id`` with ``mask = ids != pad_id`` (pad id 1), as ``create_position_ids_from_input_ids`` does.
Attention ignores padding (additive mask). Checkpoints saved with transformers < 4.31 also hold the
buffer ``text_branch.embeddings.position_ids`` (``arange(514)``); it is checked and dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from agomni.errors import WeightsError
from agomni.weights import load_strict

VOCAB_SIZE = 50265
WIDTH = 768
LAYERS = 12
HEADS = 12
FEED_FORWARD = 3072
MAX_POSITIONS = 514
PAD_ID = 1
LAYER_NORM_EPS = 1e-5
JOINT_DIM = 512
POSITION_IDS_KEY = "text_branch.embeddings.position_ids"


class _Embeddings(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB_SIZE, WIDTH, padding_idx=PAD_ID)
        self.position_embeddings = nn.Embedding(MAX_POSITIONS, WIDTH, padding_idx=PAD_ID)
        self.token_type_embeddings = nn.Embedding(1, WIDTH)
        self.LayerNorm = nn.LayerNorm(WIDTH, eps=LAYER_NORM_EPS)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        real = (ids != PAD_ID).long()
        positions = torch.cumsum(real, dim=1) * real + PAD_ID
        x = (
            self.word_embeddings(ids)
            + self.position_embeddings(positions)
            + self.token_type_embeddings.weight[0]
        )
        return self.LayerNorm(x)


class _SelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query = nn.Linear(WIDTH, WIDTH)
        self.key = nn.Linear(WIDTH, WIDTH)
        self.value = nn.Linear(WIDTH, WIDTH)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = (
            proj(x).view(b, n, HEADS, -1).transpose(1, 2) for proj in (self.query, self.key, self.value)
        )
        scores = q @ k.transpose(-2, -1) / math.sqrt(WIDTH // HEADS) + bias
        return (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, n, WIDTH)


class _DenseNorm(nn.Module):
    """``LayerNorm(dense(x) + residual)``: RoBERTa's ``SelfOutput`` and ``Output``."""

    def __init__(self, width_in: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width_in, WIDTH)
        self.LayerNorm = nn.LayerNorm(WIDTH, eps=LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.self = _SelfAttention()
        self.output = _DenseNorm(WIDTH)


class _Intermediate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Linear(WIDTH, FEED_FORWARD)


class _Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = _Attention()
        self.intermediate = _Intermediate()
        self.output = _DenseNorm(FEED_FORWARD)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = self.attention.output(self.attention.self(x, bias), x)
        return self.output(F.gelu(self.intermediate.dense(x)), x)


class _Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.ModuleList([_Layer() for _ in range(LAYERS)])


class _Pooler(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Linear(WIDTH, WIDTH)


class Roberta(nn.Module):
    """RoBERTa-base with ``transformers``' parameter names: ``(ids, attention_mask) [N, L] -> pooler
    output [N, 768]``."""

    def __init__(self) -> None:
        super().__init__()
        self.embeddings = _Embeddings()
        self.encoder = _Encoder()
        self.pooler = _Pooler()

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(ids)
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.encoder.layer:
            x = layer(x, bias)
        return torch.tanh(self.pooler.dense(x[:, 0]))


class ClapTextNet(nn.Module):
    """``text_branch`` (RoBERTa) + ``text_projection`` (Linear, ReLU, Linear): tokens -> L2-normalised
    [N, 512]."""

    def __init__(self) -> None:
        super().__init__()
        self.text_branch = Roberta()
        self.text_projection = nn.Sequential(
            nn.Linear(WIDTH, JOINT_DIM), nn.ReLU(), nn.Linear(JOINT_DIM, JOINT_DIM)
        )

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_projection(self.text_branch(ids, attention_mask)), dim=-1)


def load_text_state(net: ClapTextNet, state: Mapping[str, torch.Tensor], where: str) -> None:
    """Load the ``text_branch.*`` / ``text_projection.*`` tensors strictly (every key and shape). The
    legacy ``position_ids`` buffer, when present, must be ``arange(514)``."""
    state = dict(state)
    legacy = state.pop(POSITION_IDS_KEY, None)
    if legacy is not None and not torch.equal(legacy.reshape(-1).long(), torch.arange(MAX_POSITIONS)):
        raise WeightsError(f"{where}: {POSITION_IDS_KEY} is not arange({MAX_POSITIONS})")
    load_strict(net, state, where=where)


def init_random(net: ClapTextNet, generator: torch.Generator) -> None:
    """Seeded random weights as RoBERTa initialises them (normal std 0.02 for Linear and Embedding
    weights, zero biases and padding rows, unit LayerNorms)."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()
            elif isinstance(module, nn.Linear | nn.Embedding):
                module.weight.normal_(0.0, 0.02, generator=generator)
                if isinstance(module, nn.Linear):
                    module.bias.zero_()
                elif module.padding_idx is not None:
                    module.weight[module.padding_idx].zero_()


__all__ = ["ClapTextNet", "Roberta", "init_random", "load_text_state"]
