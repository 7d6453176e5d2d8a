"""A fixed threshold."""

from __future__ import annotations

from streamal.core.budget.base import BudgetManager, budget_managers
from streamal.core.errors import ParameterError


@budget_managers.register("fixed")
class Fixed(BudgetManager):
    """Ask when ``score ≥ θ``, a constant.

    The simplest rule and the one most stream active learners start from; the
    rate it spends depends entirely on the score distribution, so only the
    guard keeps it near the budget (it never spends *more* than the guard
    allows, but may spend much less: ``follows_budget = False`` tells the
    conformance suite so). The *fixed uncertainty* strategy of Žliobaitė et
    al., *Active learning with drifting streaming data*, IEEE TNNLS 2014.
    Cost: O(1) per instance.

    >>> fixed = Fixed(budget=0.1, threshold=0.5)
    >>> [fixed.ask(s) for s in [0.2, 0.7, 0.4, 0.9]]
    [False, True, False, True]

    """

    follows_budget = False

    def __init__(
        self,
        budget: float = 0.05,
        threshold: float = 0.5,
        *,
        window: int = 1000,
        tolerance: float = 0.5,
        seed: int = 0,
        eager_start: bool = True,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ParameterError("threshold", f"must be in [0, 1], got {threshold!r}")
        super().__init__(budget, window=window, tolerance=tolerance, seed=seed, eager_start=eager_start)
        self._threshold = threshold

    @property
    def threshold(self) -> float:
        return self._threshold

    def wants(self, score: float) -> bool:
        return score + self._jitter >= self._threshold
