"""Parameter counts against MMAudio's published network sizes (157 M / 621 M / 1.03 B)."""

from __future__ import annotations

import pytest

from agomni.model import AgomniMMDiT, count_parameters, format_param_table, model_config
from agomni.model.params import LT_STREAM, TOTAL

# MMAudio README / paper: flow-prediction network only (no CLIP/Synchformer/VAE/vocoder).
# Running MMAudio's networks.py, sum(p.numel() for p in net.parameters()) gives 157_283_644 (S-16k),
# 621_805_944 (M-44k) and 1_030_002_168 (L-44k).
MMAUDIO_PARAMS = {"S-16k": 157e6, "M-44k": 621e6, "L-44k": 1031e6}


@pytest.mark.parametrize("size", list(MMAUDIO_PARAMS))
def test_counts_without_the_lt_stream_are_mmaudios(size):
    counts = count_parameters(model_config(size))
    without_lt = counts[TOTAL] - counts[LT_STREAM]
    assert abs(without_lt / MMAUDIO_PARAMS[size] - 1) < 0.10
    assert 0.05 < counts[LT_STREAM] / counts[TOTAL] < 0.30


def test_meta_count_equals_a_real_instance_and_components_add_up():
    config = model_config("tiny-44k")
    counts = count_parameters(config)
    real = AgomniMMDiT(config)
    assert counts[TOTAL] == sum(p.numel() for p in real.parameters())
    parts = {k: v for k, v in counts.items() if k not in (TOTAL, LT_STREAM)}
    assert sum(parts.values()) == counts[TOTAL]
    # LT encoder by hand: V x d embedding (V counts the filler) + per block dwconv(7d + d), LN(2d), pw1(d*md + md),
    # GRN(2md), pw2(md*d + d).
    d, v, m, n = config.lt_dim, config.lt_vocab_size, config.lt_conv_mult, config.lt_blocks
    block = 8 * d + 2 * d + (d * m * d + m * d) + 2 * m * d + (m * d * d + d)
    assert counts["LT encoder"] == v * d + n * block
    assert sum(p.numel() for p in real.lt_encoder.parameters()) == counts["LT encoder"]


def test_table_ends_with_the_total():
    config = model_config("L")
    table = format_param_table(config).splitlines()
    total = count_parameters(config)[TOTAL]
    assert table[-1].split()[0] == "total" and float(table[-1].split()[1]) == round(total / 1e6, 2)
    assert "L-44k" in table[0] and "M = 1e6" in table[0]
