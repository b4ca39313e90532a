"""The training config file: JSON, one object per section, every key checked (unknown keys are errors).

Sections and defaults are the dataclasses below; `load_train_config` reads a file, `TOY_CONFIG`
(``configs/toy-tiny.json``) is the config of the shipped tiny model. Relative paths in the file are
relative to the file's folder. JSON (not TOML) so that Python 3.10 needs no extra package.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import UsageError
from ..config import ConditionDropout, ModelConfig, model_config

CONFIGS_DIR = Path(__file__).parent / "configs"
TOY_CONFIG = CONFIGS_DIR / "toy-tiny.json"
PRECISIONS = ("auto", "fp32", "bf16")
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class ModelSection:
    """size: a name of agomni.model.config.SIZES; dropout: per-modality condition-dropout probabilities."""

    size: str = "tiny-16k"
    dropout: ConditionDropout = field(default_factory=ConditionDropout)


@dataclass(frozen=True)
class ToyCorpus:
    """Arguments of agomni.toycorpus.build_corpus (built under <out>/corpus when absent)."""

    seed: int = 0
    n_train: int = 48
    n_heldout: int = 12
    duration: float = 2.0


@dataclass(frozen=True)
class CorpusSection:
    """Either `toy` (build the toy corpus) or both manifests (paths) plus `duration_s` (clip seconds)."""

    toy: ToyCorpus | None = None
    train_manifest: str | None = None
    heldout_manifest: str | None = None
    duration_s: float | None = None


@dataclass(frozen=True)
class VAETraining:
    """The tiny mel VAE's short reconstruction + KL training (see vae_training.py)."""

    steps: int = 300
    batch_size: int = 8
    lr: float = 2e-3
    kl_weight: float = 1e-4
    seed: int = 0
    hidden: int = 16


@dataclass(frozen=True)
class CodecSection:
    """vae_weights: a trained VAE (.safetensors, with its .json) or null to train one (`vae_training`);
    griffin_lim_iterations: the weight-free vocoder's iterations."""

    vae_weights: str | None = None
    vae_training: VAETraining = VAETraining()
    griffin_lim_iterations: int = 32


@dataclass(frozen=True)
class ConditionerSection:
    """Seed of the frozen random stand-in conditioners; text_tokens: text-feature length (UTF-8 bytes)."""

    seed: int = 0
    text_tokens: int = 64


