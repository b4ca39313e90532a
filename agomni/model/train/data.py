"""Manifest items -> training examples, computed once and cached on disk (safetensors, keyed by content).

Per item (one clip of `duration_s` seconds at the codec's rate; longer audio is cut to its first
`duration_s` seconds, shorter audio is an error naming the item):
- latents: the codec VAE's posterior mean and std [T, C] of the reference audio (T = latent_len);
- video, text and LT inputs: `agomni.model.conditioning.item_conditions`, the function generation
  uses too (video decoded once; text features [text_tokens, text_dim]; LT ids padded to T);
- presence: (video, text, lt) flags from which fields exist; absent features are stored as zeros.

Cache key = SHA-256 of (manifest SHA-256, VAE weights SHA-256, conditioner description, model size and
duration, text_tokens); files are written to a temporary name and renamed, so an interrupted run
recomputes only what is missing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from agomni.atomic import atomic_write

from ...errors import UsageError
from ...io import load_audio
from ...manifest import load_manifest
from ..codec.audio_codec import AudioCodec
from ..conditioning import Conditioners, item_conditions
from ..config import ModelConfig


@dataclass(frozen=True)
class ExampleSet:
    """Stacked examples of one split: latent_mean/latent_std [N, T, C] (raw VAE units), clip, sync, text
    [N, L, D], lt_ids [N, T] int64, presence [N, 3] bool (video, text, lt); ids in manifest order."""

    ids: tuple[str, ...]
    tensors: dict[str, torch.Tensor]
    manifest_sha256: str

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.tensors[name]

    def select(self, index: torch.Tensor | list[int]) -> dict[str, torch.Tensor]:
        """The tensors of the examples at `index` (a batch)."""
        idx = torch.as_tensor(index, dtype=torch.long)
        return {k: v[idx] for k, v in self.tensors.items()}


def cache_key(manifest_sha256: str, vae_sha256: str, conditioners: Conditioners, config: ModelConfig) -> str:
    """Content key of a split's cache (module docstring)."""
    parts = [
        manifest_sha256,
        vae_sha256,
        conditioners.description,
        config.name,
        repr(config.sequence),
        config.lt_tokenizer,
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def _item_audio(item, codec: AudioCodec, duration_s: float) -> torch.Tensor:
    if item.reference_audio is None:
        raise UsageError(f"item {item.id}: no reference_audio; training needs the target audio")
    wave, _ = load_audio(item.reference_audio, sample_rate=codec.sample_rate, min_duration=duration_s)
    return wave[:1, : round(duration_s * codec.sample_rate)]


def build_examples(
    manifest_path: str | Path, codec: AudioCodec, conditioners: Conditioners, config: ModelConfig
) -> ExampleSet:
    """Compute the examples of every item of a manifest (module docstring); no cache involved."""
    manifest = load_manifest(manifest_path)
    seq = config.sequence
    n, t = len(manifest), seq.latent_len
    out = {
        "latent_mean": torch.zeros(n, t, config.latent_dim),
        "latent_std": torch.zeros(n, t, config.latent_dim),
        "clip": torch.zeros(n, seq.clip_len, config.clip_dim),
        "sync": torch.zeros(n, seq.sync_len, config.sync_dim),
        "text": torch.zeros(n, conditioners.text.length, config.text_dim),
        "lt_ids": torch.zeros(n, t, dtype=torch.long),
        "presence": torch.zeros(n, 3, dtype=torch.bool),
    }
    with torch.no_grad():
        for i, item in enumerate(manifest):
            posterior = codec.encode(_item_audio(item, codec, seq.duration_s))
            if posterior.mean.shape[1] != t:
                raise UsageError(f"item {item.id}: {posterior.mean.shape[1]} latent frames, expected {t}")
            out["latent_mean"][i], out["latent_std"][i] = posterior.mean[0], posterior.std[0]
            c = item_conditions(item, config, seq, conditioners)
            for name, value in (("clip", c.clip), ("sync", c.sync), ("text", c.text), ("lt_ids", c.lt_ids)):
                if value is not None:
                    out[name][i] = value[0]
            out["presence"][i] = torch.tensor([c.clip is not None, c.text is not None, c.lt_ids is not None])
    return ExampleSet(ids=manifest.ids, tensors=out, manifest_sha256=manifest.sha256)


def cached_examples(
    manifest_path: str | Path,
    codec: AudioCodec,
    vae_sha256: str,
    conditioners: Conditioners,
    config: ModelConfig,
    cache_dir: str | Path,
) -> ExampleSet:
    """`build_examples`, read from / written to `cache_dir/<key>.safetensors` (+ .json with the ids)."""
    manifest = load_manifest(manifest_path)
    key = cache_key(manifest.sha256, vae_sha256, conditioners, config)
    folder = Path(cache_dir)
    tensors_path, ids_path = folder / f"{key}.safetensors", folder / f"{key}.json"
    if tensors_path.is_file() and ids_path.is_file():
        ids = tuple(json.loads(ids_path.read_text(encoding="utf-8"))["ids"])
        return ExampleSet(ids=ids, tensors=load_file(str(tensors_path)), manifest_sha256=manifest.sha256)
    examples = build_examples(manifest_path, codec, conditioners, config)
    doc = {
        "manifest": str(manifest.path),
        "manifest_sha256": manifest.sha256,
        "vae_sha256": vae_sha256,
        "conditioners": conditioners.description,
        "model": config.name,
        "ids": list(examples.ids),
    }
    # Tensors first, ids last: the cache counts as present only once both are whole.
    atomic_write(tensors_path, lambda tmp: save_file(examples.tensors, str(tmp)))
    text = json.dumps(doc, indent=1) + "\n"
    atomic_write(ids_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return examples


@dataclass(frozen=True)
class LatentStats:
    """Per-channel mean and std [C] of the training latents (posterior means); the network holds them
    (`AgomniMMDiT.set_latent_stats`) and is trained on `normalize(z)` = (z - mean) / std; the checkpoint
    sidecar's ``latent_stats`` carries them to generation."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def of(cls, examples: ExampleSet) -> LatentStats:
        z = examples["latent_mean"].flatten(0, 1)
        return cls(mean=z.mean(dim=0), std=z.std(dim=0).clamp(min=1e-4))
