"""Results of a run (schema_version "1"): scores, set metrics, coverage and provenance, as dataclasses
and as JSON files checked against results.schema.json."""

from .frame import to_frame
from .provenance import (
    CHECKPOINT_TRUST,
    PROVENANCE_PACKAGES,
    CheckpointRecord,
    GitInfo,
    Provenance,
    collect_provenance,
)
from .run_folder import (
    ITEMS_FILE,
    RESULTS_FILE,
    RUN_FILE,
    ItemFile,
    ItemRecord,
    NetworkOutput,
    RunFolder,
    read_items,
    write_items,
)
from .schema import (
    COVERAGE_STATUSES,
    NOT_COMPUTED_KINDS,
    SCHEMA_VERSION,
    ConfidenceInterval,
    CoverageEntry,
    NotComputed,
    Results,
    RunInfo,
    SetMetric,
    Spread,
)
from .settings import CacheUse, EvalSettings
from .store import read_results, results_schema, validate_results_dict, write_results

__all__ = [
    "CHECKPOINT_TRUST",
    "COVERAGE_STATUSES",
    "ITEMS_FILE",
    "NOT_COMPUTED_KINDS",
    "PROVENANCE_PACKAGES",
    "RESULTS_FILE",
    "RUN_FILE",
    "SCHEMA_VERSION",
    "CacheUse",
    "CheckpointRecord",
    "ConfidenceInterval",
    "CoverageEntry",
    "EvalSettings",
    "GitInfo",
    "ItemFile",
    "ItemRecord",
    "NetworkOutput",
    "NotComputed",
    "Provenance",
    "Results",
    "RunFolder",
    "RunInfo",
    "SetMetric",
    "Spread",
    "collect_provenance",
    "read_items",
    "read_results",
    "results_schema",
    "to_frame",
    "validate_results_dict",
    "write_items",
    "write_results",
]
