"""Every registered strategy and budget manager through the conformance suite, and the suite catching broken ones."""

from __future__ import annotations

import ast
import functools
import random
from pathlib import Path

import pytest

from streamal import budget_managers, strategies
from streamal.core import checks
from streamal.core.budget import Fixed, VariableUncertainty
from streamal.core.strategies import Committee, DensityWeighted, Margin, Strategy

#: Configurations beyond the defaults, for code paths the defaults do not reach.
EXTRA_STRATEGIES = {
    "committee(disagreement=vote_entropy)": functools.partial(Committee, disagreement="vote_entropy"),
    "density_weighted(base=variance_reduction)": functools.partial(DensityWeighted, base="variance_reduction"),
}
EXTRA_MANAGERS = {
    "variable_uncertainty(randomize=1.0)": functools.partial(VariableUncertainty, randomize=1.0),
}


def _cases(components, yield_checks):
    return [
        pytest.param(check, id=f"{name}-{check_name}")
        for name, component in components.items()
        for check_name, check in yield_checks(component)
    ]


@pytest.mark.parametrize(
    "check",
    _cases({**{n: strategies.factory(n) for n in strategies.names()}, **EXTRA_STRATEGIES},
           checks.yield_strategy_checks),
)
def test_strategy(check):
    check()


@pytest.mark.parametrize(
    "check",
    _cases(
        {**{n: budget_managers.factory(n) for n in budget_managers.names()}, **EXTRA_MANAGERS},
        checks.yield_budget_manager_checks,
    ),
)
def test_budget_manager(check):
    check()


def test_instances_are_checked_as_rebuilt_from_their_parameters():
    checks.check_strategy(Margin())
    checks.check_budget_manager(Fixed(budget=0.1, threshold=0.3))


def test_the_suite_imports_neither_pytest_nor_hypothesis_nor_the_service():
    """What checks.py imports itself; what the core imports is test_learner's
    test_core_never_imports_kafka_pydantic_or_prometheus."""
    tree = ast.parse(Path(checks.__file__).read_text(encoding="utf-8"))
    imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    roots = {name.split(".")[0] for name in imported}
    assert not roots & {"pytest", "hypothesis", "kafka", "pydantic", "prometheus_client"}, roots
    assert all(name.startswith("streamal.core") for name in imported if name.startswith("streamal")), imported


# -- broken components: the suite must fail on each ------------------------------
# (at module level: the suite pickles components)


class OutOfRange(Strategy):
    """Scores 2.0, outside [0, 1]."""

    def score_one(self, x, proba):
        return 2.0


class Moody(Strategy):
    """Draws from the global, unseeded generator: no two runs alike."""

    tasks = ("classification", "regression")

    def score_one(self, x, proba):
        return random.random()


class DisagreeingTwin(Margin):
    """A vectorised ``score_many`` that is not ``score_one``'s rule."""

    def score_one(self, x, proba):
        return super().score_one(x, proba)

    def score_many(self, p):
        return super().score_many(p) ** 2


class Lax(Strategy):
    """``width · margin``; takes any width."""

    def __init__(self, width: float = 1.0) -> None:
        self.width = width

    def score_one(self, x, proba):
        return min(1.0, self.width * Margin().score_one(x, proba))


class Vague(Strategy):
    """Refuses a bad width without saying which parameter."""

    def __init__(self, width: float = 1.0) -> None:
        if not 0.0 <= width < float("inf"):
            raise ValueError("bad value")
        self.width = width

    def score_one(self, x, proba):
        return 0.5


class Forgetful(Strategy):
    """Keeps its parameter under another name, so it cannot be rebuilt from it."""

    def __init__(self, width: float = 1.0) -> None:
        self._width = width

    def score_one(self, x, proba):
        return 0.5


class Meddling(VariableUncertainty):
    """Counts an instance in ``decide``: deciding changes the state."""

    def decide(self, score):
        self._n += 1
        return super().decide(score)


class Greedy(Fixed):
    """Asks for everything, past its guard."""

    def decide(self, score):
        return True

    def ask(self, score):
        self.update(score, True)
        return True


def test_the_suite_fails_a_score_out_of_range():
    with pytest.raises(AssertionError, match=r"OutOfRange fails score_range: .*returned 2.0"):
        checks.check_strategy(OutOfRange)


def test_the_suite_fails_a_non_deterministic_strategy():
    with pytest.raises(AssertionError, match="Moody fails seed_determinism: .*the same seed gave other decisions"):
        checks.check_strategy(Moody)


def test_the_suite_fails_a_batch_rule_that_is_not_the_one_by_one_rule():
    with pytest.raises(AssertionError, match="DisagreeingTwin fails score_many"):
        checks.check_strategy(DisagreeingTwin)
    with pytest.raises(AssertionError, match="of a chunk of .* on phishing differs from ask"):
        checks.check_strategy_ask_many(DisagreeingTwin)


def test_the_suite_fails_parameters_accepted_or_refused_without_a_name():
    with pytest.raises(AssertionError, match=r"Lax\(width=nan\) was accepted: refuse it at construction"):
        checks.check_invalid_parameters(Lax)
    with pytest.raises(AssertionError, match=r"Vague\(width=nan\) was refused, but the message does not start"):
        checks.check_invalid_parameters(Vague)
    checks.check_invalid_parameters(Lax, domains={"width": None})  # the user's own domain: none to check


def test_the_suite_fails_a_component_that_cannot_be_rebuilt_from_its_parameters():
    with pytest.raises(AssertionError, match="parameter 'width' is not stored as an attribute of the same name"):
        checks.check_strategy_clone_and_pickle(Forgetful())


def test_the_suite_fails_an_undocumented_component():
    with pytest.raises(AssertionError, match="lacks a formula .*; a reference .*; its cost .*; a doctest"):
        checks.check_docstring(OutOfRange)


def test_the_suite_fails_a_manager_whose_decide_changes_its_state():
    with pytest.raises(AssertionError, match=r"Meddling fails decide_changes_nothing: .*changed \._n"):
        checks.check_budget_manager(Meddling)


def test_the_suite_fails_a_manager_that_overspends():
    with pytest.raises(AssertionError, match="Greedy fails budget_held: .*more than 5 % above the budget"):
        checks.check_budget_manager(Greedy)
