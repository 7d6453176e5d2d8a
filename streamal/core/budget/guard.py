"""The budget guard every budget manager runs under."""

from __future__ import annotations

import math
import numbers

from streamal.core.errors import ParameterError


class BudgetGuard:
    """Holds the realised label rate to the budget, whatever the scores do.

    Two rules, both in labels:

    - **window**: among the last ``window`` decisions at most
      ``max(1, ⌊(1 + tolerance) · budget · window⌋)`` are queries, so no
      stretch of the stream is flooded (published managers overshoot by up to
      45 % at a 1 % budget);
    - **balance**: ``balance = Σ (budget − asked)`` over the stream, with the
      credit (unspent labels carried forward) capped at
      ``tolerance · budget · window``; a query is allowed only while
      ``balance + budget − 1 ≥ −slack`` with ``slack = max(1, 0.05 · budget ·
      window)``, so the rate over any stream of ``window`` instances or more
      ends at most 5 % above the budget. During the first window the
      allowed debt is larger by an *advance* of ``credit · (1 − n / window)``
      labels (the credit limit, shrinking to 0 by the end of the window):
      labels are worth most while the model knows nothing, so the first ones
      come at once instead of one per ``1 / budget`` instances, and are paid
      back by asking less afterwards (at a 1 % budget, 5 labels early).

    The balance (plus, with ``eager_start``, the advance not yet spent)
    feeds the managers' **effective budget**: with
    ``u = min(1, balance / react)`` for a deficit (``react = max(1, 0.2 ·
    budget · window)`` labels) and ``u = max(−1, balance / slack)`` for a
    surplus,

        b_eff = budget^(1 − u)          for a deficit (u ≥ 0), rising to 1;
        b_eff = budget · (1 + tolerance · u)   for a surplus (u < 0).

    A deficit (scores that keep falling below the threshold, as they do while
    a model learns, or after a shift) thus lowers every manager's bar until
    the deficit is paid back, at no more than the window rule allows; a
    surplus raises it. With ``eager_start`` (the default) the unspent advance
    counts as a deficit, so it is spent at once even by a threshold that lags
    behind scores falling after the first labels (without that, variable
    uncertainty took 300 instances to ask a third label at a 1 % budget), and
    the debt it leaves is a surplus that raises the bar until the advance has
    shrunk. Without it the advance is only allowed, not sought: what a time
    series needs, whose labels are worth most spread over time.

    >>> guard = BudgetGuard(budget=0.1, window=100, tolerance=0.5)
    >>> asked = 0
    >>> for _ in range(1_000):
    ...     asked += guard.ask()  # a manager that always wants a label
    >>> asked
    100

    """

    def __init__(self, budget: float, window: int = 1000, tolerance: float = 0.5, *, eager_start: bool = True) -> None:
        if not 0.0 < budget <= 1.0:
            raise ParameterError("budget", f"must be in (0, 1], got {budget!r}")
        if not (isinstance(window, numbers.Integral) and window >= 1):
            raise ParameterError("window", f"must be an integer ≥ 1, got {window!r}")
        if not 0.0 <= tolerance < math.inf:
            raise ParameterError("tolerance", f"must be a finite number ≥ 0, got {tolerance!r}")
        self.window = window
        self.tolerance = tolerance
        self.eager_start = eager_start
        self._set_limits(budget)
        self._ring = bytearray(window)
        self._pos = 0
        self._in_window = 0
        self._balance = 0.0
        self.n = 0
        self.asked = 0
        self._effective = self._effective_budget()

    def _set_limits(self, budget: float) -> None:
        self.budget = budget
        self._cap = max(1, math.floor((1.0 + self.tolerance) * budget * self.window + 1e-9))
        self._credit = self.tolerance * budget * self.window
        self._slack = max(1.0, 0.05 * budget * self.window)
        self._react = max(1.0, 0.2 * budget * self.window)

    def set_budget(self, budget: float) -> None:
        """Aim at a new budget from now on (annotator capacity changes it while serving).

        The balance is kept, clipped to the new credit and to the debt the
        new budget allows (its slack, plus the cold-start advance during the
        first window), so a change turns an old deficit into no flood, and an
        unchanged or nearly unchanged budget (annotator capacity sets it every
        step) forgives nothing.
        """
        if not 0.0 < budget <= 1.0:
            raise ParameterError("budget", f"must be in (0, 1], got {budget!r}")
        self._set_limits(budget)
        self._balance = min(max(self._balance, -self._debt_limit()), self._credit)
        self._effective = self._effective_budget()

    def _advance_left(self) -> float:
        """The cold-start advance now: the credit limit, shrinking to 0 over the first window (inline in the hot paths)."""
        return self._credit * (1.0 - self.n / self.window) if self.n < self.window else 0.0

    def _debt_limit(self) -> float:
        """The labels the balance may owe now (what :meth:`allows` checks, inline there)."""
        return self._slack + self._advance_left()

    @property
    def advance(self) -> float:
        """The labels a cold start may take ahead of the budget (paid back within the first window)."""
        return self._credit

    def end_eager_start(self) -> None:
        """Stop seeking the advance: the model is not cold (restored, or rebuilt from a log); it stays allowed.

        A replica restarted from a checkpoint rolls its guard back to it, and
        one rebuilt from the training topic starts a guard afresh: seeking the
        advance again at every restart would overspend a crash-looping service.
        """
        self.eager_start = False
        self._effective = self._effective_budget()

    def grant(self, labels: float) -> None:
        """Credit ``labels`` extra labels to spend soon (after a drift detection).

        The credit raises the effective budget like a deficit does and is
        spent within the window rule; it is capped by the credit limit.
        """
        self._balance = min(self._balance + labels, self._credit)
        self._effective = self._effective_budget()

    def allows(self) -> bool:
        """Whether one more query now keeps both rules."""
        in_window = self._in_window - self._ring[self._pos]  # the oldest falls out
        debt = self._slack
        if self.n < self.window:  # _advance_left, inline
            debt += self._credit * (1.0 - self.n / self.window)
        return (
            in_window + 1 <= self._cap
            and self._balance + self.budget - 1.0 >= -debt
        )

    def ask(self) -> bool:
        """Ask whenever both rules allow (cold start, where every label is wanted); records the decision."""
        query = self.allows()
        self.update(query)
        return query

    def update(self, asked: bool) -> None:
        """Record the final decision for one instance."""
        # Conditional expressions rather than min/max calls: this runs once per instance.
        a = 1 if asked else 0
        ring, pos = self._ring, self._pos
        self._in_window += a - ring[pos]
        ring[pos] = a
        pos += 1
        self._pos = 0 if pos == self.window else pos
        balance = self._balance + self.budget - a
        credit = self._credit
        self._balance = balance = credit if balance > credit else balance
        self.n += 1
        self.asked += a
        if self.eager_start and self.n < self.window:  # _advance_left, inline: credit to spend now
            balance += credit * (1.0 - self.n / self.window)
        if balance >= 0.0 and credit > 0.0:  # _effective_budget's common case, inline
            u = balance / self._react
            self._effective = self.budget ** (1.0 - u) if u < 1.0 else 1.0
        else:
            self._effective = self._effective_budget()

    @property
    def effective_budget(self) -> float:
        """The budget the managers aim at now (see the class docstring)."""
        return self._effective

    def _effective_budget(self) -> float:
        balance = self._balance + self._advance_left() if self.eager_start else self._balance
        if self._credit <= 0.0:
            return self.budget
        if balance >= 0.0:
            u = balance / self._react
            return self.budget ** (1.0 - u) if u < 1.0 else 1.0
        u = balance / self._slack
        effective = self.budget * (1.0 + self.tolerance * (u if u > -1.0 else -1.0))
        return effective if effective > 0.0 else 0.0

    @property
    def rate(self) -> float:
        """Realised label rate so far."""
        return self.asked / self.n if self.n else 0.0
