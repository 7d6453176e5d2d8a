"""Pseudo-labels in the core: the rule (streamal.core.pseudo) and the learner's side of it."""

from __future__ import annotations

import copy
import itertools
import pickle

import pytest
from river import datasets
from river.datasets import synth

from streamal import ActiveLearner
from streamal.core.errors import ParameterError
from streamal.core.learner import Decision
from streamal.core.pseudo import PseudoLabels

SURE = {"a": 0.995, "b": 0.005}


def phishing(n: int | None = None) -> list:
    return list(itertools.islice(datasets.Phishing(), n))


def run(learner: ActiveLearner, stream, *, in_flight: int = 0) -> list[tuple[bool, object]]:
    """Stream mode with pseudo-labels, as simulate does it: ``(asked, pseudo-label)`` per instance."""
    out = []
    for x, y in stream:
        d = learner.ask(x)
        if d.query:
            learner.learn(x, y)
            out.append((True, None))
            continue
        y_hat = learner.pseudo_label(x, d, in_flight)
        if y_hat is not None:
            learner.learn(x, y_hat, pseudo=True)
        out.append((False, y_hat))
    return out


# ---------------------------------------------------------------------- the rule


def test_the_defaults_are_the_documented_ones():
    rule = PseudoLabels()
    assert (rule.min_proba, rule.warmup, rule.per_label) == (0.99, 20, 1.0)
    assert repr(rule) == "PseudoLabels(min_proba=0.99, warmup=20, per_label=1.0)"
    assert rule == PseudoLabels() and rule != PseudoLabels(min_proba=0.95)


@pytest.mark.parametrize("parameter, value", [
    ("min_proba", 0.0), ("min_proba", -0.1), ("min_proba", 1.01), ("min_proba", float("nan")), ("min_proba", True),
    ("min_proba", "0.9"),
    ("warmup", -1), ("warmup", 2.5), ("warmup", True), ("warmup", None),
    ("per_label", 0), ("per_label", -1.0), ("per_label", float("inf")), ("per_label", float("nan")),
    ("per_label", False),
])
def test_a_bad_parameter_fails_at_construction_naming_it(parameter, value):
    with pytest.raises(ParameterError) as info:
        PseudoLabels(**{parameter: value})
    assert info.value.parameter == parameter and repr(value) in str(info.value)


@pytest.mark.parametrize("proba, real, pseudo, expected", [
    ({"a": 0.99, "b": 0.01}, 20, 0, True),     # δ itself is confident enough; the warm-up is just over
    ({"a": 0.9899, "b": 0.0101}, 20, 0, False),
    (SURE, 19, 0, False),                       # still warming up
    (SURE, 20, 19, True),                       # the cap: fewer than k · real so far
    (SURE, 20, 20, False),
    ({}, 100, 0, False),                        # no probabilities, no pseudo-label
])
def test_confidence_warmup_and_cap(proba, real, pseudo, expected):
    assert PseudoLabels().allows(proba, real, pseudo) is expected


def test_the_cap_scales_with_k():
    rule = PseudoLabels(per_label=2.5, warmup=0)
    assert rule.allows(SURE, real=4, pseudo=9) and not rule.allows(SURE, real=4, pseudo=10)
    assert not rule.allows(SURE, real=0, pseudo=0)  # no real label, no pseudo-label, whatever the warm-up


# ---------------------------------------------------------------------- the learner


def test_off_by_default_and_never_a_pseudo_label():
    learner = ActiveLearner(budget=0.2, seed=1)
    assert learner.pseudo_labels is None
    assert all(y_hat is None for _, y_hat in run(learner, phishing(600)))
    assert learner.n_pseudo == 0 and learner.n_real == learner.n_learned > 0


def test_the_parameter_alone_changes_no_decision():
    """Given a rule but never asked for a pseudo-label, a learner decides as one without."""
    plain, given = ActiveLearner(budget=0.1, seed=3), ActiveLearner(budget=0.1, seed=3, pseudo_labels=PseudoLabels())
    for x, y in phishing(800):
        a, b = plain.ask(x), given.ask(x)
        assert a == b
        if a.query:
            plain.learn(x, y)
            given.learn(x, y)


def test_pseudo_label_only_decides():
    learner = ActiveLearner(budget=0.1, seed=0, pseudo_labels=PseudoLabels(min_proba=0.5, warmup=0, per_label=100))
    run(learner, phishing(300))
    before = pickle.dumps(learner)
    x = phishing(301)[-1][0]
    d = learner.ask(x)
    state = pickle.dumps(learner)
    assert not d.query and learner.pseudo_label(x, d) == d.prediction
    assert pickle.dumps(learner) == state != before  # ask moved the budget; pseudo_label moved nothing


def test_never_for_an_asked_instance_nor_a_cold_model():
    learner = ActiveLearner(budget=0.5, pseudo_labels=PseudoLabels(min_proba=0.01, warmup=0, per_label=100))
    x = {"x": 1.0}
    asked = Decision(True, 0.9, 0.5, "a", {"a": 1.0})
    unasked = Decision(False, 0.1, 0.5, "a", {"a": 1.0})
    learner.learn(x, "a")
    assert learner.cold and learner.pseudo_label(x, unasked) is None  # one class known: every p is 1
    learner.learn({"x": -1.0}, "b")
    assert not learner.cold
    assert learner.pseudo_label(x, asked) is None
    assert learner.pseudo_label(x, unasked) == "a"
    assert learner.pseudo_label(x, Decision(False, 0.1, 0.5, None, {})) is None


