"""Prequential runner and River baselines that need no streamal code.

Protocol (``label_efficiency.md``): for every instance the learner first
predicts (scored whether or not the label is requested), then decides whether
to request the label, and learns the instance only if it did.

:func:`run_prequential` drives anything with the *asker* interface
``ask(x) -> decision`` (with ``.query`` and ``.prediction``) and
``learn(x, y)``. That is the interface of ``streamal.ActiveLearner``, and the
baselines here implement it too:

* :class:`FullSupervision` - every label;
* :class:`RandomSampling` - each label with probability ``budget``, one draw of
  ``random.Random(seed)`` per instance (this reproduces the anchors' realised
  "river random" rates exactly);
* :class:`EntropySampling` - ``river.active.EntropySampler`` plus the anchors'
  rule "request labels while fewer than two classes have been seen".

>>> from benchmarks.streams import load
>>> r = run_prequential(load("phishing"), FullSupervision(lr_model(2)))
>>> r.n, r.labels, round(100 * r.accuracy, 2)
(1250, 1250, 89.28)
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from river import active, base, linear_model, multiclass, preprocessing, tree

from streamal.core.evaluate import Asker, balanced_accuracy, prequential

__all__ = [
    "Asker",
    "Decision",
    "EntropySampling",
    "FullSupervision",
    "RandomSampling",
    "RunResult",
    "TracePoint",
    "calibrate_entropy_df",
    "ht_model",
    "lr_model",
    "run_prequential",
]

ModelFactory = Callable[[], base.Classifier]


# --------------------------------------------------------------------------
# models


def lr_model(n_classes: int) -> base.Classifier:
    """The anchors' ``[LR]``: ``StandardScaler() | LogisticRegression()``.

    One-vs-rest for ``n_classes > 2``; plain binary LR for two classes (the
    reading that reproduces the anchor figures). The scaler is updated only
    by ``learn_one``, i.e. only from labelled instances.
    """
    clf: base.Classifier = linear_model.LogisticRegression()
    if n_classes > 2:
        clf = multiclass.OneVsRestClassifier(clf)
    return preprocessing.StandardScaler() | clf


def ht_model(n_classes: int = 2) -> base.Classifier:
    """The anchors' ``[HT]``: ``tree.HoeffdingTreeClassifier()`` (defaults)."""
    del n_classes  # same model whatever K is; kept for a uniform factory signature
    return tree.HoeffdingTreeClassifier()


def _argmax(proba: dict[Hashable, float]) -> Hashable | None:
    """River's tie-break: first key with the maximal probability; None if empty."""
    return max(proba, key=proba.__getitem__) if proba else None


# --------------------------------------------------------------------------
# the asker interface


class Decision(NamedTuple):
    """Mirror of ``streamal``'s ``Decision``; ``prediction`` is scored."""

    query: bool
    score: float
    threshold: float
    prediction: Any


class FullSupervision:
    """Request every label (the ceiling)."""

    def __init__(self, model: base.Classifier) -> None:
        self.model = model

    def ask(self, x: dict[Any, Any]) -> Decision:
        return Decision(True, 1.0, 0.0, self.model.predict_one(x))

    def learn(self, x: dict[Any, Any], y: Any) -> None:
        self.model.learn_one(x, y)


class RandomSampling:
    """Request each label with probability ``budget`` (one RNG draw per instance)."""

    def __init__(self, model: base.Classifier, budget: float, seed: int = 42) -> None:
        self.model = model
        self.budget = budget
        self._rng = random.Random(seed)

    def ask(self, x: dict[Any, Any]) -> Decision:
        prediction = self.model.predict_one(x)
        u = self._rng.random()
        return Decision(u < self.budget, 1.0 - u, 1.0 - self.budget, prediction)

    def learn(self, x: dict[Any, Any], y: Any) -> None:
        self.model.learn_one(x, y)


class EntropySampling:
    """``river.active.EntropySampler(model, discount_factor, seed)`` as an asker.

    The sampler is consulted on every instance (so its RNG advances once per
    instance); its request is overridden to ``True`` while fewer than two
    distinct classes have been labelled, because a one-class model predicts
    with zero entropy and would otherwise never ask. ``score`` is the
    sampler's request probability ``H_norm ** discount_factor``.
    """

    def __init__(self, model: base.Classifier, discount_factor: float, seed: int = 42) -> None:
        self.sampler = active.EntropySampler(model, discount_factor=discount_factor, seed=seed)
        self.discount_factor = discount_factor
        self.seen: set[Any] = set()

    def _p(self, proba: dict[Hashable, float]) -> float:
        nonzero = [p for p in proba.values() if p > 0]
        entropy = -sum(p * math.log2(p) for p in nonzero)
        if not entropy:
            return 0.0
        return float((entropy / math.log2(len(nonzero))) ** self.discount_factor)

    def ask(self, x: dict[Any, Any]) -> Decision:
        proba, asked = self.sampler.predict_proba_one(x)
        query = asked or len(self.seen) < 2
        return Decision(query, self._p(proba), float("nan"), _argmax(proba))

    def learn(self, x: dict[Any, Any], y: Any) -> None:
        self.seen.add(y)
        self.sampler.learn_one(x, y)


