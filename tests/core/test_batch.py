"""One poll scored at once gives the decisions of one-by-one asking (DESIGN 5.2).

That ``ask`` one by one = ``ask_many`` in chunks = ``decide_many`` +
``confirm``, for every registered strategy and budget manager, on a binary
and a multi-class stream: the conformance suite, tests/core/test_checks.py.
Here: the vectorised pieces themselves.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
from river import datasets
from river.datasets import synth

from streamal import ActiveLearner
from streamal.core import batch


def _led():
    """10 classes appearing one after another, with irrelevant features."""
    return list(itertools.islice(synth.LED(seed=1, irrelevant_features=True), 3000))


def test_vectorised_probabilities_match_river():
    learner = ActiveLearner(seed=0)
    data = list(datasets.ImageSegments())
    for x, y in data[:500]:
        learner.learn(x, y)
    zs = [learner._features.transform_one(x) for x, _ in data[500:900]]
    classes, p = batch.ovr_logistic_proba(learner._model, *batch.as_matrix(zs))
    for z, row in zip(zs, p):
        river = learner._model.predict_proba_one(z)
        assert max(abs(river[c] - v) for c, v in zip(classes, row)) < 1e-12


def test_other_models_fall_back_to_one_by_one():
    assert batch.ovr_logistic_proba(ActiveLearner(model="hoeffding_tree")._model, ["a"], np.ones((1, 1))) is None


def test_direct_learning_gives_rivers_weights_to_the_bit():
    from streamal.core.features import Featurizer
    from streamal.core.models import build_model

    data = _led()
    featurizer = Featurizer()
    examples = [(featurizer.learn_transform(x), y) for x, y in data[:2000]]
    river_way, direct = build_model("logistic_regression", "classification")[0], None
    direct = copy.deepcopy(river_way)
    assert batch.has_sgd_logistic_learner(direct)
    for z, y in examples:  # classes appear one after another: new binary classifiers on the way
        river_way.learn_one(z, y)
        batch.ovr_logistic_learn_one(direct, z, y)
    assert list(direct.classifiers) == list(river_way.classifiers)
    for c, clf in river_way.classifiers.items():
        assert direct.classifiers[c]._weights.to_dict() == clf._weights.to_dict()
        assert direct.classifiers[c].intercept == clf.intercept
        assert direct.classifiers[c].optimizer.n_iterations == clf.optimizer.n_iterations


def test_other_optimizers_and_penalties_learn_the_river_way():
    from river import linear_model, multiclass, optim

    assert not batch.has_sgd_logistic_learner(
        multiclass.OneVsRestClassifier(linear_model.LogisticRegression(optimizer=optim.Adam()))
    )
    assert not batch.has_sgd_logistic_learner(multiclass.OneVsRestClassifier(linear_model.LogisticRegression(l2=0.1)))


def test_a_subclass_with_its_own_score_is_scored_by_it_in_batches_too():
    from streamal.core.strategies import Margin

    class SquaredMargin(Margin):  # no score_many of its own: the parent's must not be used
        def score_one(self, x, proba):
            return super().score_one(x, proba) ** 2

    data = list(datasets.Phishing())
    one = ActiveLearner(strategy=SquaredMargin(), budget=0.1, seed=2)
    many = copy.deepcopy(one)
    for x, y in data[:100]:
        one.learn(x, y)
        many.learn(x, y)
    xs = [x for x, _ in data[100:600]]
    expected = [one.ask(x) for x in xs]
    got = many.ask_many(xs)
    assert [d.score for d in got] == pytest.approx([d.score for d in expected], abs=1e-12)
    assert [d.query for d in got] == [d.query for d in expected]


def test_numpy_numbers_count_one_by_one_as_in_a_batch():
    rng = np.random.default_rng(0)
    xs = [{"a": np.float32(v), "b": np.int64(i), "c": np.bool_(i % 2)} for i, v in enumerate(rng.normal(size=300))]
    one, many = ActiveLearner(budget=0.1, seed=1), ActiveLearner(budget=0.1, seed=1)
    expected = [one.ask(x) for x in xs]
    got = many.ask_many(xs)
    assert [d.query for d in got] == [d.query for d in expected]
    assert one._features.transform_one(xs[-1]) == pytest.approx(many._features.transform_one(xs[-1]))
    assert len(one._features.transform_one(xs[-1])) == 3  # none dropped
