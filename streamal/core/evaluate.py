"""Prequential (test-then-train) evaluation of an active learner on a stream.

For every instance: the model predicts before any label decision, the
prediction is scored against the truth, the learner decides whether to ask,
and only a requested label is learned. This is the protocol of the
label-efficiency anchors, of ``streamal simulate`` and of the benchmarks.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamal.core.learner import ActiveLearner

Stream = Iterable[tuple[Mapping[str, Any], Any]]


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
    prediction counts as 0). ``trace`` holds ``(n, accuracy or mae, label_rate)``
    at about every percent of the stream.
    """

    n: int = 0
    labels: int = 0
    #: The most labels asked in any ``window`` consecutive instances.
    max_window_labels: int = 0
    window: int = 1000
    abs_error: float = 0.0
    regression: bool = False
    trace: list[tuple[int, float, float]] = field(default_factory=list)
    #: Per true class: [correct predictions, instances].
    per_class: dict[Any, list[int]] = field(default_factory=dict)

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

    def _mark(self, every: int) -> None:
        if self.n % every == 0:
            metric = self.mae if self.regression else self.accuracy
            self.trace.append((self.n, float(metric or 0.0), self.label_rate))


def prequential(
    learner: ActiveLearner,
    stream: Stream,
    *,
    mode: str = "stream",
    pool_size: int = 1000,
    full: bool = False,
    expected: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Result:
    """Run ``learner`` over ``stream`` test-then-train and return what it measured.

    ``mode="stream"`` decides one instance at a time with ``ask``;
    ``mode="pool"`` buffers ``pool_size`` instances, predicts each on arrival,
    and at the end of the window asks for the ``budget × window`` best with
    ``select`` (the fraction carries over to the next window). ``full=True``
    learns every label (full supervision, the ceiling). ``expected`` (the
    stream length, if known) sets the trace spacing; ``progress(k)`` is
    called with the number of instances done since the last call.

    >>> from river import datasets
    >>> r = prequential(ActiveLearner(budget=0.2, seed=0), datasets.Phishing())
    >>> r.n, r.labels, round(r.accuracy, 3)
    (1250, 251, 0.891)

    """
    if mode not in ("stream", "pool"):
        raise ValueError(f"mode must be 'stream' or 'pool', got {mode!r}")
    result = Result(regression=learner.task == "regression")
    asked_at: deque[int] = deque()

    def count(i: int) -> None:
        asked_at.append(i)
        while asked_at[0] <= i - result.window:
            asked_at.popleft()
        result.max_window_labels = max(result.max_window_labels, len(asked_at))
    every = max(1, (expected or 10_000) // 100)
    pool: list[tuple[Mapping[str, Any], Any]] = []
    carry = 0.0

    def flush_pool() -> None:
        nonlocal carry
        wanted = learner.budget * len(pool) + carry
        k = int(wanted)
        carry = wanted - k
        picked = learner.select([x for x, _ in pool], k)
        for i in picked:
            learner.learn(*pool[i])
            result.labels += 1
        for i in sorted(picked):
            count(result.n - len(pool) + i)
        pool.clear()

    for x, y in stream:
        if mode == "pool" and not full:
            result._score(learner.predict_one(x), y)
            pool.append((x, y))
            if len(pool) >= pool_size:
                flush_pool()
            result._mark(every)
            if progress and result.n % 256 == 0:
                progress(256)
            continue
        decision = learner.ask(x)
        result._score(decision.prediction, y)
        if full or decision.query:
            learner.learn(x, y)
            result.labels += 1
            count(result.n)
        result._mark(every)
        if progress and result.n % 256 == 0:
            progress(256)
    if pool:
        flush_pool()
    if progress:
        progress(result.n % 256)
    return result
