"""Strategies' formulas and what they do in a learner.

Score range, seed determinism, clone and pickle, one-by-one = batch,
parameter checks and docstrings of every registered strategy: the
conformance suite, tests/core/test_checks.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from river import datasets

from streamal import ActiveLearner, strategies
from streamal.core.strategies.committee import class_variance, kl_to_consensus, vote_entropy
from streamal.core.strategies.uncertainty import entropy, least_confidence, margin

ALL = strategies.names()

probabilities = st.one_of(
    st.just({}),
    st.dictionaries(st.integers(0, 9), st.floats(0, 1, allow_nan=False), min_size=1, max_size=10),
    st.dictionaries(st.integers(0, 9), st.sampled_from([0.0, 1.0, 1e-300, 1 - 1e-16]), min_size=1, max_size=10),
)


@given(proba=probabilities)
def test_uncertainty_scores_order(proba):
    # least confidence ≤ margin for any vector: 1 − p1 ≤ 1 − p1 + p2.
    assert least_confidence(proba) <= margin(proba) + 1e-12
    for f in (least_confidence, margin, entropy):
        assert 0.0 <= f(proba) <= 1.0


def test_uncertainty_extremes():
    assert margin({"a": 1.0, "b": 0.0}) == 0.0 and entropy({"a": 1.0, "b": 0.0}) == 0.0
    assert margin({"a": 0.5, "b": 0.5}) == 1.0 and entropy({"a": 0.5, "b": 0.5}) == 1.0
    # A model that knows nothing (empty or degenerate vector) is maximally unsure.
    for f in (least_confidence, margin, entropy):
        assert f({}) == 1.0 and f({"a": float("nan")}) == 1.0


def test_committee_disagreement_measures():
    assert vote_entropy(["a", "b", "c"], n_classes=3) == pytest.approx(1.0)
    assert kl_to_consensus([{"a": 0.9, "b": 0.1}, {"a": 0.1, "b": 0.9}]) > kl_to_consensus(
        [{"a": 0.6, "b": 0.4}, {"a": 0.4, "b": 0.6}]
    )
    assert class_variance([{"a": 1.0}, {"b": 1.0}]) == pytest.approx(1.0)


@pytest.mark.parametrize("name", [n for n in ALL if "classification" in strategies.factory(n).tasks])
def test_beats_nothing_and_holds_budget_in_a_learner(name):
    """Every strategy, driven by the learner, learns something at the budget."""
    stream = list(datasets.Phishing())  # 1,250 instances: longer than the guard's window, whose advance is paid back
    al = ActiveLearner(strategy=name, budget=0.1, seed=0)
    correct = asked = 0
    for x, y in stream:
        d = al.ask(x)
        correct += d.prediction == y
        if d.query:
            asked += 1
            al.learn(x, y)
    # The guard's rule: at most the budget plus its slack of
    # max(1, 0.05 · budget · window) = 5 labels; warming up on a short stream
    # may leave the rate somewhat below the budget.
    assert 0.8 * 125 <= asked <= 125 + 5
    assert correct / len(stream) > 0.6  # the majority class is 56 % of phishing


@pytest.mark.parametrize("name", [n for n in ALL if "regression" in strategies.factory(n).tasks])
def test_regression_strategies_hold_the_budget_in_a_learner(name):
    al = ActiveLearner(model="linear_regression", strategy=name, budget=0.2, task="regression", seed=0)
    asked = 0
    for x, y in datasets.TrumpApproval():
        d = al.ask(x)
        if d.query:
            asked += 1
            al.learn(x, y)
    assert 0.18 <= asked / 1001 <= 0.22


def test_density_weighting_prefers_typical_instances():
    s = strategies.create("density_weighted", n_centroids=4)
    for i in range(500):
        s.observe_one({"a": float(i % 10), "b": 0.0})
    typical = s.score_one({"a": 5.0, "b": 0.0}, {0: 0.5, 1: 0.5})
    outlier = s.score_one({"a": 5.0, "b": 100.0}, {0: 0.5, 1: 0.5})
    assert outlier < typical / 100


def test_unknown_strategy_names_the_choices():
    with pytest.raises(ValueError, match="unknown strategy 'nope'; choose one of: committee"):
        ActiveLearner(strategy="nope")


def test_huge_finite_numbers_score_as_inf_not_an_overflow_error():
    """Squares of ~1e154 and more overflow: ``x * x`` gives inf (a score of 1), ``x ** 2`` raises."""
    from river import tree

    density = strategies.create("density_weighted")
    density.setup(tree.HoeffdingTreeClassifier())
    for v in range(20):
        density.observe_one({"a": float(v)})
    assert 0.0 <= density.score_one({"a": 1e200}, {"x": 0.5, "y": 0.5}) <= 1.0
    committee = strategies.create("variance_reduction", size=3)

    class Says:  # members whose predictions lie 1e160 apart
        def __init__(self, value):
            self.value = value

        def predict_one(self, x):
            return self.value

    committee.setup(tree.HoeffdingTreeRegressor())
    committee._members = [Says(-1e160), Says(0.0), Says(1e160)]
    assert 0.0 <= committee.score_one({"a": 1.0}, {}) <= 1.0


def test_gsx_scores_the_distance_to_the_nearest_labeled_point():
    gsx = strategies.create("gsx", memory=3)
    assert gsx.score_one({"a": 0.0}, {}) == 1.0  # nothing labeled yet
    for v in (0.0, 1.0, 2.0, 10.0):
        gsx.observe_one({"a": v})
        gsx.learn_one({"a": v}, 0.0)
    # The window keeps the last 3 labeled points: 0.0 fell out of it.
    assert gsx._window.n == 3
    assert gsx.score_one({"a": 1.0}, {}) == 0.0
    assert gsx.score_one({"a": 0.0}, {}) > 0.0
    assert gsx.score_one({"a": 5.0}, {}) > gsx.score_one({"a": 1.5}, {})
    with pytest.raises(ValueError, match="memory: must be an integer ≥ 1, got 0"):
        strategies.create("gsx", memory=0)


def test_igs_needs_both_input_and_output_distance():
    from river import linear_model

    model = linear_model.LinearRegression()
    igs = strategies.create("igs")
    igs.setup(model)
    for i in range(200):
        x = {"a": (i % 10) / 10}
        model.learn_one(x, 3.0 * x["a"])
        igs.observe_one(x)
        igs.learn_one(x, 3.0 * x["a"])
    # On a labeled point whose label the model predicts: near 0; far away in x (so in f(x) too): high.
    assert igs.score_one({"a": 0.5}, {}) < 0.01
    assert igs.score_one({"a": 5.0}, {}) > 0.5


def test_emcm_prefers_where_the_bootstrap_models_disagree_far_from_the_data():
    from river import linear_model

    model = linear_model.LinearRegression()
    emcm = strategies.create("emcm", size=4, seed=0)
    emcm.setup(model)
    for i in range(100):
        x = {"a": (i % 10) / 10}
        emcm.observe_one(x)
        model.learn_one(x, 2.0 * x["a"] + 1.0)
        emcm.learn_one(x, 2.0 * x["a"] + 1.0)
    near, far = emcm.score_one({"a": 0.5}, {}), emcm.score_one({"a": 20.0}, {})
    assert 0.0 <= near < far <= 1.0


@pytest.mark.parametrize("name", ["gsx", "igs"])
def test_greedy_sampling_is_bounded_on_a_long_stream(name):
    """The labeled window never grows past ``memory`` rows, whatever the stream's length."""
    al = ActiveLearner(model="linear_regression", strategy=strategies.create(name, memory=20), budget=0.5,
                       task="regression", seed=0)
    for x, y in datasets.TrumpApproval():
        if al.ask(x).query:
            al.learn(x, y)
    assert al._strategy._window.n == 20 and al._strategy._window._x.shape[0] == 20
