"""Prequential (test-then-train) evaluation of an active learner on a stream.

For every instance: the model predicts before any label decision, the
prediction is scored against the truth, the learner decides whether to ask,
and only a requested label is learned. This is the protocol of the
label-efficiency anchors, of ``streamal simulate`` and of the benchmarks.

One loop per protocol: :func:`prequential` learns a requested label at once;
:func:`timed_prequential` puts the stream on a clock, with a simulated
annotator whose answers arrive later (and a budget that may follow annotator
capacity); :func:`holdout` scores a final model on instances it never saw.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from streamal.core.budget.capacity import Capacity
from streamal.core.errors import ParameterError
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
    #: The clock of a :func:`timed_prequential` run (None for the other protocols).
    timeline: Timeline | None = None
    #: Where the last ``window`` instances' labels were asked (for ``max_window_labels``).
    _asked_at: deque[int] = field(default_factory=deque, init=False, repr=False, compare=False)
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

    def _count(self, i: int) -> None:
        """One more label, asked at instance ``i`` (1-based, in order)."""
        self.labels += 1
        asked_at = self._asked_at
        asked_at.append(i)
        while asked_at[0] <= i - self.window:
            asked_at.popleft()
        self.max_window_labels = max(self.max_window_labels, len(asked_at))

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
    (1250, 254, 0.901)

    """
    if mode not in ("stream", "pool"):
        raise ValueError(f"mode must be 'stream' or 'pool', got {mode!r}")
    result = Result(regression=getattr(learner, "task", None) == "regression")
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
        for i in sorted(picked):
            result._count(result.n - len(pool) + i + 1)
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
                result._count(result.n)
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


# -- on a clock: a simulated annotator, a budget that may follow capacity ------------------

@dataclass(frozen=True)
class Annotator:
    """A simulated annotator: each answer comes ``delay_s`` seconds after its request, at most ``labels_per_hour``.

    Requests are answered in the order they were asked; when they come
    faster than ``labels_per_hour`` (None: no limit) they queue up, and an
    answer comes ``3600 / labels_per_hour`` seconds after the previous one:
    request r asked at ``a_r`` is answered at
    ``max(a_r + delay_s, answer_{r−1} + 3600 / labels_per_hour)``.
    """

    delay_s: float = 60.0
    labels_per_hour: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.delay_s, bool) or not (isinstance(self.delay_s, (int, float)) and 0.0 <= self.delay_s < math.inf):
            raise ParameterError("delay_s", f"must be a finite number of seconds ≥ 0, got {self.delay_s!r}")
        speed = self.labels_per_hour
        if speed is not None and (isinstance(speed, bool) or not (isinstance(speed, (int, float)) and 0.0 < speed < math.inf)):
            raise ParameterError("labels_per_hour", f"must be a finite number > 0 (or None: no limit), got {speed!r}")


class Slot(NamedTuple):
    """What happened in ``[start_s, start_s + seconds)`` of a :func:`timed_prequential` run.

    ``requests`` were asked and ``answers`` learned in the slot; ``backlog``
    is the outstanding requests at its end and ``backlog_max`` the most at
    any time in it; ``budget`` the fraction in force at its end (None for a
    learner without ``budget_in_force``).
    """

    start_s: float
    seconds: float
    instances: int
    requests: int
    answers: int
    backlog_max: int
    backlog: int
    budget: float | None


class Hour(NamedTuple):
    """:class:`Slot` figures summed over one hour of the clock (``seconds`` < 3600 for the last, partial one)."""

    hour: int
    seconds: float
    instances: int
    requests: int
    answers: int
    backlog_max: int
    backlog: int
    budget: float | None

    @property
    def requests_per_hour(self) -> float | None:
        """Requests in the hour, or for a partial hour the same rate per hour; None for an empty one."""
        return self.requests * 3600.0 / self.seconds if self.seconds > 0 else None


