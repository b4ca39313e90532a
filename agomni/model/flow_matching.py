"""Conditional flow matching for the reference MMDiT: training loss, ODE samplers, classifier-free guidance.

Rectified flow (MMAudio's recipe): x_t = (1 - t) x0 + t x1 with x0 ~ N(0, I) noise and x1 the data
latents, target velocity x1 - x0, training times t = sigmoid(N(0, 1)) (logit-normal). Sampling
integrates from t = 0 (noise) to t = 1 (data) with Euler (default, 25 steps) or the midpoint method,
on a uniform or sway-sampled time grid (F5-TTS: t' = t + s (cos(pi t / 2) - 1 + t), s = -1).
Guidance v = w v_cond + (1 - w) v_uncond (w = 4.5) with both branches batched into one forward.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..errors import UsageError
from .network import AgomniMMDiT, PreprocessedConditions

DEFAULT_STEPS = 25
DEFAULT_CFG = 4.5
DEFAULT_SWAY = -1.0
METHODS = ("euler", "midpoint")

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sample_flow_times(batch: int, generator: torch.Generator) -> torch.Tensor:
    """(batch,) logit-normal flow times sigmoid(N(0, 1)) drawn on the generator's device."""
    return torch.sigmoid(torch.randn(batch, generator=generator, device=generator.device))


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t x1 with t (B,) broadcast over the other axes."""
    t = t.reshape(-1, *([1] * (x0.ndim - 1))).to(x0.dtype)
    return (1 - t) * x0 + t * x1


def flow_matching_loss(
    model: AgomniMMDiT, x1: torch.Tensor, conditions: PreprocessedConditions, generator: torch.Generator
) -> torch.Tensor:
    """Per-sample mean squared error (B,) between predicted and target velocity x1 - x0 at a random time."""
    x0 = torch.randn(x1.shape, generator=generator, device=generator.device).to(x1)
    t = sample_flow_times(x1.shape[0], generator).to(x1)
    v = model.predict_flow(interpolate(x0, x1, t), t, conditions)
    return (v - (x1 - x0)).pow(2).flatten(1).mean(dim=1)


def time_grid(num_steps: int = DEFAULT_STEPS, sway: float | None = None) -> torch.Tensor:
    """(num_steps + 1,) float64 times from 0 to 1; uniform, or sway-sampled with coefficient `sway`."""
    if num_steps < 1:
        raise UsageError(f"the sampler needs at least 1 step, got {num_steps}")
    t = torch.linspace(0.0, 1.0, num_steps + 1, dtype=torch.float64)
    if sway is not None:
        t = t + sway * (torch.cos(math.pi / 2 * t) - 1 + t)
    return t


def integrate(
    velocity: Velocity, x0: torch.Tensor, grid: torch.Tensor, method: str = "euler"
) -> torch.Tensor:
    """Integrate dx/dt = velocity(t, x) over `grid` from x0; Euler (1 call/step) or midpoint (2 calls/step)."""
    if method not in METHODS:
        raise UsageError(f"unknown sampler method {method!r}; valid: {', '.join(METHODS)}")
    x = x0
    for t0, t1 in zip(grid[:-1].tolist(), grid[1:].tolist(), strict=True):
        dt = t1 - t0
        if method == "euler":
            x = x + dt * velocity(torch.tensor(t0, dtype=torch.float64), x)
        else:
            x_mid = x + dt / 2 * velocity(torch.tensor(t0, dtype=torch.float64), x)
            x = x + dt * velocity(torch.tensor(t0 + dt / 2, dtype=torch.float64), x_mid)
    return x


def guided_velocity(
    model: AgomniMMDiT,
    conditions: PreprocessedConditions,
    unconditional: PreprocessedConditions,
    cfg_strength: float = DEFAULT_CFG,
) -> Velocity:
    """v(t, x) = w v(x | cond) + (1 - w) v(x | uncond), both branches in ONE batched forward.

    With w == 1 only the conditional branch is run. The batched conditions are built once here.
    """
    if cfg_strength == 1.0:
        return lambda t, x: model.predict_flow(x, t, conditions)
    if unconditional.batch != conditions.batch:
        raise UsageError(
            f"unconditional batch {unconditional.batch} differs from conditional batch {conditions.batch}"
        )
    both = conditions.cat(unconditional)

    def velocity(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        v_cond, v_uncond = model.predict_flow(torch.cat([x, x]), t, both).chunk(2)
        return cfg_strength * v_cond + (1 - cfg_strength) * v_uncond

    return velocity


def generate(
    model: AgomniMMDiT,
    conditions: PreprocessedConditions,
    generator: torch.Generator,
    *,
    num_steps: int = DEFAULT_STEPS,
    cfg_strength: float = DEFAULT_CFG,
    negative: PreprocessedConditions | None = None,
    method: str = "euler",
    sway: float | None = None,
) -> torch.Tensor:
    """Sample normalised audio latents (B, N, latent_dim) from seeded noise.

    negative: conditions of a negative prompt, used in place of the unconditional (all-absent) branch.
    Noise is drawn from `generator` on its own device, then moved to the conditions' device.
    """
    cfg = model.config
    shape = (conditions.batch, model.sequence.latent_len, cfg.latent_dim)
    # The state stays in the weights' dtype (fp32 under autocast); only the velocity may be lower precision.
    dtype = model.null_video.dtype
    x0 = torch.randn(shape, generator=generator, device=generator.device).to(
        conditions.global_c.device, dtype
    )
    unconditional = negative if negative is not None else model.empty_conditions(conditions.batch)
    velocity = guided_velocity(model, conditions, unconditional, cfg_strength)
    with torch.no_grad():
        return integrate(velocity, x0, time_grid(num_steps, sway), method)
