"""The accumulator protocol every agomni metric follows, and the helpers they share.

A metric exists twice: as a plain function on arrays (``frechet_distance``, ``kl_divergence`` ...)
and as a stateful accumulator (torchmetrics style). Writing a new accumulator takes three things:

1. a class attribute ``spec = MetricSpec(...)``: the short unit, the direction, what the unit means and
   which embedder output (``head``) the metric consumes. Registry, results and printed tables all read
   unit and direction from here;
2. in ``__init__``, one ``self.add_state(name, reduce)`` per piece of state, then ``self.reset()``.
   ``reduce`` says how the state combines across batches and processes:
   ``"sum"`` (a float64 numpy array, summed element-wise; ``all_reduce`` across ranks),
   ``"rows"`` (a list of float64 [N, D] arrays, concatenated in rank order) or
   ``"items"`` (a dict item id -> float64 row, merged; an id seen twice is an error);
3. ``update(values, *, reference, ids)`` (one signature for every metric: ``values`` [N, ...] rows of
   the reference or the generated set, ``ids`` their N item ids) and ``compute() -> MetricResult``.

``reset``, ``state``, ``merge_state``, ``load_state``, ``merge`` and ``sync`` (torch.distributed) come
from the base class. ``"sum"`` states may start as None (dimension unknown until the first rows):
``sync`` then needs every rank to have seen a row or the dimension given up front.

Example::

    class RowCount(Metric):
        spec = MetricSpec(unit="rows", higher_is_better=True, description="rows seen", head="embed")
        name, recipe = "rows", "count"

        def __init__(self):
            self.add_state("n", "sum")
            self.reset()

        def update(self, values, *, reference=False, ids=None):
            self.n = (0 if self.n is None else self.n) + np.array(len(values), dtype=np.float64)

        def compute(self):
            return self.result_for(float(self.n))
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.distributed as dist

from agomni import distributed
from agomni.errors import MetricInputError, TooFewItemsError

ArrayLike = np.ndarray | torch.Tensor
Reduce = Literal["sum", "rows", "items"]
Head = Literal["embed", "logits"]


@dataclass(frozen=True)
class MetricSpec:
    """What a metric's numbers mean: short ``unit`` (as results and tables print it), ``higher_is_better``,
    a ``description`` of the unit, the embedder output it consumes (``head``) and the sides it reads
    (``sides``: IS scores the generated set only)."""

    unit: str
    higher_is_better: bool
    description: str
    head: Head = "embed"
    sides: tuple[str, ...] = ("pred", "ref")

    @property
    def unit_text(self) -> str:
        """``"<unit> (<description>)"`` (just the unit without a description): as a result states it."""
        return f"{self.unit} ({self.description})" if self.description else self.unit


@dataclass(frozen=True)
class MetricResult:
    """One computed metric value with the labels it must be printed with.

    ``details`` holds the secondary numbers (standard deviation, the other KL direction, sample
    counts, seeds, extrapolation points ...), each documented by the metric that fills it.
    """

    name: str
    value: float
    unit: str
    higher_is_better: bool
    recipe: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "recipe": self.recipe,
            "details": dict(self.details),
        }

    def __str__(self) -> str:
        arrow = "higher is better" if self.higher_is_better else "lower is better"
        return f"{self.name} = {self.value:.6g} [{self.unit}; {arrow}; recipe {self.recipe}]"


class Accumulator:
    """Declared states (``add_state``) and how they reset, merge and sync across ranks: the machinery
    every metric and `agomni.metrics.frechet.GaussianStats` share. ``name`` labels error messages."""

    name: str

    def add_state(self, name: str, reduce: Reduce, default: Any = None) -> None:
        """Declare the state ``name`` and how it reduces (``"sum"``, ``"rows"`` or ``"items"``);
        ``default`` is the starting value of a ``"sum"`` state (None: allocated on first use)."""
        if reduce not in ("sum", "rows", "items"):
            raise ValueError(f"add_state: reduce must be 'sum', 'rows' or 'items', got {reduce!r}")
        states = self.__dict__.setdefault("_states", {})
        states[name] = (reduce, default)

    @property
    def _declared(self) -> dict[str, tuple[Reduce, Any]]:
        return self.__dict__.get("_states", {})

    def reset(self) -> None:
        """Every state back to its start: the ``"sum"`` default, an empty list or dict."""
        for name, (reduce, default) in self._declared.items():
            start = {"rows": [], "items": {}}.get(reduce, copy.deepcopy(default))
            setattr(self, name, start)

    def state(self) -> dict[str, Any]:
        """A copy of every declared state (picklable; ``"sum"`` states are float64 arrays or None)."""
        return {name: copy.deepcopy(getattr(self, name)) for name in self._declared}

    def merge_state(self, state: Mapping[str, Any]) -> None:
        """Add another accumulator's ``state()`` to this one, as if this one had seen its inputs too."""
        for name, (reduce, _) in self._declared.items():
            mine, theirs = getattr(self, name), state[name]
            if reduce == "rows":
                mine.extend(np.asarray(rows, dtype=np.float64) for rows in theirs)
            elif reduce == "items":
                merge_items_by_id(mine, theirs, f"{self.name} {name}")
            elif theirs is not None:
                theirs = np.asarray(theirs, dtype=np.float64)
                if mine is not None and np.shape(mine) != theirs.shape:
                    raise MetricInputError(
                        f"{self.name}: cannot merge state {name!r} of shape {theirs.shape} into {np.shape(mine)}"
                    )
                setattr(self, name, theirs.copy() if mine is None else mine + theirs)

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Replace this accumulator's state by ``state``."""
        self.reset()
        self.merge_state(state)

    def merge(self, other: Accumulator) -> Accumulator:
        """Add ``other``'s inputs to this accumulator (in place) and return ``self``."""
        if type(other) is not type(self):
            raise TypeError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        self.merge_state(other.state())
        return self

    def sync(self, group: dist.ProcessGroup | None = None) -> None:
        """Combine the states of all ranks in ``group`` so that every rank holds the global state.

        Only ``"sum"`` states: ``all_reduce`` (SUM). Otherwise every state is gathered with
        ``all_gather_object`` and merged in rank order. A no-op without an initialised process group.
        """
        if not distributed.initialised():
            return
        if all(reduce == "sum" for reduce, _ in self._declared.values()):
            state = self.state()
            missing = [name for name, value in state.items() if value is None]
            if missing:
                raise MetricInputError(f"{self.name}: state {missing} has no dimension yet; give it up front")
            tensors = {name: torch.from_numpy(np.asarray(value)) for name, value in state.items()}
            reduced = distributed.all_reduce_sum(tensors, group=group)
            self.reset()
            for name, value in reduced.items():
                setattr(self, name, value.numpy().astype(np.float64))
            return
        gathered = distributed.gather_objects(self.state(), group=group)
        self.reset()
        for rank_state in gathered:
            self.merge_state(rank_state)


