"""Training of the reference MMDiT: config files, cached examples, the loop (AdamW, EMA, DDP, exact
resume), the held-out validation loss, the tiny mel-VAE trainer and the `agomni train` command.

The toy run that made the shipped tiny checkpoints (agomni/model/checkpoints/) is one command::

    OMP_NUM_THREADS=1 agomni train agomni/model/train/configs/toy-tiny.json --out /tmp/agomni-runs/toy

(`agomni.model.train.config.TOY_CONFIG` is that config's path.) Data parallel:
``torchrun --nproc-per-node N -m agomni.cli train CONFIG --out DIR``.
"""

from .config import TrainConfig, load_train_config
from .ema import EMA, ema_decay
from .schedule import learning_rate

__all__ = ["EMA", "TrainConfig", "ema_decay", "learning_rate", "load_train_config"]
