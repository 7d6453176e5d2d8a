"""What the loop does between polls: the capacity share, drift counts, lag, gauges, when to checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from streamal.core.budget.capacity import Capacity
from streamal.core.learner import ActiveLearner
from streamal.service.metrics import Metrics
from streamal.service.pending import PendingRequests
from streamal.service.records import Partition

log = logging.getLogger("streamal.service")


class Housekeeping:
    """Runs once per step (see :meth:`tick`)."""

    def __init__(self, metrics: Metrics, clock: Callable[[], float], *, topic_instances: str,
                 instance_partitions: int | None, capacity: Capacity | None, lag_every_s: float,
                 checkpoint_every_s: float) -> None:
        self.metrics = metrics
        self.clock = clock
        self.topic_instances = topic_instances
        #: Partitions of the instances topic (None: unknown, this replica counts as the whole group).
        self.instance_partitions = instance_partitions
        #: Annotator capacity (STREAMAL_LABELS_PER_HOUR): the budget follows it.
        self.capacity = capacity
        metrics.capacity.set(capacity.labels_per_hour if capacity is not None else 0.0)
        self.lag_every_s = lag_every_s
        self.checkpoint_every_s = checkpoint_every_s
        self._last_lag = 0.0
        self._lag_labels: set[Partition] = set()
        self._drifts_seen = 0
        self._evicted_seen = 0
        self.last_checkpoint = clock()

    def share(self, assigned: set[Partition]) -> float:
        """This replica's share of the group's capacity: its share of the instances topic's partitions."""
        if not self.instance_partitions:
            return 1.0
        mine = sum(1 for topic, _ in assigned if topic == self.topic_instances)
        return mine / self.instance_partitions

    def tick(self, learner: ActiveLearner, pending: PendingRequests, group: Any, decided: int) -> bool:
        """One round after a step that decided ``decided`` instances; True when a checkpoint is due."""
        now = self.clock()
        share = self.share(group.assignment())
        self.metrics.capacity_share.set(share)
        if self.capacity is not None:
            self.capacity.observe(decided, now)
            budget = self.capacity.budget(len(pending), now, share)
            if abs(budget - learner.budget_in_force) > 1e-9:
                learner.set_budget(budget)
        self.metrics.budget.set(learner.budget_in_force)
        if learner.drifts > self._drifts_seen:
            self.metrics.drift.inc(learner.drifts - self._drifts_seen)
            log.warning("drift detected in the error on labeled data (%d so far)", learner.drifts)
            self._drifts_seen = learner.drifts
        if now - self._last_lag >= self.lag_every_s:
            self._update_lag(group)
            self._last_lag = now
        if pending.evicted > self._evicted_seen:
            self.metrics.pending_evicted.inc(pending.evicted - self._evicted_seen)
            self._evicted_seen = pending.evicted
        self.metrics.pending.set(len(pending))
        self.metrics.pending_oldest.set(pending.oldest_age(now))
        return now - self.last_checkpoint >= self.checkpoint_every_s

    def _update_lag(self, group: Any) -> None:
        """Records behind the end of each assigned partition (approximate on Tansu, whose ends lag)."""
        assigned = group.assignment()
        try:
            ends = group.end_offsets(assigned)
        except Exception as exc:  # a metric must never stop the loop
            log.debug("end offsets unavailable: %s", exc)
            return
        for tp in self._lag_labels - assigned:
            self.metrics.lag.remove(tp[0], str(tp[1]))
        for (topic, partition), end in ends.items():
            try:
                position = group.position(topic, partition)
            except Exception:
                continue
            self.metrics.lag.labels(topic, str(partition)).set(max(0, end - position))
        self._lag_labels = set(assigned)
