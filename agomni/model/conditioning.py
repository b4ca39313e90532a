"""Manifest item -> network conditions: ONE path, used by training (`agomni.model.train.data`) and by
generation (`agomni.model.generate`), so the network sees its features prepared the same way in both.

- The conditioner bundle (`Conditioners`): a video and a text conditioner plus how each is recorded.
  Built from a checkpoint sidecar's ``conditioners`` entry (`ConditionerSpec`) by `build_conditioners`:
  the seeded random stand-ins of `agomni.model.conditioners` (kind "random") or the real CLIP +
  Synchformer and Flan-T5 encoders of `agomni.model.encoders` (kind "real").
- Per item (`item_conditions`): ``text`` -> the text conditioner; ``video`` -> decoded ONCE with
  `agomni.io.load_video` at the file's own frame rate, then each encoder takes, for each of its
  sampling times (CLIP at ``clip_fps``, Synchformer input at ``sync_input_fps``), the nearest earlier
  decoded frame (`agomni.model.conditioners.frames_at`); ``transcript`` (else ``lyrics``) ->
  `agomni.model.text.tokenize` in the item's ``language`` (default `DEFAULT_LANGUAGE`, recorded) and
  the model's tokenizer mode, filler-padded to the latent frame count. A field the item lacks is an
  absent (masked) modality.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import MediaError, TooShortError, UsageError, WeightsError
from ..io import load_video
from ..manifest import Item
from .conditioners import RandomTextConditioner, RandomVideoConditioner, TextConditioner, VideoConditioner
from .config import ModelConfig, SequenceConfig
from .encoders import (
    CLIP_WEIGHTS,
    DFN5B_VIT_H_14_384,
    FLAN_T5_LARGE,
    FLAN_T5_TOKENIZER,
    FLAN_T5_WEIGHTS,
    SYNCHFORMER,
    SYNCHFORMER_WEIGHTS,
    ClipVideoEncoder,
    EncoderVideoConditioner,
    FlanT5TextConditioner,
    SynchformerEncoder,
)
from .text import pad_to_frames, tokenize

DEFAULT_LANGUAGE = "en"
# Length (UTF-8 bytes = tokens) of the stand-in text conditioner when the sidecar names none: long
# enough for the captions of the toy corpus and AudioCaps-style prompts.
STANDIN_TEXT_TOKENS = 128
KINDS = ("random", "real")
LT_FIELDS = ("transcript", "lyrics")
# Manifest fields the reference model cannot use as conditions, and why (recorded per output).
UNUSED_FIELDS = {
    "prompt_audio": "the reference model has no audio-prompt input",
    "prompt_text": "the reference model has no audio-prompt input",
    "reference_audio": "ground truth for evaluation, not a condition",
}


@dataclass(frozen=True)
class ConditionerSpec:
    """A checkpoint sidecar's ``conditioners`` entry: which conditioners the network was trained with.

    JSON: {"video": {"kind": "random"|"real", "seed": int}, "text": {"kind": "random"|"real", "seed":
    int, "length": int}}. kind "random": the stand-ins with these seeds and text length in tokens
    (None = max(config.text_len, STANDIN_TEXT_TOKENS)); kind "real": the registry encoders (seed and
    length unused; Flan-T5 takes config.text_len tokens).
    """

    video_kind: str = "random"
    video_seed: int = 0
    text_kind: str = "random"
    text_seed: int = 0
    text_length: int | None = None

    def __post_init__(self) -> None:
        for name in ("video_kind", "text_kind"):
            if getattr(self, name) not in KINDS:
                raise UsageError(
                    f"conditioners.{name.replace('_', '.')}: {getattr(self, name)!r} not in {KINDS}"
                )
        if self.text_length is not None and self.text_length < 1:
            raise UsageError(f"conditioners.text.length must be >= 1, got {self.text_length}")

    def to_dict(self) -> dict[str, Any]:
        text: dict[str, Any] = {"kind": self.text_kind, "seed": self.text_seed}
        if self.text_length is not None:
            text["length"] = self.text_length
        return {"video": {"kind": self.video_kind, "seed": self.video_seed}, "text": text}

    @classmethod
    def from_dict(cls, data: Any, source: str) -> ConditionerSpec:
        """Parse the sidecar entry; WeightsError naming `source` and the field for anything else."""
        if not isinstance(data, Mapping) or set(data) - {"video", "text"}:
            raise WeightsError(
                f"{source}: conditioners must be an object with 'video' and 'text', got {data!r}"
            )
        allowed = {"video": {"kind", "seed"}, "text": {"kind", "seed", "length"}}
        fields: dict[str, Any] = {}
        for stream in ("video", "text"):
            entry = data.get(stream) or {}
            if not isinstance(entry, Mapping) or set(entry) - allowed[stream]:
                raise WeightsError(
                    f"{source}: conditioners.{stream} must be an object with fields {sorted(allowed[stream])}, "
                    f"got {entry!r}"
                )
            for key, value in entry.items():
                wanted = str if key == "kind" else int
                if not isinstance(value, wanted) or isinstance(value, bool):
                    raise WeightsError(
                        f"{source}: conditioners.{stream}.{key} must be {wanted.__name__}, got {value!r}"
                    )
                fields[f"{stream}_{key}"] = value
        try:
            return cls(**fields)
        except UsageError as err:
            raise WeightsError(f"{source}: {err}") from err


@dataclass(frozen=True)
class Conditioners:
    """The video and text conditioners of a run and how each is recorded (class, random weights, seed).

    `description` is one line naming them (part of training's example-cache key)."""

    video: VideoConditioner
    text: TextConditioner
    record: dict[str, dict[str, Any]]

    @property
    def random_weights(self) -> bool:
        return any(entry["random_weights"] for entry in self.record.values())

    @property
    def description(self) -> str:
        return "; ".join(f"{name}: {entry}" for name, entry in sorted(self.record.items()))

    def replace(
        self, video: VideoConditioner | None = None, text: TextConditioner | None = None
    ) -> Conditioners:
        """The bundle with the given conditioners swapped in (recorded by class and random_weights)."""
        record = dict(self.record)
        for name, given in (("video", video), ("text", text)):
            if given is not None:
                record[name] = describe(given)
        return Conditioners(video=video or self.video, text=text or self.text, record=record)


def describe(conditioner: object, **details: Any) -> dict[str, Any]:
    """Record of a conditioner: class, random_weights (its own flag, True for the stand-ins) and details."""
    flag = getattr(conditioner, "random_weights", None)
    random = (
        bool(flag)
        if flag is not None
        else isinstance(conditioner, RandomVideoConditioner | RandomTextConditioner)
    )
    record = {"class": type(conditioner).__name__, "random_weights": random, **details}
    sha256 = getattr(conditioner, "checkpoint_sha256", None)
    if sha256 is not None:
        record["checkpoint_sha256"] = sha256
    return record


def _real_video(config: ModelConfig, device: torch.device | str) -> tuple[VideoConditioner, dict[str, Any]]:
    video = EncoderVideoConditioner(
        ClipVideoEncoder.from_registry(device=device), SynchformerEncoder.from_registry(device=device)
    )
    checkpoints = {
        "clip": {"name": CLIP_WEIGHTS, "sha256": video.checkpoint_sha256["clip"]},
        "sync": {"name": SYNCHFORMER_WEIGHTS, "sha256": video.checkpoint_sha256["sync"]},
    }
    return video, {
        "class": type(video).__name__,
        "random_weights": False,
        "kind": "real",
        "checkpoints": checkpoints,
    }


def _real_text(config: ModelConfig, device: torch.device | str) -> tuple[TextConditioner, dict[str, Any]]:
    text = FlanT5TextConditioner.from_registry(length=config.text_len, device=device)
    checkpoints = {
        "encoder": {"name": FLAN_T5_WEIGHTS, "sha256": text.checkpoint_sha256},
        "tokenizer": {"name": FLAN_T5_TOKENIZER, "sha256": text.tokenizer_sha256},
    }
    return text, {
        "class": type(text).__name__,
        "random_weights": False,
        "kind": "real",
        "length_tokens": text.length,
        "checkpoints": checkpoints,
    }


def build_conditioners(
    spec: ConditionerSpec, config: ModelConfig, device: torch.device | str = "cpu"
) -> Conditioners:
    """The conditioners `spec` names at `config`'s feature widths (module docstring).

    A "real" stream needs the encoders' widths (clip 1024, sync 768, text 1024: the S/M/L sizes, not
    the tiny ones): UsageError before any weights are loaded otherwise. Real encoders come from the
    weights registry onto `device`; the stand-ins live on the CPU.
    """
    widths = {
        "video": {
            "clip_dim": (config.clip_dim, DFN5B_VIT_H_14_384.output_dim),
            "sync_dim": (config.sync_dim, SYNCHFORMER.embed_dim),
        },
        "text": {"text_dim": (config.text_dim, FLAN_T5_LARGE.d_model)},
    }
    for stream in ("video", "text"):
        if getattr(spec, f"{stream}_kind") == "real":
            wrong = [
                f"{n} {want} (encoder gives {got})"
                for n, (want, got) in widths[stream].items()
                if want != got
            ]
            if wrong:
                raise UsageError(
                    f"model config {config.name} expects {', '.join(wrong)}; the real encoders fit the S/M/L sizes"
                )
    if spec.video_kind == "real":
        video, video_record = _real_video(config, device)
    else:
        video = RandomVideoConditioner(config.clip_dim, config.sync_dim, seed=spec.video_seed)
        video_record = describe(video, kind="random", seed=spec.video_seed)
    if spec.text_kind == "real":
        text, text_record = _real_text(config, device)
    else:
        length = spec.text_length or max(config.text_len, STANDIN_TEXT_TOKENS)
        text = RandomTextConditioner(config.text_dim, length, seed=spec.text_seed)
        text_record = describe(text, kind="random", seed=spec.text_seed, length_tokens=length)
    return Conditioners(video=video, text=text, record={"video": video_record, "text": text_record})


@dataclass
class ItemConditions:
    """One item's network inputs at batch 1 (None = absent modality) and the record of what was used.

    clip (1, clip_len, clip_dim), sync (1, sync_len, sync_dim), text (1, L, text_dim) float32; lt_ids
    (1, latent_len) int64, 0 = filler. `used`: task, the fields used (text, video path/rate/frames/
    SHA-256, LT field/language/tokenizer/token count), absent modalities and fields not used (why).
    """

    clip: torch.Tensor | None
    sync: torch.Tensor | None
    text: torch.Tensor | None
    lt_ids: torch.Tensor | None
    used: dict[str, Any]

    def network_inputs(self) -> dict[str, torch.Tensor | None]:
        """Keyword arguments of `AgomniMMDiT.preprocess_conditions`."""
        return {"clip_f": self.clip, "sync_f": self.sync, "text_f": self.text, "lt_ids": self.lt_ids}


def encode_video(
    item: Item, sequence: SequenceConfig, conditioner: VideoConditioner
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """(clip (1, clip_len, clip_dim), sync (1, sync_len, sync_dim), record) from ONE decode of the item's
    video (module docstring). TooShortError when the video is shorter than `sequence.duration_s`."""
    if item.video is None:
        raise UsageError(f"item {item.id}: has no video")
    frames, record = load_video(item.video)
    if record.source_duration_s + 0.5 / (record.source_fps or record.fps) < sequence.duration_s:
        raise TooShortError(
            item.video,
            f"item {item.id}: the video lasts {record.source_duration_s:.3f} s, shorter than the "
            f"requested duration {sequence.duration_s:.3f} s; generate a shorter duration (--duration)",
        )
    try:
        features = conditioner.encode(frames[None].float() / 255.0, float(record.fps), sequence)
    except UsageError as err:
        raise MediaError(item.video, f"item {item.id}: {err}") from err
    info = {
        "path": str(item.video),
        "source_duration_s": record.source_duration_s,
        "decoded": {"fps": float(record.fps), "frames": record.frames, "sha256": record.file_sha256},
        "sampling": f"nearest earlier decoded frame at {sequence.clip_fps} fps (CLIP) and "
        f"{sequence.sync_input_fps} fps (Synchformer input)",
    }
    return features.clip, features.sync, info


def lt_ids(item: Item, config: ModelConfig, sequence: SequenceConfig) -> tuple[torch.Tensor, dict[str, Any]]:
    """(1, latent_len) LT token ids of the item's transcript (else lyrics), and what was used."""
    name = next(f for f in LT_FIELDS if getattr(item, f) is not None)
    language = item.language or DEFAULT_LANGUAGE
    try:
        ids = tokenize(getattr(item, name), language, config.lt_tokenizer)
    except UsageError as err:
        raise UsageError(f"item {item.id}: {name}: {err}") from err
    if len(ids) > sequence.latent_len:
        raise UsageError(
            f"item {item.id}: {name} has {len(ids)} {config.lt_tokenizer} tokens, more than the "
            f"{sequence.latent_len} latent frames of {sequence.duration_s} s; use a longer duration"
        )
    used = {"field": name, "language": language, "tokenizer": config.lt_tokenizer, "tokens": len(ids)}
    return pad_to_frames(ids, sequence.latent_len)[None], used


def item_conditions(
    item: Item, config: ModelConfig, sequence: SequenceConfig, conditioners: Conditioners
) -> ItemConditions:
    """The item's network inputs at batch 1 for clips of `sequence.duration_s` seconds (module docstring)."""
    used: dict[str, Any] = {"task": item.task}
    text = clip = sync = ids = None
    if item.text is not None:
        try:
            text = conditioners.text.encode([item.text])
        except UsageError as err:
            raise UsageError(f"item {item.id}: text: {err}") from err
        used["text"] = item.text
    if item.video is not None:
        clip, sync, used["video"] = encode_video(item, sequence, conditioners.video)
    if any(getattr(item, f) is not None for f in LT_FIELDS):
        ids, used["lt"] = lt_ids(item, config, sequence)
        used[used["lt"]["field"]] = getattr(item, used["lt"]["field"])
    present = {"video": clip is not None, "text": text is not None, "lt": ids is not None}
    used["absent_modalities"] = [name for name, here in present.items() if not here]
    unused = {f: why for f, why in UNUSED_FIELDS.items() if getattr(item, f) is not None}
    if item.transcript is not None and item.lyrics is not None:
        unused["lyrics"] = "the transcript conditions the LT stream; an item has one LT text"
    used["fields_not_used"] = unused
    return ItemConditions(clip=clip, sync=sync, text=text, lt_ids=ids, used=used)


__all__ = [
    "DEFAULT_LANGUAGE",
    "STANDIN_TEXT_TOKENS",
    "ConditionerSpec",
    "Conditioners",
    "ItemConditions",
    "build_conditioners",
    "describe",
    "encode_video",
    "item_conditions",
    "lt_ids",
]
