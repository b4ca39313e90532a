"""Conditional flow matching for the reference MMDiT: THE training loss and THE sampler.

Rectified flow (MMAudio's recipe): x_t = (1 - t) x0 + t x1 with x0 ~ N(0, I) noise and x1 the
normalised data latents, target velocity x1 - x0, training times t = sigmoid(N(0, 1)) (logit-normal).
`velocity_mse` is the loss training and validation use. `sample` integrates from t = 0 (noise) to
t = 1 (data) with Euler (default, `DEFAULT_STEPS` steps) or the midpoint method, on a uniform or
sway-sampled time grid (F5-TTS: t' = t + s (cos(pi t / 2) - 1 + t), s = -1), with classifier-free
guidance v = w v_cond + (1 - w) v_uncond (w = `DEFAULT_CFG`) where both branches run as ONE batched
forward. `agomni generate`, `agomni profile`, the latency benchmark and the tests all call `sample`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..errors import UsageError
from .network import AgomniMMDiT, PreprocessedConditions

DEFAULT_STEPS = 25
DEFAULT_CFG = 4.5
DEFAULT_METHOD = "euler"
METHODS = ("euler", "midpoint")

# hook(step, t0, t1, x): called after step `step` (0-based) moved the state from time t0 to t1; x is the
# new float32 state. Profiling hooks time the steps; a hook must not change x.
StepHook = Callable[[int, float, float, torch.Tensor], None]
# step(x, t) -> guided velocity, float32 like x (what one sampler step evaluates, possibly compiled).
Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t x1 with t (B,) broadcast over the other axes."""
    t = t.reshape(-1, *([1] * (x0.ndim - 1))).to(x0.dtype)
    return (1 - t) * x0 + t * x1


def velocity_mse(
    model: nn.Module, x1: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, kwargs: dict[str, object]
) -> torch.Tensor:
    """(B,) mean over frames and channels of (v(x_t, t) - (x1 - x0))^2: the flow-matching loss.

    x1: normalised data latents, x0: noise, t: (B,) flow times (drawn by the caller, so draws can be
    fixed or sharded); `model` is the network or its DDP wrapper, called with the condition `kwargs`.
    """
    v = model(interpolate(x0, x1, t), t, **kwargs)
    return (v.float() - (x1 - x0)).pow(2).flatten(1).mean(dim=1)


def time_grid(num_steps: int = DEFAULT_STEPS, sway: float | None = None) -> torch.Tensor:
    """(num_steps + 1,) float64 times from 0 to 1; uniform, or sway-sampled with coefficient `sway`."""
    if num_steps < 1:
        raise UsageError(f"the sampler needs at least 1 step, got {num_steps}")
    t = torch.linspace(0.0, 1.0, num_steps + 1, dtype=torch.float64)
    if sway is not None:
        t = t + sway * (torch.cos(math.pi / 2 * t) - 1 + t)
    return t


def check_sampler(steps: int, method: str) -> None:
    """UsageError for a step count below 1 or an unknown method."""
    if steps < 1:
        raise UsageError(f"steps must be at least 1, got {steps}")
    if method not in METHODS:
        raise UsageError(f"unknown sampler method {method!r}; valid: {', '.join(METHODS)}")


def guided_step(
    network: AgomniMMDiT, x: torch.Tensor, t: torch.Tensor, conditions: PreprocessedConditions, cfg: float
) -> torch.Tensor:
    """One guided velocity evaluation, float32: w v(x | cond) + (1 - w) v(x | uncond) as ONE forward of
    the 2B rows of `conditions` (conditional rows, then unconditional); with w == 1 the B rows alone."""
    if cfg == 1.0:
        return network.predict_flow(x, t, conditions).float()
    h = network.embed_latent(x)  # the state's embedding, shared by both halves
    v_cond, v_uncond = (
        network.predict_flow(torch.cat([x, x]), t, conditions, embedded=torch.cat([h, h])).float().chunk(2)
    )
    return cfg * v_cond + (1 - cfg) * v_uncond


def guided_velocity(
    network: AgomniMMDiT,
    conditions: PreprocessedConditions,
    unconditional: PreprocessedConditions | None,
    cfg: float,
    step: Callable[..., torch.Tensor] = guided_step,
    batched: bool = True,
) -> Velocity:
    """v(x, t) = w v(x | cond) + (1 - w) v(x | uncond), float32 (unconditional None: every modality absent).

    batched True: `step`(network, x, t, cond + uncond, cfg), ONE forward of 2B rows (the batched
    conditions are built here, once per sample; `step` may be a compiled `guided_step`): fewest launches,
    the GPU's choice. batched False: two forwards, the unconditional one without the context streams
    it would mask anyway (fewer FLOPs, the CPU's choice). Both embed the state once for both branches
    (`AgomniMMDiT.embed_latent`) and give the same velocity up to rounding.
    """
    if cfg == 1.0:
        return lambda x, t: step(network, x, t, conditions, cfg)
    if unconditional is None:
        unconditional = network.empty_conditions(conditions.batch)
    if unconditional.batch != conditions.batch:
        raise UsageError(
            f"unconditional batch {unconditional.batch} differs from conditional batch {conditions.batch}"
        )
    if not batched:

        def two_passes(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            h = network.embed_latent(x)  # the state's embedding, shared by both passes
            v_cond = network.predict_flow(x, t, conditions, embedded=h).float()
            return cfg * v_cond + (1 - cfg) * network.predict_flow(x, t, unconditional, embedded=h).float()

        return two_passes
    both = conditions.cat(unconditional)
    return lambda x, t: step(network, x, t, both, cfg)


def sample(
    network: AgomniMMDiT,
    conditions: PreprocessedConditions,
    noise: torch.Tensor,
    *,
    steps: int = DEFAULT_STEPS,
    cfg: float = DEFAULT_CFG,
    method: str = DEFAULT_METHOD,
    sway: float | None = None,
    unconditional: PreprocessedConditions | None = None,
    velocity: Velocity | None = None,
    hook: StepHook | None = None,
    batched_cfg: bool = True,
) -> torch.Tensor:
    """Integrate from `noise` (B, latent_len, latent_dim) at t = 0 to normalised latents at t = 1 (float32).

    unconditional: the branch CFG guides away from (default: every modality absent; a negative prompt's
    conditions otherwise). velocity: a prepared step function (e.g. `agomni.model.step.StepCompiler`'s
    compiled one) replacing `guided_velocity(network, conditions, unconditional, cfg, batched=batched_cfg)`. hook: see
    `StepHook`. The state stays float32 whatever the weights' dtype; the flow times are moved to the
    device once, so the loop reads nothing back from the device.
    """
    check_sampler(steps, method)
    if velocity is None:
        velocity = guided_velocity(network, conditions, unconditional, cfg, batched=batched_cfg)
    grid = time_grid(steps, sway)
    half = (grid[:-1] + grid[1:]) / 2
    on_device = torch.stack([grid[:-1], half]).to(device=noise.device, dtype=torch.float32)
    x = noise.float()
    with torch.no_grad():
        for i, (t0, t1) in enumerate(zip(grid[:-1].tolist(), grid[1:].tolist(), strict=True)):
            dt = t1 - t0
            if method == "euler":
                x = x + dt * velocity(x, on_device[0, i])
            else:
                x_mid = x + dt / 2 * velocity(x, on_device[0, i])
                x = x + dt * velocity(x_mid, on_device[1, i])
            if hook is not None:
                hook(i, t0, t1, x)
    return x
