"""The checkpoint registry and cache: every weights file agomni uses, verified before use.

Nothing here touches the network at import time. Typical use by a metric::

    from agomni import weights
    path = weights.resolve("panns-cnn14-16k")            # cached + re-hashed, or fetched
    state = weights.load_entry_state_dict("panns-cnn14-16k")  # tensors, no pickled code
    result["provenance"]["checkpoints"].append(weights.provenance("panns-cnn14-16k"))

See registry.json (the entries), registry.py (their types and loading), store.py (cache layout,
first-use records, verification), fetch.py (download), load.py (safe loading), strict.py (strict
state-dict loading into a module), cli.py (``agomni weights``).
"""

from .fetch import fetch, offline_instructions
from .load import load_checkpoint, load_state_dict, unwrap_state_dict
from .registry import REGISTRY, Pin, WeightsEntry, entries, get_entry, registered
from .resolve import load_entry_state_dict, provenance, resolve, sha256_of
from .store import Record, Verification, cached_path, import_file, read_record, verify, weights_dir
from .strict import load_strict

__all__ = [
    "REGISTRY",
    "Pin",
    "Record",
    "Verification",
    "WeightsEntry",
    "cached_path",
    "entries",
    "fetch",
    "get_entry",
    "import_file",
    "load_checkpoint",
    "load_entry_state_dict",
    "load_state_dict",
    "load_strict",
    "offline_instructions",
    "provenance",
    "read_record",
    "registered",
    "resolve",
    "sha256_of",
    "unwrap_state_dict",
    "verify",
    "weights_dir",
]
