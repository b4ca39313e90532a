"""Reference-model checkpoints: a safetensors file of network weights plus a JSON sidecar beside it.

Layout for a checkpoint stem ``run/step-1000``::

    run/step-1000.safetensors   the network state dict (tensors only; never pickle)
    run/step-1000.json          {"format", "agomni_version", "config", "step", "sha256", "codec", "extra"}

``sha256`` is the SHA-256 (hex) of the safetensors file; loading recomputes it and refuses a file
that differs (tampered, truncated, or a sidecar belonging to another save). ``config`` is the full
`ModelConfig` as nested JSON objects (``dataclasses.asdict``), so a checkpoint rebuilds its network
without any other file. ``codec`` records which codec (VAE + vocoder) checkpoints the latents belong
to, as built by `codec_reference`, or as a training run records it (see `load_codec`); an empty
``codec`` means random codec weights at the config's rate, and everything decoded with them is
labelled random. Both files are written to
temporary names in the same folder and renamed into place (safetensors first, then the JSON), so a
reader never sees a half-written file.

Keys of ``extra`` that `agomni generate` reads (all optional):
- ``random_weights`` (bool): the network weights are untrained (a step-0 checkpoint counts as random too);
- ``conditioners``: {"video": {"kind": "random", "seed": int}, "text": {"kind": "random", "seed": int,
  "length": int}} - the stand-in conditioners the network was trained with (default seed 0, text
  length `agomni.model.generate.STANDIN_TEXT_TOKENS`);
- ``latent_stats``: {"mean": [latent_dim floats], "std": [latent_dim floats]} - the per-channel
  statistics the training latents were normalised with (a training run's codec entry may hold them as
  ``latent_normalisation`` instead); sampled latents are mapped back by ``latent * std + mean`` before
  decoding (no statistics: latents are decoded as sampled);
- ``train_config`` with ``conditioners`` {"seed", "text_tokens"} (training runs): read when
  ``conditioners`` is not a dict.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from agomni.atomic import atomic_write

from .. import __version__
from ..errors import ChecksumMismatchError, UsageError, WeightsError
from .codec import AudioCodec, codec_config
from .config import SIZE_ALIASES, ConditionDropout, ModelConfig, SequenceConfig
from .network import AgomniMMDiT, load_network_weights

FORMAT = "agomni-mmdit-checkpoint/1"
WEIGHTS_SUFFIX = ".safetensors"
META_SUFFIX = ".json"


@dataclass
class Checkpoint:
    """A loaded checkpoint: CPU tensors, the config that built them, the training step and the JSON sidecar.

    `meta` is the whole sidecar (see the module docstring); `path` is the safetensors file.
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
        """True when the weights are untrained: marked ``extra["random_weights"]`` or saved at step 0."""
        return bool(self.extra.get("random_weights", False)) or self.step == 0


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


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    """The config as nested JSON-ready dicts (sequence and dropout included)."""
    return dataclasses.asdict(config)


def config_from_dict(data: Mapping[str, Any], *, source: str = "config") -> ModelConfig:
    """Inverse of `config_to_dict`; an unknown or missing field is a WeightsError naming `source`."""
    try:
        fields = dict(data)
        fields["sequence"] = SequenceConfig(**fields["sequence"])
        if "dropout" in fields:
            fields["dropout"] = ConditionDropout(**fields["dropout"])
        return ModelConfig(**fields)
    except (KeyError, TypeError, UsageError) as err:
        raise WeightsError(f"{source}: not a valid agomni ModelConfig ({err})") from err


