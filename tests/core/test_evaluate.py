"""The prequential loop: any asker, the trace, pool windows; the loop on a clock; the holdout."""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import pytest

from streamal.core.budget.capacity import Capacity
from streamal.core.errors import ParameterError
from streamal.core.evaluate import Annotator, TracePoint, holdout, prequential, timed_prequential
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


# -- on a clock ------------------------------------------------------------------------------

class Clocked(EveryThird):
    """EveryThird that notes, at each decision, how many labels it had learned by then."""

    def __init__(self) -> None:
        super().__init__()
        self.learned_before: list[int] = []
        self.learned_x: list[float] = []

    def ask(self, x: dict[str, Any]) -> Decision:
        self.learned_before.append(self.learned)
        return super().ask(x)

    def learn(self, x: dict[str, Any], y: Any) -> None:
        super().learn(x, y)
        self.learned_x.append(x["a"])


def test_a_label_is_learned_only_when_its_answer_arrives():
    learner = Clocked()
    r = timed_prequential(learner, stream(300), [float(i) for i in range(300)], annotator=Annotator(delay_s=10))
    # Instance i (at i s) is asked when i % 3 == 2; its answer comes at i + 10 s, before instance i + 10 is decided.
    for i, before in enumerate(learner.learned_before):
        assert before == sum(1 for j in range(i) if j % 3 == 2 and j + 10 <= i), i
    assert r.labels == 100 and learner.learned == 100  # the last answers are learned after the stream (drain)
    assert r.timeline.answered_after_end == 4  # asked at 290, 293, 296 and 299 s, after the last arrival (299 s)
    assert learner.learned_x == sorted(learner.learned_x)  # in the order asked
    assert r.accuracy == 0.5 and [p.n for p in r.trace][-1] == 300


def test_without_drain_the_outstanding_answers_are_left_unlearned():
    learner = Clocked()
    r = timed_prequential(learner, stream(300), [float(i) for i in range(300)], annotator=Annotator(delay_s=10),
                          drain=False)
    assert r.labels == 100 and learner.learned == 96 and r.timeline.answered_after_end == 0


def test_a_slow_annotator_answers_one_label_every_3600_over_its_speed():
    learner = Clocked()
    r = timed_prequential(learner, stream(300), [float(i) for i in range(300)],
                          annotator=Annotator(delay_s=0, labels_per_hour=360))  # one answer per 10 s
    answered = [a for _, _, a in r.timeline.requests]
    assert answered[0] == 2.0 and all(b - a == pytest.approx(10.0) for a, b in itertools.pairwise(answered))
    assert [asked for _, asked, _ in r.timeline.requests] == [float(i) for i in range(2, 300, 3)]
    # Asked every 3 s, answered every 10 s: the backlog grows by 7 in every 30 s.
    assert r.timeline.slots[-1].backlog == sum(1 for a in answered if a > 299)


def test_slots_cover_the_clock_and_add_up_per_hour():
    times = [i * 30.0 for i in range(300)]  # 2.5 h of the clock
    r = timed_prequential(EveryThird(), stream(300), times, slot_s=600, end_s=9000.0, annotator=Annotator(delay_s=0))
    slots = r.timeline.slots
    assert [s.start_s for s in slots] == [600.0 * k for k in range(15)] and r.timeline.seconds == 9000.0
    assert all(s.instances == 20 for s in slots) and sum(s.requests for s in slots) == r.labels == 100
    hours = r.timeline.hours()
    assert [(h.hour, h.seconds, h.instances) for h in hours] == [(0, 3600.0, 120), (1, 3600.0, 120), (2, 1800.0, 60)]
    assert hours[2].requests_per_hour == pytest.approx(2 * hours[2].requests)
    assert all(s.budget is None for s in slots)  # EveryThird has no budget


def test_the_budget_follows_capacity_each_tick():
    learner = ActiveLearner(budget=0.5, seed=0)
    data = [({"a": float(i % 7), "b": float(i % 5)}, i % 7 < 3) for i in range(3000)]
    r = timed_prequential(learner, data, [i / 5 for i in range(3000)], annotator=Annotator(delay_s=5),
                          capacity=Capacity(labels_per_hour=360, ceiling=0.5))  # 0.1 label/s of 5 instances/s
    assert learner.budget_in_force == pytest.approx(0.02, rel=0.05)
    assert r.timeline.labels_per_hour == 360 and r.timeline.updates == 600 and r.timeline.at_ceiling == 1
    assert [s.budget for s in r.timeline.slots][-1] == learner.budget_in_force


def test_the_clocks_bad_inputs():
    with pytest.raises(ValueError, match="back in time"):
        timed_prequential(EveryThird(), stream(3), [0.0, 2.0, 1.0])
    with pytest.raises(ParameterError, match="slot_s"):
        timed_prequential(EveryThird(), stream(3), [0.0, 1.0, 2.0], slot_s=7)
    with pytest.raises(ParameterError, match="tick_s"):
        timed_prequential(EveryThird(), stream(3), [0.0, 1.0, 2.0], tick_s=0)
    with pytest.raises(ParameterError, match="delay_s"):
        Annotator(delay_s=-1)
    with pytest.raises(ParameterError, match="labels_per_hour"):
        Annotator(labels_per_hour=0)


def test_an_empty_stream_on_a_clock():
    r = timed_prequential(EveryThird(), [], [])
    assert (r.n, r.labels, r.timeline.slots) == (0, 0, [])


def test_the_holdout_predicts_only():
    learner = ActiveLearner(budget=0.5, seed=0)
    data = [({"a": float(i % 7)}, i % 7 < 3) for i in range(600)]
    prequential(learner, data[:400])
    learned, classes = learner.n_learned, learner.classes
    r = holdout(learner, data[400:])
    assert (r.n, r.labels, learner.n_learned, learner.classes) == (200, 0, learned, classes)
    assert r.accuracy == sum(learner.predict_one(x) == y for x, y in data[400:]) / 200