class Metric(Accumulator, ABC):
    """Base of all metric accumulators (see the module docstring): states declared with ``add_state``,
    ``update`` on batches, ``compute`` once; reset, merge and distributed sync come from `Accumulator`."""

    spec: ClassVar[MetricSpec]
    recipe: str

    @property
    def unit(self) -> str:
        return self.spec.unit_text

    @property
    def higher_is_better(self) -> bool:
        return self.spec.higher_is_better

    @abstractmethod
    def update(self, values: ArrayLike, *, reference: bool = False, ids: Sequence[str] | None = None) -> None:
        """Add rows ``values`` [N, ...] of the reference (``reference=True``) or the generated set, with
        their item ids (needed by metrics that pair or order items)."""

    @abstractmethod
    def compute(self) -> MetricResult: ...

    def result_for(self, value: float, **details: Any) -> MetricResult:
        """A ``MetricResult`` carrying this accumulator's labels."""
        return MetricResult(
            name=self.name,
            value=float(value),
            unit=self.unit,
            higher_is_better=self.higher_is_better,
            recipe=self.recipe,
            details=details,
        )


def as_float64(x: ArrayLike) -> np.ndarray:
    """``x`` (numpy or torch, any float dtype, any shape) as a float64 numpy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def as_float64_matrix(x: ArrayLike, what: str, *, min_rows: int = 1) -> np.ndarray:
    """``x`` [N, D] (numpy or torch, any float dtype) as a float64 numpy array, validated.

    Raises ``MetricInputError`` naming ``what`` when ``x`` is not 2-D, has fewer than ``min_rows`` rows,
    no columns, or holds NaN or infinite values (with the first offending row index).
    """
    array = as_float64(x)
    if array.ndim != 2:
        raise MetricInputError(f"{what}: expected a 2-D array [N, D], got shape {tuple(array.shape)}")
    if array.shape[1] == 0:
        raise MetricInputError(f"{what}: has zero columns (shape {tuple(array.shape)})")
    if array.shape[0] < min_rows:
        side = "generated" if "generated" in what else "reference" if "reference" in what else ""
        raise TooFewItemsError(f"{what}: needs at least {min_rows} rows, got {array.shape[0]}", side=side)
    finite = np.isfinite(array)
    if not finite.all():
        row = int(np.argwhere(~finite.all(axis=1))[0, 0])
        raise MetricInputError(f"{what}: row {row} holds NaN or infinite values")
    return array


ClassScores = Literal["logits", "probabilities"]


def to_log_probabilities(x: np.ndarray, inputs: ClassScores, what: str) -> np.ndarray:
    """Row-wise natural-log class probabilities, float64, of ``x`` [N, C].

    ``inputs="logits"``: log-softmax (``x - logsumexp(x)``, as ``torch.log_softmax``).
    ``inputs="probabilities"``: rows must be non-negative and sum to 1 within 1e-4; zeros give -inf.
    """
    if inputs == "logits":
        shifted = x - x.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    if inputs != "probabilities":
        raise MetricInputError(f"{what}: inputs must be 'logits' or 'probabilities', got {inputs!r}")
    bad = np.flatnonzero((x < 0).any(axis=1) | (np.abs(x.sum(axis=1) - 1.0) > 1e-4))
    if bad.size:
        raise MetricInputError(
            f"{what}: row {int(bad[0])} is not a probability vector (negative or not summing to 1)"
        )
    with np.errstate(divide="ignore"):
        return np.log(x)


def add_items_by_id(
    store: dict[str, np.ndarray], ids: list[str] | tuple[str, ...], rows: ArrayLike, what: str
) -> None:
    """Add ``rows`` [N, C] to ``store`` under ``ids`` (N strings). A repeated id, within the batch or
    with an earlier one, raises ``MetricInputError`` naming it."""
    matrix = as_float64_matrix(rows, what, min_rows=0)
    ids = [str(item) for item in ids]
    if len(ids) != matrix.shape[0]:
        raise MetricInputError(f"{what}: {len(ids)} ids for {matrix.shape[0]} rows")
    if store and matrix.shape[0]:
        width = len(next(iter(store.values())))
        if matrix.shape[1] != width:
            raise MetricInputError(f"{what}: rows have {matrix.shape[1]} classes, earlier items had {width}")
    for item, row in zip(ids, matrix, strict=True):
        if item in store:
            raise MetricInputError(f"{what}: item id {item!r} was added twice")
        store[item] = row


def merge_items_by_id(store: dict[str, np.ndarray], items: Mapping[str, np.ndarray], what: str) -> None:
    """`add_items_by_id` for the items (id -> row [C]) of another accumulator's ``state()``, as the
    ``"gather"`` accumulators merge ranks; nothing to do for no items."""
    ids = list(items)
    if ids:
        add_items_by_id(store, ids, np.stack([items[i] for i in ids]), what)


def kl_terms(p: np.ndarray, log_p: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """Element-wise KL summands ``p * (log p - log q)`` in nats (float64), with ``0 log 0 = 0``: 0 wherever
    ``p == 0``, whatever ``log q`` is; ``+inf`` where ``p > 0`` and ``q == 0``. Sum over classes for
    KL(p || q) per row."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * (log_p - log_q), 0.0)
