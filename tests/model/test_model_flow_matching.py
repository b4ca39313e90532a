"""The flow-matching loss and THE sampler (`sample`, with its per-step hook) against hand-computed formulas;
batched guidance against two separate passes; a tiny training run with the training loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agomni.errors import UsageError
from agomni.model import AgomniMMDiT, model_config
from agomni.model.flow_matching import (
    DEFAULT_CFG,
    DEFAULT_STEPS,
    guided_velocity,
    interpolate,
    sample,
    time_grid,
    velocity_mse,
)

from .mmdit_tiny import random_inputs, random_latent, random_tiny


def test_interpolation_is_the_rectified_flow_path():
    rng = np.random.default_rng(0)
    x0, x1, t = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5)), rng.uniform(size=3)
    got = interpolate(torch.from_numpy(x0), torch.from_numpy(x1), torch.from_numpy(t)).numpy()
    np.testing.assert_allclose(got, (1 - t[:, None, None]) * x0 + t[:, None, None] * x1)


def test_time_grids():
    np.testing.assert_allclose(time_grid(4).numpy(), [0, 0.25, 0.5, 0.75, 1])
    u = np.linspace(0, 1, 26)
    np.testing.assert_allclose(time_grid(25, sway=-1.0).numpy(), 1 - np.cos(np.pi * u / 2), atol=1e-12)
    with pytest.raises(UsageError):
        time_grid(0)


def test_sampler_integrates_a_linear_ode_and_calls_its_hook_once_per_step():
    # dx/dt = a x: Euler multiplies by (1 + a dt) per step, midpoint by (1 + a dt + (a dt)^2 / 2).
    model = random_tiny()
    cond = model.preprocess_conditions(**random_inputs(model, 1))
    a, n, x0 = -1.3, 10, torch.tensor([2.0])

    def run(method: str, velocity, hook=None) -> float:
        return sample(model, cond, x0, steps=n, method=method, velocity=velocity, hook=hook).item()

    h = 1 / n
    assert math.isclose(run("euler", lambda x, t: a * x), 2 * (1 + a * h) ** n, rel_tol=1e-6)
    assert math.isclose(
        run("midpoint", lambda x, t: a * x), 2 * (1 + a * h + (a * h) ** 2 / 2) ** n, rel_tol=1e-6
    )
    # dx/dt = t: midpoint is exact, Euler on the grid is the left Riemann sum.
    assert math.isclose(run("midpoint", lambda x, t: t + 0 * x), 2.5, rel_tol=1e-6)
    seen = []
    final = run("euler", lambda x, t: t + 0 * x, hook=lambda i, t0, t1, x: seen.append((i, t0, t1, x.item())))
    assert math.isclose(final, 2 + 0.45, rel_tol=1e-6)
    assert [s[0] for s in seen] == list(range(n)) and seen[-1][3] == final
    np.testing.assert_allclose([s[1] for s in seen], np.arange(n) / n, atol=1e-12)
    np.testing.assert_allclose([s[2] for s in seen], np.arange(1, n + 1) / n, atol=1e-12)
    with pytest.raises(UsageError):
        run("rk4", lambda x, t: x)
    with pytest.raises(UsageError):
        sample(model, cond, x0, steps=0, velocity=lambda x, t: x)


def test_defaults_are_the_papers():
    assert (DEFAULT_STEPS, DEFAULT_CFG) == (25, 4.5)


def test_batched_cfg_equals_two_passes():
    """fp64: the batched pass is the two-pass formula up to rounding. fp32: each branch of the batched
    pass matches its separate pass to 1e-5; the guided mix amplifies that by |w| + |1 - w| = 8 at w = 4.5
    (the residual is batch-size-dependent GEMM blocking, the same as batching a condition with itself)."""
    w = 4.5
    for dtype, branch_tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        model = random_tiny().to(dtype)
        inputs = {
            k: (v.to(dtype) if v.is_floating_point() else v) for k, v in random_inputs(model, 2).items()
        }
        cond, uncond = model.preprocess_conditions(**inputs), model.empty_conditions(2)
        latent, t = random_latent(model, 2).to(dtype), torch.tensor(0.4)
        v_cond, v_uncond = model.predict_flow(latent, t, cond), model.predict_flow(latent, t, uncond)
        batched_cond, batched_uncond = model.predict_flow(
            torch.cat([latent, latent]), t, cond.cat(uncond)
        ).chunk(2)
        torch.testing.assert_close(batched_cond, v_cond, atol=branch_tol, rtol=0)
        torch.testing.assert_close(batched_uncond, v_uncond, atol=branch_tol, rtol=0)
        # The guided velocity is float32 whatever the weights (the sampler state's dtype).
        guided = guided_velocity(model, cond, uncond, w)(latent, t)
        two_pass = (w * v_cond + (1 - w) * v_uncond).float()
        assert guided.dtype == torch.float32
        tol = (abs(w) + abs(1 - w)) * max(branch_tol, 1e-6)
        torch.testing.assert_close(guided, two_pass, atol=tol * two_pass.abs().max().item(), rtol=0)


def test_two_pass_cfg_is_the_guidance_formula_bit_for_bit():
    """The CPU's two-pass CFG (one latent embedding shared by both passes) computes exactly
    w v(x | cond) + (1 - w) v(x | uncond) with two separate network calls."""
    model = random_tiny()
    cond, uncond = model.preprocess_conditions(**random_inputs(model, 2)), model.empty_conditions(2)
    latent, t, w = random_latent(model, 2), torch.tensor(0.6), 4.5
    with torch.no_grad():
        expected = w * model.predict_flow(latent, t, cond) + (1 - w) * model.predict_flow(latent, t, uncond)
        assert torch.equal(guided_velocity(model, cond, uncond, w, batched=False)(latent, t), expected)


def test_negative_conditions_replace_the_unconditional_branch():
    model = random_tiny()
    cond = model.preprocess_conditions(**random_inputs(model, 2))
    neg_text = random_inputs(model, 2, seed=9, text_len=5)["text_f"]  # shorter prompt: padded when batched
    negative = model.preprocess_conditions(text_f=neg_text)
    latent, t, w = random_latent(model, 2), torch.tensor(0.7), 3.0
    batched = guided_velocity(model, cond, negative, w)(latent, t)
    two_pass = w * model.predict_flow(latent, t, cond) + (1 - w) * model.predict_flow(latent, t, negative)
    torch.testing.assert_close(batched, two_pass, atol=1e-5, rtol=0)


def test_sampling_is_deterministic_and_follows_its_noise():
    model = random_tiny()
    cond = model.preprocess_conditions(**random_inputs(model, 2))

    def run(seed: int, **kw) -> torch.Tensor:
        return sample(model, cond, random_latent(model, 2, seed=seed), steps=4, **kw)

    assert torch.equal(run(3), run(3))
    assert torch.equal(run(3, method="midpoint", sway=-1.0), run(3, method="midpoint", sway=-1.0))
    assert not torch.equal(run(3), run(4))
    assert run(3).shape == (2, model.sequence.latent_len, model.config.latent_dim)


def test_sampler_euler_steps_equal_a_hand_written_loop():
    """The sampler's Euler step with batched CFG against a loop written from the formulas."""
    model = random_tiny()
    inputs = random_inputs(model, 2)
    cond, uncond = model.preprocess_conditions(**inputs), model.empty_conditions(2)
    x, w, n = random_latent(model, 2, seed=5), 2.5, 3
    expected = x.clone()
    with torch.no_grad():
        for i in range(n):
            t = torch.tensor(i / n)
            v = w * model.predict_flow(expected, t, cond) + (1 - w) * model.predict_flow(expected, t, uncond)
            expected = expected + v / n
    got = sample(model, cond, x, steps=n, cfg=w)
    torch.testing.assert_close(got, expected, atol=1e-4 * expected.abs().max().item(), rtol=0)


def test_loss_falls_on_a_small_synthetic_task():
    """150 Adam steps: 4 fixed random latents, each tied to a class-like text feature (one token)."""
    torch.manual_seed(0)
    model = AgomniMMDiT(model_config("tiny-16k", 1.0)).train()
    g = torch.Generator().manual_seed(1)
    seq, cfg = model.sequence, model.config
    data = torch.randn(4, seq.latent_len, cfg.latent_dim, generator=g)
    classes = torch.randn(4, 1, cfg.text_dim, generator=g)
    labels = torch.arange(8) % 4

    def loss(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        x0 = torch.randn(data[labels].shape, generator=g)
        t = torch.sigmoid(torch.randn(len(labels), generator=g))
        return velocity_mse(model, data[labels], x0, t, {"text_f": classes[labels]}).mean()

    with torch.no_grad():
        before = sum(loss(10_000 + i).item() for i in range(4)) / 4
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for step in range(150):
        opt.zero_grad()
        loss(step).backward()
        opt.step()
    with torch.no_grad():
        after = sum(loss(10_000 + i).item() for i in range(4)) / 4
    assert math.isclose(before, 2.0, rel_tol=0.15)  # zero-initialised output: E|x1 - x0|^2 = 2
    assert after < 0.5 * before
