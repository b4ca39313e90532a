"""Manifests (JSONL item lists): field rules, validation, loading, and pairing of generated outputs."""

from .cli import cli_validate
from .fields import FIELD_KINDS, SAMPLE_SEPARATOR, TASK_REQUIRED_FIELDS, TASKS, id_problem
from .load import Item, Manifest, load_manifest
from .pairing import Pair, Pairing, output_name, pair_outputs
from .validate import Problem, validate_manifest

__all__ = [
    "FIELD_KINDS",
    "SAMPLE_SEPARATOR",
    "TASKS",
    "TASK_REQUIRED_FIELDS",
    "Item",
    "Manifest",
    "Pair",
    "Pairing",
    "Problem",
    "cli_validate",
    "id_problem",
    "load_manifest",
    "output_name",
    "pair_outputs",
    "validate_manifest",
]
