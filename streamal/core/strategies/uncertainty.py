"""Uncertainty sampling: how unsure the current model is about one instance.

All three scores need only the model's class probabilities, cost O(K) for K
classes, and are 0 when the model is certain and 1 when it is maximally unsure.

Reference: B. Settles, *Active Learning Literature Survey*, University of
Wisconsin–Madison CS TR 1648, 2009, section 3.1; D. Lewis and W. Gale, *A
sequential algorithm for training text classifiers*, SIGIR 1994.
"""

from __future__ import annotations

import math
import numbers
import random

import numpy as np

from streamal.core.errors import ParameterError
from streamal.core.strategies.base import Features, Proba, Strategy, normalise, strategies


def least_confidence(proba: Proba) -> float:
    """``1 − max_y p(y|x)``; at most ``1 − 1/K``, and 1 when the model knows nothing.

    >>> least_confidence({'a': 0.5, 'b': 0.5})
    0.5
    >>> round(least_confidence({'a': 0.9, 'b': 0.1}), 3)
    0.1
    >>> least_confidence({'a': 1.0})
    0.0
    >>> least_confidence({})
    1.0

    """
    ps = normalise(proba)
    if not ps:
        return 1.0
    return min(1.0, max(0.0, 1.0 - max(ps)))


def margin(proba: Proba) -> float:
    """``1 − (p₁ − p₂)`` with p₁ ≥ p₂ the two largest probabilities.

    >>> margin({'a': 0.5, 'b': 0.5})
    1.0
    >>> round(margin({'a': 0.7, 'b': 0.2, 'c': 0.1}), 3)
    0.5
    >>> margin({'a': 1.0})
    0.0

    """
    # One pass, no allocation: this runs on every instance.
    p1 = p2 = total = 0.0
    for p in proba.values():
        if not 0.0 < p < math.inf:
            continue
        total += p
        if p > p1:
            p1, p2 = p, p1
        elif p > p2:
            p2 = p
    if not total > 0.0 or total == math.inf:
        return 1.0
    return min(1.0, max(0.0, 1.0 - (p1 - p2) / total))


def entropy(proba: Proba) -> float:
    """``−Σ p log p / log K`` over the K classes the model knows.

    >>> entropy({'a': 0.25, 'b': 0.25, 'c': 0.25, 'd': 0.25})
    1.0
    >>> round(entropy({'a': 0.9, 'b': 0.1}), 3)
    0.469
    >>> entropy({'a': 1.0, 'b': 0.0})
    0.0

    """
    ps = normalise(proba)
    if not ps:
        return 1.0
    k = len(ps)
    if k == 1:
        return 0.0
    h = -sum(p * math.log(p) for p in ps if p > 0.0)
    return min(1.0, max(0.0, h / math.log(k)))


# Vectorised twins over a matrix of normalised probabilities (a row per
# instance): what a poll is scored with; the scalar functions above are their
# reference (streamal.core.checks.check_score_many checks them equal).


def least_confidence_many(p: np.ndarray) -> np.ndarray:
    """:func:`least_confidence` of every row."""
    return np.clip(1.0 - p.max(axis=1), 0.0, 1.0)


def margin_many(p: np.ndarray) -> np.ndarray:
    """:func:`margin` of every row."""
    if p.shape[1] == 1:
        return np.zeros(len(p))
    top = -np.partition(-p, 1, axis=1)[:, :2]
    return np.clip(1.0 - (top[:, 0] - top[:, 1]), 0.0, 1.0)


def entropy_many(p: np.ndarray) -> np.ndarray:
    """:func:`entropy` of every row."""
    k = p.shape[1]
    if k == 1:
        return np.zeros(len(p))
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0.0, p * np.log(p), 0.0).sum(axis=1)
    return np.clip(h / np.log(k), 0.0, 1.0)


@strategies.register("least_confidence")
class LeastConfidence(Strategy):
    """Least-confidence uncertainty sampling: ``1 − max_y p(y|x)``.

    Cost: O(K) per instance. Lewis & Gale (1994).

    >>> round(LeastConfidence().score_one({}, {'spam': 0.8, 'ham': 0.2}), 3)
    0.2

    """

    def score_one(self, x: Features, proba: Proba) -> float:
        return least_confidence(proba)

    def score_many(self, p: np.ndarray) -> np.ndarray:
        return least_confidence_many(p)


@strategies.register("margin")
class Margin(Strategy):
    """Margin sampling: ``1 − (p₁ − p₂)``.

    Looks only at the two classes the model hesitates between, which makes it
    robust to many irrelevant classes. Cost: O(K). Scheffer, Decomain & Wrobel,
    *Active hidden Markov models for information extraction*, IDA 2001.

    >>> round(Margin().score_one({}, {'spam': 0.8, 'ham': 0.2}), 3)
    0.4

    """

    def score_one(self, x: Features, proba: Proba) -> float:
        return margin(proba)

    def score_many(self, p: np.ndarray) -> np.ndarray:
        return margin_many(p)


@strategies.register("entropy")
class Entropy(Strategy):
    """Entropy sampling: ``−Σ p log p / log K``.

    Cost: O(K). Shannon entropy as an uncertainty measure: Settles (2009), 3.1.

    >>> round(Entropy().score_one({}, {'spam': 0.8, 'ham': 0.2}), 3)
    0.722

    """

    def score_one(self, x: Features, proba: Proba) -> float:
        return entropy(proba)

    def score_many(self, p: np.ndarray) -> np.ndarray:
        return entropy_many(p)


@strategies.register("random")
class Random(Strategy):
    """A uniform draw, ``score = u`` with ``u ~ U[0, 1)``: the baseline every benchmark compares with.

    The score ignores the instance and the model, so under any budget manager
    this asks a random ``budget`` share of instances: the *Random* strategy of
    Žliobaitė et al., *Active learning with drifting streaming data*, IEEE
    TNNLS 2014. Cost: O(1).

    >>> s = Random(seed=1)
    >>> [round(s.score_one({}, {}), 3) for _ in range(3)]
    [0.134, 0.847, 0.764]

    """

    tasks = ("classification", "regression")

    def __init__(self, seed: int = 0) -> None:
        if not isinstance(seed, numbers.Integral):
            raise ParameterError("seed", f"must be an integer, got {seed!r}")
        self.seed = seed
        self._rng = random.Random(seed)

    def score_one(self, x: Features, proba: Proba) -> float:
        return self._rng.random()
