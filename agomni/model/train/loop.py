"""The training loop: AdamW + warm-up schedule, grad clipping, EMA, condition dropout, bf16 on CUDA,
DistributedDataParallel, periodic checkpoints with the held-out validation loss, exact resume.

Randomness (all from ONE torch.Generator seeded with train.seed + 1, saved in the training state):
per step, for the GLOBAL batch of G examples and in this order, the VAE posterior noise [G, T, C],
the flow noise x0 [G, T, C], the times t = sigmoid(N(0, 1)) [G] and the condition-dropout uniforms
(draw_presence). Rank r of W uses rows r, r + W, ... - exactly the rows a DistributedSampler with
drop_last gives it - so a W-process run sees the same samples and draws as a 1-process run with the
same global batch; only the order of the gradient reduction differs. The data order is a function
of the step (DistributedSampler seeded with train.seed, epoch = step // steps per epoch), so resuming
needs no sampler state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from ... import distributed
from ...errors import UsageError
from ..checkpoint import save_checkpoint
from ..flow_matching import velocity_mse
from ..network import AgomniMMDiT, draw_presence
from .config import TrainConfig
from .ema import EMA
from .objective import conditions_kwargs
from .prepare import Prepared
from .schedule import learning_rate
from .state import TrainState, check_resumable, latest_state, load_state, save_state
from .validation import validation_loss

EMA_NOTE = "network_state holds the EMA of the training weights (see extra.ema), not the raw weights"


def _autocast(cfg: TrainConfig, device: torch.device):
    use_bf16 = cfg.train.precision == "bf16" or (cfg.train.precision == "auto" and device.type == "cuda")
    if use_bf16 and device.type != "cuda":
        raise UsageError("train.precision bf16 needs a CUDA device; use auto or fp32 on CPU")
    return (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else nullcontext


def build_model(cfg: TrainConfig, prepared: Prepared, device: torch.device) -> AgomniMMDiT:
    """The network with its seeded initialisation (torch.manual_seed(train.seed), global RNG restored)
    and the run's latent statistics."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        model = AgomniMMDiT(prepared.model_config)
    model.set_latent_stats(prepared.stats.mean, prepared.stats.std)
    return model.to(device)


def _step_rows(step: int, sampler: DistributedSampler, local: int, steps_per_epoch: int) -> list[int]:
    epoch, position = divmod(step, steps_per_epoch)
    sampler.set_epoch(epoch)
    return list(iter(sampler))[position * local : (position + 1) * local]


