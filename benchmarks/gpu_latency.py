"""GPU latency of the reference model, eager fp32 vs eager bf16 weights vs the fast path, plus its numerical check.

Usage (one lent H100/H200, no network access needed; a few minutes)::

    python benchmarks/gpu_latency.py OUT_DIR [--device cuda] [--sizes L,S] [--batches 1,8]
                                             [--modes fp32,bf16,fast] [--repeats 5 --budget-s 420]

For each size (L-44k, S-16k), batch (1, 8) and mode it runs `agomni.model.profile.profile_generation`
(8 s of audio, 25 Euler steps, CFG 4.5 as one batched pass, one warm-up that also compiles, then the
median over the repeats, CUDA-event timing, real CLIP / Synchformer / Flan-T5 architectures in the
conditioning stage):
- fp32: float32 weights, eager;
- bf16: bfloat16 weights (no autocast), eager;
- fast: bfloat16 weights + `torch.compile(mode="reduce-overhead")` (CUDA graphs): `agomni generate`'s
  default on CUDA.
Then, per size, the numerical check (`agomni.model.fast.fast_path_error`): the same unit-gain random
network, conditions and noise through the fast path and through float32 eager, relative L2 error of
the sampled latents and of the decoded waveform; and a host-sync check: one eager bf16 sampling loop
under ``torch.cuda.set_sync_debug_mode("error")`` (any device-to-host synchronisation inside the loop
raises); and the codec in bf16 against float32 (`codec_precision_check`: VAE and neural-vocoder
seconds in each dtype and the bf16 error), the data for choosing the codec's precision on the GPU.
Writes OUT_DIR/gpu_latency.md (tables: network and total seconds, RTF, throughput in seconds of audio
per second, compile/capture time, peak memory) and OUT_DIR/gpu_latency.json (every report);
both are rewritten after each configuration, so a run cut short keeps what finished. A configuration
that fails is recorded and the next one runs; none starts after --budget-s seconds.
Test it on a CPU with ``--sizes tiny --device cpu --batches 1 --modes fp32,bf16``.
Every network, encoder and codec has random weights: the numbers time the computation only.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from agomni.model import AgomniMMDiT, model_config
from agomni.model.codec import AudioCodec, codec_config
from agomni.model.fast import fast_path_error, relative_l2, unit_gain_weights
from agomni.model.flow_matching import DEFAULT_CFG, DEFAULT_STEPS
from agomni.model.generate import AudioGenerator
from agomni.model.profile import ProfileSettings, format_profile, profile_generation

MODES = {"fp32": ("fp32", False), "bf16": ("bf16", False), "fast": ("bf16", True)}
TARGETS_S = {"L-44k": 0.25, "S-16k": 0.10}  # targets: 8 s, batch 1, 25 steps, CFG 4.5, total


def _free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _failure(err: Exception, start: float) -> dict[str, Any]:
    return {
        "status": "failed",
        "error": f"{type(err).__name__}: {err}",
        "traceback": traceback.format_exc(),
        "wall_s": time.perf_counter() - start,
    }


def run_profile(settings: ProfileSettings) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        report = profile_generation(settings, progress=lambda msg: print(f"  {msg}", file=sys.stderr))
        return {"status": "ok", "report": report, "wall_s": time.perf_counter() - start}
    except Exception as err:
        return _failure(err, start)
    finally:
        _free()


def _inputs(network: AgomniMMDiT, batch: int, device: torch.device) -> dict[str, torch.Tensor]:
    seq, cfg = network.sequence, network.config
    g = torch.Generator().manual_seed(1)
    inputs = {
        "clip_f": torch.randn(batch, seq.clip_len, cfg.clip_dim, generator=g),
        "sync_f": torch.randn(batch, seq.sync_len, cfg.sync_dim, generator=g),
        "text_f": torch.randn(batch, cfg.text_len, cfg.text_dim, generator=g),
        "lt_ids": torch.randint(1, cfg.lt_vocab_size, (batch, seq.latent_len), generator=g),
    }
    return {k: v.to(device) for k, v in inputs.items()}


def check_no_sync(
    network: AgomniMMDiT, inputs: dict[str, torch.Tensor], noise: torch.Tensor, steps: int, cfg: float
) -> str:
    """Sample eagerly (`AudioGenerator.latents`, CFG batched) with CUDA sync debug mode "error" switched on
    by the step hook after the first step, so steps 2..N run under it (set-up before the loop may read
    flags back; the loop may not)."""

    def hook(step: int, t0: float, t1: float, x: torch.Tensor) -> None:
        if step == 0:
            torch.cuda.set_sync_debug_mode("error")

    try:
        generator = AudioGenerator(network, steps=steps, cfg=cfg, batched=True)
        generator.latents(inputs, noise, step_hook=hook)
        return f"no host-device synchronisation in sampler steps 2-{steps} (CUDA sync debug mode 'error')"
    except RuntimeError as err:
        return f"SYNC INSIDE THE SAMPLING LOOP: {err}"
    finally:
        torch.cuda.set_sync_debug_mode("default")


def _median_s(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall seconds of `fn()` over `repeats` calls after one warm-up (device synchronised)."""
    times = []
    for _ in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def codec_precision_check(codec: AudioCodec, latent: torch.Tensor, repeats: int = 5) -> dict[str, Any]:
    """The codec in bf16 against float32 on the same latents: median seconds of the VAE decode and of the
    vocoder in each dtype, relative L2 of the bf16 log-mel and, for a neural vocoder, of the bf16 wave
    (fed the bf16 mel). A weight-free vocoder (Griffin-Lim) stays float32: not compared. With random
    weights the errors measure numerical sensitivity only; the trained toy VAE's is in RESULTS.md."""
    half = copy.deepcopy(codec).to(torch.bfloat16)
    neural = any(True for _ in codec.vocoder.parameters())
    out: dict[str, Any] = {"vocoder": "neural, compared" if neural else "weight-free, float32 only"}
    with torch.no_grad():
        mel = codec.decode(latent)
        mel_half = half.decode(latent.to(torch.bfloat16))
        out["mel_rel_l2"] = relative_l2(mel_half, mel)
        out["vae_fp32_s"] = _median_s(lambda: codec.decode(latent), repeats, latent.device)
        out["vae_bf16_s"] = _median_s(lambda: half.decode(latent.to(torch.bfloat16)), repeats, latent.device)
        out["vocoder_fp32_s"] = _median_s(lambda: codec.vocode(mel), repeats, latent.device)
        if neural:
            out["wave_rel_l2"] = relative_l2(half.vocode(mel_half), codec.vocode(mel))
            out["vocoder_bf16_s"] = _median_s(lambda: half.vocode(mel_half), repeats, latent.device)
    return out


