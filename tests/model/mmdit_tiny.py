"""Shared builders for the reference-model tests: a tiny network with every weight randomised, and inputs."""

from __future__ import annotations

import torch
from torch import nn

from agomni.model import AgomniMMDiT, ModalityPresence, model_config


def random_tiny(name: str = "tiny-16k", duration_s: float = 1.0, seed: int = 0) -> AgomniMMDiT:
    """A tiny network whose zero-initialised parts (adaLN, final conv, nulls) are randomised too,
    so that every path of the network affects the output."""
    torch.manual_seed(seed)
    model = AgomniMMDiT(model_config(name, duration_s))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, p[0].numel() ** -0.5 if p.ndim > 1 else 0.1)  # unit-gain weights
        for m in model.modules():
            if isinstance(m, nn.RMSNorm):
                m.weight.normal_(1.0, 0.1)
    return model.eval()


def random_inputs(model: AgomniMMDiT, batch: int, seed: int = 1, text_len: int | None = None) -> dict:
    """Random clip/sync/text features and LT ids (with some filler) of the shapes the model expects."""
    g = torch.Generator().manual_seed(seed)
    cfg, seq = model.config, model.sequence
    ids = torch.randint(1, cfg.lt_vocab_size, (batch, seq.latent_len), generator=g)
    ids[:, seq.latent_len // 2 :] = 0
    return {
        "clip_f": torch.randn(batch, seq.clip_len, cfg.clip_dim, generator=g),
        "sync_f": torch.randn(batch, seq.sync_len, cfg.sync_dim, generator=g),
        "text_f": torch.randn(batch, text_len or cfg.text_len, cfg.text_dim, generator=g),
        "lt_ids": ids,
    }


def random_latent(model: AgomniMMDiT, batch: int, seed: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, model.sequence.latent_len, model.config.latent_dim, generator=g)


def presence(video: list[bool], text: list[bool], lt: list[bool]) -> ModalityPresence:
    return ModalityPresence(video=torch.tensor(video), text=torch.tensor(text), lt=torch.tensor(lt))
