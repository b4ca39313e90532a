"""The fast path of the network step: bf16 weights, CFG as one batched pass, CUDA graphs.

What `agomni generate` and `agomni profile` do by default on CUDA (and what each part buys):
- weights in bfloat16 (`AgomniMMDiT.cast`), not autocast over float32 weights: no per-step casts of
  every weight; RoPE tables, timestep frequencies, latent statistics and the sampler state stay float32;
- the conditional and unconditional branches in ONE forward of 2B rows (`guided_velocity`; on the CPU,
  where FLOPs rather than launches bound the time, two forwards, the unconditional one without the
  context streams it would mask), the
  conditions computed once per sample and the joint key mask once per sample (none per step);
- SDPA (`torch.nn.functional.scaled_dot_product_attention`) for every attention call; RMSNorm as
  `torch.nn.RMSNorm` on inputs of its own dtype (its fused kernel);
- static shapes captured as CUDA graphs by ``torch.compile(mode="reduce-overhead")`` (`compile`), with
  no host-device synchronisation inside the sampling loop (flow times live on the device).
The codec stays float32: in bf16 the trained toy VAE moves decoded log-mels by 0.2-0.7 % relative L2
(about the network's own bf16 error, median 0.17 % on the toy items' log-mels), and what bf16 would
save on a GPU is unmeasured; `benchmarks/gpu_latency.py` times the VAE and the vocoder in both dtypes
(`codec_precision_check`) so that the choice can be made on the card.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from .generate import AudioGenerator
from .network import AgomniMMDiT
from .step import COMPILE_MODE, DTYPES, TORCH_DTYPES, StepCompiler, resolve_precision


def unit_gain_weights(network: AgomniMMDiT, seed: int) -> AgomniMMDiT:
    """Overwrite every parameter with seeded random values of unit gain (N(0, 1/fan_in) for matrices,
    N(0, 0.01) for vectors, RMSNorm gains near 1). For numerical checks of random-weight networks only:
    the zero-initialised adaLN and final layers of a fresh network make every velocity exactly 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in network.named_parameters():
            scale = p[0].numel() ** -0.5 if p.ndim > 1 else 0.1
            values = torch.randn(p.shape, generator=g) * scale
            if name.endswith(("q_norm.weight", "k_norm.weight")):
                values = 1.0 + values
            p.copy_(values.to(p))
    return network


def fast_path_error(
    network: AgomniMMDiT,
    inputs: dict[str, torch.Tensor | None],
    noise: torch.Tensor,
    *,
    steps: int,
    cfg: float,
    compile: bool,
    decode: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, float]:
    """Same weights, same conditions, same noise: the fast path (bf16 weights, batched CFG, `compile`)
    against float32 eager. Returns the relative L2 error ||fast - fp32|| / ||fp32|| of the sampled
    latents and, with `decode` (latents -> wave), of the waveforms. `network` must hold float32 weights;
    it is left unchanged (the bf16 copy is made here)."""
    fast = copy.deepcopy(network).cast(torch.bfloat16)
    out: dict[str, float] = {}
    latents = {
        name: AudioGenerator(net, steps=steps, cfg=cfg, compile=compiled, batched=True).latents(inputs, noise)
        for name, net, compiled in (("fp32", network, False), ("fast", fast, compile))
    }
    with torch.no_grad():
        out["latent_rel_l2"] = relative_l2(latents["fast"], latents["fp32"])
        if decode is not None:
            out["wave_rel_l2"] = relative_l2(decode(latents["fast"]), decode(latents["fp32"]))
    return out


def relative_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| in float32 (the fast path's and the GPU script's error measure)."""
    return float((a.float() - b.float()).norm() / b.float().norm().clamp(min=1e-12))


__all__ = [
    "COMPILE_MODE",
    "DTYPES",
    "TORCH_DTYPES",
    "StepCompiler",
    "fast_path_error",
    "relative_l2",
    "resolve_precision",
    "unit_gain_weights",
]
