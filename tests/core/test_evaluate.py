"""The prequential loop: any asker, the trace, pool windows."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from streamal.core.evaluate import TracePoint, prequential
from streamal.core.learner import ActiveLearner
from streamal.core.pool import window_quota


class Decision(NamedTuple):
    query: bool
    prediction: Any


class EveryThird:
    """Predicts 1 always, asks every third instance: a learner that is not an ActiveLearner."""

    def __init__(self) -> None:
        self.i = self.learned = 0

    def ask(self, x: dict[str, Any]) -> Decision:
        self.i += 1
        return Decision(self.i % 3 == 0, 1)

    def learn(self, x: dict[str, Any], y: Any) -> None:
        self.learned += 1


def stream(n: int) -> list[tuple[dict[str, float], int]]:
    return [({"a": float(i)}, 1 if i < n // 2 else 0) for i in range(n)]


def test_any_asker_is_scored_by_accuracy():
    learner = EveryThird()
    r = prequential(learner, stream(300))
    assert (r.n, r.labels, learner.learned) == (300, 100, 100)
    assert r.accuracy == 0.5 and r.balanced_accuracy == 0.5 and r.mae is None


def test_trace_is_evenly_spaced_and_ends_at_the_figures():
    r = prequential(EveryThird(), stream(250), trace_points=10)
    assert [p.n for p in r.trace] == list(range(25, 251, 25))
    assert all(isinstance(p, TracePoint) for p in r.trace)
    last = r.trace[-1]
    assert (last.metric, last.label_rate) == (r.accuracy, r.label_rate)
    # The first half is all 1s (predicted right), the second all 0s: the window metric tells them apart.
    assert [p.window_metric for p in r.trace] == [1.0] * 5 + [0.0] * 5
    assert r.trace[6].metric == pytest.approx(125 / 175)


def test_trace_of_an_unsized_stream_and_no_trace():
    r = prequential(EveryThird(), iter(stream(2500)))
    assert [p.n for p in r.trace] == [1000, 2000, 2500]  # every 1,000, and the last instance
    assert r.trace[-1].window_metric == 0.0
    assert prequential(EveryThird(), stream(50), trace_points=0).trace == []


def test_pool_mode_spends_the_window_quota_and_traces_the_last_window():
    learner = ActiveLearner(budget=0.05, seed=0)
    data = stream(330)
    r = prequential(learner, data, mode="pool", pool_size=100)
    carry, expected = 0.0, 0
    for size in (100, 100, 100, 30):
        k, carry = window_quota(0.05, size, carry)
        expected += k
    assert r.labels == expected == 16
    assert r.trace[-1].n == 330 and r.trace[-1].label_rate == r.label_rate


def test_regression_is_scored_by_mae():
    learner = ActiveLearner(task="regression", budget=0.5, seed=0)
    data = [({"a": float(i % 7)}, 2.0 * (i % 7)) for i in range(200)]
    r = prequential(learner, data, trace_points=4)
    assert r.accuracy is None and r.mae is not None and r.mae > 0
    assert [p.n for p in r.trace] == [50, 100, 150, 200]
    assert r.trace[-1].metric == pytest.approx(r.mae)


def test_unknown_mode():
    with pytest.raises(ValueError, match="mode must be"):
        prequential(EveryThird(), stream(3), mode="batch")
