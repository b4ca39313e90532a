"""`agomni profile`: parameter counts, and per-stage latency of one full generation with random weights.

Latency recipe (what each stage times):
- conditioning (encoders): the frozen encoders on synthetic frames decoded once at 25 fps
  (`FRAME_SIZE` pixels square) and a prompt - for the S/M/L sizes the REAL architectures with random
  weights (DFN5B-CLIP ViT-H/14-384 at 8 fps, Synchformer at 25 fps, the Flan-T5-large encoder on
  `config.text_len` tokens), for the tiny sizes the stand-ins (the real encoders' widths do not fit
  them) - plus LT tokenisation;
- conditioning (network): `preprocess_conditions`, the empty (unconditional) conditions and their
  batching with the conditional ones (CFG as one batched pass), once per generation;
- network step: one sampler step of `agomni.model.flow_matching.sample` (on CUDA one forward of 2B
  rows; on the CPU two forwards, as `agomni generate` does; B rows when CFG is 1), timed by its
  per-step hook; mean/min/max per step and the total over the steps;
- codec decode (VAE): latent -> log-mel; vocoder: log-mel -> wave; total: all of the above.
Everything after the encoders is `agomni.model.generate.AudioGenerator.render`, the code `agomni
generate` runs, timed through its stage and step hooks (`timed_render`).
Timing: CUDA events on a CUDA device (recorded without synchronising inside the sampling loop, read
after the run), `time.perf_counter` on the CPU. `warmup` untimed generations run first; the first one
also compiles / captures CUDA graphs when `compile` is on, and its network time is reported apart as
"first run network (compile/capture)". Each stage is then the median over `repeats` generations with
its min and max. Real-time factor RTF = total / seconds of audio (batch x duration); lower is faster.
Peak memory: the CUDA allocator's peak over the timed runs, or the process's peak resident set on
the CPU. Precision follows `agomni generate`: bf16 weights + compile by default on CUDA, fp32 eager
elsewhere; encoders in the network's dtype; codec in fp32. All weights are random (network,
conditioners, codec) and every output of this module says so: timings of the computation only.
"""

from __future__ import annotations

import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import torch

from ..errors import UsageError
from .codec import AudioCodec, codec_config
from .conditioners import RandomTextConditioner, RandomVideoConditioner
from .config import ModelConfig, model_config
from .encoders import (
    DFN5B_VIT_H_14_384,
    FLAN_T5_LARGE,
    SYNCHFORMER,
    ClipVideoEncoder,
    EncoderVideoConditioner,
    SynchformerEncoder,
)
from .encoders.clip_video import ClipVisionTower
from .encoders.flan_t5 import T5Encoder
from .encoders.synchformer import MotionFormer
from .flow_matching import DEFAULT_CFG, DEFAULT_STEPS
from .generate import AudioGenerator
from .network import AgomniMMDiT
from .step import resolve_precision
from .text import pad_to_frames, tokenize

PROFILE_PROMPT = "a dog barks twice while rain falls on a tin roof"
PROFILE_TRANSCRIPT = "the quick brown fox jumps over the lazy dog"
FRAME_SIZE = 224  # pixels (height = width) of the synthetic video frames
VIDEO_FPS = 25.0  # the synthetic video's frame rate (decoded once; each encoder samples its own rate)
STEP_STAGES = ("network step (mean)", "network step (min)", "network step (max)")
STAGES = (
    "conditioning (encoders)",
    "conditioning (network)",
    *STEP_STAGES,
    "network total (all steps)",
    "codec decode (VAE)",
    "vocoder",
    "total",
)


@dataclass(frozen=True)
class ProfileSettings:
    """What one profile measures. size: tiny|S|M|L or a full size name; duration in seconds; dtype
    None / compile None: the `agomni generate` defaults for the device."""

    size: str
    duration: float = 8.0
    steps: int = DEFAULT_STEPS
    cfg: float = DEFAULT_CFG
    device: str = "cpu"
    dtype: str | None = None
    batch: int = 1
    repeats: int = 3
    warmup: int = 1
    compile: bool | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "repeats"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise UsageError(f"warmup must be >= 0, got {self.warmup}")


