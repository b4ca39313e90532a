"""The network step of the sampler, decided once per generator: weight precision (`resolve_precision`)
and the guided step, eager or captured as CUDA graphs (`StepCompiler`). Why these are the defaults on
CUDA: `agomni.model.fast`."""

from __future__ import annotations

import torch

from ..errors import UsageError
from .flow_matching import Velocity, guided_step, guided_velocity
from .network import AgomniMMDiT, PreprocessedConditions

DTYPES = ("fp32", "bf16")
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
COMPILE_MODE = "reduce-overhead"


def resolve_precision(
    device: str, dtype: str | None, compile: bool | None
) -> tuple[torch.device, torch.dtype, bool]:
    """(device, network weight dtype, compile) with the defaults: bf16 + compile on CUDA, fp32 eager elsewhere."""
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise UsageError(f"unknown device {device!r} ({err})") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} asked for, but torch sees no CUDA device")
    fast = dev.type == "cuda"
    name = dtype if dtype is not None else ("bf16" if fast else "fp32")
    if name not in DTYPES:
        raise UsageError(f"unknown dtype {name!r}; valid: {', '.join(DTYPES)}")
    return dev, TORCH_DTYPES[name], fast if compile is None else bool(compile)


class StepCompiler:
    """The guided network step for `sample(..., velocity=...)`: eager `guided_velocity` (CFG batched or
    as two passes, `batched`), or (compile True, always batched)
    `guided_step` through ``torch.compile(mode="reduce-overhead")``, compiled once per StepCompiler and
    reused for every batch of conditions (a new shape, e.g. another duration, is captured again; the
    first call per shape is the compile/capture time that profiles report apart)."""

    def __init__(self, network: AgomniMMDiT, *, cfg: float, compile: bool, batched: bool = True):
        self.network, self.cfg, self.compile, self.batched = network, cfg, compile, batched
        self._step = torch.compile(guided_step, mode=COMPILE_MODE, dynamic=False) if compile else guided_step

    def velocity(
        self, conditions: PreprocessedConditions, unconditional: PreprocessedConditions | None = None
    ) -> Velocity:
        """v(x, t) for these conditions (module docstring); unconditional None: every modality absent."""
        if not self.compile:
            return guided_velocity(self.network, conditions, unconditional, self.cfg, batched=self.batched)
        compiled = self._step

        def step(
            network: AgomniMMDiT, x: torch.Tensor, t: torch.Tensor, both: PreprocessedConditions, cfg: float
        ):
            if x.device.type == "cuda":
                torch.compiler.cudagraph_mark_step_begin()
            # CUDA-graph outputs are overwritten by the next replay: the sampler gets its own copy.
            return compiled(network, x, t, both, cfg).clone()

        return guided_velocity(self.network, conditions, unconditional, self.cfg, step=step)


__all__ = ["COMPILE_MODE", "DTYPES", "TORCH_DTYPES", "StepCompiler", "resolve_precision"]
