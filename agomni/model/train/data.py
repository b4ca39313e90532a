"""Manifest items -> training examples, computed once and cached on disk (safetensors, keyed by content).

Per item (one clip of `duration_s` seconds at the codec's rate; longer audio is cut to its first
`duration_s` seconds, shorter audio is an error naming the item):
- latents: the codec VAE's posterior mean and std [T, C] of the reference audio (T = latent_len);
- video (when the item has `video`): the video conditioner's CLIP-like [clip_len, clip_dim] and
  sync [sync_len, sync_dim] features of `load_video` frames at the file's frame rate;
- text (when it has `text`): the text conditioner's features [text_tokens, text_dim], computed once per
  distinct caption string;
- LT (when it has `transcript` or `lyrics`, with `language`): agomni.model.text.tokenize (the model's
  lt_tokenizer mode) + pad_to_frames to T;
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
from ...io import load_audio, load_video
from ...manifest import load_manifest
from ..codec.audio_codec import AudioCodec
from ..conditioners import RandomTextConditioner, RandomVideoConditioner
from ..config import ModelConfig
from ..text import pad_to_frames, tokenize

FIELDS = ("latent_mean", "latent_std", "clip", "sync", "text", "lt_ids", "presence")


@dataclass(frozen=True)
class Conditioners:
    """The frozen conditioners of a run and a one-line description recorded in every checkpoint."""

    video: RandomVideoConditioner
    text: RandomTextConditioner
    description: str

    @classmethod
    def random_standins(cls, config: ModelConfig, seed: int, text_tokens: int) -> Conditioners:
        return cls(
            video=RandomVideoConditioner(config.clip_dim, config.sync_dim, seed=seed),
            text=RandomTextConditioner(config.text_dim, text_tokens, seed=seed),
            description=f"conditioners: random stand-ins, seed {seed} (text: {text_tokens} UTF-8 byte tokens)",
        )


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


def _lt_text(item) -> str | None:
    text = item.transcript if item.transcript is not None else item.lyrics
    if text is not None and item.language is None:
        raise UsageError(f"item {item.id}: has a transcript/lyrics but no language; tokenizing needs one")
    return text


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
    captions: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for i, item in enumerate(manifest):
            posterior = codec.encode(_item_audio(item, codec, seq.duration_s))
            if posterior.mean.shape[1] != t:
                raise UsageError(f"item {item.id}: {posterior.mean.shape[1]} latent frames, expected {t}")
            out["latent_mean"][i], out["latent_std"][i] = posterior.mean[0], posterior.std[0]
            if item.video is not None:
                frames, record = load_video(item.video)
                try:
                    feats = conditioners.video.encode(frames[None].float() / 255.0, record.fps, seq)
                except UsageError as err:
                    raise UsageError(f"item {item.id} ({item.video}): {err}") from err
                out["clip"][i], out["sync"][i] = feats.clip[0], feats.sync[0]
            if item.text is not None:
                if item.text not in captions:
                    try:
                        captions[item.text] = conditioners.text.encode([item.text])[0]
                    except UsageError as err:
                        raise UsageError(f"item {item.id}: text {item.text!r}: {err}") from err
                out["text"][i] = captions[item.text]
            lt = _lt_text(item)
            if lt is not None:
                out["lt_ids"][i] = pad_to_frames(tokenize(lt, item.language, config.lt_tokenizer), t)
            out["presence"][i] = torch.tensor([item.video is not None, item.text is not None, lt is not None])
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
    """Per-channel mean and std [C] of the training latents (posterior means); the flow model is trained
    on (z - mean) / std. Recorded in the checkpoint's codec entry so generation can undo it."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def of(cls, examples: ExampleSet) -> LatentStats:
        z = examples["latent_mean"].flatten(0, 1)
        return cls(mean=z.mean(dim=0), std=z.std(dim=0).clamp(min=1e-4))

    def normalise(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.mean.to(z)) / self.std.to(z)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}
