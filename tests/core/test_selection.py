"""ModelSelector: picks the member that does best on the labels, follows a drift, clones and pickles."""

from __future__ import annotations

import itertools
import math
import pickle

import pytest
from river import base, datasets, naive_bayes
from river.datasets import synth

from streamal.core import batch
from streamal.core.errors import ParameterError
from streamal.core.models import build_model
from streamal.core.selection import ModelSelector, _proba, gaussian_nb_proba


class Constant(base.Classifier):
    """Always the same class, with probability 1 (a member that is right or wrong by construction)."""

    def __init__(self, c: int) -> None:
        self.c = c

    def learn_one(self, x, y):
        pass

    def predict_proba_one(self, x):
        return {self.c: 1.0}


def lr():
    return build_model("logistic_regression", "classification")[0]


def run(sel: ModelSelector, stream) -> list:
    out = []
    for x, y in stream:
        out.append(sel.predict_one(x))
        sel.learn_one(x, y)
    return out


def hyperplane(n: int = 1500):
    return list(itertools.islice(synth.Hyperplane(seed=7, n_features=4), n))


def test_picks_the_member_that_fits():
    # A linear concept: the logistic regression beats a constant, though the constant is trusted first.
    sel = ModelSelector({"always_0": Constant(0), "lr": lr()})
    preds = run(sel, hyperplane())
    assert sel.leader_name == "lr"
    assert sel.scores["lr"] > sel.scores["always_0"] + 0.2
    late = hyperplane()[-500:]
    assert sum(p == y for p, (_, y) in zip(preds[-500:], late)) / 500 > 0.8


def test_keeps_the_first_member_without_evidence_against_it():
    sel = ModelSelector({"lr": lr(), "nb": naive_bayes.GaussianNB()}, z=50.0)
    run(sel, hyperplane(300))
    assert sel.leader_name == "lr"


def test_switches_after_a_drift():
    stream = [({"a": 0.0}, 0)] * 200 + [({"a": 0.0}, 1)] * 60
    sel = ModelSelector({"zero": Constant(0), "one": Constant(1)}, decay=0.9)
    run(sel, stream[:200])
    assert sel.leader_name == "zero"
    run(sel, stream[200:])
    assert sel.leader_name == "one"
    slow = ModelSelector({"zero": Constant(0), "one": Constant(1)}, decay=1.0)
    run(slow, stream)
    assert slow.leader_name == "zero"  # with no decay 200 old labels outvote 60 new ones


def test_weighted_mixes_probabilities():
    sel = ModelSelector({"zero": Constant(0), "one": Constant(1)}, mode="weighted", decay=1.0, eta=3 * math.log(3))
    run(sel, [({"a": 0.0}, 0), ({"a": 0.0}, 0), ({"a": 0.0}, 1)])  # the first label is not scored: 1/2 each
    assert sel.predict_proba_one({"a": 0.0}) == pytest.approx({0: 0.5, 1: 0.5})
    run(sel, [({"a": 0.0}, 0)])  # zero 2/3, one 1/3: weights 1 and exp(−η/3) = 1/3
    assert sel.predict_proba_one({"a": 0.0}) == pytest.approx({0: 0.75, 1: 0.25})


def test_deterministic():
    data = list(itertools.islice(datasets.Phishing(), 400))
    assert run(ModelSelector(), data) == run(ModelSelector(), data)


def test_clone_is_untrained_and_pickle_keeps_the_state():
    data = list(itertools.islice(datasets.Phishing(), 300))
    given = {"lr": lr(), "nb": naive_bayes.GaussianNB()}
    sel = ModelSelector(given, decay=0.95)
    run(sel, data)
    assert not given["lr"].classifiers  # the members given are never trained
    fresh = sel.clone()
    assert fresh.n_labels == 0 and fresh.decay == 0.95 and list(fresh.members) == ["lr", "nb"]
    assert run(fresh, data) == run(ModelSelector(given, decay=0.95), data)
    copy = pickle.loads(pickle.dumps(sel))
    assert copy.leader_name == sel.leader_name and copy.scores == sel.scores
    assert [copy.predict_proba_one(x) for x, _ in data[:50]] == [sel.predict_proba_one(x) for x, _ in data[:50]]


def test_fast_naive_bayes_probabilities_equal_river():
    nb = naive_bayes.GaussianNB()
    data = list(itertools.islice(datasets.ImageSegments(), 400))
    for x, y in data[:300]:
        nb.learn_one(x, y)
    for x, _ in data[300:]:
        assert _proba(nb, x) == pytest.approx(nb.predict_proba_one(x), abs=1e-12)


def test_vectorised_naive_bayes_equals_river():
    nb = naive_bayes.GaussianNB()
    data = list(itertools.islice(datasets.ImageSegments(), 400))
    for x, y in data[:300]:
        nb.learn_one(x, y)
    xs = [x for x, _ in data[300:]]
    classes, p = gaussian_nb_proba(nb, *batch.as_matrix(xs))
    for x, row in zip(xs, p):
        assert dict(zip(classes, row)) == pytest.approx(nb.predict_proba_one(x), abs=1e-9)
    assert gaussian_nb_proba(naive_bayes.GaussianNB(), ["a"], p[:3, :1])[1].shape == (3, 0)


@pytest.mark.parametrize(
    "params, name",
    [
        ({"models": {}}, "models"),
        ({"models": {"x": object()}}, "models"),
        ({"mode": "vote"}, "mode"),
        ({"decay": 0.0}, "decay"),
        ({"decay": 1.5}, "decay"),
        ({"eta": -1.0}, "eta"),
        ({"z": -1.0}, "z"),
    ],
)
def test_bad_parameters_fail_at_construction(params, name):
    with pytest.raises(ParameterError, match=f"^{name}:"):
        ModelSelector(**params)


def test_river_estimator_checks():
    from river import checks

    for params in ModelSelector._unit_test_params():
        try:
            for check in checks.yield_checks(ModelSelector(**params)):
                check(ModelSelector(**params))
        except ModuleNotFoundError:  # River's checks on datasets need scikit-learn
            pass
