"""Split: a share of the budget goes to random picks."""

from __future__ import annotations

from streamal.core.budget.base import BudgetManager, budget_managers
from streamal.core.errors import ParameterError


@budget_managers.register("split")
class Split(BudgetManager):
    """A ``random_share`` of instances is decided at random, the rest by ``inner``.

    Each instance goes, with probability ρ = ``random_share``, to the random
    arm, which asks with probability b (the effective budget); otherwise the
    inner manager decides at the same budget, so the total rate is
    ``ρ·b + (1 − ρ)·b = b``. The random labels are an unbiased sample of the
    stream: an honest accuracy estimate and a detector of drift in regions
    where the model is confident and would never ask (Žliobaitė et al.,
    *Active learning with drifting streaming data*, IEEE TNNLS 2014).
    Cost: that of the inner manager.

    >>> import random
    >>> rng = random.Random(0)
    >>> split = Split(budget=0.05)
    >>> sum(split.ask(rng.random() ** 3) for _ in range(10_000))
    501

    """

    def __init__(
        self,
        budget: float = 0.05,
        random_share: float = 0.2,
        inner: str | BudgetManager = "variable_uncertainty",
        *,
        window: int = 1000,
        tolerance: float = 0.5,
        seed: int = 0,
        eager_start: bool = True,
    ) -> None:
        if not 0.0 <= random_share <= 1.0:
            raise ParameterError("random_share", f"must be in [0, 1], got {random_share!r}")
        super().__init__(budget, window=window, tolerance=tolerance, seed=seed, eager_start=eager_start)
        self.random_share = random_share
        self.inner = inner
        if isinstance(inner, str):
            try:
                factory = budget_managers.factory(inner)
            except ValueError as exc:
                raise ParameterError("inner", str(exc)) from None
            self._inner = factory(budget=budget, window=window, tolerance=tolerance, seed=seed + 1, eager_start=eager_start)
        else:
            self._inner = inner
        self._arm = self._rng.random()
        self._coin = self._rng.random()

    @property
    def threshold(self) -> float:
        return self._inner.threshold

    def set_budget(self, budget: float) -> None:
        super().set_budget(budget)
        self._inner.set_budget(budget)

    def end_eager_start(self) -> None:
        super().end_eager_start()
        self._inner.end_eager_start()

    def wants(self, score: float) -> bool:
        if self._arm < self.random_share:
            return self._coin < self.guard.effective_budget
        return self._inner.decide(score)

    def _learn(self, score: float, wanted: bool, asked: bool) -> None:
        if self._arm >= self.random_share:  # the inner guard records what was asked, not what was wanted
            self._inner.update(score, asked)
        self._arm = self._rng.random()
        self._coin = self._rng.random()