def save_checkpoint(
    path: str | Path,
    *,
    network_state: Mapping[str, torch.Tensor],
    config: ModelConfig,
    step: int,
    extra: dict | None = None,
    codec: dict | None = None,
) -> Path:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` atomically; returns the safetensors path.

    `path` is the stem or either file's name; missing parent folders are created. `extra` and `codec`
    must be JSON-serialisable (UsageError otherwise, before anything is written). Tensors are saved
    from the CPU, contiguous, in their own dtype.
    """
    from safetensors.torch import save_file

    weights_path, meta_path = checkpoint_paths(path)
    if not isinstance(step, int) or step < 0:
        raise UsageError(f"{weights_path}: step must be a non-negative int, got {step!r}")
    try:
        extra_json = json.loads(json.dumps(extra or {}))
        codec_json = json.loads(json.dumps(codec or {}))
    except (TypeError, ValueError) as err:
        raise UsageError(
            f"{weights_path}: checkpoint extra/codec metadata is not JSON-serialisable ({err})"
        ) from err
    bad = [k for k, v in network_state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise UsageError(f"{weights_path}: network_state entries that are not tensors: {bad[:5]}")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in network_state.items()}
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(
        weights_path, lambda tmp: save_file(tensors, str(tmp), metadata={"format": FORMAT}), durable=True
    )
    meta = {
        "format": FORMAT,
        "agomni_version": __version__,
        "config": config_to_dict(config),
        "step": step,
        "sha256": file_sha256(weights_path),
        "weights_file": weights_path.name,
        "codec": codec_json,
        "extra": extra_json,
    }
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    atomic_write(meta_path, lambda tmp: tmp.write_text(text, encoding="utf-8"), durable=True)
    return weights_path


def _read_meta(meta_path: Path, weights_path: Path) -> dict[str, Any]:
    if not meta_path.is_file():
        raise WeightsError(
            f"{meta_path}: checkpoint sidecar JSON is missing; an agomni checkpoint is {weights_path.name} "
            f"plus {meta_path.name} (config, step, sha256) side by side, as written by save_checkpoint"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsError(f"{meta_path}: unreadable checkpoint sidecar JSON ({err})") from err
    missing = [k for k in ("format", "config", "step", "sha256") if k not in meta]
    if not isinstance(meta, dict) or missing:
        raise WeightsError(f"{meta_path}: checkpoint sidecar lacks {missing or 'an object'}")
    if meta["format"] != FORMAT:
        raise WeightsError(f"{meta_path}: unknown checkpoint format {meta['format']!r}, expected {FORMAT!r}")
    return meta


def load_checkpoint(path: str | Path, *, expected_size: str | None = None) -> Checkpoint:
    """Read and verify a checkpoint written by `save_checkpoint` (safetensors only; never unpickles).

    `path`: the stem, the .safetensors or the .json path. `expected_size`: a size name or alias
    (``"L"``, ``"S-16k"``); a checkpoint of another size raises WeightsError ("checkpoint is S-16k,
    you asked for L-44k"). Also WeightsError for a missing file or sidecar, a SHA-256 that differs
    from the sidecar's, or tensors whose names/shapes do not fit the recorded config (every key listed).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights_path, meta_path = checkpoint_paths(path)
    if not weights_path.is_file():
        raise WeightsError(f"{weights_path}: no such checkpoint weights file")
    meta = _read_meta(meta_path, weights_path)
    config = config_from_dict(meta["config"], source=str(meta_path))
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
    _check_state_fits(state, config, str(weights_path))
    return Checkpoint(
        network_state=state, config=config, step=int(meta["step"]), meta=meta, path=weights_path
    )


def _check_state_fits(state: Mapping[str, torch.Tensor], config: ModelConfig, source: str) -> None:
    """WeightsError listing every missing, unexpected and wrong-shaped key against the config's network."""
    with torch.device("meta"):
        own = AgomniMMDiT(config).state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs {config.name} {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    )
    problems = [
        f"{label} ({len(keys)}): {', '.join(keys)}"
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("wrong shapes", wrong),
        )
        if keys
    ]
    if problems:
        raise WeightsError(
            f"{source}: tensors do not fit the recorded config {config.name}; " + " | ".join(problems)
        )


def build_network(checkpoint: Checkpoint) -> AgomniMMDiT:
    """The network of `checkpoint.config` with its weights loaded strictly (eval mode, CPU, fp32 as saved)."""
    network = AgomniMMDiT(checkpoint.config)
    load_network_weights(network, checkpoint.network_state, str(checkpoint.path or "checkpoint"))
    return network.eval()


def codec_reference(
    rate: str,
    *,
    tiny: bool = False,
    vae: str | Path | None = None,
    vocoder: str | Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The ``codec`` entry of a checkpoint sidecar: which codec decodes the network's latents.

    rate: "16k" or "44k"; tiny: the test-size codec (`codec_config(rate, tiny=True)`); vae / vocoder:
    a registry name (e.g. "agomni-vae-16k", resolved and verified by agomni.weights), a ``.safetensors``
    path (recorded with its SHA-256, verified again at load), or None for random weights under `seed`.
    """
    codec_config(rate, tiny=tiny)  # UsageError for an unknown rate
    ref: dict[str, Any] = {"rate": rate, "tiny": bool(tiny), "seed": int(seed)}
    for part, source in (("vae", vae), ("vocoder", vocoder)):
        if source is None or not str(source).endswith(WEIGHTS_SUFFIX):
            ref[part] = None if source is None else {"registry": str(source)}
        else:
            path = Path(source).resolve()
            ref[part] = {"path": str(path), "sha256": file_sha256(path)}
    return ref


def default_codec_reference(config: ModelConfig) -> dict[str, Any]:
    """Random-weight codec at the config's rate (tiny for the tiny sizes), used when a checkpoint names none."""
    rate = {16_000: "16k", 44_100: "44k"}.get(config.sequence.sample_rate)
    if rate is None:
        raise UsageError(f"{config.name}: no codec for a {config.sequence.sample_rate} Hz sequence")
    return codec_reference(rate, tiny=config.name.startswith("tiny"))


def _codec_part_source(part: str, ref: Any, folder: Path) -> str | Path | None:
    if ref is None:
        return None
    if "registry" in ref:
        from ..weights import resolve

        return resolve(ref["registry"], progress=False)
    path = Path(ref["path"])
    path = path if path.is_absolute() else folder / path
    if not path.is_file():
        raise WeightsError(f"{path}: codec {part} checkpoint named by the model checkpoint is missing")
    actual = file_sha256(path)
    if ref.get("sha256") and actual != ref["sha256"]:
        raise ChecksumMismatchError(
            f"{path}: codec {part} SHA-256 {actual} differs from {ref['sha256']} recorded in the checkpoint"
        )
    return path


def _find_codec_file(part: str, ref: Mapping[str, Any], checkpoint: Checkpoint) -> Path:
    """The file a trainer-format codec part names ("path", else "file" looked up beside the checkpoint
    and in ../vae/), verified against its recorded SHA-256."""
    folder = checkpoint.path.parent if checkpoint.path is not None else Path.cwd()
    if "path" in ref:
        candidates = [Path(ref["path"]) if Path(ref["path"]).is_absolute() else folder / ref["path"]]
    else:
        candidates = [folder / ref["file"], folder.parent / "vae" / ref["file"]]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        looked = ", ".join(str(c) for c in candidates)
        raise WeightsError(f"{checkpoint.path}: codec {part} file not found (looked in: {looked})")
    actual = file_sha256(found)
    if ref.get("sha256") and actual != ref["sha256"]:
        raise ChecksumMismatchError(
            f"{found}: codec {part} SHA-256 {actual} differs from {ref['sha256']} recorded in the checkpoint"
        )
    return found


_GRIFFIN_LIM = re.compile(r"^Griffin-Lim \((\d+) iterations")


def _trainer_codec(ref: Mapping[str, Any], checkpoint: Checkpoint) -> AudioCodec:
    """Codec of a training-run entry: {"mel": rate, "vae": {"file"|"path", "sha256", "config"},
    "vocoder": provenance string of the weight-free Griffin-Lim vocoder}."""
    from .codec.griffin_lim import GriffinLimVocoder
    from .codec.vae import VAEConfig

    base = codec_config(ref["mel"], tiny=True)
    vae_fields = dict(ref["vae"]["config"])
    vae_fields["channel_mult"] = tuple(vae_fields["channel_mult"])
    cfg = dataclasses.replace(base, vae=VAEConfig(**vae_fields))
    vae_path = _find_codec_file("vae", ref["vae"], checkpoint)
    match = _GRIFFIN_LIM.match(str(ref.get("vocoder", "")))
    if match is None:
        raise WeightsError(
            f"{checkpoint.path}: codec vocoder {ref.get('vocoder')!r} is not the Griffin-Lim vocoder and names "
            "no weights; record it with codec_reference(...)"
        )
    vocoder = GriffinLimVocoder(cfg.mel, n_iter=int(match.group(1)))
    return AudioCodec.load(cfg, vae=vae_path, vocoder=vocoder)


def latent_stats(checkpoint: Checkpoint) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Per-channel (mean, std) [latent_dim] the training latents were normalised with, or None.

    Read from ``extra["latent_stats"]`` or the codec entry's ``latent_normalisation`` (training runs).
    """
    stats = checkpoint.extra.get("latent_stats") or (checkpoint.meta.get("codec") or {}).get(
        "latent_normalisation"
    )
    if stats is None:
        return None
    mean = torch.tensor(stats["mean"], dtype=torch.float32)
    std = torch.tensor(stats["std"], dtype=torch.float32)
    dim = checkpoint.config.latent_dim
    if mean.shape != (dim,) or std.shape != (dim,) or not bool((std > 0).all()):
        raise WeightsError(
            f"{checkpoint.path}: latent statistics must be {dim} means and {dim} positive stds"
        )
    return mean, std


def load_codec(checkpoint: Checkpoint) -> AudioCodec:
    """The codec the checkpoint's ``codec`` entry names (`default_codec_reference` when it names none).

    Two entry formats: `codec_reference`'s ({"rate", "tiny", "vae", "vocoder", "seed"}) and a training
    run's ({"mel", "vae": {"file", "sha256", "config"}, "vocoder": "Griffin-Lim (N iterations ...",
    "latent_normalisation"}). Its ``random_weights`` and ``provenance`` say where each part's weights
    came from. The codec's mel hop, rate and latent channels must match the network config.
    """
    ref = checkpoint.meta.get("codec") or default_codec_reference(checkpoint.config)
    folder = checkpoint.path.parent if checkpoint.path is not None else Path.cwd()
    try:
        if "rate" in ref:
            cfg = codec_config(ref["rate"], tiny=bool(ref.get("tiny", False)))
            vae = _codec_part_source("vae", ref.get("vae"), folder)
            vocoder = _codec_part_source("vocoder", ref.get("vocoder"), folder)
            codec = AudioCodec.load(cfg, vae=vae, vocoder=vocoder, seed=int(ref.get("seed", 0)))
        else:
            codec = _trainer_codec(ref, checkpoint)
    except (KeyError, TypeError) as err:
        raise WeightsError(f"{checkpoint.path}: codec entry lacks or mistypes {err}: {ref}") from err
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
    "config_from_dict",
    "config_to_dict",
    "default_codec_reference",
    "file_sha256",
    "latent_stats",
    "load_checkpoint",
    "load_codec",
    "save_checkpoint",
]
