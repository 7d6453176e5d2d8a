"""Budgets as annotator capacity (``streamal.core.budget.capacity``), alone and on a simulated clock."""

from __future__ import annotations

import itertools
import math

import pytest
from river.datasets import synth

from streamal.core.budget.capacity import Capacity
from streamal.core.errors import ParameterError
from streamal.core.evaluate import Annotator, timed_prequential
from streamal.core.learner import ActiveLearner


def steady(capacity: Capacity, per_second: float, seconds: int = 300) -> None:
    for t in range(seconds + 1):
        capacity.observe(round(per_second), float(t))


def test_the_fraction_is_capacity_over_arrivals():
    c = Capacity(labels_per_hour=720, ceiling=1.0)  # 0.2 labels/s
    steady(c, 20)
    assert c.arrival_rate == pytest.approx(20)
    assert c.budget(backlog=0, now=300.0) == pytest.approx(0.01)
    assert c.budget(backlog=360, now=300.0) == pytest.approx(0.005)  # half an hour of work waiting
    assert c.budget(backlog=720, now=300.0) == c.floor  # an hour: asking stops
    assert c.budget(backlog=0, now=300.0, share=0.25) == pytest.approx(0.0025)


def test_the_ceiling_caps_it_and_an_unknown_rate_is_the_ceiling():
    c = Capacity(labels_per_hour=3600, ceiling=0.05)
    assert c.budget(backlog=0, now=0.0) == 0.05  # no rate yet
    steady(c, 2)  # 1 label/s of 2 instances/s would be 50 %
    assert c.budget(backlog=0, now=300.0) == 0.05


def test_the_rate_follows_a_change_with_the_half_life():
    c = Capacity(labels_per_hour=360, half_life_s=60.0)
    steady(c, 10)
    for t in range(301, 361):  # one half-life at 20/s
        c.observe(20, float(t))
    assert c.arrival_rate == pytest.approx(15, rel=0.02)


@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"labels_per_hour": 0}, "labels_per_hour"),
    ({"labels_per_hour": math.inf}, "labels_per_hour"),
    ({"labels_per_hour": math.nan}, "labels_per_hour"),
    ({"labels_per_hour": True}, "labels_per_hour"),
    ({"labels_per_hour": 10, "ceiling": 0}, "ceiling"),
    ({"labels_per_hour": 10, "ceiling": 1.5}, "ceiling"),
    ({"labels_per_hour": 10, "horizon_s": 0}, "horizon_s"),
    ({"labels_per_hour": 10, "half_life_s": -1}, "half_life_s"),
    ({"labels_per_hour": 10, "floor": 0}, "floor"),
])
def test_bad_parameters_are_refused_naming_them(kwargs, parameter):
    with pytest.raises(ParameterError) as err:
        Capacity(**kwargs)
    assert err.value.parameter == parameter


def test_it_lives_in_the_core_only():
    """The service uses this one (tests/service/test_loop.py drives it); there is no second copy."""
    with pytest.raises(ImportError):
        import streamal.service.capacity  # noqa: F401


# -- on a clock: the budget follows capacity as in the service ------------------------------

def sea(n: int):
    return itertools.islice(synth.SEA(seed=3, noise=0.1), n)


def run(n: int, rate: float, labels_per_hour: float, speed: float | None = None, ceiling: float = 0.05):
    learner = ActiveLearner(budget=ceiling, seed=0)
    result = timed_prequential(learner, sea(n), (i / rate for i in range(n)), end_s=n / rate,
                               annotator=Annotator(delay_s=60, labels_per_hour=speed or labels_per_hour),
                               capacity=Capacity(labels_per_hour, ceiling=ceiling), expected=n)
    return learner, result


def test_requests_per_hour_stay_within_ten_percent_of_capacity_once_warmed_up():
    """A rate that steps from 4/s to 12/s and back: the requests per hour do not follow the traffic."""
    n_low, n_high = 4 * 3600, 12 * 3600
    times = [i / 4 for i in range(n_low)]
    times += [3600 + i / 12 for i in range(n_high)]
    times += [7200 + i / 4 for i in range(n_low)]
    learner = ActiveLearner(budget=0.05, seed=0)
    result = timed_prequential(learner, sea(len(times)), times, end_s=10_800.0,
                               annotator=Annotator(delay_s=60, labels_per_hour=240),
                               capacity=Capacity(240, ceiling=0.05))
    hours = result.timeline.hours()
    assert [h.instances for h in hours] == [n_low, n_high, n_low]
    for h in hours[1:]:
        assert abs(h.requests / 240 - 1) <= 0.10, h
    assert hours[1].budget == pytest.approx(240 / 3600 / 12, rel=0.1)  # a third of the fraction at 3× the rate
    assert hours[2].budget == pytest.approx(240 / 3600 / 4, rel=0.1)
    assert result.timeline.backlog_max < 40 and hours[-1].backlog_max <= 8
    assert learner.n_learned == result.labels  # every request answered and learned (drained at the end)


def test_a_slower_annotator_grows_the_backlog_and_the_budget_falls_accordingly():
    _, fast = run(3 * 7200, rate=2, labels_per_hour=180)
    _, slow = run(3 * 7200, rate=2, labels_per_hour=180, speed=90)
    backlogs = [h.backlog for h in slow.timeline.hours()]
    budgets = [h.budget for h in slow.timeline.hours()]
    assert backlogs == sorted(backlogs) and backlogs[-1] > 50
    assert budgets == sorted(budgets, reverse=True)
    for h in slow.timeline.hours():  # Capacity's rule, at the hour's end
        assert h.budget == pytest.approx(max(1e-6, 180 / 3600 / 2 * (1 - h.backlog / 180)), rel=0.1, abs=1e-4)
    # The answers come at the annotator's speed: 90 an hour, one every 40 s.
    answered = sorted(a for _, _, a in slow.timeline.requests)
    assert min(b - a for a, b in itertools.pairwise(answered)) >= 40 - 1e-9
    assert slow.labels < 0.75 * fast.labels
    assert all(h.answers <= 91 for h in slow.timeline.hours())
