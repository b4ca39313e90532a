"""Generate audio for manifest items with a reference-model checkpoint (every task: t2a, v2a, tts, v2s,
t2song, v2song).

Per item: the item's fields become conditions - ``text`` -> text conditioner; ``video`` -> decoded
twice with `agomni.io.load_video` (FFmpeg ``fps`` filter) at the config's CLIP rate (8 fps) and its
Synchformer input rate (25 fps), CLIP features taken from the first and sync features from the second;
``transcript`` (else ``lyrics``) -> `agomni.model.text.tokenize` in the item's ``language`` (default
"en") and the checkpoint's tokenizer mode, filler-padded to the latent frame count. A field the item
lacks is an absent (masked) modality. The network is re-timed to the duration (`--duration`, else the
item's ``duration``, else the config's), latents are sampled by flow matching with batched CFG, mapped
back by the checkpoint's latent statistics when it has them, and decoded latent -> mel (VAE) -> wave
(vocoder), cut to round(duration * sample_rate) samples.

Seeds (documented contract): sample k of item `id` starts from N(0, I) noise drawn on the CPU from
``torch.Generator().manual_seed(derive_seed(seed, id, k))``, where ``derive_seed`` is the first 8 bytes
(big-endian, top bit cleared) of SHA-256("agomni-generate/<seed>/<id>/<k>"). The noise of a sample thus
depends neither on item order nor on the other items, and the same settings on the CPU give the same
output bit for bit. The K samples of an item run as one batch.

Random weights: the conditioners here are the stand-ins of `agomni.model.conditioners` unless real
ones are passed; every stand-in, an untrained network (`Checkpoint.random_weights`) and a codec part
without a checkpoint is recorded, and every output they touch carries ``random_weights: true`` in its
metadata, and one warning line goes to stderr per call.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import MediaError, TooShortError, UsageError
from ..manifest import Item, output_name
from .checkpoint import Checkpoint, build_network, latent_stats, load_checkpoint, load_codec
from .codec import AudioCodec
from .conditioners import (
    RandomTextConditioner,
    RandomVideoConditioner,
    TextConditioner,
    VideoConditioner,
)
from .config import ModelConfig, SequenceConfig
from .flow_matching import METHODS, guided_velocity, integrate, time_grid
from .network import AgomniMMDiT
from .text import pad_to_frames, tokenize

DTYPES = ("fp32", "bf16")
DEFAULT_LANGUAGE = "en"
# Length (UTF-8 bytes = tokens) of the stand-in text conditioner when the checkpoint names none: long
# enough for the captions of the toy corpus and AudioCaps-style prompts.
STANDIN_TEXT_TOKENS = 128
LT_FIELDS = ("transcript", "lyrics")
# Manifest fields the reference model cannot use as conditions, and why (recorded per output).
UNUSED_FIELDS = {
    "prompt_audio": "the reference model has no audio-prompt input",
    "prompt_text": "the reference model has no audio-prompt input",
    "reference_audio": "ground truth for evaluation, not a condition",
}


@dataclass(frozen=True)
class Conditioners:
    """The video and text conditioners of a run and how each is recorded (class, random weights, seed)."""

    video: VideoConditioner
    text: TextConditioner
    record: dict[str, dict[str, Any]]

    @property
    def random_weights(self) -> bool:
        return any(entry["random_weights"] for entry in self.record.values())


@dataclass
class GeneratedAudio:
    """One generated sample: mono `wave` (samples,) float32 on the CPU at `sample_rate` Hz, lasting
    `duration_s` seconds, plus `metadata` (the exact settings and provenance; see `generate`)."""

    item_id: str
    task: str
    sample: int
    num_samples: int
    wave: torch.Tensor
    sample_rate: int
    duration_s: float
    seed: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def random_weights(self) -> bool:
        return bool(self.metadata.get("random_weights", False))

    def file_name(self, ext: str = ".wav") -> str:
        """The output file name of the naming contract (agomni.manifest.output_name)."""
        return output_name(self.item_id, ext, sample=self.sample, num_samples=self.num_samples)


def derive_seed(seed: int, item_id: str, sample: int) -> int:
    """Noise seed of sample `sample` of item `item_id` (see the module docstring), in [0, 2**63)."""
    digest = hashlib.sha256(f"agomni-generate/{seed}/{item_id}/{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def _is_random(conditioner: object) -> bool:
    flag = getattr(conditioner, "random_weights", None)
    if flag is not None:
        return bool(flag)
    return isinstance(conditioner, RandomVideoConditioner | RandomTextConditioner)


def _describe(conditioner: object, **details: Any) -> dict[str, Any]:
    record = {"class": type(conditioner).__name__, "random_weights": _is_random(conditioner), **details}
    sha256 = getattr(conditioner, "checkpoint_sha256", None)
    if sha256 is not None:
        record["checkpoint_sha256"] = sha256
    return record


def conditioner_spec(checkpoint: Checkpoint) -> dict[str, Any]:
    """The stand-in conditioner settings a checkpoint was trained with: ``extra["conditioners"]`` when it
    is a dict, else a training run's ``extra["train_config"]["conditioners"]`` ({"seed", "text_tokens"}),
    else {} (defaults). A checkpoint that describes them only in words is refused (UsageError)."""
    extra = checkpoint.extra
    given = extra.get("conditioners")
    if isinstance(given, Mapping):
        return dict(given)
    trained = (extra.get("train_config") or {}).get("conditioners")
    if isinstance(trained, Mapping):
        seed = int(trained.get("seed", 0))
        text = {"seed": seed, **({"length": int(trained["text_tokens"])} if "text_tokens" in trained else {})}
        return {"video": {"seed": seed}, "text": text}
    if given is not None:
        raise UsageError(
            f"{checkpoint.path}: the checkpoint describes its conditioners only as {given!r}; record them as "
            'extra["conditioners"] = {"video": {"seed": S}, "text": {"seed": S, "length": N}}'
        )
    return {}


def standin_conditioners(config: ModelConfig, spec: Mapping[str, Any] | None = None) -> Conditioners:
    """The random stand-in conditioners at `config`'s feature widths, as `spec` (a checkpoint's
    ``extra["conditioners"]``) describes them: seeds (default 0) and the text length in tokens (default
    max(config.text_len, STANDIN_TEXT_TOKENS))."""
    spec = dict(spec or {})
    video_spec, text_spec = dict(spec.get("video") or {}), dict(spec.get("text") or {})
    for name, entry in (("video", video_spec), ("text", text_spec)):
        if entry.get("kind", "random") != "random":
            raise UsageError(
                f"the checkpoint was trained with the {name} conditioner {entry['kind']!r}; built in are "
                f"'random' (the stand-ins) and 'real' (CLIP + Synchformer, Flan-T5); pass any other to "
                f"generate({name}_conditioner=...)"
            )
    video_seed, text_seed = int(video_spec.get("seed", 0)), int(text_spec.get("seed", 0))
    length = int(text_spec.get("length", max(config.text_len, STANDIN_TEXT_TOKENS)))
    video = RandomVideoConditioner(config.clip_dim, config.sync_dim, seed=video_seed)
    text = RandomTextConditioner(config.text_dim, length, seed=text_seed)
    record = {
        "video": _describe(video, seed=video_seed),
        "text": _describe(text, seed=text_seed, length_tokens=length),
    }
    return Conditioners(video=video, text=text, record=record)


def resolve_duration(item: Item, duration: float | None, config: ModelConfig) -> float:
    """Seconds to generate for `item`: the explicit `duration`, else the item's, else the config's."""
    value = duration if duration is not None else item.duration
    value = config.sequence.duration_s if value is None else float(value)
    if not value > 0:
        raise UsageError(f"item {item.id}: duration must be > 0 seconds, got {value}")
    return value


def encode_video(
    item: Item, sequence: SequenceConfig, conditioner: VideoConditioner
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """(clip (1, clip_len, clip_dim), sync (1, sync_len, sync_dim), record) for the item's video.

    MMAudio's loading recipe: the video is decoded twice with FFmpeg's fps filter, at the CLIP rate and
    at the Synchformer input rate (native frame size); CLIP features come from the first decode, sync
    features from the second. TooShortError when the video is shorter than `sequence.duration_s`.
    """
    from ..io import load_video

    if item.video is None:
        raise UsageError(f"item {item.id}: has no video")
    streams = {}
    records = {}
    for stream, fps in (("clip", sequence.clip_fps), ("sync", sequence.sync_input_fps)):
        frames, record = load_video(item.video, fps=float(fps))
        if record.source_duration_s + 0.5 / (record.source_fps or fps) < sequence.duration_s:
            raise TooShortError(
                item.video,
                f"item {item.id}: the video lasts {record.source_duration_s:.3f} s, shorter than the "
                f"requested duration {sequence.duration_s:.3f} s; generate a shorter duration (--duration)",
            )
        video = frames[None].float() / 255.0
        try:
            # A conditioner with per-stream encoders (the real CLIP + Synchformer pair) computes only the
            # stream this decode is for; the stand-ins compute both and we keep one.
            encode_one = getattr(conditioner, f"encode_{stream}", None)
            if encode_one is not None:
                streams[stream] = encode_one(video, float(fps), sequence)
            else:
                streams[stream] = getattr(conditioner.encode(video, float(fps), sequence), stream)
        except UsageError as err:
            raise MediaError(item.video, f"item {item.id}: {err}") from err
        records[stream] = {"fps": float(fps), "frames": record.frames, "sha256": record.file_sha256}
    info = {"path": str(item.video), "source_duration_s": record.source_duration_s, "decoded": records}
    return streams["clip"], streams["sync"], info


def _lt_ids(item: Item, config: ModelConfig, sequence: SequenceConfig) -> tuple[torch.Tensor, dict[str, Any]]:
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
            f"{sequence.latent_len} latent frames of {sequence.duration_s} s; generate a longer duration"
        )
    used = {"field": name, "language": language, "tokenizer": config.lt_tokenizer, "tokens": len(ids)}
    return pad_to_frames(ids, sequence.latent_len)[None], used


def item_conditions(
    item: Item, config: ModelConfig, sequence: SequenceConfig, conditioners: Conditioners
) -> tuple[dict[str, torch.Tensor | None], dict[str, Any]]:
    """Network inputs (clip_f, sync_f, text_f, lt_ids; None = absent) for one item at batch 1, and a
    record of the fields used and left unused."""
    inputs: dict[str, torch.Tensor | None] = {"clip_f": None, "sync_f": None, "text_f": None, "lt_ids": None}
    used: dict[str, Any] = {"task": item.task}
    if item.text is not None:
        try:
            inputs["text_f"] = conditioners.text.encode([item.text])
        except UsageError as err:
            raise UsageError(f"item {item.id}: text: {err}") from err
        used["text"] = item.text
    if item.video is not None:
        inputs["clip_f"], inputs["sync_f"], used["video"] = encode_video(item, sequence, conditioners.video)
    if any(getattr(item, f) is not None for f in LT_FIELDS):
        inputs["lt_ids"], used["lt"] = _lt_ids(item, config, sequence)
        used[used["lt"]["field"]] = getattr(item, used["lt"]["field"])
    used["absent_modalities"] = [
        name
        for name, key in (("video", "clip_f"), ("text", "text_f"), ("lt", "lt_ids"))
        if inputs[key] is None
    ]
    unused = {f: why for f, why in UNUSED_FIELDS.items() if getattr(item, f) is not None}
    if item.transcript is not None and item.lyrics is not None:
        unused["lyrics"] = "the transcript conditions the LT stream; an item has one LT text"
    used["fields_not_used"] = unused
    return inputs, used


def autocast(device: torch.device, dtype: str) -> torch.autocast:
    """bf16 autocast on `device` for dtype "bf16"; a disabled context for "fp32"."""
    if dtype not in DTYPES:
        raise UsageError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")


def sample_latents(
    network: AgomniMMDiT,
    inputs: Mapping[str, torch.Tensor | None],
    seeds: list[int],
    *,
    steps: int,
    cfg: float,
    sampler: str,
    sway: float | None,
    dtype: str,
) -> torch.Tensor:
    """Latents (K, latent_len, latent_dim) fp32 for K = len(seeds) samples of one item's conditions
    (batch-1 inputs repeated K times); batched CFG (agomni.model.flow_matching.guided_velocity)."""
    device = network.null_video.device
    k = len(seeds)
    batch = {name: None if x is None else x.expand(k, *x.shape[1:]).to(device) for name, x in inputs.items()}
    shape = (network.sequence.latent_len, network.config.latent_dim)
    noise = [torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds]
    x0 = torch.stack(noise).to(device)
    with torch.no_grad(), autocast(device, dtype):
        conditions = network.preprocess_conditions(**batch, batch_size=k)
        velocity = guided_velocity(network, conditions, network.empty_conditions(k), cfg)
        return integrate(velocity, x0, time_grid(steps, sway), sampler).float()


def _check_settings(num_samples: int, steps: int, sampler: str, dtype: str, device: str) -> torch.device:
    if num_samples < 1:
        raise UsageError(f"num_samples must be at least 1, got {num_samples}")
    if steps < 1:
        raise UsageError(f"steps must be at least 1, got {steps}")
    if sampler not in METHODS:
        raise UsageError(f"unknown sampler {sampler!r}; valid: {', '.join(METHODS)}")
    if dtype not in DTYPES:
        raise UsageError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise UsageError(f"unknown device {device!r} ({err})") from err


def random_parts(checkpoint: Checkpoint, conditioners: Conditioners, codec: AudioCodec) -> list[str]:
    """Names of every part with random (untrained) weights."""
    parts = ["network"] if checkpoint.random_weights else []
    parts += [f"{name} conditioner" for name, r in conditioners.record.items() if r["random_weights"]]
    return parts + (["codec"] if codec.random_weights else [])


def generate(
    items: Iterable[Item],
    checkpoint: Checkpoint | str | Path,
    *,
    seed: int = 0,
    num_samples: int = 1,
    duration: float | None = None,
    steps: int = 25,
    cfg: float = 4.5,
    device: str = "cpu",
    dtype: str = "fp32",
    sampler: str = "euler",
    sway: float | None = None,
    video_conditioner: VideoConditioner | None = None,
    text_conditioner: TextConditioner | None = None,
    progress: bool = False,
    sink: Callable[[GeneratedAudio], None] | None = None,
) -> list[GeneratedAudio]:
    """`num_samples` samples per item, in item order (see the module docstring for the recipe).

    checkpoint: a loaded `Checkpoint` or its path. duration: seconds for every item (None: each item's
    ``duration``, else the config's). steps/cfg/sampler/sway: flow-matching Euler or midpoint steps,
    guidance strength w (v = w v_cond + (1 - w) v_uncond), sway coefficient (None = uniform grid).
    dtype: "fp32" or "bf16" (autocast of the network; codec in fp32). video_conditioner /
    text_conditioner replace the checkpoint's random stand-ins. Each output's `metadata` holds the
    checkpoint (path, sha256, step, config name), seed and derived seed, steps, cfg, duration, sampler,
    sway, device, dtype, conditioners, codec provenance, item fields used, and random_weights.
    sink: called with each output as soon as its item is done (e.g. to write it); with a sink the outputs
    are not kept and the returned list is empty. progress: a tqdm bar over items on stderr.
    Raises UsageError (arguments, unsupported language, too-long transcript), MediaError (unreadable or
    too-short video, naming the item and both durations), WeightsError (checkpoint).
    """
    dev = _check_settings(num_samples, steps, sampler, dtype, device)
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    config = ckpt.config
    spec = conditioner_spec(ckpt)
    if any((spec.get(name) or {}).get("kind") == "real" for name in ("video", "text")):
        from .encoders import build_conditioners

        conditioners = build_conditioners("real", config=config, device=dev)
    else:
        conditioners = standin_conditioners(config, spec)
    if video_conditioner is not None or text_conditioner is not None:
        video = video_conditioner or conditioners.video
        text = text_conditioner or conditioners.text
        record = dict(conditioners.record)
        if video_conditioner is not None:
            record["video"] = _describe(video_conditioner)
        if text_conditioner is not None:
            record["text"] = _describe(text_conditioner)
        conditioners = Conditioners(video=video, text=text, record=record)
    network = build_network(ckpt).to(dev)
    codec = load_codec(ckpt).to(dev)
    stats = latent_stats(ckpt)
    items = list(items)
    random = random_parts(ckpt, conditioners, codec)
    if random:
        print(
            f"warning: RANDOM WEIGHTS in {', '.join(random)}: all {len(items) * num_samples} outputs of this "
            "run are labelled random_weights: true (fine for tests, latency and the toy model, which was "
            "trained with these frozen stand-ins; not a real-world generator)",
            file=sys.stderr,
        )
    settings = {
        "checkpoint": {
            "path": str(ckpt.path),
            "sha256": ckpt.sha256,
            "step": ckpt.step,
            "config": config.name,
            "random_weights": ckpt.random_weights,
        },
        "seed": seed,
        "num_samples": num_samples,
        "steps": steps,
        "cfg": cfg,
        "cfg_batched": True,
        "sampler": sampler,
        "sway": sway,
        "device": str(dev),
        "dtype": dtype,
        "conditioners": conditioners.record,
        "codec": {"provenance": dict(codec.provenance), "random_weights": codec.random_weights},
        "latent_stats": "checkpoint statistics (latent * std + mean)" if stats is not None else "none",
        "random_weights": bool(random),
        "random_parts": random,
        "seed_rule": "derive_seed: SHA-256('agomni-generate/<seed>/<id>/<k>')[:8], top bit cleared",
    }
    outputs: list[GeneratedAudio] = []
    iterator = items
    if progress:
        from tqdm import tqdm

        iterator = tqdm(items, desc="generate", unit="item", file=sys.stderr)
    for item in iterator:
        seconds = resolve_duration(item, duration, config)
        try:
            network.set_duration(seconds)
        except UsageError as err:
            raise UsageError(f"item {item.id}: {err}") from err
        inputs, used = item_conditions(item, config, network.sequence, conditioners)
        seeds = [derive_seed(seed, item.id, k) for k in range(num_samples)]
        latents = sample_latents(
            network, inputs, seeds, steps=steps, cfg=cfg, sampler=sampler, sway=sway, dtype=dtype
        )
        if stats is not None:
            latents = latents * stats[1].to(dev) + stats[0].to(dev)
        n = round(seconds * codec.sample_rate)
        with torch.no_grad():
            waves = codec.decode_to_wave(latents, n).float().cpu()
        for k, wave in enumerate(waves):
            metadata = {
                **settings,
                "item": {"id": item.id, "line": item.line, **used},
                "sample": k,
                "derived_seed": seeds[k],
                "duration_s": seconds,
                "sample_rate_hz": codec.sample_rate,
                "num_audio_samples": n,
            }
            output = GeneratedAudio(
                item_id=item.id,
                task=item.task,
                sample=k,
                num_samples=num_samples,
                wave=wave.detach().clone(),
                sample_rate=codec.sample_rate,
                duration_s=seconds,
                seed=seeds[k],
                metadata=metadata,
            )
            if sink is None:
                outputs.append(output)
            else:
                sink(output)
    return outputs


__all__ = [
    "Conditioners",
    "GeneratedAudio",
    "conditioner_spec",
    "derive_seed",
    "encode_video",
    "generate",
    "item_conditions",
    "sample_latents",
    "standin_conditioners",
]