@dataclass
class Timeline:
    """The clock of a :func:`timed_prequential` run.

    ``slots`` are consecutive ``slot_s``-second slots from 0 to the end of
    the clock (``end_s``, or the last arrival); ``requests`` lists ``(instance, asked at, answered at)`` for
    every label request (``instance`` 0-based, times in seconds);
    ``at_ceiling`` counts the capacity updates (of ``updates``) whose budget
    was the ceiling.
    """

    slot_s: float
    annotator: Annotator
    #: The capacity the budget followed, labels per hour (None: a fixed budget).
    labels_per_hour: float | None = None
    slots: list[Slot] = field(default_factory=list)
    requests: list[tuple[int, float, float]] = field(default_factory=list)
    updates: int = 0
    at_ceiling: int = 0
    #: Requests answered (and learned, ``drain``) after the end of the clock.
    answered_after_end: int = 0

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.slots)

    @property
    def backlog_max(self) -> int:
        return max((s.backlog_max for s in self.slots), default=0)

    def hours(self) -> list[Hour]:
        """The slots summed per hour of the clock."""
        per: dict[int, list[Slot]] = {}
        for s in self.slots:
            per.setdefault(int(s.start_s // 3600.0), []).append(s)
        return [
            Hour(h, sum(s.seconds for s in ss), sum(s.instances for s in ss), sum(s.requests for s in ss),
                 sum(s.answers for s in ss), max(s.backlog_max for s in ss), ss[-1].backlog, ss[-1].budget)
            for h, ss in sorted(per.items())
        ]


def timed_prequential(
    learner: ActiveLearner | Asker,
    stream: Stream,
    arrivals: Iterable[float],
    *,
    annotator: Annotator = Annotator(),
    capacity: Capacity | None = None,
    tick_s: float = 1.0,
    slot_s: float = 60.0,
    drain: bool = True,
    end_s: float | None = None,
    expected: int | None = None,
    trace_points: int = 100,
    progress: Callable[[int], None] | None = None,
) -> Result:
    """:func:`prequential` on a clock: instance i arrives at ``arrivals[i]`` seconds, its label later.

    At each arrival the learner first learns every answer due by then (in
    the order asked), then predicts and decides the instance (the
    prediction is scored, test-then-train); a requested label goes to the
    ``annotator`` and is learned when its answer arrives. With ``capacity``
    the budget follows annotator capacity as in the service: every
    ``tick_s`` seconds of the clock (a poll) the arrivals since the last
    tick are observed, and ``learner.set_budget(capacity.budget(backlog,
    now))`` with the backlog of outstanding requests. ``result.labels``
    counts the requests, and ``result.timeline`` (a :class:`Timeline`)
    holds per ``slot_s`` seconds, from 0 to ``end_s`` (default: the last
    arrival), the instances, requests, answers, backlog and budget.
    ``drain=True`` then learns the answers still outstanding (the labels
    were paid for; they count for a model evaluated afterwards, see
    :func:`holdout`). Trace and ``progress`` as in :func:`prequential`;
    arrivals must not go back in time.

    90 labels per hour are 15 per 10 minutes, 5 % of one instance every 2 s
    (the first slot holds the cold start, when every label is worth asking):

    >>> from river import datasets
    >>> data = list(datasets.Phishing())
    >>> learner = ActiveLearner(budget=0.1, seed=0)
    >>> r = timed_prequential(learner, data, [2.0 * i for i in range(len(data))], end_s=2500.0,
    ...                       annotator=Annotator(delay_s=30), capacity=Capacity(labels_per_hour=90, ceiling=0.1),
    ...                       slot_s=600)
    >>> r.n, r.labels, r.timeline.seconds, [s.requests for s in r.timeline.slots]
    (1250, 61, 2500.0, [32, 9, 7, 10, 3])
    >>> round(r.accuracy, 3), r.timeline.backlog_max, learner.n_learned
    (0.872, 15, 61)

    """
    if not (0.0 < tick_s < math.inf):
        raise ParameterError("tick_s", f"must be a finite number of seconds > 0, got {tick_s!r}")
    if not (0.0 < slot_s <= 3600.0 and abs(3600.0 / slot_s - round(3600.0 / slot_s)) < 1e-9):
        raise ParameterError("slot_s", f"must divide an hour (60, 600, 3600 seconds, …), got {slot_s!r}")
    timeline = Timeline(slot_s, annotator, capacity.labels_per_hour if capacity is not None else None)
    result = Result(regression=getattr(learner, "task", None) == "regression", timeline=timeline)
    if expected is None and isinstance(stream, Sized):
        expected = len(stream)
    marks = _marks(expected, trace_points)
    next_mark = next(marks) if trace_points else -1
    delay, gap = annotator.delay_s, (3600.0 / annotator.labels_per_hour if annotator.labels_per_hour else 0.0)
    queue: deque[tuple[float, Mapping[str, Any], Any]] = deque()  # (answer time, x, y), answer times in order
    last_answer = -math.inf
    next_tick = -math.inf
    arrived = 0  # since the last tick
    has_budget = hasattr(learner, "budget_in_force")
    # The slot being filled: its index and counters.
    slot = 0
    instances = requests = answers = 0
    backlog_max = 0
    previous = -math.inf

    def answer_until(t: float, inclusive: bool) -> int:
        done = 0
        while queue and (queue[0][0] <= t if inclusive else queue[0][0] < t):
            _, xa, ya = queue.popleft()
            learner.learn(xa, ya)
            done += 1
        return done

    def close(end: float) -> None:
        nonlocal slot, instances, requests, answers, backlog_max
        budget = learner.budget_in_force if has_budget else None  # type: ignore[union-attr]
        start = slot * slot_s
        timeline.slots.append(Slot(start, end - start, instances, requests, answers, backlog_max, len(queue), budget))
        slot += 1
        instances = requests = answers = 0
        backlog_max = len(queue)

    for (x, y), t in zip(stream, arrivals):
        if t < previous:
            raise ValueError(f"arrivals must not go back in time: {t!r} after {previous!r}")
        previous = t
        here = int(t // slot_s)
        while slot < here:  # close the slots before this arrival, with the answers that came in them
            answers += answer_until((slot + 1) * slot_s, inclusive=False)
            close((slot + 1) * slot_s)
        if queue and queue[0][0] <= t:
            answers += answer_until(t, inclusive=True)
        if capacity is not None and t >= next_tick:
            capacity.observe(arrived, t)
            arrived = 0
            budget = capacity.budget(len(queue), t)
            timeline.updates += 1
            timeline.at_ceiling += budget >= capacity.ceiling
            if abs(budget - learner.budget_in_force) > 1e-9:  # type: ignore[union-attr]
                learner.set_budget(budget)  # type: ignore[union-attr]
            next_tick = t + tick_s
        decision = learner.ask(x)
        result._score(decision.prediction, y)
        arrived += 1
        instances += 1
        if decision.query:
            answer = last_answer = max(t + delay, last_answer + gap)
            queue.append((answer, x, y))
            timeline.requests.append((result.n - 1, t, answer))
            result._count(result.n)
            requests += 1
            backlog_max = max(backlog_max, len(queue))
        if result.n == next_mark:
            result._mark()
            next_mark = next(marks)
        if progress and result.n % 256 == 0:
            progress(256)
    end = previous if end_s is None or end_s < previous else end_s
    while (slot + 1) * slot_s <= end:  # the slots up to the end of the clock
        answers += answer_until((slot + 1) * slot_s, inclusive=False)
        close((slot + 1) * slot_s)
    if end > slot * slot_s or instances:
        answers += answer_until(end, inclusive=True)
        close(end)
    if drain:
        timeline.answered_after_end = answer_until(math.inf, inclusive=True)
    if trace_points and result.n and result._marked[0] != result.n:
        result._mark()
    if progress:
        progress(result.n % 256)
    return result


def holdout(learner: ActiveLearner | Any, stream: Stream) -> Result:
    """Score ``learner``'s model on ``stream`` as it is: predict only (``predict_one``), never ask, never learn.

    >>> from river import datasets
    >>> data = list(datasets.Phishing())
    >>> learner = ActiveLearner(budget=0.2, seed=0)
    >>> trained = prequential(learner, data[:1000])
    >>> r = holdout(learner, data[1000:])
    >>> r.n, r.labels, learner.n_learned == trained.labels, round(r.accuracy, 3)
    (250, 0, True, 0.916)

    """
    result = Result(regression=getattr(learner, "task", None) == "regression")
    predict = learner.predict_one
    for x, y in stream:
        result._score(predict(x), y)
    return result
