"""Reference-model checkpoints: a safetensors file of network weights plus a JSON sidecar beside it.

Layout for a checkpoint stem ``run/step-1000``::

    run/step-1000.safetensors   the network state dict (tensors only; never pickle)
    run/step-1000.json          the sidecar (agomni.model.sidecar): config, step, sha256, latent
                                statistics, conditioners, codec, provenance

``sha256`` is the SHA-256 (hex) of the safetensors file; loading recomputes it and refuses a file
that differs (tampered, truncated, or a sidecar belonging to another save). ``config`` is the full
`ModelConfig` as nested JSON objects (``dataclasses.asdict``), so a checkpoint rebuilds its network
without any other file. ``codec`` records which codec (VAE + vocoder) checkpoints the latents belong
to (`codec_reference`); a part without weights is random, and everything decoded with it is
labelled random. Both files are written to
temporary names in the same folder and renamed into place (safetensors first, then the JSON), so a
reader never sees a half-written file.

The sidecar format (``format``, ``config``, ``latent_stats``, ``conditioners``, ``codec``, ...) is
defined and checked field by field in `agomni.model.sidecar`; an impossible sidecar is a WeightsError
naming the file and the field. `load_model_checkpoint` reads a checkpoint; `build_network` gives the
network with its weights and latent statistics; `load_codec` the codec the sidecar names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__
from ..atomic import atomic_write
from ..errors import ChecksumMismatchError, UsageError, WeightsError
from ..weights import resolve
from .codec import AudioCodec, codec_config
from .codec.griffin_lim import GriffinLimVocoder
from .codec.vae import VAEConfig
from .conditioning import ConditionerSpec
from .config import SIZE_ALIASES, ModelConfig
from .network import AgomniMMDiT, load_network_weights
from .sidecar import FORMAT, codec_file, parse_codec, parse_sidecar

WEIGHTS_SUFFIX = ".safetensors"
META_SUFFIX = ".json"


@dataclass
class Checkpoint:
    """A loaded checkpoint: CPU tensors, the config that built them, the training step and the sidecar.

    `meta` is the parsed sidecar (`agomni.model.sidecar.parse_sidecar`); `path` is the safetensors file.
    """

    network_state: dict[str, torch.Tensor]
    config: ModelConfig
    step: int
    meta: dict[str, Any]
    path: Path | None = field(default=None)

    @property
    def sha256(self) -> str:
        """SHA-256 (hex) of the safetensors file, verified at load time."""
        return str(self.meta["sha256"])

    @property
    def extra(self) -> dict[str, Any]:
        return dict(self.meta.get("extra") or {})

    @property
    def random_weights(self) -> bool:
        """True when the weights are untrained: marked ``random_weights`` or saved at step 0."""
        return bool(self.meta["random_weights"]) or self.step == 0

    @property
    def conditioners(self) -> ConditionerSpec:
        return self.meta["conditioners"]

    @property
    def latent_stats(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Per-channel float32 (mean, std) the network's latents are normalised with, or None."""
        stats = self.meta["latent_stats"]
        return None if stats is None else (torch.tensor(stats[0]), torch.tensor(stats[1]))

    @property
    def folder(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """(safetensors file, JSON sidecar) for a stem or either file's path."""
    p = Path(path)
    if p.suffix in (WEIGHTS_SUFFIX, META_SUFFIX):
        p = p.with_suffix("")
    return p.with_name(p.name + WEIGHTS_SUFFIX), p.with_name(p.name + META_SUFFIX)


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    path: str | Path,
    *,
    network_state: Mapping[str, torch.Tensor],
    config: ModelConfig,
    step: int,
    codec: Mapping[str, Any],
    conditioners: ConditionerSpec,
    latent_stats: tuple[torch.Tensor, torch.Tensor] | None = None,
    random_weights: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` atomically; returns the safetensors path.

    `path` is the stem or either file's name; missing parent folders are created. `codec`: a
    `codec_reference` entry; `latent_stats`: (mean, std) the network's latents are normalised with;
    `extra`: JSON-serialisable provenance. The sidecar is checked like a loaded one before anything is
    written (UsageError / WeightsError). Tensors are saved from the CPU, contiguous, in their own dtype.
    """
    weights_path, meta_path = checkpoint_paths(path)
    if not isinstance(step, int) or step < 0:
        raise UsageError(f"{weights_path}: step must be a non-negative int, got {step!r}")
    bad = [k for k, v in network_state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise UsageError(f"{weights_path}: network_state entries that are not tensors: {bad[:5]}")
    meta = {
        "format": FORMAT,
        "agomni_version": __version__,
        "weights_file": weights_path.name,
        "sha256": "",
        "step": step,
        "random_weights": bool(random_weights),
        "config": dataclasses.asdict(config),
        "latent_stats": None
        if latent_stats is None
        else {"mean": [float(v) for v in latent_stats[0]], "std": [float(v) for v in latent_stats[1]]},
        "conditioners": conditioners.to_dict(),
        "codec": dict(codec),
        "extra": dict(extra or {}),
    }
    try:
        meta = json.loads(json.dumps(meta))
    except (TypeError, ValueError) as err:
        raise UsageError(f"{weights_path}: checkpoint metadata is not JSON-serialisable ({err})") from err
    parse_sidecar(meta, str(meta_path))
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in network_state.items()}
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(
        weights_path, lambda tmp: save_file(tensors, str(tmp), metadata={"format": FORMAT}), durable=True
    )
    meta["sha256"] = file_sha256(weights_path)
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    atomic_write(meta_path, lambda tmp: tmp.write_text(text, encoding="utf-8"), durable=True)
    return weights_path


def read_sidecar(meta_path: Path, weights_path: Path) -> dict[str, Any]:
    """The parsed sidecar (`agomni.model.sidecar.parse_sidecar`); WeightsError naming the file otherwise."""
    if not meta_path.is_file():
        raise WeightsError(
            f"{meta_path}: checkpoint sidecar JSON is missing; an agomni checkpoint is {weights_path.name} "
            f"plus {meta_path.name} (config, step, sha256) side by side, as written by save_checkpoint"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsError(f"{meta_path}: unreadable checkpoint sidecar JSON ({err})") from err
    return parse_sidecar(meta, str(meta_path))


def load_model_checkpoint(path: str | Path, *, expected_size: str | None = None) -> Checkpoint:
    """Read and verify a reference-model checkpoint (safetensors + sidecar; never unpickles).

    (`agomni.weights.load_checkpoint` is the other loader: any third-party weights file, by suffix.)
    `path`: the stem, the .safetensors or the .json path. `expected_size`: a size name or alias
    (``"L"``, ``"S-16k"``); a checkpoint of another size raises WeightsError ("checkpoint is S-16k,
    you asked for L-44k"). Also WeightsError for a missing file, an impossible sidecar (naming the
    field), a SHA-256 that differs from the sidecar's, or tensors whose names/shapes do not fit the
    recorded config (every key listed).
    """
    weights_path, meta_path = checkpoint_paths(path)
    if not weights_path.is_file():
        raise WeightsError(f"{weights_path}: no such checkpoint weights file")
    meta = read_sidecar(meta_path, weights_path)
    config = meta["config"]
    if expected_size is not None:
        wanted = SIZE_ALIASES.get(expected_size, expected_size)
        if config.name != wanted:
            raise WeightsError(f"{weights_path}: checkpoint is {config.name}, you asked for {wanted}")
    actual = file_sha256(weights_path)
    if actual != meta["sha256"]:
        raise WeightsError(
            f"{weights_path}: SHA-256 {actual} differs from {meta['sha256']} recorded in {meta_path.name}; "
            "the weights file was modified or the sidecar belongs to another save"
        )
    try:
        state = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"{weights_path}: not a readable safetensors file ({err})") from err
    with torch.device("meta"):
        load_network_weights(AgomniMMDiT(config), state, str(weights_path), assign=True)
    return Checkpoint(
        network_state=state, config=config, step=int(meta["step"]), meta=meta, path=weights_path
    )


def build_network(checkpoint: Checkpoint, device: torch.device | str = "cpu") -> AgomniMMDiT:
    """The network of `checkpoint.config` on `device` with its weights (float32; loaded strictly, no
    random initialisation first) and latent statistics, in eval mode."""
    with torch.device("meta"):
        network = AgomniMMDiT(checkpoint.config)
    state = {k: v.to(device) for k, v in checkpoint.network_state.items()}
    load_network_weights(network, state, str(checkpoint.path or "checkpoint"), assign=True)
    network.rebuild_tables()
    stats = checkpoint.latent_stats
    if stats is not None:
        network.set_latent_stats(*stats)
    return network.eval()


def codec_reference(
    rate: str,
    *,
    tiny: bool = False,
    vae: str | Path | None = None,
    vocoder: str | Path | int | None = None,
    seed: int = 0,
    vae_config: VAEConfig | None = None,
    relative_to: Path | None = None,
) -> dict[str, Any]:
    """The sidecar's ``codec`` entry (`agomni.model.sidecar`): which codec decodes the network's latents.

    rate: "16k" or "44k"; tiny: the test-size codec (`codec_config(rate, tiny=True)`); vae / vocoder:
    a registry name (e.g. "agomni-vae-16k", resolved and verified by agomni.weights), a ``.safetensors``
    path (recorded with its SHA-256, verified again at load; relative to `relative_to` when given), or
    None for random weights under `seed`; vocoder may also be an int: Griffin-Lim with that many
    iterations. vae_config replaces the rate's VAE widths (a VAE trained at another width).
    """
    codec_config(rate, tiny=tiny)  # UsageError for an unknown rate
    ref: dict[str, Any] = {"rate": rate, "tiny": bool(tiny), "seed": int(seed)}
    for part, source in (("vae", vae), ("vocoder", vocoder)):
        if source is None:
            ref[part] = None
        elif isinstance(source, int):
            ref[part] = {"griffin_lim_iterations": source}
        elif not str(source).endswith(WEIGHTS_SUFFIX):
            ref[part] = {"registry": str(source)}
        else:
            path = Path(source)
            name = Path(os_relpath(path, relative_to)) if relative_to is not None else path.resolve()
            ref[part] = {"file": str(name), "sha256": file_sha256(path)}
    if vae_config is not None:
        if ref["vae"] is None or "file" not in ref["vae"]:
            raise UsageError("codec_reference: vae_config needs a vae .safetensors file")
        ref["vae"]["config"] = {
            **dataclasses.asdict(vae_config),
            "channel_mult": list(vae_config.channel_mult),
        }
    return parse_codec(ref, "codec_reference")


def os_relpath(path: Path, start: Path) -> str:
    """`path` relative to the folder `start` (.. allowed), as a POSIX string."""
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def default_codec_reference(config: ModelConfig) -> dict[str, Any]:
    """Random-weight codec at the config's rate (tiny for the tiny sizes)."""
    rate = {16_000: "16k", 44_100: "44k"}.get(config.sequence.sample_rate)
    if rate is None:
        raise UsageError(f"{config.name}: no codec for a {config.sequence.sample_rate} Hz sequence")
    return codec_reference(rate, tiny=config.name.startswith("tiny"))


def _part_source(part: str, ref: Mapping[str, Any] | None, checkpoint: Checkpoint) -> str | Path | None:
    """A codec part's weights: None (random), a registry-resolved path, or a verified file."""
    if ref is None:
        return None
    if "registry" in ref:
        return resolve(ref["registry"], progress=False)
    path = codec_file(ref, checkpoint.folder)
    if not path.is_file():
        raise WeightsError(f"{checkpoint.path}: codec {part} file {path} named by the checkpoint is missing")
    actual = file_sha256(path)
    if actual != ref["sha256"]:
        raise ChecksumMismatchError(
            f"{path}: codec {part} SHA-256 {actual} differs from {ref['sha256']} recorded in the checkpoint"
        )
    return path


def load_codec(checkpoint: Checkpoint) -> AudioCodec:
    """The codec the checkpoint's ``codec`` entry names. Its ``random_weights`` and ``provenance`` say
    where each part's weights came from. The codec's mel hop, rate and latent channels must match the
    network config (WeightsError otherwise)."""
    ref = checkpoint.meta["codec"]
    cfg = codec_config(ref["rate"], tiny=ref["tiny"])
    vae_ref, vocoder_ref = ref["vae"], ref["vocoder"]
    if vae_ref is not None and "config" in vae_ref:
        fields = {**vae_ref["config"], "channel_mult": tuple(vae_ref["config"]["channel_mult"])}
        cfg = dataclasses.replace(cfg, vae=VAEConfig(**fields))
    vae = _part_source("vae", vae_ref, checkpoint)
    if vocoder_ref is not None and "griffin_lim_iterations" in vocoder_ref:
        vocoder: Any = GriffinLimVocoder(cfg.mel, n_iter=vocoder_ref["griffin_lim_iterations"])
    else:
        vocoder = _part_source("vocoder", vocoder_ref, checkpoint)
    codec = AudioCodec.load(cfg, vae=vae, vocoder=vocoder, seed=ref["seed"])
    seq, config, mel = checkpoint.config.sequence, checkpoint.config, codec.cfg.mel
    if mel.hop != seq.mel_hop or mel.sample_rate != seq.sample_rate:
        raise WeightsError(
            f"{checkpoint.path}: codec {mel.name} (hop {mel.hop}, {mel.sample_rate} Hz) does not "
            f"match {config.name} (hop {seq.mel_hop}, {seq.sample_rate} Hz)"
        )
    if codec.latent_channels != config.latent_dim:
        raise WeightsError(
            f"{checkpoint.path}: codec latent channels {codec.latent_channels} != {config.name} "
            f"latent_dim {config.latent_dim}"
        )
    return codec


__all__ = [
    "Checkpoint",
    "build_network",
    "checkpoint_paths",
    "codec_reference",
    "default_codec_reference",
    "file_sha256",
    "load_codec",
    "load_model_checkpoint",
    "read_sidecar",
    "save_checkpoint",
]
