"""Budgets as annotator capacity: labels per hour instead of a fraction.

Given the capacity ``labels_per_hour = L`` of the annotators of a whole
consumer group, the budget follows what they can do. Each replica takes its
share s of L (the service: the share of the instances topic's partitions it
is assigned) and asks about the fraction

    b = clip((s · L / 3600) / λ · (1 − backlog / (L · horizon / 3600)), floor, ceiling)

of its instances, where λ is its instance arrival rate (exponentially
weighted, half-life ``half_life_s`` seconds), and ``backlog`` the outstanding
requests of the whole group (in the service every replica knows them all,
from the label-requests topic): when the backlog reaches what annotators clear
in ``horizon_s``, asking stops until they catch up, so streamal never floods
a queue that people cannot keep up with. The replicas together ask
Σ s_i · L = L per hour whatever the traffic of each partition (a busier
partition only means a smaller fraction). ``ceiling`` (the configured
budget) caps the fraction, and wins over ``floor``.

Pure Python: the service (its labels-per-hour setting) and ``streamal
simulate --labels-per-hour`` (on a simulated clock, see
:func:`streamal.core.evaluate.timed_prequential`) drive the same class.
"""

from __future__ import annotations

import math

from streamal.core.errors import ParameterError


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 < value < math.inf):
        raise ParameterError(name, f"must be a finite number > 0, got {value!r}")


class Capacity:
    """Turns labels per hour, arrivals and the backlog into a budget fraction.

    >>> c = Capacity(labels_per_hour=360, ceiling=1.0)   # 0.1 label/s
    >>> for t in range(60):
    ...     c.observe(10, now=float(t))                   # 10 instances/s
    >>> round(c.budget(backlog=0, now=60.0), 3)           # 0.1 / 10
    0.01
    >>> round(c.budget(backlog=180, now=60.0), 3)         # half of an hour's work waiting
    0.005
    >>> round(c.budget(backlog=0, now=60.0, share=0.5), 3)  # one of two replicas: half of the capacity
    0.005

    """

    def __init__(self, labels_per_hour: float, ceiling: float = 1.0, horizon_s: float = 3600.0,
                 half_life_s: float = 60.0, floor: float = 1e-6) -> None:
        _positive("labels_per_hour", labels_per_hour)
        _positive("horizon_s", horizon_s)
        _positive("half_life_s", half_life_s)
        if isinstance(ceiling, bool) or not isinstance(ceiling, (int, float)) or not 0.0 < ceiling <= 1.0:
            raise ParameterError("ceiling", f"must be a fraction in (0, 1], got {ceiling!r}")
        if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0.0 < floor <= 1.0:
            raise ParameterError("floor", f"must be a fraction in (0, 1], got {floor!r}")
        self.labels_per_hour = labels_per_hour
        self.ceiling = ceiling
        self.horizon_s = horizon_s
        self.half_life_s = half_life_s
        self.floor = floor
        self._rate = 0.0  # instances per second
        self._last: float | None = None
        self._pending = 0

    def observe(self, instances: int, now: float) -> None:
        """``instances`` arrived since the previous call, which was at ``now − Δ``."""
        if self._last is None:  # the clock starts now
            self._last = now
            return
        dt = now - self._last
        self._pending += instances
        if dt <= 0:
            return
        weight = 1.0 - 0.5 ** (dt / self.half_life_s) if self._rate else 1.0  # the first interval sets it
        self._rate += weight * (self._pending / dt - self._rate)
        self._pending = 0
        self._last = now

    @property
    def arrival_rate(self) -> float:
        return self._rate

    def budget(self, backlog: int, now: float, share: float = 1.0) -> float:
        """The fraction to ask about, for a replica with ``share`` of the group's capacity."""
        per_second = self.labels_per_hour / 3600.0
        room = max(0.0, 1.0 - backlog / (per_second * self.horizon_s))
        if self._rate <= 0.0:
            return self.ceiling
        return min(self.ceiling, max(self.floor, share * per_second / self._rate * room))
