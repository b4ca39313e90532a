"""Every error agomni raises on purpose. The CLI prints these as one clear line, never a traceback.

Each error says what was wrong, with the item id or path where there is one, and what to do.
`exit_code` is what the CLI exits with: 2 for bad input (a manifest, arguments, media), 3 for a
feature not available in this version, 1 otherwise. `agomni run` and `agomni eval` exit with
`EXIT_NOT_COMPUTED` (4) when they wrote their results but some requested metric could not be computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Exit status of `agomni run` / `agomni eval`: results (and report) written, some metric not computed.
EXIT_NOT_COMPUTED = 4


class AgomniError(Exception):
    """Base of all deliberate agomni errors."""

    exit_code = 1


class UsageError(AgomniError):
    """The user asked for something that cannot be done as asked (bad argument, unknown name)."""

    exit_code = 2


class NotAvailableYet(AgomniError):
    """A catalogue metric, command or option that this version does not provide (the message says what to use)."""

    exit_code = 3


# --- media (audio / video) -------------------------------------------------------------------


class MediaError(AgomniError):
    """A media file that cannot be used. Always names the file and the problem."""

    exit_code = 2

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UnreadableMediaError(MediaError):
    """The file is missing, truncated, corrupt, or not a media container at all."""


class UnsupportedCodecError(MediaError):
    """The container opened but holds no decodable stream of the requested kind."""


class EmptyMediaError(MediaError):
    """Zero-length file, or a stream that decodes to no samples/frames."""


class NonFiniteAudioError(MediaError):
    """The decoded audio contains NaN or infinite samples."""


class SilentAudioError(MediaError):
    """Every decoded sample is exactly zero."""


class TooShortError(MediaError):
    """Shorter than the minimum duration a metric or model needs."""


# --- manifests and pairing -------------------------------------------------------------------


class ProblemsError(AgomniError):
    """A file with one or more problems: the message names the file and the count, then `problems`, one
    line each."""

    exit_code = 2

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        self.problems = list(problems)
        super().__init__("\n".join([f"{self.path}: {len(self.problems)} problem(s)", *self.problems]))


class ManifestError(ProblemsError):
    """A manifest with one or more problems; `problems` holds one line per problem."""


class PairingError(AgomniError):
    """Generated outputs that do not pair one-to-one with the manifest's items."""

    exit_code = 2


# --- weights -------------------------------------------------------------------------------


class WeightsError(AgomniError):
    """A checkpoint that cannot be fetched, verified or loaded."""


class UnknownWeightsError(WeightsError, UsageError):
    """A weights name the registry does not know (exit code 2, as a UsageError)."""


class WeightsNotCachedError(WeightsError, UsageError):
    """A checkpoint a requested metric needs is not in the weights cache; names the fetch command."""


class ChecksumMismatchError(WeightsError):
    """A file whose SHA-256 differs from the pinned (or first-use recorded) one."""


class OfflineError(WeightsError):
    """Offline mode forbids the download that was needed; says which file to place where."""


class DownloadError(WeightsError):
    """The transfer failed (HTTP error, connection broken, size mismatch)."""


class UnsafeCheckpointError(WeightsError):
    """A checkpoint that can only be loaded by executing pickled code, refused by default."""


# --- metrics -------------------------------------------------------------------------------


class MetricInputError(AgomniError):
    """Embeddings, logits or statistics a metric cannot score (non-finite values, wrong shape, too few
    samples, mismatched dimensions, a covariance that is not positive semi-definite). Names the set
    or item and the problem."""

    exit_code = 2


class NotComputableError(MetricInputError):
    """A requested metric that cannot be computed on what the run has. `agomni run` / `agomni eval` list
    it as "not computed" in the results (with `kind`, the `side` at fault, per-reason item `counts`, the
    first `items` concerned and a `hint` saying what to do) and compute every other metric; with
    ``--strict`` it ends the run as before."""

    kind = "exception"

    def __init__(
        self,
        reason: str,
        *,
        side: str = "",
        counts: dict[str, int] | None = None,
        items: tuple[str, ...] | list[str] = (),
        hint: str = "",
    ):
        self.reason, self.side, self.hint = reason, side, hint
        self.counts = dict(counts or {})
        self.items = tuple(items)
        parts = [reason]
        if self.counts:
            parts.append("; ".join(f"{n} item(s): {why}" for why, n in self.counts.items()))
        if self.items:
            parts.append(f"first items: {', '.join(self.items)}")
        if hint:
            parts.append(hint)
        super().__init__(" - ".join(parts))


class NoScorableItemsError(NotComputableError):
    """No item could be scored on some side (every one missing, unreadable or unusable for the metric).
    ``per_item`` keeps every item's (reason, side), so that items scored elsewhere (another rank, an
    earlier run) can still be combined with these."""

    kind = "no-items"

    def __init__(self, reason: str, *, per_item: dict[str, tuple[str, str]] | None = None, **labels: Any):
        super().__init__(reason, **labels)
        self.per_item = dict(per_item or {})


class TooFewItemsError(NotComputableError):
    """Fewer items (or rows) than the metric's statistic needs; the reason states the minimum."""

    kind = "too-few-items"


# --- results files -------------------------------------------------------------------------


class ResultsError(ProblemsError):
    """A results file (or results object) that breaks the results schema: wrong or missing
    schema_version, a field missing or of the wrong type, inconsistent coverage. Names the file and
    lists every problem."""