def test_pseudo_and_real_are_counted_apart_and_the_cap_holds_all_along():
    rule = PseudoLabels(min_proba=0.8, warmup=20, per_label=2)
    learner = ActiveLearner(budget=0.05, seed=42, pseudo_labels=rule)
    fired_before_warmup = False
    for x, y in phishing():
        d = learner.ask(x)
        if d.query:
            learner.learn(x, y)
        elif (y_hat := learner.pseudo_label(x, d)) is not None:
            fired_before_warmup |= learner.n_real < rule.warmup
            learner.learn(x, y_hat, pseudo=True)
        assert learner.n_pseudo <= rule.per_label * learner.n_real
        assert learner.n_real + learner.n_pseudo == learner.n_learned
    assert not fired_before_warmup
    assert learner.n_pseudo > 0


def test_pseudo_labels_in_flight_count_against_the_cap():
    rule = PseudoLabels(min_proba=0.5, warmup=0, per_label=1)
    learner = ActiveLearner(budget=0.2, seed=0, pseudo_labels=rule)
    data = phishing(300)
    run(learner, data[:200])
    for x, y in data[200:205]:  # room under the cap for five more
        learner.learn(x, y)
    real, pseudo = learner.n_real, learner.n_pseudo
    # decide_many leaves the budget as it is: the first unasked instance
    x, d = next((x, d) for x, d in ((x, learner.decide_many([x]).decisions[0]) for x, _ in data[205:]) if not d.query)
    room = real - pseudo
    assert room >= 5
    assert learner.pseudo_label(x, d, in_flight=room - 1) == d.prediction
    assert learner.pseudo_label(x, d, in_flight=room) is None


def test_a_pseudo_label_is_learned_through_the_one_learn_path():
    """The model learns (x, ŷ, pseudo=True) as it learns (x, ŷ): same model afterwards."""
    stream = phishing(400)
    a, b = ActiveLearner(budget=0.1, seed=5), ActiveLearner(budget=0.1, seed=5)
    for x, y in stream[:300]:
        if a.ask(x).query:
            a.learn(x, y)
        if b.ask(x).query:
            b.learn(x, y)
    for x, _ in stream[300:]:
        y_hat = a.predict_one(x)
        a.learn(x, y_hat, pseudo=True)
        b.learn(x, y_hat)
    assert a.n_pseudo == 100 and b.n_pseudo == 0 and a.n_learned == b.n_learned
    probe = [x for x, _ in phishing()[400:500]]
    assert [a.predict_proba_one(x) for x in probe] == [b.predict_proba_one(x) for x in probe]


def test_pseudo_labels_do_not_feed_the_drift_detector():
    """A stream whose concept flips: real labels show the drift, pseudo-labels (error 0 by construction) do not."""
    before = list(itertools.islice(synth.SEA(seed=7), 1500))
    after = [(x, not y) for x, y in itertools.islice(synth.SEA(seed=8), 1500)]
    real, pseudo = ActiveLearner(seed=0), ActiveLearner(seed=0)
    for i, (x, y) in enumerate(before + after):
        if i < 1500:
            real.learn(x, y)
            pseudo.learn(x, y)
        else:
            real.learn(x, y)
            pseudo.learn(x, y, pseudo=True)
    assert real.drifts > pseudo.drifts == 0


def test_regression_refuses_pseudo_labels_naming_the_parameter():
    with pytest.raises(ParameterError) as info:
        ActiveLearner(task="regression", pseudo_labels=PseudoLabels())
    assert info.value.parameter == "pseudo_labels" and "classification only" in str(info.value)
    learner = ActiveLearner(task="regression")
    with pytest.raises(ParameterError, match="pseudo_labels"):
        learner.set_pseudo_labels(PseudoLabels())
    learner.set_pseudo_labels(None)  # off is always fine


def test_only_a_rule_is_a_rule():
    with pytest.raises(ParameterError, match="pseudo_labels: must be None or a PseudoLabels"):
        ActiveLearner(pseudo_labels=True)  # type: ignore[arg-type]


def test_set_pseudo_labels_turns_it_on_and_off():
    learner = ActiveLearner(budget=0.2, seed=0)
    learner.set_pseudo_labels(PseudoLabels(min_proba=0.5, warmup=0, per_label=10))
    fired = sum(y is not None for _, y in run(learner, phishing(400)))
    assert fired > 0 and learner.n_pseudo == fired
    assert "pseudo_labels=PseudoLabels(min_proba=0.5" in repr(learner)
    learner.set_pseudo_labels(None)
    assert all(y is None for _, y in run(learner, phishing(800)[400:]))
    assert learner.n_pseudo == fired and "pseudo_labels" not in repr(learner)


def test_a_learner_pickled_before_pseudo_labels_existed_loads_with_them_off():
    learner = ActiveLearner(budget=0.2, seed=0)
    run(learner, phishing(300))
    old = copy.deepcopy(learner)
    del old.__dict__["pseudo_labels"], old.__dict__["n_pseudo"]  # the layout of an older checkpoint
    restored = pickle.loads(pickle.dumps(old))
    assert restored.pseudo_labels is None and restored.n_pseudo == 0 and restored.n_real == learner.n_learned
    x = phishing(301)[-1][0]
    assert restored.pseudo_label(x, restored.ask(x)) is None
    restored.set_pseudo_labels(PseudoLabels())
    assert restored.pseudo_labels == PseudoLabels()


def test_a_rule_pickles_with_the_learner():
    learner = ActiveLearner(seed=0, pseudo_labels=PseudoLabels(min_proba=0.9, warmup=5, per_label=3))
    run(learner, phishing(200))
    back = pickle.loads(pickle.dumps(learner))
    assert back.pseudo_labels == learner.pseudo_labels and back.n_pseudo == learner.n_pseudo