# --------------------------------------------------------------------------
# runner


class TracePoint(NamedTuple):
    """State after ``t`` instances: cumulative figures and the last window's accuracy."""

    t: int
    accuracy: float
    label_rate: float
    window_accuracy: float


@dataclass
class RunResult:
    """Outcome of one prequential pass (rates are fractions, not %)."""

    n: int
    correct: int
    labels: int
    seconds: float
    trace: list[TracePoint] = field(default_factory=list)
    per_class: dict[Any, tuple[int, int]] = field(default_factory=dict)
    """``{true label: (correct, instances)}``."""

    @property
    def accuracy(self) -> float:
        """Correct predictions / all instances."""
        return self.correct / self.n if self.n else 0.0

    @property
    def label_rate(self) -> float:
        """Requested labels / all instances (the realised budget)."""
        return self.labels / self.n if self.n else 0.0

    @property
    def balanced_accuracy(self) -> float:
        """Mean per-class recall over the classes present (for imbalanced streams)."""
        return balanced_accuracy(self.per_class)

    @property
    def throughput(self) -> float:
        """Instances per second of the whole loop."""
        return self.n / self.seconds if self.seconds else float("inf")


def run_prequential(
    stream: Iterable[tuple[dict[Any, Any], Any]],
    learner: Asker,
    *,
    n: int | None = None,
    trace_points: int = 100,
) -> RunResult:
    """Test-then-train ``learner`` on ``stream``: :func:`streamal.core.evaluate.prequential`, timed.

    Args:
        stream: ``(x, y)`` pairs; ``len(stream)`` (if defined) sizes the trace.
        learner: an :class:`~streamal.core.evaluate.Asker` (a baseline here or
            ``streamal.ActiveLearner``).
        n: stop after ``n`` instances (default: the whole stream).
        trace_points: about how many :class:`TracePoint` to record (0: none).

    Returns:
        A :class:`RunResult`; its ``trace`` has ``trace_points`` evenly
        spaced points (every 1,000 instances if the length is unknown) and
        always one at the last instance.
    """
    start = time.perf_counter()
    result = prequential(learner, stream if n is None else itertools.islice(stream, n),
                         expected=n, trace_points=trace_points)
    seconds = time.perf_counter() - start
    per_class = {c: (result.per_class[c][0], result.per_class[c][1]) for c in sorted(result.per_class, key=repr)}
    correct = sum(hits for hits, _ in per_class.values())
    trace = [TracePoint(*point) for point in result.trace]
    return RunResult(result.n, correct, result.labels, seconds, trace, per_class)


# --------------------------------------------------------------------------
# EntropySampler's oracle calibration


def calibrate_entropy_df(
    stream: Iterable[tuple[dict[Any, Any], Any]],
    model_factory: ModelFactory,
    budget: float,
    *,
    seed: int = 42,
    tolerance: float = 0.10,
    max_runs: int = 10,
    lo: float = 1e-6,
    hi: float = 1e10,
) -> tuple[float, RunResult, bool]:
    """Search ``discount_factor`` so the whole-stream label rate meets ``budget``.

    This is the anchors' *oracle* calibration (it sees the realised rate of
    the whole stream); with the defaults it reproduces every published
    ``river EntropySampler`` cell, ``‡`` flags included. Geometric bisection
    on ``[lo, hi]`` (a larger factor asks less), at most ``max_runs`` runs,
    stopping at the first run within ``±tolerance`` (relative) of ``budget``.
    If none is, the pick is the run with the highest rate not above
    ``budget`` (else the lowest rate) and ``ok`` is False (the anchors' ``‡``).

    Returns ``(df, result, ok)``. The stream must be re-iterable.
    """
    runs: list[tuple[float, RunResult]] = []
    for _ in range(max_runs):
        df = math.sqrt(lo * hi)
        result = run_prequential(stream, EntropySampling(model_factory(), df, seed), trace_points=0)
        if abs(result.label_rate - budget) <= tolerance * budget:
            return df, result, True
        runs.append((df, result))
        if result.label_rate > budget:
            lo = df
        else:
            hi = df
    below = [r for r in runs if r[1].label_rate <= budget]
    if below:
        df, result = max(below, key=lambda r: r[1].label_rate)
    else:
        df, result = min(runs, key=lambda r: r[1].label_rate)
    return df, result, False
