"""Two gloo processes: synced accumulators equal single-process numpy / direct computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch.distributed as dist
import torch.multiprocessing as mp

from agomni.metrics import (
    FrechetDistance,
    GaussianStats,
    InceptionScore,
    KernelAudioDistance,
    KLDivergence,
    inception_score,
    kernel_audio_distance,
    kl_divergence,
)

WORLD = 2
DIM = 5


def dataset() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(123)
    return {
        "ref": rng.normal(size=(60, DIM)),
        "gen": rng.normal(size=(45, DIM)) * 1.2 + 0.1,
        "ref_logits": rng.normal(scale=2.0, size=(24, 9)),
        "gen_logits": rng.normal(scale=2.0, size=(24, 9)),
    }


def worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        data = dataset()
        ids = [f"item{i:02d}" for i in range(24)]
        # uneven shards; rank 1 sees no reference embeddings at all
        ref_rows = data["ref"] if rank == 0 else data["ref"][:0]
        gen_rows = data["gen"][:10] if rank == 0 else data["gen"][10:]

        stats = GaussianStats(DIM).update(ref_rows).all_reduce()
        fd = FrechetDistance(DIM)
        fd.update(ref_rows, reference=True)
        fd.update(gen_rows, reference=False)
        fd.sync()

        # reference logits of an item may live on one rank and its generated logits on the other
        kl = KLDivergence()
        ref_part = slice(0, 24, 2) if rank == 0 else slice(1, 24, 2)
        gen_part = slice(0, 12) if rank == 0 else slice(12, 24)
        kl.update(data["ref_logits"][ref_part], ids=ids[ref_part], reference=True)
        kl.update(data["gen_logits"][gen_part], ids=ids[gen_part], reference=False)
        kl.sync()

        isc = InceptionScore(splits=4)
        isc.update(data["gen_logits"][gen_part][::-1], ids=ids[gen_part][::-1])
        isc.sync()

        kad = KernelAudioDistance(block_size=7)
        kad.update(ref_rows, reference=True)
        kad.update(gen_rows, reference=False)
        kad.sync()

        result = {
            "count": stats.count,
            "mean": stats.mean().tolist(),
            "cov": stats.cov().tolist(),
            "fd": fd.compute().value,
            "kl": kl.compute().details,
            "is": [isc.compute().value, isc.compute().details["std"]],
            "kad": kad.compute().value,
        }
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned interpreters importing torch: ~10 s on 2 cores
@pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="torch built without gloo"
)
def test_two_process_sync_equals_single_process(tmp_path: Path) -> None:
    mp.spawn(worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    data = dataset()
    ids = [f"item{i:02d}" for i in range(24)]
    mu_ref, cov_ref = data["ref"].mean(axis=0), np.cov(data["ref"], rowvar=False)
    mu_gen, cov_gen = data["gen"].mean(axis=0), np.cov(data["gen"], rowvar=False)
    covmean = np.real(scipy.linalg.sqrtm(cov_ref @ cov_gen))
    fd = (mu_ref - mu_gen) @ (mu_ref - mu_gen) + np.trace(cov_ref) + np.trace(cov_gen) - 2 * np.trace(covmean)
    kl = kl_divergence(
        dict(zip(ids, data["ref_logits"], strict=True)), dict(zip(ids, data["gen_logits"], strict=True))
    )
    isc = inception_score(data["gen_logits"], splits=4)
    kad = kernel_audio_distance(data["ref"], data["gen"], block_size=None)
    for rank in range(WORLD):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["count"] == 60
        np.testing.assert_allclose(got["mean"], mu_ref, rtol=1e-12)
        np.testing.assert_allclose(got["cov"], cov_ref, rtol=1e-10, atol=1e-12)
        assert got["fd"] == pytest.approx(fd, rel=1e-9)
        assert got["kl"]["n_pairs"] == 24
        assert got["kl"]["kl_ref_gen"] == pytest.approx(kl.kl_ref_gen, rel=1e-12)
        assert got["kl"]["kl_gen_ref"] == pytest.approx(kl.kl_gen_ref, rel=1e-12)
        assert got["is"] == pytest.approx([isc.value, isc.details["std"]], rel=1e-12)
        assert got["kad"] == pytest.approx(kad, rel=1e-10)
