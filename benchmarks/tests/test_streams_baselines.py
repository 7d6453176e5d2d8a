"""Stream builders and prequential baselines."""

from __future__ import annotations

import itertools

import pytest

from benchmarks.baselines import (
    Decision,
    EntropySampling,
    FullSupervision,
    RandomSampling,
    ht_model,
    lr_model,
    run_prequential,
)
from benchmarks.streams import ANCHOR_STREAMS, EXTRA_STREAMS, STREAMS, load

KINDS = {"abrupt", "gradual", "incremental", "new_class", "imbalanced", "stationary"}


@pytest.mark.parametrize("name", ANCHOR_STREAMS + EXTRA_STREAMS)
def test_stream_shape(name: str) -> None:
    s = load(name)
    seen: set[int] = set()
    n = 0
    for x, y in s:
        assert isinstance(x, dict) and x
        assert isinstance(y, int) and 0 <= y < s.n_classes
        seen.add(y)
        n += 1
    assert n == len(s)
    assert seen == set(range(s.n_classes))
    if name in EXTRA_STREAMS:
        assert 10_000 <= len(s) <= 20_000


def test_registry() -> None:
    assert len(ANCHOR_STREAMS) == 9
    assert {STREAMS[n].kind for n in EXTRA_STREAMS} >= KINDS
    with pytest.raises(KeyError):
        load("nope")


@pytest.mark.parametrize("name", ["sea_abrupt", "rbf_new_class", "rbf_imbalanced"])
def test_streams_are_reproducible(name: str) -> None:
    s = load(name)
    assert list(itertools.islice(s, 300)) == list(itertools.islice(s, 300))


def test_new_class_appears_at_40_percent() -> None:
    s = load("rbf_new_class")
    first = next(i for i, (_, y) in enumerate(s) if y == 3)
    assert int(0.4 * len(s)) <= first < int(0.41 * len(s))


def test_imbalance_is_about_95_5() -> None:
    ys = [y for _, y in load("rbf_imbalanced")]
    assert 0.04 < sum(ys) / len(ys) < 0.06


def test_per_class_counts() -> None:
    s = load("rbf_imbalanced")
    r = run_prequential(s, FullSupervision(lr_model(2)), n=2000, trace_points=0)
    assert sum(t for _, t in r.per_class.values()) == 2000
    assert sum(c for c, _ in r.per_class.values()) == r.correct
    assert 0.0 <= r.balanced_accuracy <= 1.0


def test_full_lr_reproduces_anchor() -> None:
    r = run_prequential(load("phishing"), FullSupervision(lr_model(2)))
    assert round(100 * r.accuracy, 2) == 89.28
    assert r.labels == r.n == 1250
    assert r.trace[-1].t == 1250 and len(r.trace) == 100
    assert r.trace[-1].accuracy == r.accuracy


def test_random_reproduces_anchor() -> None:
    r = run_prequential(load("image_segments"), RandomSampling(ht_model(), 0.10, seed=42))
    assert (round(100 * r.accuracy, 2), round(100 * r.label_rate, 2)) == (70.82, 9.57)


def test_entropy_reproduces_anchor() -> None:
    # river EntropySampler [HT] on phishing at the 10 % budget (df found = 10)
    r = run_prequential(load("phishing"), EntropySampling(ht_model(), 10.0, seed=42))
    assert (round(100 * r.accuracy, 2), round(100 * r.label_rate, 2)) == (86.24, 8.24)


def test_entropy_asks_until_two_classes() -> None:
    learner = EntropySampling(lr_model(3), discount_factor=1e9, seed=0)
    stream = [({"a": 1.0}, 0)] * 5 + [({"a": -1.0}, 1)]
    asked = []
    for x, y in stream:
        d = learner.ask(x)
        asked.append(d.query)
        if d.query:
            learner.learn(x, y)
    assert asked == [True] * 6
    assert not learner.ask({"a": 1.0}).query  # huge df: (entropy <= 1) ** 1e9 ~ 0


def test_runner_drives_any_asker_and_caps_n() -> None:
    class Every3rd:
        def __init__(self) -> None:
            self.i = 0
            self.learned = 0

        def ask(self, x: dict) -> Decision:
            self.i += 1
            return Decision(self.i % 3 == 0, 0.0, 0.0, 0)

        def learn(self, x: dict, y: int) -> None:
            self.learned += 1

    learner = Every3rd()
    r = run_prequential(load("sea_abrupt"), learner, n=300, trace_points=10)
    assert (r.n, r.labels, learner.learned) == (300, 100, 100)
    assert [p.t for p in r.trace] == list(range(30, 301, 30))
    assert r.label_rate == pytest.approx(1 / 3)


def test_lookalikes_are_other_orders_and_seeds_of_the_same_streams() -> None:
    from benchmarks.lookalikes import register

    names = register(1)
    try:
        assert len(names) == len(ANCHOR_STREAMS)
        phishing, shuffled = list(load("phishing").raw()), list(load("phishing~1").raw())
        assert shuffled != phishing and sorted(map(repr, shuffled)) == sorted(map(repr, phishing))
        first = list(itertools.islice(load("hyperplane_inc").raw(), 50))
        other = list(itertools.islice(load("hyperplane_inc~1").raw(), 50))
        assert other != first and len(load("hyperplane_inc~1")) == load("hyperplane_inc").n
        assert list(itertools.islice(load("hyperplane_inc~1").raw(), 50)) == other  # a pass is repeatable
    finally:
        for name in names:
            del STREAMS[name]
