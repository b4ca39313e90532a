"""The tiny mel VAE of the toy model: a short reconstruction + KL training on the corpus' training audio.

Recipe (ours): log-mel of each clip (codec front end, mel.py); per-mel-bin mean/std over all training
frames become the VAE's normalisation buffers; the loss is the L1 distance between the decoded and the
input log-mel, both normalised, plus `kl_weight` * KL(q(z|mel) || N(0, 1)) averaged per latent value,
with z sampled from the posterior; AdamW, constant lr, random mini-batches from a seeded generator.
Saved as <stem>.safetensors (the MelVAE state dict) + <stem>.json (VAEConfig, recipe, losses, seed).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from agomni.atomic import atomic_write

from ...errors import WeightsError
from ..checkpoint import file_sha256
from ..codec.audio_codec import CodecConfig, codec_config
from ..codec.mel import LogMel
from ..codec.vae import MelVAE, VAEConfig
from .config import VAETraining

VAE_FORMAT = "agomni-tiny-mel-vae/1"


def tiny_codec_config(hidden: int) -> CodecConfig:
    """The 16 kHz tiny codec config (codec_config("16k", tiny=True)) with VAE width `hidden`."""
    base = codec_config("16k", tiny=True)
    return dataclasses.replace(base, vae=dataclasses.replace(base.vae, hidden=hidden))


def log_mels(waves: torch.Tensor, mel: LogMel, chunk: int = 16) -> torch.Tensor:
    """Waves [N, samples] (samples a multiple of 2 * hop) -> log-mel [N, n_mels, frames], in chunks."""
    with torch.no_grad():
        return torch.cat([mel(waves[i : i + chunk]) for i in range(0, len(waves), chunk)])


def train_mel_vae(
    waves: torch.Tensor,
    cfg: CodecConfig,
    recipe: VAETraining,
    log: Callable[[str], None] = print,
) -> tuple[MelVAE, dict[str, Any]]:
    """Train a MelVAE of `cfg.vae` on waves [N, samples] (16 kHz, samples a multiple of 2 * hop).

    Returns the VAE (eval mode) and a summary: per-bin statistics source, final losses (the mean
    absolute error of the reconstruction in the codec's log units, log10 of mel magnitude at 16 kHz).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        vae = MelVAE(cfg.vae)
    mels = log_mels(waves, LogMel(cfg.mel))
    vae.mel_mean.copy_(mels.mean(dim=(0, 2)))
    vae.mel_std.copy_(mels.std(dim=(0, 2)).clamp(min=1e-3))
    opt = torch.optim.AdamW(vae.parameters(), lr=recipe.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(recipe.seed)
    std = vae.mel_std[:, None]
    start, history = time.time(), []
    vae.train()
    for step in range(recipe.steps):
        idx = torch.randint(len(mels), (min(recipe.batch_size, len(mels)),), generator=gen)
        batch = mels[idx]
        posterior = vae.encode(batch)
        recon = vae.decode(posterior.sample(gen))
        rec_loss = ((recon - batch) / std).abs().mean()
        kl = posterior.kl_to_standard_normal().mean()
        loss = rec_loss + recipe.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        rec_value, kl_value = float(rec_loss.detach()), float(kl.detach())
        history.append(rec_value)
        if (step + 1) % 50 == 0 or step + 1 == recipe.steps:
            log(
                f"vae step {step + 1}/{recipe.steps} | recon L1 {rec_value:.4f} (normalised log-mel, "
                f"lower is better) | KL {kl_value:.3f} nats/value | {time.time() - start:.0f} s"
            )
    vae.eval()
    with torch.no_grad():
        recon = torch.cat([vae.decode(vae.encode(mels[i : i + 16]).mean) for i in range(0, len(mels), 16)])
    summary = {
        "recipe": "L1(normalised log-mel) + kl_weight * KL(q || N(0,1)), z sampled; AdamW; agomni's",
        "training": dataclasses.asdict(recipe),
        "train_clips": len(waves),
        "first_recon_l1_normalised": history[0],
        "final_recon_l1_normalised": history[-1],
        "train_recon_mae_log_units": float((recon - mels).abs().mean()),
        "log_units": "log10 of mel magnitude" if cfg.mel.log_base == "10" else "natural log of mel magnitude",
    }
    return vae, summary


def save_vae(path: str | Path, vae: MelVAE, meta: dict[str, Any]) -> Path:
    """Write <stem>.safetensors (state dict) and <stem>.json (VAEConfig + `meta` + sha256)."""
    stem = Path(path).with_suffix("") if Path(path).suffix in (".safetensors", ".json") else Path(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    weights = stem.with_name(stem.name + ".safetensors")
    tensors = {k: v.contiguous() for k, v in vae.state_dict().items()}
    atomic_write(
        weights, lambda tmp: save_file(tensors, str(tmp), metadata={"format": VAE_FORMAT}), durable=True
    )
    doc = {
        "format": VAE_FORMAT,
        "vae_config": dataclasses.asdict(vae.cfg),
        "sha256": file_sha256(weights),
        **meta,
    }
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    atomic_write(
        stem.with_name(stem.name + ".json"), lambda tmp: tmp.write_text(text, encoding="utf-8"), durable=True
    )
    return weights


def read_vae_meta(weights: str | Path) -> tuple[VAEConfig, dict[str, Any]]:
    """The VAEConfig and sidecar of a VAE saved by `save_vae`; WeightsError when absent or altered."""
    w = Path(weights)
    meta_path = w.with_suffix(".json")
    if not w.is_file() or not meta_path.is_file():
        raise WeightsError(f"{w}: a tiny VAE is <stem>.safetensors plus <stem>.json; one of them is missing")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != VAE_FORMAT:
        raise WeightsError(f"{meta_path}: not a {VAE_FORMAT} sidecar")
    if file_sha256(w) != meta["sha256"]:
        raise WeightsError(f"{w}: SHA-256 differs from the one recorded in {meta_path.name}")
    fields = dict(meta["vae_config"])
    fields["channel_mult"] = tuple(fields["channel_mult"])
    return VAEConfig(**fields), meta
