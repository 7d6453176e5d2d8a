"""What every query strategy is: a score in [0, 1], higher = more worth a label."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from typing import Any, ClassVar

import numpy as np

from streamal.core.registry import Registry

Proba = Mapping[Hashable, float]
Features = Mapping[str, float]


class Strategy:
    """Base class of query strategies.

    A strategy turns what the model says about one (featurised) instance into
    an informativeness score in [0, 1], so one threshold scale fits all
    strategies. Scoring has no side effects; a strategy that keeps state does
    so through the two hooks below, which the learner calls in stream order:

    - ``observe_one(x)``: every instance, after it was scored (label-free
      state such as a density estimate or a reference sample);
    - ``learn_one(x, y)``: every labeled example (e.g. committee members).

    A strategy whose score depends only on the class probabilities may also
    define ``score_many(p)``: the scores of a matrix of normalised
    probabilities (a row per instance, a column per class), vectorised, equal
    to ``score_one`` row by row. The learner uses it for a whole poll only
    when it belongs to the class that defines the ``score_one`` in force (see
    :func:`batch_scorer`), so a subclass that changes ``score_one`` is never
    scored by its parent's vectorised rule.

    ``setup(model)`` is called once by the learner with its model, for
    strategies that need a copy of it (committees) or to query it (expected
    error reduction).
    """

    name: ClassVar[str]
    #: The tasks the strategy can score.
    tasks: ClassVar[tuple[str, ...]] = ("classification",)

    def setup(self, model: Any) -> None:
        """Called once by the learner with its (untrained) model."""

    def score_one(self, x: Features, proba: Proba) -> float:
        raise NotImplementedError

    def observe_one(self, x: Features) -> None:
        """Label-free state update; called for every instance after scoring."""

    def learn_one(self, x: Features, y: Any) -> None:
        """Called for every labeled example the learner learns."""

    def __repr__(self) -> str:
        params = ", ".join(
            f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_")
        )
        return f"{type(self).__name__}({params})"


strategies: Registry[Strategy] = Registry("strategy")


def _owner(cls: type, name: str) -> type | None:
    return next((c for c in cls.__mro__ if name in vars(c)), None)


def batch_scorer(strategy: Strategy) -> Callable[[np.ndarray], np.ndarray] | None:
    """``strategy.score_many`` when it scores what ``score_one`` scores, else ``None``.

    It does when the class defining ``score_many`` is the class defining
    ``score_one`` or a subclass of it (a faster twin of the same rule).

    >>> from streamal.core.strategies import Margin
    >>> batch_scorer(Margin()) is not None
    True
    >>> class Sharper(Margin):
    ...     def score_one(self, x, proba):
    ...         return super().score_one(x, proba) ** 2
    >>> batch_scorer(Sharper()) is None
    True

    """
    many = _owner(type(strategy), "score_many")
    one = _owner(type(strategy), "score_one")
    if many is None or one is None or not issubclass(many, one):
        return None
    return strategy.score_many  # type: ignore[attr-defined,no-any-return]


def normalise(proba: Proba) -> list[float]:
    """Probabilities as a list summing to 1; non-finite or negative entries count as 0.

    An empty or all-zero vector means the model knows nothing: it is returned
    empty, and every uncertainty score treats that as maximal uncertainty.

    >>> normalise({'a': 2.0, 'b': 2.0})
    [0.5, 0.5]
    >>> normalise({'a': float('nan'), 'b': 0.0})
    []

    """
    ps = [p if p > 0.0 and math.isfinite(p) else 0.0 for p in proba.values()]
    total = sum(ps)
    if not total > 0.0 or not math.isfinite(total):
        return []
    return [p / total for p in ps]


def clip01(value: float) -> float:
    """``value`` clipped to [0, 1]; NaN becomes 1 (unknown counts as informative)."""
    if value != value:  # NaN
        return 1.0
    return 0.0 if value < 0.0 else 1.0 if value > 1.0 else value