def numerical_check(size: str, device: str, duration: float, steps: int, cfg: float) -> dict[str, Any]:
    """Fast path vs float32 eager (relative L2 of latents and waveform), and the host-sync check."""
    start = time.perf_counter()
    try:
        dev = torch.device(device)
        config = model_config(size, duration)
        with torch.device(dev):
            network = AgomniMMDiT(config).eval()
            network.rebuild_tables()
            rate = "16k" if config.sequence.sample_rate == 16_000 else "44k"
            codec = AudioCodec.load(codec_config(rate, tiny=size.startswith("tiny")), vae=None, vocoder=None)
        unit_gain_weights(network, seed=0)
        codec = codec.to(dev)
        inputs = _inputs(network, 1, dev)
        noise = torch.randn(
            1, config.sequence.latent_len, config.latent_dim, generator=torch.Generator().manual_seed(2)
        )
        noise = noise.to(dev)
        compile = dev.type == "cuda"
        error = fast_path_error(
            network, inputs, noise, steps=steps, cfg=cfg, compile=compile, decode=codec.decode_to_wave
        )
        try:  # its failure is recorded apart and keeps the fast-path numbers
            codec_bf16 = codec_precision_check(codec, network.unnormalize(noise))
        except Exception as err:
            codec_bf16 = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
        sync = "not checked (CPU)"
        if dev.type == "cuda":
            sync = check_no_sync(network.cast(torch.bfloat16), inputs, noise, steps, cfg)
        return {
            "status": "ok",
            "size": config.name,
            "fast_path": "bf16 weights + " + ("torch.compile reduce-overhead" if compile else "eager"),
            **error,
            "codec_bf16": codec_bf16,
            "sync_check": sync,
            "wall_s": time.perf_counter() - start,
        }
    except Exception as err:
        return {"size": size, **_failure(err, start)}
    finally:
        _free()