def machine_info(device: torch.device) -> dict[str, Any]:
    """CPU model, GPU name (CUDA devices), torch version, Python version and thread count."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


class Clock:
    """Marks on the device's timeline: CUDA events (no synchronisation until `seconds`), else perf_counter."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def mark(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def seconds(self, start: Any, end: Any) -> float:
        if not self.cuda:
            return end - start
        end.synchronize()
        return start.elapsed_time(end) / 1000.0


class _Encoders:
    """The conditioning encoders of a profile (module docstring) and how they are described."""

    def __init__(self, config: ModelConfig, device: torch.device, dtype: torch.dtype, seed: int):
        self.real = not config.name.startswith("tiny")
        self.device = device
        torch.manual_seed(seed)
        if self.real:
            with torch.device(device):
                clip, sync, t5 = (
                    ClipVisionTower(DFN5B_VIT_H_14_384),
                    MotionFormer(SYNCHFORMER),
                    T5Encoder(FLAN_T5_LARGE),
                )
            self.video = EncoderVideoConditioner(
                ClipVideoEncoder(clip.to(dtype), random_weights=True, device=device),
                SynchformerEncoder(sync.to(dtype), random_weights=True, device=device),
            )
            self.t5 = t5.to(dtype).eval()
            self.description = "DFN5B-CLIP ViT-H/14-384 + Synchformer + Flan-T5-large encoder, random weights"
        else:
            self.video = RandomVideoConditioner(config.clip_dim, config.sync_dim, seed=seed)
            self.text = RandomTextConditioner(config.text_dim, config.text_len, seed=seed)
            self.description = (
                "tiny stand-ins (random projections; the real encoders do not fit the tiny widths)"
            )

    def text_features(self, batch: int, length: int) -> torch.Tensor:
        if not self.real:
            return self.text.encode([PROFILE_PROMPT[:length]] * batch)
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(1, FLAN_T5_LARGE.vocab_size, (batch, length), generator=g).to(self.device)
        with torch.inference_mode():
            return self.t5(ids, torch.ones_like(ids, dtype=torch.bool)).float()


