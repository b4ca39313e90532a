"""The fast path (agomni.model.fast) on the CPU: bf16 weights with float32 tables and sampler state, and its
numerical agreement with float32 eager for the same seed; the compiled step (slow) against the eager one."""

from __future__ import annotations

import pytest
import torch

from agomni.model import AgomniMMDiT, model_config
from agomni.model.checkpoint import build_network, load_codec, load_model_checkpoint
from agomni.model.checkpoints import TOY_FINAL
from agomni.model.fast import StepCompiler, fast_path_error, resolve_precision, unit_gain_weights
from agomni.model.rope import audio_positions, rope_table

from .mmdit_tiny import random_inputs, random_latent

# Stated tolerances of the fast path against float32 eager, relative L2 over a whole generation
# (25 Euler steps, CFG 4.5). bf16 keeps 8 bits of mantissa (relative rounding 2**-9 ~ 0.002 per
# operation); through ~20 layers and 25 guided steps the sampled latents stay within a few percent.
LATENT_TOLERANCE = 0.05


def test_cast_to_bf16_keeps_tables_and_statistics_in_float32():
    network = AgomniMMDiT(model_config("tiny-16k", 2.0))
    network.set_latent_stats(torch.full((20,), 0.5), torch.full((20,), 2.0))
    network.cast(torch.bfloat16)
    assert {p.dtype for p in network.parameters()} == {torch.bfloat16}
    for table in (network.rope_audio, network.rope_video, network.t_embed.frequencies):
        assert table.dtype == torch.float32
    torch.testing.assert_close(network.rope_audio, rope_table(audio_positions(network.sequence), 32))
    assert network.latent_mean.dtype == torch.float32 and float(network.latent_std[0]) == 2.0


def test_precision_defaults_are_fp32_eager_on_the_cpu():
    assert resolve_precision("cpu", None, None) == (torch.device("cpu"), torch.float32, False)
    assert resolve_precision("cpu", "bf16", None)[1] == torch.bfloat16


def test_bf16_fast_path_matches_fp32_eager_on_a_random_network():
    network = unit_gain_weights(AgomniMMDiT(model_config("tiny-16k", 2.0)), seed=3).eval()
    inputs, noise = random_inputs(network, 2), random_latent(network, 2)
    error = fast_path_error(network, inputs, noise, steps=25, cfg=4.5, compile=False)
    assert 0 < error["latent_rel_l2"] < LATENT_TOLERANCE, error


def test_bf16_fast_path_matches_fp32_eager_on_the_shipped_checkpoint_waveform():
    ckpt = load_model_checkpoint(TOY_FINAL)
    network = build_network(ckpt)
    network.set_duration(2.0)
    codec = load_codec(ckpt)
    inputs, noise = random_inputs(network, 1), random_latent(network, 1)
    inputs["text_f"] = inputs["text_f"][:, :8]
    error = fast_path_error(
        network,
        inputs,
        noise,
        steps=25,
        cfg=4.5,
        compile=False,
        decode=lambda z: codec.vae.decode(z.transpose(1, 2)),
    )
    assert 0 < error["latent_rel_l2"] < LATENT_TOLERANCE, error
    assert error["wave_rel_l2"] < LATENT_TOLERANCE, error  # here "wave" = the decoded log-mel


@pytest.mark.slow
def test_compiled_step_equals_the_eager_step():
    network = unit_gain_weights(AgomniMMDiT(model_config("tiny-16k", 1.0)), seed=4).eval()
    conditions = network.preprocess_conditions(**random_inputs(network, 1))
    x, t = random_latent(network, 1), torch.tensor(0.3)
    eager = StepCompiler(network, cfg=4.5, compile=False).velocity(conditions)(x, t)
    compiled = StepCompiler(network, cfg=4.5, compile=True).velocity(conditions)(x, t)
    torch.testing.assert_close(compiled, eager, atol=1e-4 * eager.abs().max().item(), rtol=0)


def test_bf16_network_embeds_the_flow_time_in_float32():
    # bf16 keeps 8 mantissa bits: t = 0.523 would become 0.5234375 and move the 1000 t timestep features
    # by up to 0.4 rad; predict_flow hands the embedder the float32 time whatever the weights' dtype.
    network = unit_gain_weights(AgomniMMDiT(model_config("tiny-16k", 1.0)), seed=6).eval()
    inputs, x, t = random_inputs(network, 1), random_latent(network, 1), torch.tensor([0.523])
    seen = {}
    with torch.no_grad():
        reference = network.t_embed(t)  # float32 weights and time
        network.cast(torch.bfloat16)
        rounded_time = network.t_embed(t.bfloat16())
        network.t_embed.register_forward_hook(lambda module, args, out: seen.update(t=args[0], out=out))
        network.predict_flow(x, t, network.preprocess_conditions(**inputs))
    assert seen["t"].dtype == torch.float32 and torch.equal(seen["t"], t)
    error = (seen["out"].float() - reference).norm() / reference.norm()
    assert error < 0.02, error
    # what a bf16 time gives instead (why the rule exists)
    assert (rounded_time.float() - reference).norm() / reference.norm() > 2 * error
