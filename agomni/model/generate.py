"""Generate audio for manifest items with a reference-model checkpoint (every task: t2a, v2a, tts, v2s,
t2song, v2song).

`AudioGenerator` holds the conditioners, network and codec, built ONCE (checkpoint, precision, compile
and sampler settings decided then); its `generate` runs items for any seed, as often as needed.
`agomni generate`, `agomni run` (one per run), `agomni profile` (its `render` under a timing hook) and
the fast-path check (`latents`) all go through it; the function `generate` builds one and runs it once.

Per item: `agomni.model.conditioning.item_conditions` turns the item's fields into network inputs (the
same function training uses; video decoded once). The network is re-timed to the duration
(`--duration`, else the item's ``duration``, else the config's); consecutive items of equal duration
with the same modalities run together, up to `batch_size` items x `num_samples` rows per network call
(rows of one call differ only in content, so each gets the output it gets alone, up to rounding). Latents are sampled by
`agomni.model.flow_matching.sample` (CFG as one batched pass on CUDA, as two passes on the CPU), mapped back by the network's latent statistics
(`AgomniMMDiT.unnormalize`) and decoded latent -> mel (VAE) -> wave (vocoder), cut to
round(duration * sample_rate) samples.

Precision: dtype "fp32" runs the network eagerly in float32; "bf16" (the default on CUDA) holds the
network WEIGHTS in bfloat16 (no autocast over float32 weights) with the sampler state and the codec
in float32; `compile` (default on CUDA) captures the guided network step with
``torch.compile(mode="reduce-overhead")`` (CUDA graphs).

Seeds (documented contract): sample k of item `id` starts from N(0, I) noise drawn on the CPU from
``torch.Generator().manual_seed(derive_seed(seed, id, k))``, where ``derive_seed`` is the first 8 bytes
(big-endian, top bit cleared) of SHA-256("agomni-generate/<seed>/<id>/<k>"). The noise of a sample thus
depends neither on item order nor on the other items. Outputs are bit-identical for the same seed,
machine and thread count (another thread count sums the matrix products in another order: README).

Random weights: every stand-in conditioner, an untrained network (`Checkpoint.random_weights`) and a
codec part without a checkpoint is recorded, every output they touch carries ``random_weights: true``
in its metadata, and one warning line goes to stderr per call.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ..errors import UsageError
from ..manifest import Item, output_name
from .checkpoint import Checkpoint, build_network, load_codec, load_model_checkpoint
from .codec import AudioCodec
from .conditioners import TextConditioner, VideoConditioner
from .conditioning import Conditioners, ItemConditions, build_conditioners, item_conditions
from .config import ModelConfig
from .flow_matching import DEFAULT_CFG, DEFAULT_METHOD, DEFAULT_STEPS, StepHook, check_sampler, sample
from .network import AgomniMMDiT, ModalityPresence
from .step import DTYPES, StepCompiler, resolve_precision

DEFAULT_BATCH_SIZE = 32  # items per network call (x num_samples rows, x 2 for CFG)


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


def resolve_duration(item: Item, duration: float | None, config: ModelConfig) -> float:
    """Seconds to generate for `item`: the explicit `duration`, else the item's, else the config's."""
    value = duration if duration is not None else item.duration
    value = config.sequence.duration_s if value is None else float(value)
    if not value > 0:
        raise UsageError(f"item {item.id}: duration must be > 0 seconds, got {value}")
    return value


def random_parts(checkpoint: Checkpoint, conditioners: Conditioners, codec: AudioCodec) -> list[str]:
    """Names of every part with random (untrained) weights."""
    parts = ["network"] if checkpoint.random_weights else []
    parts += [f"{name} conditioner" for name, r in conditioners.record.items() if r["random_weights"]]
    return parts + (["codec"] if codec.random_weights else [])


def batch_inputs(rows: list[ItemConditions]) -> dict[str, Any]:
    """`preprocess_conditions` keyword arguments for rows of item conditions (one row per sample): a
    stream some rows lack is zero-filled there and marked absent in `presence`; None when no row has it."""
    inputs: dict[str, Any] = {}
    for name in ("clip_f", "sync_f", "text_f", "lt_ids"):
        given = [row.network_inputs()[name] for row in rows]
        template = next((x for x in given if x is not None), None)
        inputs[name] = (
            None
            if template is None
            else torch.cat([template.new_zeros(template.shape) if x is None else x for x in given])
        )
    flags = {
        stream: torch.tensor([row.network_inputs()[key] is not None for row in rows])
        for stream, key in (("video", "clip_f"), ("text", "text_f"), ("lt", "lt_ids"))
    }
    return {**inputs, "presence": ModalityPresence(**flags)}


def _modalities(item: Item) -> tuple[bool, bool, bool]:
    """Which of video, text, LT the item conditions on."""
    return (
        item.video is not None,
        item.text is not None,
        item.transcript is not None or item.lyrics is not None,
    )


def _chunks(items: list[Item], seconds: list[float], size: int) -> Iterator[list[int]]:
    """Indices of runs of consecutive items with equal duration and the same modalities (so no network
    call computes a stream that every row masks), at most `size` long."""
    run: list[int] = []
    for i in range(len(items)):
        same = (
            seconds[i] == seconds[run[0]] and _modalities(items[i]) == _modalities(items[run[0]])
            if run
            else True
        )
        if run and (len(run) == size or not same):
            yield run
            run = []
        run.append(i)
    if run:
        yield run


# hook(stage): called as each stage of one network call starts - "conditioning" (items -> features,
# `generate` only), "network conditioning" (`preprocess_conditions` and the guided step), "sampling",
# "decoding" (VAE), "vocoding" - and with "done" after the vocoder. Timing hooks mark the clock; a hook
# must not touch the tensors.
StageHook = Callable[[str], None]


def _no_hook(stage: str) -> None:
    pass


class AudioGenerator:
    """A network, its codec and (for manifest items) its conditioners, built ONCE with the sampler
    settings (steps, cfg, sampler, sway) and the network step (eager or compiled, CFG batched or as two
    passes) decided once; `generate` then runs any items and seeds, as often as needed.

    `from_checkpoint` builds one from a checkpoint (what `agomni generate` and `agomni run` use);
    the constructor takes ready parts (the profiler's random-weight network, the fast-path check's
    network copies). batched: CFG as one batched pass (None: on CUDA, as `agomni generate` does).
    `record`: the settings every output's metadata carries (see `generate`); `random`: the names of the
    parts with random weights."""

    def __init__(
        self,
        network: AgomniMMDiT,
        codec: AudioCodec | None = None,
        conditioners: Conditioners | None = None,
        *,
        steps: int = DEFAULT_STEPS,
        cfg: float = DEFAULT_CFG,
        sampler: str = DEFAULT_METHOD,
        sway: float | None = None,
        compile: bool = False,
        batched: bool | None = None,
        record: dict[str, Any] | None = None,
        random: list[str] | None = None,
    ):
        check_sampler(steps, sampler)
        self.network, self.codec, self.conditioners = network, codec, conditioners
        self.steps, self.cfg, self.sampler, self.sway = steps, cfg, sampler, sway
        self.device = next(network.parameters()).device
        batched = self.device.type == "cuda" if batched is None else batched
        self.step = StepCompiler(network, cfg=cfg, compile=compile, batched=batched)
        self.record = record or {}
        self.random = random or []

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: Checkpoint | str | Path,
        *,
        steps: int = DEFAULT_STEPS,
        cfg: float = DEFAULT_CFG,
        device: str = "cpu",
        dtype: str | None = None,
        sampler: str = DEFAULT_METHOD,
        sway: float | None = None,
        video_conditioner: VideoConditioner | None = None,
        text_conditioner: TextConditioner | None = None,
        compile: bool | None = None,
    ) -> AudioGenerator:
        """Load the checkpoint (or take a loaded one) and build its conditioners, network and codec on
        `device`. dtype: "fp32" or "bf16" network weights (None: bf16 on CUDA, fp32 elsewhere); compile:
        CUDA-graph the network step (None: on CUDA). video_conditioner / text_conditioner replace the
        checkpoint's conditioners. Raises UsageError (arguments) and WeightsError (checkpoint)."""
        check_sampler(steps, sampler)
        dev, precision, compile = resolve_precision(device, dtype, compile)
        ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_model_checkpoint(checkpoint)
        config = ckpt.config
        conditioners = build_conditioners(ckpt.conditioners, config, dev).replace(
            video_conditioner, text_conditioner
        )
        network = build_network(ckpt, dev).cast(precision)
        codec = load_codec(ckpt).to(dev)
        random = random_parts(ckpt, conditioners, codec)
        record = {
            "checkpoint": {
                "path": str(ckpt.path),
                "sha256": ckpt.sha256,
                "step": ckpt.step,
                "config": config.name,
                "random_weights": ckpt.random_weights,
            },
            "steps": steps,
            "cfg": cfg,
            "cfg_batched": dev.type == "cuda",
            "sampler": sampler,
            "sway": sway,
            "device": str(dev),
            "dtype": "bf16" if precision == torch.bfloat16 else "fp32",
            "network_weights": f"{precision} (no autocast)",
            "compiled": compile,
            "conditioners": conditioners.record,
            "codec": {"provenance": dict(codec.provenance), "random_weights": codec.random_weights},
            "latent_stats": "checkpoint statistics (latent * std + mean)"
            if ckpt.latent_stats is not None
            else "none",
            "random_weights": bool(random),
            "random_parts": random,
            "seed_rule": "derive_seed: SHA-256('agomni-generate/<seed>/<id>/<k>')[:8], top bit cleared",
        }
        return cls(
            network,
            codec,
            conditioners,
            steps=steps,
            cfg=cfg,
            sampler=sampler,
            sway=sway,
            compile=compile,
            record=record,
            random=random,
        )

    def latents(
        self,
        inputs: dict[str, Any],
        noise: torch.Tensor,
        hook: StageHook = _no_hook,
        step_hook: StepHook | None = None,
    ) -> torch.Tensor:
        """Sampled latents (B, latent_len, latent_dim), mapped back by the network's latent statistics,
        for `preprocess_conditions` keyword arguments `inputs` and noise (B, latent_len, latent_dim)."""
        with torch.no_grad():
            hook("network conditioning")
            conditions = self.network.preprocess_conditions(**inputs)
            velocity = self.step.velocity(conditions)
            hook("sampling")
            x = sample(
                self.network,
                conditions,
                noise.to(self.device),
                steps=self.steps,
                cfg=self.cfg,
                method=self.sampler,
                sway=self.sway,
                velocity=velocity,
                hook=step_hook,
            )
            return self.network.unnormalize(x)

    def render(
        self,
        inputs: dict[str, Any],
        noise: torch.Tensor,
        num_samples: int | None = None,
        hook: StageHook = _no_hook,
        step_hook: StepHook | None = None,
    ) -> torch.Tensor:
        """Waves (B, samples) on the device: `latents`, then latent -> mel (VAE) -> wave (vocoder), cut to
        `num_samples` audio samples (None: every decoded sample)."""
        if self.codec is None:
            raise UsageError("this generator has no codec: use latents()")
        latents = self.latents(inputs, noise, hook, step_hook)
        with torch.no_grad():
            hook("decoding")
            mel = self.codec.decode(latents)
            hook("vocoding")
            wave = self.codec.vocode(mel)
            hook("done")
        return self.codec.trim(wave, num_samples, latents.shape[1])

    def generate(
        self,
        items: Iterable[Item],
        *,
        seed: int = 0,
        num_samples: int = 1,
        duration: float | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        sink: Callable[[GeneratedAudio], None] | None = None,
        progress: bool = False,
        hook: StageHook = _no_hook,
        step_hook: StepHook | None = None,
    ) -> list[GeneratedAudio]:
        """`num_samples` samples per item, in item order (see the module docstring for the recipe).

        duration: seconds for every item (None: each item's ``duration``, else the config's).
        batch_size: items per network call. Each output's `metadata` holds the checkpoint (path, sha256,
        step, config name), seed and derived seed, steps, cfg, duration, sampler, sway, device, dtype,
        conditioners, codec provenance, item fields used, and random_weights. sink: called with each
        output as soon as its item is done (e.g. to write it); with a sink the outputs are not kept and
        the returned list is empty. progress: a tqdm bar over items on stderr. hook / step_hook: stage
        and sampler-step timing hooks (`StageHook`, `agomni.model.flow_matching.StepHook`).
        Raises UsageError (arguments, unsupported language, too-long transcript), MediaError (unreadable
        or too-short video, naming the item and both durations).
        """
        if num_samples < 1:
            raise UsageError(f"num_samples must be at least 1, got {num_samples}")
        if batch_size < 1:
            raise UsageError(f"batch_size must be at least 1, got {batch_size}")
        if self.conditioners is None or self.codec is None:
            raise UsageError(
                "generating for items needs conditioners and a codec (AudioGenerator.from_checkpoint)"
            )
        network, codec, config = self.network, self.codec, self.network.config
        items = list(items)
        if self.random:
            print(
                f"warning: RANDOM WEIGHTS in {', '.join(self.random)}: all {len(items) * num_samples} outputs "
                "of this run are labelled random_weights: true (fine for tests, latency and the toy model, "
                "which was trained with these frozen stand-ins; not a real-world generator)",
                file=sys.stderr,
            )
        record = dict(self.record)
        settings = {"checkpoint": record.pop("checkpoint", None), "seed": seed, "num_samples": num_samples}
        settings.update(record)
        seconds = [resolve_duration(item, duration, config) for item in items]
        outputs: list[GeneratedAudio] = []
        bar = tqdm(total=len(items), desc="generate", unit="item", file=sys.stderr, disable=not progress)
        for chunk in _chunks(items, seconds, batch_size):
            length = seconds[chunk[0]]
            try:
                network.set_duration(length)
            except UsageError as err:
                raise UsageError(f"item {items[chunk[0]].id}: {err}") from err
            hook("conditioning")
            conds = [item_conditions(items[i], config, network.sequence, self.conditioners) for i in chunk]
            rows = [c for c in conds for _ in range(num_samples)]
            seeds = [derive_seed(seed, items[i].id, k) for i in chunk for k in range(num_samples)]
            shape = (network.sequence.latent_len, config.latent_dim)
            noise = torch.stack(
                [torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds]
            )
            n = round(length * codec.sample_rate)
            waves = self.render(batch_inputs(rows), noise, n, hook, step_hook).float().cpu()
            for j, i in enumerate(chunk):
                item = items[i]
                for k in range(num_samples):
                    row = j * num_samples + k
                    metadata = {
                        **settings,
                        "item": {"id": item.id, "line": item.line, **conds[j].used},
                        "sample": k,
                        "derived_seed": seeds[row],
                        "duration_s": length,
                        "sample_rate_hz": codec.sample_rate,
                        "num_audio_samples": n,
                    }
                    output = GeneratedAudio(
                        item_id=item.id,
                        task=item.task,
                        sample=k,
                        num_samples=num_samples,
                        wave=waves[row].clone(),
                        sample_rate=codec.sample_rate,
                        duration_s=length,
                        seed=seeds[row],
                        metadata=metadata,
                    )
                    if sink is None:
                        outputs.append(output)
                    else:
                        sink(output)
                bar.update(1)
        bar.close()
        return outputs


def generate(
    items: Iterable[Item],
    checkpoint: Checkpoint | str | Path,
    *,
    seed: int = 0,
    num_samples: int = 1,
    duration: float | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sink: Callable[[GeneratedAudio], None] | None = None,
    progress: bool = False,
    **model: Any,
) -> list[GeneratedAudio]:
    """One-off generation: `AudioGenerator.from_checkpoint(checkpoint, **model)` (model: steps, cfg,
    device, dtype, sampler, sway, video_conditioner, text_conditioner, compile), then its `generate` with
    the run options. Build an `AudioGenerator` once instead to generate several times with one model."""
    return AudioGenerator.from_checkpoint(checkpoint, **model).generate(
        items,
        seed=seed,
        num_samples=num_samples,
        duration=duration,
        batch_size=batch_size,
        sink=sink,
        progress=progress,
    )


__all__ = [
    "DTYPES",
    "AudioGenerator",
    "GeneratedAudio",
    "StageHook",
    "batch_inputs",
    "derive_seed",
    "generate",
    "random_parts",
    "resolve_duration",
]
