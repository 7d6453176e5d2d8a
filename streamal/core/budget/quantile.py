"""Ask for the top ``budget`` share of recent scores."""

from __future__ import annotations

import bisect
import copy
import math
import numbers
from collections import deque

from streamal.core.budget.base import BudgetManager, budget_managers
from streamal.core.errors import ParameterError

#: The default history's upper bound (budgets below 0.1 %, which
#: ``STREAMAL_LABELS_PER_HOUR`` can give): the rank rule coarsens there, and
#: the guard pays back what it misses.
HISTORY_MAX = 20_000


@budget_managers.register("quantile")
class Quantile(BudgetManager):
    """Ask when the score is in the top ``b`` quantile of the recent scores.

    With W the last ``history`` scores and b the guard's effective budget
    (the budget plus a balancing term ``balance / window`` that pays back a
    deficit or saves a surplus, see :class:`BudgetGuard`), ask when

        #{s ∈ W : s > score} ≤ b · |W|.

    Scale-free (only the order of scores matters), so it suits any strategy;
    the history adapts the threshold to drift within ``history`` instances,
    and the balancing term keeps the long-run rate at the budget when the
    scores trend up or down. The history defaults to ``max(100, 20 / budget)``
    instances, at most ``HISTORY_MAX`` (20,000): the quantile rests on 20
    scores above it (at budgets down to 0.1 %), and it follows scores that
    fall as the model learns.

    Cost: an O(log W) search plus an O(W) memmove per instance in a sorted
    ``list``, faster than a balanced structure at the usual W ≤ 2,000 and
    about 7 µs at the cap (``python -m benchmarks.budget_cost``). A copy
    (one per poll, ``decide_many``) copies the score lists flat.

    Related: the budgeted quantile rules of Kottke, Krempl and Spiliopoulou,
    *Probabilistic active learning in datastreams*, IDA 2015, and of
    scikit-activeml's ``BalancedIncrementalQuantileFilter``.

    >>> import random
    >>> rng = random.Random(0)
    >>> q = Quantile(budget=0.05)
    >>> asked = sum(q.ask(rng.random() ** 3) for _ in range(10_000))
    >>> asked, round(q.threshold, 2)
    (501, 0.85)

    """

    def __init__(
        self,
        budget: float = 0.05,
        history: int | None = None,
        *,
        window: int = 1000,
        tolerance: float = 0.5,
        seed: int = 0,
        eager_start: bool = True,
    ) -> None:
        super().__init__(budget, window=window, tolerance=tolerance, seed=seed, eager_start=eager_start)
        if history is not None and not (isinstance(history, numbers.Integral) and history >= 1):
            raise ParameterError("history", f"must be an integer ≥ 1 (or None), got {history!r}")
        self.history = history
        self._size = self._history_size(budget)
        self._recent: deque[float] = deque()
        self._sorted: list[float] = []

    def _history_size(self, budget: float) -> int:
        return self.history or min(HISTORY_MAX, max(100, math.ceil(20.0 / budget)))

    def set_budget(self, budget: float) -> None:
        """Aim at a new budget; the default history follows it (oldest scores dropped if it shrinks)."""
        super().set_budget(budget)
        self._size = self._history_size(budget)
        while len(self._recent) > self._size:
            self._forget_oldest()

    def __deepcopy__(self, memo: dict[int, object]) -> Quantile:
        """A copy whose score lists are copied flat (floats are immutable): ``decide_many`` makes one per poll."""
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        rest = {k: v for k, v in vars(self).items() if k not in ("_recent", "_sorted")}
        clone.__dict__.update(copy.deepcopy(rest, memo))
        clone._recent = self._recent.copy()
        clone._sorted = self._sorted.copy()
        return clone

    @property
    def history_size(self) -> int:
        """How many recent scores the next decision is ranked among, at most."""
        return self._size

    def _forget_oldest(self) -> None:
        old = self._recent.popleft()
        del self._sorted[bisect.bisect_left(self._sorted, old)]

    @property
    def threshold(self) -> float:
        if not self._sorted:
            return 0.0
        b = self.guard.effective_budget
        k = min(len(self._sorted) - 1, int(len(self._sorted) * (1.0 - b)))
        return self._sorted[k]

    def wants(self, score: float) -> bool:
        s = score + self._jitter
        ranked = self._sorted
        n = len(ranked)
        return n - bisect.bisect_right(ranked, s) <= self.guard.effective_budget * n

    def _learn(self, score: float, wanted: bool, asked: bool) -> None:
        s = score + self._jitter
        self._recent.append(s)
        bisect.insort(self._sorted, s)
        if len(self._recent) > self._size:
            self._forget_oldest()
