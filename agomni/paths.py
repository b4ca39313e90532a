"""Where agomni keeps things: the cache home, the protocol data, and the offline switch."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

from .errors import UsageError

_TRUE = {"1", "true", "yes", "on"}


def agomni_home() -> Path:
    """Cache root: `$AGOMNI_HOME`, else the user cache dir (e.g. ~/.cache/agomni). Not created here."""
    env = os.environ.get("AGOMNI_HOME")
    return Path(env).expanduser() if env else Path(user_cache_dir("agomni"))


def offline() -> bool:
    """True when `AGOMNI_OFFLINE` or `HF_HUB_OFFLINE` is set to 1/true/yes/on: never touch the network."""
    return any(
        os.environ.get(var, "").strip().lower() in _TRUE for var in ("AGOMNI_OFFLINE", "HF_HUB_OFFLINE")
    )


def evaluation_dir() -> Path:
    """The `evaluation/` folder (suite specs, published tables): `$AGOMNI_EVALUATION_DIR` or the source tree's."""
    env = os.environ.get("AGOMNI_EVALUATION_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[1] / "evaluation"
    if not (path / "suites").is_dir():
        raise UsageError(
            f"protocol data not found at {path} (expected a suites/ folder there); install agomni from a "
            "source checkout (pip install -e .) or set AGOMNI_EVALUATION_DIR"
        )
    return path
