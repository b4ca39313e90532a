"""Everything a run needs before its first step: corpus, tiny VAE + Griffin-Lim codec, cached examples.

`prepare_run(cfg, out_dir)` builds the toy corpus under <out>/corpus (or uses the config's manifests),
trains the tiny mel VAE into <out>/vae/ (or loads codec.vae_weights), and caches the examples of both
splits under <out>/cache/. Under torchrun only rank 0 prepares; the others wait and read the cache.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ... import distributed
from ...io import load_audio
from ...manifest import load_manifest
from ...toycorpus import build_corpus
from ..checkpoint import codec_reference, file_sha256
from ..codec.audio_codec import AudioCodec, CodecConfig
from ..codec.griffin_lim import GriffinLimVocoder
from ..conditioning import ConditionerSpec, build_conditioners
from ..config import ModelConfig
from .config import TrainConfig
from .data import ExampleSet, LatentStats, cached_examples
from .vae_training import read_vae_meta, save_vae, tiny_codec_config, train_mel_vae

VAE_STEM = "tiny-vae-16k"
CHECKPOINTS = "checkpoints"  # folder of a run holding its checkpoints


@dataclass(frozen=True)
class Prepared:
    """The data side of a run: model config, both splits' examples, latent stats, the sidecar's codec
    entry (relative to <out>/checkpoints) and conditioner spec, and the corpus provenance."""

    model_config: ModelConfig
    train: ExampleSet
    heldout: ExampleSet
    stats: LatentStats
    codec_ref: dict[str, Any]
    corpus_meta: dict[str, Any]
    conditioners: ConditionerSpec


def corpus_manifests(cfg: TrainConfig, out_dir: Path) -> tuple[Path, Path, dict[str, Any]]:
    """(train manifest, held-out manifest, provenance); builds the toy corpus when the config asks."""
    if cfg.corpus.toy is None:
        train, heldout = Path(cfg.corpus.train_manifest), Path(cfg.corpus.heldout_manifest)
        return train, heldout, {"train_manifest": str(train), "heldout_manifest": str(heldout)}
    toy = cfg.corpus.toy
    root = out_dir / "corpus"
    manifests = {s: root / s / "manifest.jsonl" for s in ("train", "heldout")}
    if not all(p.is_file() for p in manifests.values()):
        manifests = build_corpus(
            root, seed=toy.seed, n_train=toy.n_train, n_heldout=toy.n_heldout, duration=toy.duration
        )
    meta = {"toycorpus": dataclasses.asdict(toy), "built_by": "agomni.toycorpus.build_corpus"}
    return manifests["train"], manifests["heldout"], meta


def load_tiny_codec(vae_weights: str | Path, griffin_lim_iterations: int) -> tuple[AudioCodec, CodecConfig]:
    """AudioCodec with a VAE saved by save_vae and the Griffin-Lim vocoder (no vocoder weights)."""
    vae_cfg, _ = read_vae_meta(vae_weights)
    cfg = tiny_codec_config(vae_cfg.hidden)
    cfg = dataclasses.replace(cfg, vae=vae_cfg)
    vocoder = GriffinLimVocoder(cfg.mel, n_iter=griffin_lim_iterations)
    return AudioCodec.load(cfg, vae=vae_weights, vocoder=vocoder), cfg


def _train_vae(cfg: TrainConfig, manifest: Path, target: Path, log: Callable[[str], None]) -> None:
    codec_cfg = tiny_codec_config(cfg.codec.vae_training.hidden)
    n = round(cfg.duration_s * codec_cfg.mel.sample_rate)
    step = codec_cfg.mel.samples_per_latent
    waves = []
    for item in load_manifest(manifest):
        wave, _ = load_audio(
            item.reference_audio, sample_rate=codec_cfg.mel.sample_rate, min_duration=cfg.duration_s
        )
        waves.append(torch.nn.functional.pad(wave[0, :n], (0, -n % step)))
    vae, summary = train_mel_vae(torch.stack(waves), codec_cfg, cfg.codec.vae_training, log)
    summary["train_manifest_sha256"] = load_manifest(manifest).sha256
    save_vae(target, vae, summary)


def prepare_run(cfg: TrainConfig, out_dir: str | Path, log: Callable[[str], None] = print) -> Prepared:
    """Corpus, codec and cached examples of a run (module docstring)."""
    out = Path(out_dir)
    shard = distributed.current()
    vae_path = (
        Path(cfg.codec.vae_weights) if cfg.codec.vae_weights else out / "vae" / f"{VAE_STEM}.safetensors"
    )

    def corpus_and_vae() -> tuple[Path, Path, dict[str, Any]]:
        train, heldout, meta = corpus_manifests(cfg, out)
        if not vae_path.is_file():
            log(f"training the tiny mel VAE -> {vae_path}")
            _train_vae(cfg, train, vae_path, log)
        return train, heldout, meta

    train_m, heldout_m, corpus_meta = shard.from_main(corpus_and_vae)
    model_config = cfg.model_config()
    codec, _ = load_tiny_codec(vae_path, cfg.codec.griffin_lim_iterations)
    spec = conditioner_spec(cfg)
    conditioners = build_conditioners(spec, model_config)
    vae_sha = file_sha256(vae_path)
    splits = {}
    for name, manifest in (("train", train_m), ("heldout", heldout_m)):
        with shard.main_first():  # rank 0 fills the example cache, the others then read it
            splits[name] = cached_examples(
                manifest, codec, vae_sha, conditioners, model_config, out / "cache"
            )
    stats = LatentStats.of(splits["train"])
    codec_ref = codec_reference(
        "16k",
        tiny=True,
        vae=vae_path,
        vocoder=cfg.codec.griffin_lim_iterations,
        vae_config=codec.vae.cfg,
        relative_to=out / CHECKPOINTS,
    )
    return Prepared(model_config, splits["train"], splits["heldout"], stats, codec_ref, corpus_meta, spec)


def conditioner_spec(cfg: TrainConfig) -> ConditionerSpec:
    """The stand-in conditioners of a training config (one seed for both, text length text_tokens)."""
    seed = cfg.conditioners.seed
    return ConditionerSpec(video_seed=seed, text_seed=seed, text_length=cfg.conditioners.text_tokens)
