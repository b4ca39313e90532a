"""Write results files atomically and read them back, checked against `results.schema.json`."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema

from agomni.atomic import atomic_write

from ..errors import ResultsError
from .schema import SCHEMA_VERSION, Results

SCHEMA_FILE = "results.schema.json"


@lru_cache(maxsize=1)
def results_schema() -> dict[str, Any]:
    """The JSON Schema document (draft 2020-12) of results files."""
    return json.loads(files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def validate_results_dict(data: Any) -> list[str]:
    """Every problem of a results dict, one line each ("json/path: message"); empty when valid.

    A schema_version other than "1" is the only problem reported (nothing else can be judged);
    otherwise: the JSON Schema, then what it cannot express: non-finite numbers, duplicate coverage
    ids, scores for items not covered "ok", per-metric unscored reasons on items not "ok" or next to a
    score of the same metric, random-weights checkpoints without the random_weights
    flag, confidence intervals with low > high.
    """
    if not isinstance(data, dict):
        return ["<top>: a results file holds one JSON object"]
    if "schema_version" not in data:
        return ["schema_version: missing (is this an agomni results file?)"]
    version = data["schema_version"]
    if version != SCHEMA_VERSION:
        return [
            f"schema_version: {version!r} is not supported; this agomni reads schema_version "
            f"{SCHEMA_VERSION!r} (use the agomni version that wrote the file)"
        ]
    validator = jsonschema.Draft202012Validator(results_schema())
    problems = [
        f"{_json_path(error.absolute_path)}: {error.message}"
        for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    ]
    problems += [f"{path}: not a finite number ({value!r})" for path, value in _non_finite(data, ())]
    if problems:
        return problems
    return _consistency_problems(data)


def write_results(results: Results, path: str | Path) -> Path:
    """Check `results` and write it as JSON to `path` atomically (a temporary file in the same folder,
    then os.replace): readers see the old file or the new one, never half of one. Creates the
    folder. Raises ResultsError (nothing written) when the results break the schema or the file cannot
    be written (disk full, permissions)."""
    target = Path(path)
    data = results.to_dict()
    problems = validate_results_dict(data)
    if problems:
        raise ResultsError(target, problems)
    try:
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except (TypeError, ValueError) as err:
        raise ResultsError(target, [f"not JSON-serializable: {err}"]) from err
    try:
        return atomic_write(target, lambda tmp: tmp.write_text(text, encoding="utf-8"), durable=True)
    except OSError as err:
        raise ResultsError(
            target, [f"cannot write the results file ({err.strerror or err}); nothing was written"]
        ) from err


def read_results(path: str | Path) -> Results:
    """Read a results file and check it; raises ResultsError naming the file and every problem
    (unreadable, not JSON, wrong schema_version, schema violations)."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ResultsError(source, [f"cannot read results file: {err}"]) from err

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        data = json.loads(text, parse_constant=reject_constant)
    except ValueError as err:
        raise ResultsError(source, [f"not valid JSON: {err}"]) from err
    problems = validate_results_dict(data)
    if problems:
        raise ResultsError(source, problems)
    return Results.from_dict(data)


def _json_path(parts: Any) -> str:
    return "/".join(str(p) for p in parts) or "<top>"


def _non_finite(value: Any, at: tuple[Any, ...]) -> list[tuple[str, float]]:
    """(json path, value) of every NaN or infinite float inside `value`."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [(_json_path(at), value)]
    if isinstance(value, dict):
        return [hit for key, sub in value.items() for hit in _non_finite(sub, (*at, key))]
    if isinstance(value, (list, tuple)):
        return [hit for index, sub in enumerate(value) for hit in _non_finite(sub, (*at, index))]
    return []


def _consistency_problems(data: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    status: dict[str, str] = {}
    unscored: dict[str, dict[str, str]] = {}
    for index, entry in enumerate(data["coverage"]):
        if entry["id"] in status:
            problems.append(f"coverage/{index}: id {entry['id']!r} listed more than once")
        status[entry["id"]] = entry["status"]
        unscored[entry["id"]] = entry.get("unscored", {})
        if unscored[entry["id"]] and entry["status"] != "ok":
            problems.append(
                f"coverage/{index}/unscored: per-metric reasons on an item with status {entry['status']!r} "
                "(only 'ok' items list the metrics that could not score them)"
            )
    for item_id in data["item_scores"]:
        if status.get(item_id) != "ok":
            got = (
                "is not in coverage" if item_id not in status else f"has coverage status {status[item_id]!r}"
            )
            problems.append(f"item_scores/{item_id}: scores for an item that {got} (must be covered 'ok')")
        both = sorted(set(data["item_scores"][item_id]) & set(unscored.get(item_id, {})))
        if both:
            problems.append(
                f"item_scores/{item_id}: scores for {', '.join(both)}, which its coverage entry lists as unscored"
            )
    provenance = data["provenance"]
    random = [name for name, rec in provenance["checkpoints"].items() if rec["trust"] == "random-weights"]
    if random and not provenance["random_weights"]:
        problems.append(
            "provenance/random_weights: false, but checkpoint(s) with trust 'random-weights' were used: "
            f"{', '.join(random)} (must be true)"
        )
    for index, metric in enumerate(data["metrics"]):
        ci = metric["ci"]
        if ci is not None and ci["low"] > ci["high"]:
            problems.append(f"metrics/{index}/ci: low {ci['low']} is above high {ci['high']}")
    return problems
