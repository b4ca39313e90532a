"""Start-up cost of generation: loading the shipped checkpoint, building its network and importing the
I/O layer must not pull in torch's compiler stack or torchvision (seconds of CPU per `agomni generate`)."""

from __future__ import annotations

import subprocess
import sys

from agomni.model.checkpoints import TOY_FINAL

SCRIPT = f"""
import sys
import agomni.io
from agomni.model.checkpoint import build_network, load_model_checkpoint
network = build_network(load_model_checkpoint({str(TOY_FINAL)!r}))
heavy = [m for m in ("torch._dynamo", "sympy", "torchvision") if m in sys.modules]
print(",".join(heavy) or "none")
"""


def test_checkpoint_load_and_io_import_no_compiler_stack_or_torchvision():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=300
    )
    assert result.stdout.strip() == "none", result.stdout + result.stderr
