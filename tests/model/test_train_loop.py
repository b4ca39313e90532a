"""The training loop: exact resume, 2-process DDP equivalence (gloo, CPU), checkpoint json contents."""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from agomni.errors import UsageError
from agomni.model.checkpoint import load_model_checkpoint
from agomni.model.train.loop import EMA_NOTE, train_model
from agomni.model.train.state import latest_state, load_state

from .train_fixtures import loop_config, synthetic_prepared


def _quiet(_message: str) -> None:
    return None


def test_resume_is_bit_exact(tmp_path):
    cfg, prepared = loop_config(max_steps=4, checkpoint_every=2), synthetic_prepared()
    straight = train_model(cfg, prepared, tmp_path / "a", log=_quiet)
    first = train_model(cfg, prepared, tmp_path / "b", stop_at=2, log=_quiet)
    assert first["step"] == 2
    resumed = train_model(cfg, prepared, tmp_path / "b", resume=True, log=_quiet)
    assert resumed["step"] == 4
    for key in ("model_state", "ema_state"):
        for name, value in straight[key].items():
            assert torch.equal(value, resumed[key][name]), f"{key}.{name} differs after resume"
    # the uninterrupted run moved the weights (the comparison above is not between two untouched inits)
    assert float(straight["model_state"]["final.conv.weight"].abs().max()) > 0  # zero at initialisation
    a = json.loads((tmp_path / "a/checkpoints/step-000004.json").read_text())
    b = json.loads((tmp_path / "b/checkpoints/step-000004.json").read_text())
    assert a["sha256"] == b["sha256"]
    assert a["extra"]["validation"]["loss"] == b["extra"]["validation"]["loss"]


def test_resume_refuses_a_changed_config(tmp_path):
    prepared = synthetic_prepared()
    train_model(loop_config(max_steps=2), prepared, tmp_path, log=_quiet)
    other = loop_config(max_steps=4, seed=7)
    with pytest.raises(UsageError, match="cannot resume: the training config differs in section"):
        train_model(other, prepared, tmp_path, resume=True, log=_quiet)


def test_checkpoint_json_and_state_contents(tmp_path):
    cfg, prepared = loop_config(max_steps=2, checkpoint_every=1), synthetic_prepared()
    summary = train_model(
        cfg, prepared, tmp_path, log=_quiet, run_info={"training_command": "agomni train x"}
    )
    ckpt = load_model_checkpoint(tmp_path / "checkpoints/step-000002")
    assert ckpt.step == 2 and ckpt.config == prepared.model_config
    extra = ckpt.meta["extra"]
    assert extra["weights"] == EMA_NOTE and ckpt.random_weights is False
    assert ckpt.conditioners == prepared.conditioners
    assert extra["training_command"] == "agomni train x"
    assert extra["validation"]["seed"] == cfg.validation.seed and extra["validation"]["items"] == 3
    assert extra["train_config"]["train"]["max_steps"] == 2
    assert ckpt.meta["codec"] == prepared.codec_ref
    stats = ckpt.latent_stats
    assert torch.equal(stats[0], prepared.stats.mean) and torch.equal(stats[1], prepared.stats.std)
    for name, value in summary["ema_state"].items():  # the shipped weights are the EMA, not the raw ones
        assert torch.equal(ckpt.network_state[name], value)
    assert any(not torch.equal(summary["model_state"][k], v) for k, v in summary["ema_state"].items())
    state = load_state(latest_state(tmp_path / "checkpoints"))
    assert state.step == 2 and state.ema_updates == 2
    lines = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    steps = _step_records(tmp_path / "train_log.jsonl")
    assert [x["step"] for x in steps] == [1, 2]
    assert {"step", "loss", "lr", "grad_norm", "steps_per_s"} <= set(steps[0])
    assert [x["step"] for x in lines if "val_loss" in x] == [1, 2]


def _step_records(path) -> list[dict]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if "loss" in r]


def _ddp_worker(rank: int, world: int, init_file: str, out: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        cfg = loop_config(max_steps=3, checkpoint_every=100)
        summary = train_model(cfg, synthetic_prepared(), f"{out}/ddp", log=_quiet)
        if rank == 0:
            save_file({f"model.{k}": v for k, v in summary["model_state"].items()}, f"{out}/ddp.safetensors")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # ~30 s: two spawned processes import torch and agomni
def test_ddp_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ddp = load_file(str(tmp_path / "ddp.safetensors"))
    single = train_model(
        loop_config(max_steps=3, checkpoint_every=100), synthetic_prepared(), tmp_path / "one", log=_quiet
    )
    # Stated tolerance: the gradient is reduced in another order (two half-batch sums averaged by
    # all-reduce), so gradients differ by float32 rounding. Adam divides by sqrt(v) + eps, which turns a
    # rounding difference of a near-zero gradient into a weight difference up to a fraction of lr
    # (3e-3): every weight within 1e-4 (lr / 30), and 99.9 % of them within 1e-6.
    diffs = torch.cat([(ddp[f"model.{k}"] - v).abs().flatten() for k, v in single["model_state"].items()])
    assert float(diffs.max()) < 1e-4
    assert float((diffs > 1e-6).float().mean()) < 1e-3
    moved = max(float(v.abs().max()) for k, v in single["model_state"].items() if k.startswith("final."))
    assert moved > 1e-3  # the final layer starts at zero: training did change the weights compared
    one_log, ddp_log = (_step_records(tmp_path / name / "train_log.jsonl") for name in ("one", "ddp"))
    assert len(one_log) == 3
    for a, b in zip(one_log, ddp_log, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