def train_model(
    cfg: TrainConfig,
    prepared: Prepared,
    out_dir: str | Path,
    *,
    resume: bool = False,
    stop_at: int | None = None,
    device: str | torch.device = "cpu",
    run_info: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train to cfg.train.max_steps (or stop after step `stop_at`); returns a summary dict.

    Writes <out>/checkpoints/step-NNNNNN.{safetensors,json} (EMA weights, validation loss, provenance)
    plus its .train.* state every train.checkpoint_every steps and at the last step, and
    <out>/train_log.jsonl (rank 0). `resume`: continue from the latest state in <out>/checkpoints.
    """
    shard = distributed.current()
    rank, world = shard.rank, shard.world
    device = torch.device(device)
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    t, o = cfg.train, cfg.optimizer
    if t.batch_size % world:
        raise UsageError(f"train.batch_size {t.batch_size} does not split over {world} processes")
    local = t.batch_size // world
    n = len(prepared.train)
    sampler = DistributedSampler(
        range(n), num_replicas=world, rank=rank, shuffle=True, seed=t.seed, drop_last=True
    )
    steps_per_epoch = len(sampler) // local
    if steps_per_epoch < 1:
        raise UsageError(f"{n} training examples hold no full global batch of {t.batch_size}")

    model = build_model(cfg, prepared, device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay
    )
    ema = EMA(model, cfg.ema.decay)
    generator = torch.Generator().manual_seed(t.seed + 1)
    step = 0
    if resume:
        stem = latest_state(ckpt_dir)
        if stem is None:
            raise UsageError(f"--resume: no training state (step-*.train.json) in {ckpt_dir}")
        state = load_state(stem)
        check_resumable(state.config, cfg.to_dict(), stem)
        model.load_state_dict(state.model)
        optimizer.load_state_dict(state.optimizer)
        ema.load(state.ema, state.ema_updates)
        generator.set_state(state.generator)
        torch.set_rng_state(state.torch_rng)
        step = state.step
        log(f"resumed from {stem} at step {step}")
    ids = [device.index] if device.type == "cuda" else None
    net = DistributedDataParallel(model, device_ids=ids) if world > 1 else model
    autocast = _autocast(cfg, device)
    final = t.max_steps if stop_at is None else min(stop_at, t.max_steps)
    log_path = out / "train_log.jsonl"
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    loss_sum, loss_count, tick, tick_step = 0.0, 0, time.time(), step
    summary: dict[str, Any] = {"checkpoints": [], "log": str(log_path)}
    model.train()
    while step < final:
        rows = _step_rows(step, sampler, local, steps_per_epoch)
        batch = {k: v.to(device) for k, v in prepared.train.select(rows).items()}
        g = t.batch_size
        shape = (g, *batch["latent_mean"].shape[1:])
        eps = torch.randn(shape, generator=generator)[rank::world].to(device)
        x0 = torch.randn(shape, generator=generator)[rank::world].to(device)
        times = torch.sigmoid(torch.randn(g, generator=generator))[rank::world].to(device)
        drawn = draw_presence(g, prepared.model_config.dropout, generator)
        keep = torch.stack([drawn.video, drawn.text, drawn.lt], dim=1)[rank::world].to(device)
        x1 = model.normalize(batch["latent_mean"] + batch["latent_std"] * eps)
        lr = learning_rate(step, o, t.max_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast():
            loss = velocity_mse(net, x1, x0, times, conditions_kwargs(batch, batch["presence"] & keep)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip))
        optimizer.step()
        ema.update(model)
        step += 1
        loss_sum, loss_count = loss_sum + float(loss.detach()), loss_count + 1
        if step % t.log_every == 0 or step == final:
            mean = torch.tensor([loss_sum / loss_count], dtype=torch.float64)
            if world > 1:
                mean = distributed.all_reduce_sum({"loss": mean})["loss"] / world
            rate = (step - tick_step) / max(time.time() - tick, 1e-9)
            record = {
                "step": step,
                "loss": float(mean),
                "lr": lr,
                "grad_norm": grad_norm,
                "steps_per_s": rate,
            }
            if rank == 0:
                log(
                    f"step {step}/{t.max_steps} | loss {float(mean):.4f} (flow-matching velocity MSE, mean of "
                    f"the last {loss_count} global batches, lower is better) | lr {lr:.3e} | grad-norm "
                    f"{grad_norm:.3f} (L2, before clipping at {o.grad_clip}) | {rate:.2f} steps/s"
                )
                with log_path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
            summary["last_loss"] = float(mean)
            loss_sum, loss_count, tick, tick_step = 0.0, 0, time.time(), step
        if step % t.checkpoint_every == 0 or step == final:
            if rank == 0:
                path = _checkpoint(
                    cfg, prepared, ckpt_dir, step, model, ema, optimizer, generator, run_info, log, device
                )
                summary["checkpoints"].append(str(path))
                with log_path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"step": step, "checkpoint": str(path), **_val_record(path)}) + "\n")
            shard.barrier()
    summary["step"] = step
    summary["model_state"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    summary["ema_state"] = ema.state_dict()
    return summary


def _val_record(weights: Path) -> dict[str, Any]:
    meta = json.loads(weights.with_suffix(".json").read_text(encoding="utf-8"))
    return {"val_loss": meta["extra"]["validation"]["loss"]}


def _checkpoint(
    cfg: TrainConfig,
    prepared: Prepared,
    ckpt_dir: Path,
    step: int,
    model: AgomniMMDiT,
    ema: EMA,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    run_info: dict[str, Any] | None,
    log: Callable[[str], None],
    device: torch.device,
) -> Path:
    """Validate the EMA weights, then write the checkpoint (EMA) and the training state."""
    v = cfg.validation
    with torch.random.fork_rng(devices=[]):
        ema_model = AgomniMMDiT(prepared.model_config)
    ema_model.load_state_dict(ema.state_dict())
    ema_model.set_latent_stats(prepared.stats.mean, prepared.stats.std)
    ema_model.to(device)
    val = validation_loss(
        ema_model,
        prepared.heldout,
        seed=v.seed,
        times_per_item=v.times_per_item,
        batch_size=v.batch_size,
    )
    log(
        f"step {step}: held-out validation loss {val:.5f} (flow-matching velocity MSE of the EMA weights on "
        f"{len(prepared.heldout)} held-out items x {v.times_per_item} fixed (t, noise) draws, seed {v.seed}; "
        "lower is better)"
    )
    stem = ckpt_dir / f"step-{step:06d}"
    extra = {
        "weights": EMA_NOTE,
        "ema": {"decay": cfg.ema.decay, "updates": ema.updates, "recipe": "min(decay, (1 + k) / (10 + k))"},
        "validation": {
            "loss": val,
            "unit": "mean squared error of the velocity, normalised latent units squared; lower is better",
            "recipe": "agomni.model.train.validation (fixed seeded t and noise, item modalities, no dropout)",
            "seed": v.seed,
            "times_per_item": v.times_per_item,
            "items": len(prepared.heldout),
            "heldout_manifest_sha256": prepared.heldout.manifest_sha256,
        },
        "corpus": {
            **(prepared.corpus_meta or {}),
            "train_manifest_sha256": prepared.train.manifest_sha256,
            "heldout_manifest_sha256": prepared.heldout.manifest_sha256,
        },
        "train_config": cfg.to_dict(),
        **(run_info or {}),
    }
    path = save_checkpoint(
        stem,
        network_state=ema.state_dict(),
        config=prepared.model_config,
        step=step,
        codec=prepared.codec_ref,
        conditioners=prepared.conditioners,
        latent_stats=(prepared.stats.mean, prepared.stats.std),
        extra=extra,
    )
    save_state(
        stem,
        TrainState(
            step=step,
            model={k: v.detach().cpu() for k, v in model.state_dict().items()},
            ema=ema.state_dict(),
            ema_updates=ema.updates,
            optimizer=optimizer.state_dict(),
            generator=generator.get_state(),
            torch_rng=torch.get_rng_state(),
            config=cfg.to_dict(),
        ),
    )
    return path
