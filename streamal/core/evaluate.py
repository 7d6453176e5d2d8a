"""Prequential (test-then-train) evaluation of an active learner on a stream.

For every instance: the model predicts before any label decision, the
prediction is scored against the truth, the learner decides whether to ask,
and only a requested label is learned. This is the protocol of the
label-efficiency anchors, of ``streamal simulate`` and of the benchmarks.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from streamal.core.learner import ActiveLearner
from streamal.core.pool import window_quota

Stream = Iterable[tuple[Mapping[str, Any], Any]]


class DecisionLike(Protocol):
    """What :func:`prequential` reads from ``ask``'s result."""

    @property
    def query(self) -> bool: ...

    @property
    def prediction(self) -> Any: ...


class Asker(Protocol):
    """What stream mode needs of a learner: ``ask`` (predict, then decide) and ``learn``.

    ``streamal.ActiveLearner`` is one; so are the River baselines of
    ``benchmarks/baselines.py``. A learner with ``task == "regression"`` is
    scored by absolute error, any other by accuracy.
    """

    def ask(self, x: Mapping[str, Any]) -> DecisionLike: ...

    def learn(self, x: Mapping[str, Any], y: Any) -> None: ...


class TracePoint(NamedTuple):
    """The figures after ``n`` instances.

    ``metric`` is the accuracy (or, for regression, the MAE) over all ``n``
    instances, ``label_rate`` the labels used so far over ``n``, and
    ``window_metric`` the same metric over the instances since the previous
    point only (what the model does now rather than on average).
    """

    n: int
    metric: float
    label_rate: float
    window_metric: float


def balanced_accuracy(per_class: Mapping[Any, Sequence[int]]) -> float:
    """Mean recall over the classes seen; ``per_class`` maps a class to ``(correct, instances)``.

    >>> balanced_accuracy({"a": (9, 9), "b": (0, 1)})
    0.5
    """
    recalls = [correct / n for correct, n in per_class.values() if n]
    return sum(recalls) / len(recalls) if recalls else 0.0


@dataclass
class Result:
    """What a prequential run measured.

    ``accuracy`` is the share of correct predictions over all instances
    (classification), ``balanced_accuracy`` the mean over the classes seen of
    the share of each class predicted correctly (what counts under heavy
    class imbalance); ``mae`` the mean absolute error (regression; a missing
    prediction counts as 0). ``trace`` holds a :class:`TracePoint` at evenly
    spaced instances and at the last one.
    """

    n: int = 0
    labels: int = 0
    #: The most labels asked in any ``window`` consecutive instances.
    max_window_labels: int = 0
    window: int = 1000
    abs_error: float = 0.0
    regression: bool = False
    trace: list[TracePoint] = field(default_factory=list)
    #: Per true class: [correct predictions, instances].
    per_class: dict[Any, list[int]] = field(default_factory=dict)
    #: ``n`` and the summed score (correct predictions, or absolute error) at the last trace point.
    _marked: tuple[int, float] = field(default=(0, 0.0), init=False, repr=False, compare=False)

    @property
    def accuracy(self) -> float | None:
        if self.regression:
            return None
        return sum(correct for correct, _ in self.per_class.values()) / self.n if self.n else 0.0

    @property
    def balanced_accuracy(self) -> float | None:
        return None if self.regression else balanced_accuracy(self.per_class)

    @property
    def mae(self) -> float | None:
        return (self.abs_error / self.n if self.n else 0.0) if self.regression else None

    @property
    def label_rate(self) -> float:
        return self.labels / self.n if self.n else 0.0

    def _score(self, prediction: Any, y: Any) -> None:
        self.n += 1
        if self.regression:
            p = float(prediction) if prediction is not None else 0.0
            self.abs_error += abs(p - float(y)) if math.isfinite(p) else abs(float(y))
        else:
            counts = self.per_class.get(y)
            if counts is None:
                counts = self.per_class[y] = [0, 0]
            counts[0] += prediction == y
            counts[1] += 1

    def _mark(self) -> None:
        """Record a :class:`TracePoint` after the current instance (``n`` ≥ 1)."""
        total = self.abs_error if self.regression else sum(correct for correct, _ in self.per_class.values())
        n0, total0 = self._marked
        self.trace.append(TracePoint(self.n, total / self.n, self.label_rate, (total - total0) / (self.n - n0)))
        self._marked = (self.n, total)


