"""Budget managers: adherence on adversarial score shapes, the guard, manager specifics.

Decide changes nothing, decide + update = ask, the budget held on random,
constant, rising and falling scores, set_budget, seed determinism, clone and
pickle, parameter checks and docstrings of every registered manager: the
conformance suite, tests/core/test_checks.py.
"""

from __future__ import annotations

import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamal import budget_managers
from streamal.core.budget import BudgetGuard
from streamal.core.budget.base import JITTER
from streamal.core.budget.quantile import HISTORY_MAX, Quantile

N = 20_000
ADAPTIVE = [n for n in budget_managers.names() if budget_managers.factory(n).follows_budget]


def shaped(shape: str, seed: int, level: float, spread: float) -> list[float]:
    """A 20,000-score sequence of one adversarial shape."""
    rng = random.Random(seed)
    noise = lambda: rng.random() * spread  # noqa: E731
    if shape == "constant":
        return [level] * N
    if shape == "increasing":
        return [min(1.0, i / N + noise() * 0.01) for i in range(N)]
    if shape == "decreasing":
        return [max(0.0, 1.0 - i / N - noise() * 0.01) for i in range(N)]
    if shape == "bimodal":
        return [min(1.0, (0.05 if rng.random() < 0.7 else 0.9) + noise() * 0.1) for _ in range(N)]
    if shape == "shift":  # a sudden shift, down or up, half way
        a, b = (level, level / 10) if seed % 2 else (level / 10, level)
        return [min(1.0, (a if i < N // 2 else b) + noise() * 0.05) for i in range(N)]
    raise AssertionError(shape)


def run(manager, scores: list[float]) -> list[bool]:
    return [manager.ask(s) for s in scores]


@pytest.mark.parametrize("name", ADAPTIVE)
@settings(max_examples=30, deadline=None)
@given(
    shape=st.sampled_from(["constant", "increasing", "decreasing", "bimodal", "shift"]),
    budget=st.sampled_from([0.01, 0.02, 0.05, 0.1, 0.2, 0.5]),
    level=st.floats(0.0, 1.0),
    spread=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_rate_within_5_percent_and_no_window_above_1_5x(name, shape, budget, level, spread, seed):
    manager = budget_managers.create(name, budget=budget, seed=seed)
    asked = run(manager, shaped(shape, seed, level, spread))
    rate = sum(asked) / N
    assert abs(rate / budget - 1.0) <= 0.05, f"{name} {shape}: rate {rate:.4f} for budget {budget}"
    worst = max(sum(asked[i : i + 1000]) for i in range(0, N - 999, 100))
    assert worst <= 1.5 * budget * 1000 + 1e-9


@pytest.mark.parametrize("name", ADAPTIVE)
def test_asks_the_informative_instances(name):
    """On i.i.d. scores an adaptive manager's picks score far above average."""
    rng = random.Random(0)
    scores = [rng.random() for _ in range(N)]
    asked = run(budget_managers.create(name, budget=0.05, seed=0), scores)
    picked = [s for s, a in zip(scores, asked) if a]
    floor = 0.5 if name == "split" else 0.85  # split spends a share at random
    assert sum(picked) / len(picked) > floor


def test_fixed_asks_above_its_threshold_within_the_guard():
    manager = budget_managers.create("fixed", budget=0.1, threshold=0.5)
    asked = run(manager, [0.9] * 10_000)
    assert sum(asked) <= 0.1 * 10_000 + 5  # the guard, not the threshold, stops it
    assert not any(run(budget_managers.create("fixed", budget=0.1, threshold=0.5), [0.4] * 100))


def test_guard_window_rule():
    guard = BudgetGuard(budget=0.01, window=1000, tolerance=0.5)
    asked = []
    for _ in range(5000):
        q = guard.allows()
        guard.update(q)
        asked.append(q)
    assert max(sum(asked[i : i + 1000]) for i in range(4001)) <= 15
    assert sum(asked) <= 0.01 * 5000 + 1


def test_the_first_labels_come_at_once_and_are_paid_back() -> None:
    """The cold-start advance: a few labels early, the same count over the stream."""
    guard = BudgetGuard(budget=0.01, window=1000, tolerance=0.5)
    asked = []
    for _ in range(N):
        query = guard.allows()  # a manager that always wants a label
        guard.update(query)
        asked.append(query)
    assert asked[:6] == [True] * 6  # without the advance: one label per 100 instances
    assert sum(asked[:300]) < 8  # then it asks less until the advance is paid back
    assert abs(sum(asked) - 0.01 * N) <= 0.05 * 0.01 * N
    later = BudgetGuard(budget=0.01, window=1000, tolerance=0.5)
    for _ in range(1000):  # past the first window there is no advance
        later.update(False)
    later._balance = 0.0
    assert later.allows()
    later.update(True)
    assert not later.allows()  # the usual slack of one label


@pytest.mark.parametrize("name", ["variable_uncertainty", "quantile"])
def test_the_advance_is_spent_when_scores_fall_after_the_first_labels(name: str) -> None:
    """A threshold that lags behind falling scores does not hold the cold-start advance back."""
    manager = budget_managers.create(name, budget=0.01)
    rng = random.Random(0)
    scores = [1.0, 1.0] + [rng.uniform(0.2, 0.4) for _ in range(4998)]  # the model learned from the first two
    asked = [manager.ask(s) for s in scores]
    assert sum(asked[:50]) >= 5  # the advance (5 labels at 1 %), not one label per 100 instances
    assert sum(asked) == pytest.approx(0.01 * len(scores), rel=0.05)  # and paid back


def test_a_model_that_is_not_cold_does_not_seek_the_advance() -> None:
    """end_eager_start (a restored or rebuilt model): the advance stays allowed, no longer sought."""
    for manager in (budget_managers.create("quantile", budget=0.01),
                    budget_managers.create("split", budget=0.01, inner="quantile")):
        assert manager.guard.effective_budget == 1.0  # cold: the advance is a deficit to spend
        manager.end_eager_start()
        assert not manager.eager_start and manager.guard.effective_budget == pytest.approx(0.01)
    assert not manager._inner.eager_start  # split passes it on
    rng = random.Random(0)
    scores = [1.0, 1.0] + [rng.uniform(0.2, 0.4) for _ in range(998)]
    warm = budget_managers.create("quantile", budget=0.01)
    warm.end_eager_start()
    asked = [warm.ask(s) for s in scores]
    assert sum(asked[:50]) <= 2 and sum(asked) <= 0.01 * 1000 + 1


def test_split_tells_its_inner_manager_what_was_asked():
    """When the guard refuses what the inner rule wanted, the inner guard records no query."""
    split = budget_managers.create("split", budget=0.05, random_share=0.0)  # every instance to the inner arm
    for _ in range(2000):
        split.ask(1.0)  # always wanted: the guard keeps the rate at the budget
    assert split.guard.asked == split._inner.guard.asked
    assert split._inner.guard.rate == pytest.approx(0.05, rel=0.1)


def test_quantile_history_follows_a_new_budget():
    q = budget_managers.create("quantile", budget=0.01)  # history max(100, 20 / 0.01) = 2000
    rng = random.Random(0)
    run(q, [rng.random() for _ in range(3000)])
    q.set_budget(0.1)  # 20 / 0.1 = 200 scores are enough now: the older ones are dropped
    assert q.history_size == 200 and len(q._sorted) == len(q._recent) == 200
    fixed = budget_managers.create("quantile", budget=0.01, history=500)
    fixed.set_budget(0.1)
    assert fixed.history_size == 500  # a history given as a parameter stays as given
    assert budget_managers.create("quantile", budget=1e-6).history_size == HISTORY_MAX  # not 20 / budget = 20 million scores


def quantile_by_hand(scores: list[float], history: int, budgets: dict[int, float]) -> list[bool]:
    """The rank rule as its docstring writes it, the plain way: count the recent scores above this one."""
    guard = BudgetGuard(budgets[0])
    rng = random.Random(0)  # the jitter Quantile(seed=0) draws
    jitter = rng.random() * JITTER
    recent: deque[float] = deque()
    asked = []
    for i, score in enumerate(scores):
        if i and i in budgets:
            guard.set_budget(budgets[i])
        s = score + jitter
        above = sum(r > s for r in recent)
        query = above <= guard.effective_budget * len(recent) and guard.allows()
        recent.append(s)
        if len(recent) > history:
            recent.popleft()
        guard.update(query)
        asked.append(query)
        jitter = rng.random() * JITTER
    return asked


def test_quantile_asks_what_the_plain_rank_rule_asks() -> None:
    rng = random.Random(1)
    scores = [round(rng.random() ** 3, 2) for _ in range(4000)]  # rounded: ties, broken by the jitter
    budgets = {0: 0.05, 2500: 0.1}
    q = Quantile(budget=0.05, history=300, seed=0)
    asked = []
    for i, score in enumerate(scores):
        if i and i in budgets:
            q.set_budget(budgets[i])
        asked.append(q.ask(score))
    assert asked == quantile_by_hand(scores, 300, budgets)
    assert 0.04 < sum(asked[:2500]) / 2500 < 0.06 and 0.09 < sum(asked[2500:]) / 1500 < 0.11


def test_a_budget_set_again_every_step_forgives_no_debt() -> None:
    """Annotator capacity sets the budget every step: the cold start's advance must still be paid back."""
    steady, nudged = BudgetGuard(budget=0.01), BudgetGuard(budget=0.01)
    for i in range(3000):
        steady.ask()
        nudged.set_budget(0.01 * (1 + 1e-6 * (i % 2)))  # what Capacity does: tiny moves
        nudged.ask()
    assert nudged.asked <= steady.asked + 1
    assert nudged.asked / 3000 == pytest.approx(0.01, rel=0.05)
