"""`agomni run`: generate with a generator adapter, score a suite, write a run folder (see runner)."""

from .generators import GenSettings, parse_generator
from .runner import RunRequest, load_run, run_suite

__all__ = ["GenSettings", "RunRequest", "load_run", "parse_generator", "run_suite"]