def _marks(total: int | None, points: int) -> Iterator[int]:
    """Where the trace records a point: ``points`` evenly spaced instances, the last at ``total``.

    Every 1,000 instances when ``total`` is unknown; each mark once, in order.

    >>> list(itertools.islice(_marks(250, 100), 4)), list(itertools.islice(_marks(None, 100), 2))
    ([2, 5, 8, 10], [1000, 2000])
    """
    last = 0
    for k in itertools.count(1):
        mark = max(1, round(k * total / points)) if total else 1000 * k
        if mark > last:
            yield mark
            last = mark


def prequential(
    learner: ActiveLearner | Asker,
    stream: Stream,
    *,
    mode: str = "stream",
    pool_size: int = 1000,
    full: bool = False,
    expected: int | None = None,
    trace_points: int = 100,
    progress: Callable[[int], None] | None = None,
) -> Result:
    """Run ``learner`` over ``stream`` test-then-train and return what it measured.

    ``mode="stream"`` decides one instance at a time with ``ask`` (any
    :class:`Asker` will do); ``mode="pool"`` (an ``ActiveLearner``) buffers
    ``pool_size`` instances, predicts each on arrival, and at the end of the
    window asks for the best ``budget × window`` with ``select`` (the
    fraction carries over to the next window, see
    :func:`~streamal.core.pool.window_quota`). ``full=True`` learns every
    label (full supervision, the ceiling). The trace gets ``trace_points``
    evenly spaced points over ``expected`` instances (default: the stream's
    length, if it has one; else a point every 1,000) and one at the last
    instance; 0 records none. ``progress(k)`` is called with the number of
    instances done since the last call.

    >>> from river import datasets
    >>> r = prequential(ActiveLearner(budget=0.2, seed=0), datasets.Phishing())
    >>> r.n, r.labels, round(r.accuracy, 3)
    (1250, 251, 0.891)

    """
    if mode not in ("stream", "pool"):
        raise ValueError(f"mode must be 'stream' or 'pool', got {mode!r}")
    result = Result(regression=getattr(learner, "task", None) == "regression")
    asked_at: deque[int] = deque()

    def count(i: int) -> None:
        asked_at.append(i)
        while asked_at[0] <= i - result.window:
            asked_at.popleft()
        result.max_window_labels = max(result.max_window_labels, len(asked_at))

    if expected is None and isinstance(stream, Sized):
        expected = len(stream)
    marks = _marks(expected, trace_points)
    next_mark = next(marks) if trace_points else -1
    pooled = mode == "pool" and not full
    pool: list[tuple[Mapping[str, Any], Any]] = []
    carry = 0.0

    def flush_pool() -> None:
        nonlocal carry
        k, carry = window_quota(learner.budget, len(pool), carry)
        picked = learner.select([x for x, _ in pool], k)
        for i in picked:
            learner.learn(*pool[i])
            result.labels += 1
        for i in sorted(picked):
            count(result.n - len(pool) + i)
        pool.clear()

    for x, y in stream:
        if pooled:
            result._score(learner.predict_one(x), y)
            pool.append((x, y))
            if len(pool) >= pool_size:
                flush_pool()
        else:
            decision = learner.ask(x)
            result._score(decision.prediction, y)
            if full or decision.query:
                learner.learn(x, y)
                result.labels += 1
                count(result.n)
        if result.n == next_mark:
            result._mark()
            next_mark = next(marks)
        if progress and result.n % 256 == 0:
            progress(256)
    if pool:
        flush_pool()
        if result.trace and result.trace[-1].n == result.n:  # drawn before this last window's labels
            result.trace[-1] = result.trace[-1]._replace(label_rate=result.label_rate)
    if trace_points and result.n and result._marked[0] != result.n:
        result._mark()
    if progress:
        progress(result.n % 256)
    return result
