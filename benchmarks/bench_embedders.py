"""pytest-benchmark: throughput of each evaluation embedder on the CPU (agomni.metrics.embedders, read-only).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python -m pytest benchmarks/bench_embedders.py --benchmark-only``
(not part of the test suite). One call embeds 4 clips of 10 s of noise at the embedder's own rate;
seconds per call, lower is better; clips per second = 4 / that. The networks have seeded RANDOM
weights (the cost of the computation, not of a checkpoint); the offline embedder has no weights.
"""

from __future__ import annotations

import pytest
import torch

from agomni.metrics.embedders.clap import ClapAudioEmbedder
from agomni.metrics.embedders.offline import SpectralStatsEmbedder
from agomni.metrics.embedders.openl3 import OpenL3Embedder
from agomni.metrics.embedders.panns import PannsCnn14Embedder
from agomni.metrics.embedders.passt import PasstEmbedder
from agomni.metrics.embedders.vggish import VGGishEmbedder

CLIPS, SECONDS = 4, 10.0

EMBEDDERS = {
    "offline-mel-stats": lambda: SpectralStatsEmbedder(),
    "vggish (random weights)": lambda: VGGishEmbedder.random(seed=0),
    "panns-cnn14 (random weights)": lambda: PannsCnn14Embedder.random(seed=0),
    "passt (random weights)": lambda: PasstEmbedder(random_weights=True, seed=0),
    "clap (random weights)": lambda: ClapAudioEmbedder(random_weights=True, seed=0),
    # mono input: both channels of stable-audio-metrics' stereo recipe (2 x 21 windows of 1 s per clip)
    "openl3-music (random weights)": lambda: OpenL3Embedder.random("music", seed=0),
}


@pytest.mark.parametrize("name", list(EMBEDDERS))
def test_embed_4_clips_of_10_s(benchmark, name):
    embedder = EMBEDDERS[name]()
    g = torch.Generator().manual_seed(0)
    waves = 0.1 * torch.randn(CLIPS, int(SECONDS * embedder.sample_rate), generator=g)
    benchmark.extra_info.update(clips=CLIPS, seconds=SECONDS, sample_rate=embedder.sample_rate)
    out = benchmark.pedantic(embedder.embed, args=(waves,), rounds=3, warmup_rounds=1)
    assert out.shape[0] == CLIPS and bool(torch.isfinite(out).all())