class _Pipeline:
    """A random-weight network, encoders and codec on one device, ready to time."""

    def __init__(self, settings: ProfileSettings):
        self.settings = settings
        self.device, self.dtype, self.compile = resolve_precision(
            settings.device, settings.dtype, settings.compile
        )
        self.config = model_config(settings.size, settings.duration)
        torch.manual_seed(settings.seed)
        with torch.device(self.device):
            self.network = AgomniMMDiT(self.config).eval()
            self.network.rebuild_tables()
        self.network.cast(self.dtype)
        rate = "16k" if self.config.sequence.sample_rate == 16_000 else "44k"
        with torch.device(self.device):
            codec = AudioCodec.load(
                codec_config(rate, tiny=self.config.name.startswith("tiny")), vae=None, vocoder=None
            )
        self.codec = codec.to(self.device)
        self.encoders = _Encoders(self.config, self.device, self.dtype, settings.seed)
        # the generator `agomni generate` runs (CFG as one pass on CUDA, two on the CPU), without conditioners
        self.generator = AudioGenerator(
            self.network, self.codec, steps=settings.steps, cfg=settings.cfg, compile=self.compile
        )
        self.batched = self.generator.step.batched
        self.clock = Clock(self.device)
        count = int(settings.duration * VIDEO_FPS) + 1
        g = torch.Generator().manual_seed(settings.seed)
        self.frames = torch.rand(settings.batch, count, 3, FRAME_SIZE, FRAME_SIZE, generator=g)
        self.noise = torch.randn(
            settings.batch, self.config.sequence.latent_len, self.config.latent_dim, generator=g
        )

    def run(self) -> dict[str, Any]:
        """One timed generation: {stage: seconds} plus the per-step list."""
        s, seq, clock = self.settings, self.network.sequence, self.clock
        with torch.no_grad():
            start = clock.mark()
            video = self.encoders.video.encode(self.frames, VIDEO_FPS, seq)
            text = self.encoders.text_features(s.batch, self.config.text_len)
            ids = pad_to_frames(tokenize(PROFILE_TRANSCRIPT, "en", self.config.lt_tokenizer), seq.latent_len)
            encoded = clock.mark()
            inputs = {
                "clip_f": video.clip.to(self.device),
                "sync_f": video.sync.to(self.device),
                "text_f": text.to(self.device),
                "lt_ids": ids[None].expand(s.batch, -1).to(self.device),
            }
            wave, marks = timed_render(self.generator, inputs, self.noise, clock)
        if not bool(torch.isfinite(wave).all()):
            raise UsageError(f"profile of {self.config.name}: the generated wave holds NaN or infinity")
        steps = [clock.seconds(a, b) for a, b in pairwise(marks["steps"])]
        return {
            "conditioning (encoders)": clock.seconds(start, encoded),
            "conditioning (network)": clock.seconds(encoded, marks["sampling"]),
            "network step (mean)": statistics.fmean(steps),
            "network step (min)": min(steps),
            "network step (max)": max(steps),
            "network total (all steps)": sum(steps),
            "codec decode (VAE)": clock.seconds(marks["steps"][-1], marks["vocoding"]),
            "vocoder": clock.seconds(marks["vocoding"], marks["done"]),
            "total": clock.seconds(start, marks["done"]),
            "steps_s": steps,
        }


def timed_render(
    generator: AudioGenerator, inputs: dict[str, Any], noise: torch.Tensor, clock: Clock
) -> tuple[torch.Tensor, dict[str, Any]]:
    """`generator.render(inputs, noise)` with a clock mark as each stage starts (`StageHook` names) and
    after each sampler step: (wave, {stage: mark, "steps": [the "sampling" mark, then one per step]})."""
    marks: dict[str, Any] = {"steps": []}

    def stage(name: str) -> None:
        marks[name] = clock.mark()
        if name == "sampling":
            marks["steps"].append(marks[name])

    wave = generator.render(
        inputs, noise, hook=stage, step_hook=lambda i, t0, t1, x: marks["steps"].append(clock.mark())
    )
    return wave, marks


