"""Shipped tiny checkpoints of the reference model, trained on CPU on the toy corpus (agomni.toycorpus).

Files (each <stem>.safetensors + <stem>.json; see each json for config, step, validation loss,
training command, corpus seed and git commit):

- ``tiny-16k-toy``: tiny-16k MMDiT, EMA weights at the end of the toy run;
- ``tiny-16k-toy-early``: the same run's EMA weights at an early step (for checkpoint comparisons);
- ``tiny-vae-16k``: the tiny mel VAE both were trained with (vocoder: Griffin-Lim, no weights).

Conditioners: the random-weight stand-ins of agomni.model.conditioners (seed in the json). Made by
``OMP_NUM_THREADS=1 agomni train agomni/model/train/configs/toy-tiny.json --out /tmp/agomni-runs/toy``
(about 10 minutes on one CPU core; one thread is faster than two on a shared 2-core machine), then
agomni.model.train.export.export_checkpoint(..., float16=True): the weights are stored as float16
(they load into the float32 network) and the json's validation loss is that of the stored weights.
"""

from pathlib import Path

CHECKPOINTS_DIR = Path(__file__).parent
TOY_FINAL = CHECKPOINTS_DIR / "tiny-16k-toy"
TOY_EARLY = CHECKPOINTS_DIR / "tiny-16k-toy-early"
TOY_VAE = CHECKPOINTS_DIR / "tiny-vae-16k.safetensors"

__all__ = ["CHECKPOINTS_DIR", "TOY_EARLY", "TOY_FINAL", "TOY_VAE"]
