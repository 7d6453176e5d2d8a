"""What every budget manager is: an adaptive threshold that spends a budget."""

from __future__ import annotations

import numbers
import random
from typing import ClassVar

from streamal.core.budget.guard import BudgetGuard
from streamal.core.errors import ParameterError
from streamal.core.registry import Registry

#: Scores are perturbed by at most this much, so ties (a constant score, a
#: model whose probabilities collapse to 0/1) are broken at random instead of
#: starving or flooding the annotators.
JITTER = 1e-9


class BudgetManager:
    """Decides, from an informativeness score, whether to ask for a label.

    ``decide(score)`` is the decision and changes nothing; ``update(score,
    query)`` moves the state once the decision is final (in the service:
    after the label request is acknowledged). Every manager runs under a
    :class:`BudgetGuard` and reads its *effective budget*, which pays back a
    deficit and saves a surplus. Subclasses implement ``wants`` (their own
    rule, given the effective budget) and ``_learn`` (their threshold
    dynamics, fed with what the rule wanted, so a threshold rises when the
    guard had to refuse, and with what was finally asked).

    ``follows_budget``: whether the realised rate tracks the budget from
    below too (an adaptive threshold), not only never exceeds it (a fixed
    one); :mod:`streamal.core.checks` holds the manager to it.
    """

    name: ClassVar[str]
    #: Whether the rate tracks the budget from below as well as from above.
    follows_budget: ClassVar[bool] = True

    def __init__(
        self,
        budget: float = 0.05,
        *,
        window: int = 1000,
        tolerance: float = 0.5,
        seed: int = 0,
        eager_start: bool = True,
    ) -> None:
        if not isinstance(seed, numbers.Integral):
            raise ParameterError("seed", f"must be an integer, got {seed!r}")
        self.budget = budget
        self.window = window
        self.tolerance = tolerance
        self.seed = seed
        self.guard = BudgetGuard(budget, window, tolerance, eager_start=eager_start)
        self._rng = random.Random(seed)
        self._jitter = self._rng.random() * JITTER

    @property
    def threshold(self) -> float:
        """The score the next instance must beat (for reports and metrics)."""
        raise NotImplementedError

    def wants(self, score: float) -> bool:
        """The manager's own rule, before the guard; changes nothing."""
        raise NotImplementedError

    def _learn(self, score: float, wanted: bool, asked: bool) -> None:
        """Threshold dynamics after one decision: what the rule ``wanted``, what was ``asked``."""

    def decide(self, score: float) -> bool:
        """Whether to ask for this instance's label; changes nothing."""
        return self.wants(score) and self.guard.allows()

    def update(self, score: float, query: bool, wanted: bool | None = None) -> None:
        """Apply a final decision; ``wanted`` saves recomputing ``wants(score)``."""
        if wanted is None:
            wanted = self.wants(score)
        self._learn(score, wanted, query)
        self.guard.update(query)
        self._jitter = self._rng.random() * JITTER

    def ask(self, score: float) -> bool:
        """``decide`` then ``update`` in one call (what the learner does)."""
        wanted = self.wants(score)
        query = wanted and self.guard.allows()
        self._learn(score, wanted, query)
        self.guard.update(query)
        self._jitter = self._rng.random() * JITTER
        return query

    @property
    def eager_start(self) -> bool:
        """Whether the guard seeks its cold-start advance (see :class:`BudgetGuard`)."""
        return self.guard.eager_start

    def end_eager_start(self) -> None:
        """The model is not cold: the guard's advance stays allowed, no longer sought (:meth:`BudgetGuard.end_eager_start`)."""
        self.guard.end_eager_start()

    def set_budget(self, budget: float) -> None:
        """Aim at a new budget from now on (see :meth:`BudgetGuard.set_budget`)."""
        self.guard.set_budget(budget)
        self.budget = budget

    @property
    def rate(self) -> float:
        """Realised label rate so far."""
        return self.guard.rate

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_") and k != "guard")
        return f"{type(self).__name__}({params})"


budget_managers: Registry[BudgetManager] = Registry("budget manager")
