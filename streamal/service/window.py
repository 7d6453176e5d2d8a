"""Pool mode's windows: fill with instances, decide when full or old enough, hold offsets until then.

A window holds up to ``size`` instances or ``seconds`` of them, whichever
comes first. Their offsets are held back: they are committed only once the
window is decided and its label requests are acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamal.core.pool import window_quota
from streamal.service.records import Partition, Record

#: A valid instance: ``(id, features)``.
Unlabeled = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Batch:
    """A decided window: its instances, how many labels it may ask for, and its id."""

    instances: list[Unlabeled]
    k: int
    batch_id: str
    #: The record of each instance (for a dead letter; None: an expired request asked again).
    sources: list[Record | None]


class PoolWindow:
    """The window being filled (see the module docstring).

    >>> w = PoolWindow(size=3, seconds=60.0, clock=lambda: 0.0)
    >>> w.add([("a", {}), ("b", {})], [None, None]); w.hold(("t", 0), 2)
    >>> w.room, w.due()
    (1, False)
    >>> w.add([("c", {})], [None]); w.due()
    True
    >>> batch = w.take(budget=0.5); (len(batch.instances), batch.k), w.release()
    ((3, 1), {('t', 0): 2})

    """

    def __init__(self, size: int, seconds: float, clock: Callable[[], float]) -> None:
        self.size = size
        self.seconds = seconds
        self.clock = clock
        self._instances: list[Unlabeled] = []
        self._sources: list[Record | None] = []
        self._started: float | None = None
        self._carry = 0.0
        self._batches = 0
        self._held: dict[Partition, int] = {}

    @property
    def room(self) -> int:
        """Instances the window can still take (a poll never overfills it)."""
        return max(1, self.size - len(self._instances))

    def __len__(self) -> int:
        return len(self._instances)

    def add(self, instances: list[Unlabeled], sources: list[Record | None]) -> None:
        """Add instances and the records they came in."""
        if instances and self._started is None:
            self._started = self.clock()
        self._instances.extend(instances)
        self._sources.extend(sources)

    def hold(self, partition: Partition, next_offset: int) -> None:
        """Commit ``next_offset`` of ``partition`` only once the window is decided."""
        self._held[partition] = next_offset

    def due(self) -> bool:
        if not self._instances:
            return False
        started = self._started if self._started is not None else self.clock()
        return len(self._instances) >= self.size or self.clock() - started >= self.seconds

    def take(self, budget: float) -> Batch:
        """Empty the window: its instances and the labels ``budget`` allows it (fractions carry over)."""
        instances, self._instances, self._started = self._instances, [], None
        sources, self._sources = self._sources, []
        k, self._carry = window_quota(budget, len(instances), self._carry)
        self._batches += 1
        return Batch(instances, k, f"{int(self.clock())}-{self._batches}", sources)

    def release(self) -> dict[Partition, int]:
        """The held offsets, to commit now that their window is decided."""
        held, self._held = self._held, {}
        return held