def _markdown(results: list[dict[str, Any]], checks: list[dict[str, Any]]) -> str:
    lines = [
        "# agomni reference-model latency (RANDOM WEIGHTS; timings of the computation only)",
        "",
        "Recipe: `agomni.model.profile` (one warm-up that also compiles, then the median over the repeats,",
        "CUDA events; CFG as one batched pass; codec fp32). Seconds, lower is better; RTF = generation s /",
        "audio s; throughput = seconds of audio generated per second (higher is better).",
        "",
        "| size | batch | mode | status | encoders (s) | network, all steps (s) | codec (s) | total (s) "
        "| RTF | throughput (audio s / s) | first run network (s) | peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r["settings"]
        head = f"| {s['size']} | {s['batch']} | {r['mode']} | {r['status']}"
        if r["status"] != "ok":
            lines.append(f"{head}: {r.get('error', '')} |" + " |" * 8)
            continue
        rep, st = r["report"], r["report"]["stages"]
        codec = st["codec decode (VAE)"]["median_s"] + st["vocoder"]["median_s"]
        total = st["total"]
        audio = s["batch"] * s["duration"]
        cells = [
            f"{st['conditioning (encoders)']['median_s']:.4f}",
            f"{st['network total (all steps)']['median_s']:.4f} [{st['network total (all steps)']['min_s']:.4f}-"
            f"{st['network total (all steps)']['max_s']:.4f}]",
            f"{codec:.4f}",
            f"{total['median_s']:.4f} [{total['min_s']:.4f}-{total['max_s']:.4f}]",
            f"{rep['rtf']['median_s']:.4f}",
            f"{audio / total['median_s']:.1f}",
            f"{rep['first_run_network_s']:.2f}",
            f"{rep['peak_memory_mib']:.0f}",
        ]
        lines.append(
            f"| {rep['model']['size']} | {s['batch']} | {r['mode']} | ok | " + " | ".join(cells) + " |"
        )
    lines += ["", "Targets: total at batch 1, 8 s, 25 steps, CFG 4.5: "]
    lines[-1] += ", ".join(f"{k} <= {v} s" for k, v in TARGETS_S.items())
    lines += ["", "## Fast path vs float32 eager (same unit-gain random network, conditions, noise)", ""]
    for c in checks:
        if c["status"] == "ok":
            lines.append(
                f"- {c['size']} ({c['fast_path']}): latents relative L2 {c['latent_rel_l2']:.4f}, "
                f"waveform relative L2 {c['wave_rel_l2']:.4f}; {c['sync_check']}"
            )
            cb = c["codec_bf16"]
            if cb.get("status") == "failed":
                lines.append(f"  - codec in bf16: check failed: {cb['error']}")
                continue
            vocoder = f"vocoder fp32 {cb['vocoder_fp32_s']:.4f} s"
            if "vocoder_bf16_s" in cb:
                vocoder += f" -> bf16 {cb['vocoder_bf16_s']:.4f} s (wave relative L2 {cb['wave_rel_l2']:.4f})"
            lines.append(
                f"  - codec in bf16 (random weights; median s, lower is better): VAE decode fp32 "
                f"{cb['vae_fp32_s']:.4f} s -> bf16 {cb['vae_bf16_s']:.4f} s (log-mel relative L2 "
                f"{cb['mel_rel_l2']:.4f}); {vocoder}; vocoder {cb['vocoder']}"
            )
        else:
            lines.append(f"- {c['size']}: check failed: {c['error']}")
    for r in results:
        if r["status"] == "ok":
            lines += ["", "```", format_profile(r["report"]), "```"]
        elif r["status"] == "failed":
            lines += ["", f"{r['settings']['size']} {r['mode']} failed:", "```", r["traceback"], "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for gpu_latency.md and gpu_latency.json")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", default="L,S", help="comma-separated sizes (tiny, S, M, L)")
    parser.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    parser.add_argument("--modes", default="fp32,bf16,fast", help=f"comma-separated: {', '.join(MODES)}")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of audio")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--cfg", type=float, default=DEFAULT_CFG)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget-s", type=float, default=420.0, help="start no configuration after this")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    split = lambda text: [x.strip() for x in text.split(",") if x.strip()]  # noqa: E731
    start = time.perf_counter()
    results: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []

    def write() -> None:
        doc = {"profiles": results, "numerical_checks": checks}
        (args.out / "gpu_latency.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        (args.out / "gpu_latency.md").write_text(_markdown(results, checks), encoding="utf-8")

    for size in split(args.sizes):
        for batch in [int(b) for b in split(args.batches)]:
            for mode in split(args.modes):
                dtype, compile = MODES[mode]
                fields = {"size": size, "duration": args.duration, "steps": args.steps, "cfg": args.cfg}
                fields |= {"device": args.device, "dtype": dtype, "compile": compile, "batch": batch}
                fields |= {"repeats": args.repeats}
                elapsed = time.perf_counter() - start
                if elapsed > args.budget_s:
                    result = {
                        "status": "skipped",
                        "error": f"time budget {args.budget_s} s spent ({elapsed:.0f} s)",
                    }
                else:
                    print(f"{size} batch {batch} {mode} on {args.device}", file=sys.stderr)
                    result = run_profile(ProfileSettings(**fields))
                results.append({"settings": fields, "mode": mode, **result})
                write()
        checks.append(numerical_check(size, args.device, args.duration, args.steps, args.cfg))
        write()
    print(_markdown(results, checks))
    print(f"wrote {args.out / 'gpu_latency.md'} and {args.out / 'gpu_latency.json'}", file=sys.stderr)
    codec_failed = any(c.get("codec_bf16", {}).get("status") == "failed" for c in checks)
    return 0 if all(r["status"] == "ok" for r in [*results, *checks]) and not codec_failed else 1


if __name__ == "__main__":
    sys.exit(main())
