"""`agomni profile`: parameter counts, and per-stage latency of one full generation with random weights.

Latency recipe (what each stage times; every stage is bracketed by a device synchronisation and
`time.perf_counter`, so GPU work is inside the stage that launched it):
- conditioning: stand-in video conditioner on synthetic frames at the CLIP (8 fps) and Synchformer
  (25 fps) rates and stand-in text conditioner (both on the CPU, their features then copied to the
  device), LT tokenisation, `preprocess_conditions`, the empty
  (unconditional) conditions and their batching with the conditional ones (CFG as one batched pass);
- network step: one sampler step = one `predict_flow` call on the 2B-row CFG batch (B rows when CFG
  is 1); reported as mean/min/max per step and the total over the steps;
- codec decode (VAE): latent -> log-mel; vocoder: log-mel -> wave;
- total: from the start of conditioning to the end of the vocoder, noise drawing included.
Real-time factor RTF = total seconds / seconds of audio generated (batch x duration); lower is faster,
below 1 is faster than real time. `warmup` untimed generations run first (they absorb lazy
initialisation and torch.compile); each stage is then reported as the median over `repeats`
generations with its min and max. The network runs under bf16 autocast for dtype "bf16", the codec
always in fp32 (as `agomni generate` does). All weights are random (network, stand-in conditioners,
codec) and every output of this module says so: the timings are of the computation, not of a model.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import UsageError
from .codec import AudioCodec, codec_config
from .config import ModelConfig, model_config
from .flow_matching import guided_velocity, integrate, time_grid
from .generate import DTYPES, autocast, standin_conditioners
from .network import AgomniMMDiT
from .text import pad_to_frames, tokenize

PROFILE_PROMPT = "a dog barks twice while rain falls on a tin roof"
PROFILE_TRANSCRIPT = "the quick brown fox jumps over the lazy dog"
FRAME_SIZE = 64  # pixels (height = width) of the synthetic video frames fed to the stand-in encoder
STEP_STAGES = ("network step (mean)", "network step (min)", "network step (max)")
STAGES = (
    "conditioning",
    *STEP_STAGES,
    "network total (all steps)",
    "codec decode (VAE)",
    "vocoder",
    "total",
)


@dataclass(frozen=True)
class ProfileSettings:
    """What one profile measures. size: tiny|S|M|L or a full size name; duration in seconds."""

    size: str
    duration: float = 8.0
    steps: int = 25
    cfg: float = 4.5
    device: str = "cpu"
    dtype: str = "fp32"
    batch: int = 1
    repeats: int = 3
    warmup: int = 1
    compile: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise UsageError(f"unknown dtype {self.dtype!r}; valid: {', '.join(DTYPES)}")
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


class _Clock:
    """perf_counter timing with a device synchronisation before reading the clock (CUDA)."""

    def __init__(self, device: torch.device):
        self.device = device

    def now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()


def _codec_for(config: ModelConfig, device: torch.device) -> AudioCodec:
    rate = "16k" if config.sequence.sample_rate == 16_000 else "44k"
    # Built on the device (fast initialisation), then moved there whole: buffers made from numpy stay on the CPU.
    with torch.device(device):
        codec = AudioCodec.load(
            codec_config(rate, tiny=config.name.startswith("tiny")), vae=None, vocoder=None
        )
    return codec.to(device)


class _Pipeline:
    """A random-weight network, stand-in conditioners and codec on one device, ready to time."""

    def __init__(self, settings: ProfileSettings):
        self.settings = settings
        try:
            self.device = torch.device(settings.device)
        except RuntimeError as err:
            raise UsageError(f"unknown device {settings.device!r} ({err})") from err
        self.config = model_config(settings.size, settings.duration)
        torch.manual_seed(settings.seed)
        with torch.device(self.device):
            self.network = AgomniMMDiT(self.config).eval()
        self.network.to(self.device)
        self.codec = _codec_for(self.config, self.device)
        self.conditioners = standin_conditioners(self.config)
        self.clock = _Clock(self.device)
        if settings.compile:
            self.network.predict_flow = torch.compile(self.network.predict_flow)

    def _frames(self, fps: float) -> torch.Tensor:
        count = math.ceil(self.settings.duration * fps) + 1
        g = torch.Generator().manual_seed(self.settings.seed)
        return torch.rand(self.settings.batch, count, 3, FRAME_SIZE, FRAME_SIZE, generator=g)

    def run(self) -> dict[str, Any]:
        """One timed generation: {stage: seconds} plus the per-step list."""
        s, seq, clock = self.settings, self.network.sequence, self.clock
        frames = {fps: self._frames(fps) for fps in (seq.clip_fps, seq.sync_input_fps)}
        b = s.batch
        with torch.no_grad(), autocast(self.device, s.dtype):
            start = clock.now()
            clip = self.conditioners.video.encode(frames[seq.clip_fps], seq.clip_fps, seq).clip
            sync = self.conditioners.video.encode(frames[seq.sync_input_fps], seq.sync_input_fps, seq).sync
            text = self.conditioners.text.encode([PROFILE_PROMPT] * b)
            ids = pad_to_frames(tokenize(PROFILE_TRANSCRIPT, "en", self.config.lt_tokenizer), seq.latent_len)
            inputs = {"clip_f": clip, "sync_f": sync, "text_f": text, "lt_ids": ids[None].expand(b, -1)}
            conditions = self.network.preprocess_conditions(
                **{k: v.to(self.device) for k, v in inputs.items()}
            )
            velocity = guided_velocity(self.network, conditions, self.network.empty_conditions(b), s.cfg)
            g = torch.Generator().manual_seed(s.seed)
            x = torch.randn(b, seq.latent_len, self.config.latent_dim, generator=g).to(self.device)
            conditioned = clock.now()
            steps: list[float] = []

            def timed_velocity(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
                step_start = clock.now()
                v = velocity(t, x)
                steps.append(clock.now() - step_start)
                return v

            x = integrate(timed_velocity, x, time_grid(s.steps), "euler")
        with torch.no_grad():
            vae_start = clock.now()
            mel = self.codec.decode(x.float())
            vae_end = clock.now()
            wave = self.codec.vocode(mel)
            end = clock.now()
        if not bool(torch.isfinite(wave).all()):
            raise UsageError(f"profile of {self.config.name}: the generated wave holds NaN or infinity")
        return {
            "conditioning": conditioned - start,
            "network step (mean)": statistics.fmean(steps),
            "network step (min)": min(steps),
            "network step (max)": max(steps),
            "network total (all steps)": sum(steps),
            "codec decode (VAE)": vae_end - vae_start,
            "vocoder": end - vae_end,
            "total": end - start,
            "steps_s": steps,
        }


def profile_generation(
    settings: ProfileSettings, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Time `settings.repeats` full generations after `settings.warmup` untimed ones (module docstring).

    Returns a JSON-ready report: model, settings, machine, random_weights (always True), per-stage
    {"median_s", "min_s", "max_s", "runs_s"} (seconds, lower is better) and rtf (same keys, unitless).
    """
    pipeline = _Pipeline(settings)
    for i in range(settings.warmup):
        if progress:
            progress(f"warm-up {i + 1}/{settings.warmup}")
        pipeline.run()
    runs = []
    for i in range(settings.repeats):
        if progress:
            progress(f"repeat {i + 1}/{settings.repeats}")
        runs.append(pipeline.run())
    audio_s = settings.batch * settings.duration
    stages = {name: _summary([r[name] for r in runs]) for name in STAGES}
    config = pipeline.config
    passes = 2 * settings.batch if settings.cfg != 1.0 else settings.batch
    return {
        "model": {"size": config.name, "parameters": sum(p.numel() for p in pipeline.network.parameters())},
        "settings": asdict(settings),
        "audio": {"seconds_per_sample": settings.duration, "sample_rate_hz": pipeline.codec.sample_rate},
        "cfg_batched": settings.cfg != 1.0,
        "rows_per_network_call": passes,
        "network_precision": "bf16 autocast" if settings.dtype == "bf16" else "fp32",
        "codec_precision": "fp32",
        "compile": "torch.compile (default mode) of predict_flow" if settings.compile else "eager",
        "machine": machine_info(pipeline.device),
        "random_weights": True,
        "random_parts": ["network", "video conditioner", "text conditioner", "codec"],
        "stages": stages,
        "steps_s": [r["steps_s"] for r in runs],
        "rtf": _summary([r["total"] / audio_s for r in runs]),
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
    if not report["cfg_batched"]:
        cfg = "CFG off (w = 1)"
    lines = [
        f"agomni profile: reference MMDiT {report['model']['size']} "
        f"({report['model']['parameters'] / 1e6:.2f} M network parameters), RANDOM WEIGHTS "
        "(network, stand-in conditioners, codec): timings of the computation only",
        f"machine: {where} | device {s['device']} | torch {m['torch']} | {m['threads']} CPU threads",
        f"settings: {s['duration']} s of audio at {report['audio']['sample_rate_hz']} Hz x batch {s['batch']}, "
        f"{s['steps']} Euler steps, {cfg}, network {report['network_precision']}, codec "
        f"{report['codec_precision']}, {report['compile']}, {s['warmup']} warm-up + {s['repeats']} timed runs",
        f"{'stage':<28}{'median (s)':>12}{'min (s)':>12}{'max (s)':>12}   (wall clock, lower is better)",
    ]
    for name, row in report["stages"].items():
        label = name.replace("all steps", f"{s['steps']} steps")
        lines.append(f"{label:<28}{row['median_s']:>12.4f}{row['min_s']:>12.4f}{row['max_s']:>12.4f}")
    rtf = report["rtf"]
    lines.append(
        f"{'real-time factor (RTF)':<28}{rtf['median_s']:>12.4f}{rtf['min_s']:>12.4f}{rtf['max_s']:>12.4f}"
        "   (generation s / audio s; lower is faster, < 1 = faster than real time)"
    )
    return "\n".join(lines)


__all__ = ["STAGES", "ProfileSettings", "format_profile", "machine_info", "profile_generation"]