@dataclass(frozen=True)
class OptimizerSection:
    """AdamW; lr = peak learning rate; warm-up linear over `warmup_steps`, then constant or cosine to
    lr * min_lr_ratio at max_steps; grad_clip = max global L2 norm of the gradients."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.0
    warmup_steps: int = 50
    schedule: str = "constant"
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0


@dataclass(frozen=True)
class EMASection:
    """EMA of the weights: decay_k = min(decay, (1 + k) / (10 + k)) at update k (0-based)."""

    decay: float = 0.999


@dataclass(frozen=True)
class LoopSection:
    """batch_size: GLOBAL batch (split over ranks); precision: auto = bf16 autocast on CUDA, fp32 on CPU."""

    batch_size: int = 8
    max_steps: int = 1000
    seed: int = 0
    precision: str = "auto"
    log_every: int = 25
    checkpoint_every: int = 200


@dataclass(frozen=True)
class ValidationSection:
    """Held-out flow-matching loss with fixed, seeded t and noise: `times_per_item` draws per item."""

    seed: int = 1234
    times_per_item: int = 4
    batch_size: int = 32


@dataclass(frozen=True)
class TrainConfig:
    model: ModelSection = ModelSection()
    corpus: CorpusSection = CorpusSection()
    codec: CodecSection = CodecSection()
    conditioners: ConditionerSection = ConditionerSection()
    optimizer: OptimizerSection = OptimizerSection()
    ema: EMASection = EMASection()
    train: LoopSection = LoopSection()
    validation: ValidationSection = ValidationSection()
    source: str = field(default="<defaults>", compare=False)

    @property
    def duration_s(self) -> float:
        """Clip duration in seconds that every example is cut to."""
        if self.corpus.toy is not None:
            return self.corpus.toy.duration
        return float(self.corpus.duration_s)  # checked by _check

    def model_config(self) -> ModelConfig:
        """The network config: the named size, re-timed to the clip duration, with the config's dropout."""
        return dataclasses.replace(model_config(self.model.size, self.duration_s), dropout=self.model.dropout)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every section (what the checkpoint json records)."""
        data = dataclasses.asdict(self)
        data.pop("source")
        return data

    def with_max_steps(self, max_steps: int) -> TrainConfig:
        return dataclasses.replace(self, train=dataclasses.replace(self.train, max_steps=max_steps))


def _build(cls: type, data: Any, where: str, source: str) -> Any:
    """Instantiate dataclass `cls` from a JSON object, recursively; unknown keys and bad types raise."""
    if not isinstance(data, dict):
        raise UsageError(f"{source}: {where or 'the file'} must be a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
    unknown = sorted(set(data) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise UsageError(
            f"{source}: unknown config key {', '.join(prefix + k for k in unknown)}; "
            f"valid keys{' of ' + where if where else ''}: {', '.join(names)}"
        )
    values = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        hint = hints[name]
        optional = typing.get_origin(hint) in (typing.Union, types.UnionType)
        target = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
        if value is None and type(None) in typing.get_args(hint):
            values[name] = None
        elif dataclasses.is_dataclass(target):
            values[name] = _build(target, value, key, source)
        elif typing.get_origin(target) is tuple:
            if not isinstance(value, list) or len(value) != len(typing.get_args(target)):
                raise UsageError(f"{source}: {key} must be a list of {len(typing.get_args(target))} numbers")
            values[name] = tuple(float(v) for v in value)
        elif target is float and isinstance(value, int | float) and not isinstance(value, bool):
            values[name] = float(value)
        elif isinstance(value, target) and not (target is int and isinstance(value, bool)):
            values[name] = value
        else:
            raise UsageError(f"{source}: {key} must be {target.__name__}, got {value!r}")
    try:
        return cls(**values)
    except UsageError as err:
        raise UsageError(f"{source}: {where}: {err}") from err


def _check(cfg: TrainConfig) -> None:
    src, c = cfg.source, cfg.corpus
    manifests = (c.train_manifest, c.heldout_manifest)
    if c.toy is None and None in manifests:
        raise UsageError(
            f"{src}: no corpus: give corpus.toy {{...}} (the toy corpus) or both corpus.train_manifest "
            "and corpus.heldout_manifest (with corpus.duration_s)"
        )
    if c.toy is not None and any(m is not None for m in manifests):
        raise UsageError(f"{src}: give either corpus.toy or the corpus manifests, not both")
    if c.toy is None and not (c.duration_s and c.duration_s > 0):
        raise UsageError(f"{src}: corpus.duration_s (seconds per training clip) is required with manifests")
    t, o = cfg.train, cfg.optimizer
    for key, value in (
        ("train.batch_size", t.batch_size),
        ("train.max_steps", t.max_steps),
        ("train.log_every", t.log_every),
        ("train.checkpoint_every", t.checkpoint_every),
        ("validation.times_per_item", cfg.validation.times_per_item),
        ("validation.batch_size", cfg.validation.batch_size),
        ("codec.vae_training.steps", cfg.codec.vae_training.steps),
    ):
        if value < 1:
            raise UsageError(f"{src}: {key} must be >= 1, got {value}")
    if t.precision not in PRECISIONS:
        raise UsageError(f"{src}: train.precision {t.precision!r} is not one of {', '.join(PRECISIONS)}")
    if o.schedule not in SCHEDULES:
        raise UsageError(f"{src}: optimizer.schedule {o.schedule!r} is not one of {', '.join(SCHEDULES)}")
    if not (o.lr > 0 and o.warmup_steps >= 0 and 0 <= o.min_lr_ratio <= 1 and o.grad_clip > 0):
        raise UsageError(
            f"{src}: optimizer needs lr > 0, warmup_steps >= 0, min_lr_ratio in [0, 1], grad_clip > 0"
        )
    if not 0 <= cfg.ema.decay < 1:
        raise UsageError(f"{src}: ema.decay must be in [0, 1), got {cfg.ema.decay}")
    cfg.model_config()  # unknown size -> UsageError listing the sizes


def _resolve(path: str | None, base: Path) -> str | None:
    if path is None:
        return None
    p = Path(path)
    return str(p if p.is_absolute() else (base / p).resolve())


def parse_train_config(data: Any, source: str = "<dict>", base: Path | None = None) -> TrainConfig:
    """A TrainConfig from a JSON object; relative paths resolve against `base`. UsageError names `source`."""
    cfg = _build(TrainConfig, data, "", source)
    cfg = dataclasses.replace(cfg, source=source)
    if base is not None:
        corpus = dataclasses.replace(
            cfg.corpus,
            train_manifest=_resolve(cfg.corpus.train_manifest, base),
            heldout_manifest=_resolve(cfg.corpus.heldout_manifest, base),
        )
        codec = dataclasses.replace(cfg.codec, vae_weights=_resolve(cfg.codec.vae_weights, base))
        cfg = dataclasses.replace(cfg, corpus=corpus, codec=codec)
    _check(cfg)
    return cfg


def load_train_config(path: str | Path) -> TrainConfig:
    """Read a JSON training config (module docstring); UsageError naming the file for any problem."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: no such training config file (the toy config is {TOY_CONFIG})")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{p}: not valid JSON ({err})") from err
    return parse_train_config(data, str(p), p.resolve().parent)
