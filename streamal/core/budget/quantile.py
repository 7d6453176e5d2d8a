"""Ask for the top ``budget`` share of recent scores."""

from __future__ import annotations

import math
import numbers
from collections import deque

from sortedcontainers import SortedList

from streamal.core.budget.base import BudgetManager, budget_managers
from streamal.core.errors import ParameterError

#: The default history's upper bound (a budget of 0.02 % and below): 100,000
#: scores are 4 MB, and the rate still holds (the guard pays back what a rank
#: rule this coarse misses).
HISTORY_MAX = 100_000


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
    instances, at most ``HISTORY_MAX`` (100,000: 4 MB): the quantile rests on
    20 scores above it, and it follows scores that fall as the model learns.

    Cost: O(log W) per instance, the history held in a ``SortedList``
    (a plain sorted ``list`` pays an O(W) memmove per insertion, which a
    budget from ``STREAMAL_LABELS_PER_HOUR`` can make W = 10⁶ long;
    ``benchmarks/budget_cost.py`` measures both).

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
        self._sorted = SortedList()

    def _history_size(self, budget: float) -> int:
        return self.history or min(HISTORY_MAX, max(100, math.ceil(20.0 / budget)))

    def set_budget(self, budget: float) -> None:
        """Aim at a new budget; the default history follows it (oldest scores dropped if it shrinks)."""
        super().set_budget(budget)
        self._size = self._history_size(budget)
        while len(self._recent) > self._size:
            self._forget_oldest()

    @property
    def history_size(self) -> int:
        """How many recent scores the next decision is ranked among, at most."""
        return self._size

    def _forget_oldest(self) -> None:
        self._sorted.remove(self._recent.popleft())

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
        return n - ranked.bisect_right(s) <= self.guard.effective_budget * n

    def _learn(self, score: float, wanted: bool, asked: bool) -> None:
        s = score + self._jitter
        self._recent.append(s)
        self._sorted.add(s)
        if len(self._recent) > self._size:
            self._forget_oldest()