def _peak_memory_mib(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "CUDA allocator peak over the timed runs"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak resident set (whole run)"


def profile_generation(
    settings: ProfileSettings, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Time `settings.repeats` full generations after `settings.warmup` untimed ones (module docstring).

    Returns a JSON-ready report: model, settings, machine, precision, random_weights (always True),
    per-stage {"median_s", "min_s", "max_s", "runs_s"} (seconds, lower is better), rtf (same keys,
    unitless), first-run network seconds (compile/capture included), peak memory (MiB).
    """
    pipeline = _Pipeline(settings)
    first_network_s = None
    for i in range(settings.warmup):
        if progress:
            progress(f"warm-up {i + 1}/{settings.warmup}")
        run = pipeline.run()
        if i == 0:
            first_network_s = run["network total (all steps)"]
    if pipeline.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(pipeline.device)
    runs = []
    for i in range(settings.repeats):
        if progress:
            progress(f"repeat {i + 1}/{settings.repeats}")
        runs.append(pipeline.run())
    audio_s = settings.batch * settings.duration
    stages = {name: _summary([r[name] for r in runs]) for name in STAGES}
    config = pipeline.config
    peak, peak_kind = _peak_memory_mib(pipeline.device)
    precision = "bf16" if pipeline.dtype == torch.bfloat16 else "fp32"
    cfg_batched = settings.cfg != 1.0 and pipeline.batched
    return {
        "model": {"size": config.name, "parameters": sum(p.numel() for p in pipeline.network.parameters())},
        "settings": {**asdict(settings), "dtype": precision, "compile": pipeline.compile},
        "audio": {"seconds_per_sample": settings.duration, "sample_rate_hz": pipeline.codec.sample_rate},
        "cfg_batched": cfg_batched,
        "rows_per_network_call": 2 * settings.batch if cfg_batched else settings.batch,
        "network_precision": f"{precision} weights (no autocast)",
        "codec_precision": "fp32",
        "encoders": pipeline.encoders.description,
        "compile": "torch.compile(mode='reduce-overhead') of the guided step"
        if pipeline.compile
        else "eager",
        "timing": "CUDA events" if pipeline.device.type == "cuda" else "time.perf_counter",
        "machine": machine_info(pipeline.device),
        "random_weights": True,
        "random_parts": ["network", "video conditioner", "text conditioner", "codec"],
        "stages": stages,
        "steps_s": [r["steps_s"] for r in runs],
        "rtf": _summary([r["total"] / audio_s for r in runs]),
        "first_run_network_s": first_network_s,
        "peak_memory_mib": peak,
        "peak_memory": peak_kind,
        "units": "seconds (wall clock, lower is better); rtf = generation s / audio s (lower is faster)",
    }


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "median_s": statistics.median(values),
        "min_s": min(values),
        "max_s": max(values),
        "runs_s": values,
    }


def format_profile(report: dict[str, Any]) -> str:
    """The per-stage timing table of a `profile_generation` report, with machine and settings."""
    s, m = report["settings"], report["machine"]
    where = m.get("gpu", m["cpu"])
    cfg = f"CFG {s['cfg']} batched ({report['rows_per_network_call']} rows per network call)"
    if s["cfg"] == 1.0:
        cfg = "CFG off (w = 1)"
    elif not report["cfg_batched"]:
        cfg = f"CFG {s['cfg']} as two passes (conditional {s['batch']} rows, unconditional audio-only)"
    lines = [
        f"agomni profile: reference MMDiT {report['model']['size']} "
        f"({report['model']['parameters'] / 1e6:.2f} M network parameters), RANDOM WEIGHTS "
        "(network, conditioners, codec): timings of the computation only",
        f"machine: {where} | device {s['device']} | torch {m['torch']} | {m['threads']} CPU threads | "
        f"timing: {report['timing']}",
        f"settings: {s['duration']} s of audio at {report['audio']['sample_rate_hz']} Hz x batch {s['batch']}, "
        f"{s['steps']} Euler steps, {cfg}, network {report['network_precision']}, codec "
        f"{report['codec_precision']}, {report['compile']}, {s['warmup']} warm-up + {s['repeats']} timed runs",
        f"encoders: {report['encoders']}",
        f"{'stage':<30}{'median (s)':>12}{'min (s)':>12}{'max (s)':>12}   (lower is better)",
    ]
    for name, row in report["stages"].items():
        label = name.replace("all steps", f"{s['steps']} steps")
        lines.append(f"{label:<30}{row['median_s']:>12.4f}{row['min_s']:>12.4f}{row['max_s']:>12.4f}")
    rtf = report["rtf"]
    lines.append(
        f"{'real-time factor (RTF)':<30}{rtf['median_s']:>12.4f}{rtf['min_s']:>12.4f}{rtf['max_s']:>12.4f}"
        "   (generation s / audio s; lower is faster, < 1 = faster than real time)"
    )
    if report["first_run_network_s"] is not None:
        lines.append(
            f"first run network (compile/capture): {report['first_run_network_s']:.4f} s (warm-up, not in the rows above)"
        )
    lines.append(f"peak memory: {report['peak_memory_mib']:.1f} MiB ({report['peak_memory']})")
    return "\n".join(lines)


__all__ = [
    "STAGES",
    "Clock",
    "ProfileSettings",
    "format_profile",
    "machine_info",
    "profile_generation",
    "timed_render",
]
