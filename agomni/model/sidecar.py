"""The JSON sidecar of a reference-model checkpoint: ONE format, written by training (and `save_checkpoint`),
read by generation, checked field by field.

Format ``agomni-mmdit-checkpoint/2`` (every key required unless marked optional)::

    format          "agomni-mmdit-checkpoint/2"
    agomni_version  the version that wrote it
    weights_file    name of the safetensors file beside it
    sha256          SHA-256 (hex) of that file
    step            training step (int >= 0; 0 = untrained)
    random_weights  bool: the network weights are untrained
    config          the ModelConfig as nested objects (dataclasses.asdict), sequence and dropout included
    latent_stats    {"mean": [latent_dim floats], "std": [latent_dim positive floats]} the network's latents
                    are normalised with ((latent - mean) / std), or null (latents used as the codec gives them)
    conditioners    agomni.model.conditioning.ConditionerSpec as JSON
    codec           {"rate": "16k"|"44k", "tiny": bool, "seed": int (random parts' seed),
                     "vae": null (random) | {"registry": name} | {"file": path, "sha256": hex, "config"
                            (optional): VAEConfig fields replacing the rate's},
                     "vocoder": null (random) | {"registry": name} | {"file": path, "sha256": hex}
                            | {"griffin_lim_iterations": int} (the weight-free vocoder)}
                    a relative "file" is relative to the sidecar's folder
    extra           (optional) free provenance: training run, validation loss, corpus, ...

Anything else (a missing or unknown field, a wrong type, a negative size, heads that do not divide
the width, a duration outside (0, MAX_DURATION_S]) is a `WeightsError` naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import UsageError, WeightsError
from .codec.vae import VAEConfig
from .conditioning import ConditionerSpec
from .config import ConditionDropout, ModelConfig, SequenceConfig

FORMAT = "agomni-mmdit-checkpoint/2"
RATES = ("16k", "44k")
REQUIRED = (
    "format",
    "agomni_version",
    "weights_file",
    "sha256",
    "step",
    "random_weights",
    "config",
    "latent_stats",
    "conditioners",
    "codec",
)
OPTIONAL = ("extra",)


def _fail(source: str, field: str, message: str) -> WeightsError:
    return WeightsError(f"{source}: field {field}: {message}")


def _fields(data: Any, cls: type, source: str, field: str) -> dict[str, Any]:
    """The object's fields, checked against the dataclass `cls` (no unknown, no missing required one)."""
    if not isinstance(data, Mapping):
        raise _fail(source, field, f"must be an object, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise _fail(source, f"{field}.{unknown[0]}", f"unknown field (known: {', '.join(known)})")
    required = [
        name
        for name, f in known.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [name for name in required if name not in data]
    if missing:
        raise _fail(source, f"{field}.{missing[0]}", "missing")
    return dict(data)


def _number(value: Any, source: str, field: str, *, integer: bool, low: float, high: float = math.inf) -> Any:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        raise _fail(source, field, f"must be {'an integer' if integer else 'a number'}, got {value!r}")
    if not low <= value <= high:
        raise _fail(source, field, f"must be in [{low}, {high}], got {value!r}")
    return value


def parse_config(data: Any, source: str) -> ModelConfig:
    """The sidecar's ``config`` as a ModelConfig; WeightsError naming `source` and the field otherwise."""
    fields = _fields(data, ModelConfig, source, "config")
    seq = _fields(fields["sequence"], SequenceConfig, source, "config.sequence")
    for name, value in seq.items():
        if name == "duration_s":
            _number(
                value,
                source,
                "config.sequence.duration_s",
                integer=False,
                low=1e-3,
                high=SequenceConfig.MAX_DURATION_S,
            )
        else:
            _number(
                value,
                source,
                f"config.sequence.{name}",
                integer=name not in ("clip_fps", "sync_input_fps"),
                low=1,
            )
    for name, value in fields.items():
        if name in ("sequence", "dropout"):
            continue
        if name in ("name", "lt_tokenizer"):
            if not isinstance(value, str):
                raise _fail(source, f"config.{name}", f"must be a string, got {value!r}")
        elif name in ("mlp_ratio", "rope_theta"):
            _number(value, source, f"config.{name}", integer=False, low=1e-6)
        else:
            low = 0 if name == "single_blocks" else 1
            _number(value, source, f"config.{name}", integer=True, low=low)
    if fields["hidden_dim"] % fields["num_heads"]:
        raise _fail(
            source,
            "config.num_heads",
            f"{fields['num_heads']} heads do not divide hidden_dim {fields['hidden_dim']}",
        )
    try:
        fields["sequence"] = SequenceConfig(**seq)
        if "dropout" in fields:
            drop = _fields(fields["dropout"], ConditionDropout, source, "config.dropout")
            for name, value in drop.items():
                _number(value, source, f"config.dropout.{name}", integer=False, low=0.0, high=1.0)
            fields["dropout"] = ConditionDropout(**drop)
        return ModelConfig(**fields)
    except UsageError as err:
        raise _fail(source, "config", str(err)) from err


def parse_latent_stats(data: Any, latent_dim: int, source: str) -> tuple[list[float], list[float]] | None:
    """(mean, std) lists of `latent_dim` floats (std > 0), or None."""
    if data is None:
        return None
    if not isinstance(data, Mapping) or set(data) != {"mean", "std"}:
        raise _fail(source, "latent_stats", f"must be null or an object with mean and std, got {data!r}")
    out = []
    for name in ("mean", "std"):
        values = data[name]
        if not isinstance(values, list) or len(values) != latent_dim:
            raise _fail(
                source, f"latent_stats.{name}", f"must be a list of {latent_dim} numbers (config.latent_dim)"
            )
        low = 1e-12 if name == "std" else -math.inf
        out.append(
            [float(_number(v, source, f"latent_stats.{name}", integer=False, low=low)) for v in values]
        )
    return out[0], out[1]


def _part(data: Any, part: str, source: str) -> dict[str, Any] | None:
    field = f"codec.{part}"
    if data is None:
        return None
    allowed = [{"registry"}, {"file", "sha256"}]
    if part == "vae":
        allowed.append({"file", "sha256", "config"})
    else:
        allowed.append({"griffin_lim_iterations"})
    if not isinstance(data, Mapping) or set(data) not in allowed:
        shapes = " | ".join("{" + ", ".join(sorted(a)) + "}" for a in allowed)
        raise _fail(source, field, f"must be null or one of {shapes}, got {data!r}")
    for key in ("registry", "file", "sha256"):
        if key in data and not isinstance(data[key], str):
            raise _fail(source, f"{field}.{key}", f"must be a string, got {data[key]!r}")
    if "griffin_lim_iterations" in data:
        _number(
            data["griffin_lim_iterations"], source, f"{field}.griffin_lim_iterations", integer=True, low=1
        )
    if "config" in data:
        fields = _fields(data["config"], VAEConfig, source, f"{field}.config")
        for name, value in fields.items():
            if name == "channel_mult":
                if not isinstance(value, list) or not value:
                    raise _fail(
                        source, f"{field}.config.channel_mult", f"must be a list of integers, got {value!r}"
                    )
                fields[name] = tuple(
                    _number(v, source, f"{field}.config.channel_mult", integer=True, low=1) for v in value
                )
            else:
                _number(value, source, f"{field}.config.{name}", integer=True, low=1)
        try:
            VAEConfig(**fields)
        except UsageError as err:
            raise _fail(source, f"{field}.config", str(err)) from err
    return dict(data)


def parse_codec(data: Any, source: str) -> dict[str, Any]:
    """The sidecar's ``codec`` entry, checked (module docstring)."""
    if not isinstance(data, Mapping) or set(data) != {"rate", "tiny", "seed", "vae", "vocoder"}:
        raise _fail(source, "codec", f"must be an object with rate, tiny, seed, vae, vocoder, got {data!r}")
    if data["rate"] not in RATES:
        raise _fail(source, "codec.rate", f"must be one of {RATES}, got {data['rate']!r}")
    if not isinstance(data["tiny"], bool):
        raise _fail(source, "codec.tiny", f"must be true or false, got {data['tiny']!r}")
    _number(data["seed"], source, "codec.seed", integer=True, low=0)
    return {
        **data,
        "vae": _part(data["vae"], "vae", source),
        "vocoder": _part(data["vocoder"], "vocoder", source),
    }


def parse_sidecar(meta: Any, source: str) -> dict[str, Any]:
    """Check a whole sidecar; returns it with ``config`` as a ModelConfig, ``conditioners`` as a
    ConditionerSpec and ``latent_stats`` as (mean, std) lists or None."""
    if not isinstance(meta, Mapping):
        raise WeightsError(f"{source}: a checkpoint sidecar must be a JSON object")
    if meta.get("format") != FORMAT:
        hint = " (format 1 sidecars: re-save with this version's agomni.model.checkpoint.save_checkpoint)"
        raise _fail(source, "format", f"{meta.get('format')!r}, expected {FORMAT!r}{hint}")
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise _fail(source, missing[0], "missing")
    unknown = sorted(set(meta) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise _fail(source, unknown[0], f"unknown field (known: {', '.join(REQUIRED + OPTIONAL)})")
    _number(meta["step"], source, "step", integer=True, low=0)
    if not isinstance(meta["random_weights"], bool):
        raise _fail(source, "random_weights", f"must be true or false, got {meta['random_weights']!r}")
    for key in ("sha256", "weights_file", "agomni_version"):
        if not isinstance(meta[key], str):
            raise _fail(source, key, f"must be a string, got {meta[key]!r}")
    if not isinstance(meta.get("extra", {}), Mapping):
        raise _fail(source, "extra", "must be an object")
    config = parse_config(meta["config"], source)
    return {
        **meta,
        "config": config,
        "latent_stats": parse_latent_stats(meta["latent_stats"], config.latent_dim, source),
        "conditioners": ConditionerSpec.from_dict(meta["conditioners"], source),
        "codec": parse_codec(meta["codec"], source),
        "extra": dict(meta.get("extra") or {}),
    }


def codec_file(part: Mapping[str, Any], folder: Path) -> Path:
    """The path a codec part's "file" names (relative: to the sidecar's `folder`)."""
    path = Path(part["file"])
    return path if path.is_absolute() else folder / path


__all__ = ["FORMAT", "codec_file", "parse_codec", "parse_config", "parse_latent_stats", "parse_sidecar"]
