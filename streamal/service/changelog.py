"""Reading the log of the whole group: the training topic (the model's changelog) and the label-requests topic.

The *log* source reads every partition of both topics outside the consumer
group, so every replica learns the same examples in the same order and knows
every outstanding request. Reading it:

- learns every training record (the only place the model learns), each
  predicted first for the prequential accuracy on labeled data; a
  pseudo-label (``"source": "pseudo"``) is learned as one (counted in the
  learner's ``n_pseudo``, not its real labels) and stays out of that
  accuracy, the label-to-model latency and the answered ids;
- notes every label request of the group as pending (its own too, read back);
- at start-up, replays both topics from the checkpoint's positions (or from
  the start) up to where they ended then: until that is done the service
  takes no label, so a restarted replica knows every outstanding request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from streamal.core.learner import ActiveLearner
from streamal.service.errors import InvalidMessage
from streamal.service.messages import parse_label_request, parse_training_record, rfc3339
from streamal.service.metrics import Metrics
from streamal.service.pending import PendingRequests
from streamal.service.records import Partition, Record

log = logging.getLogger("streamal.service")


def epoch(value: Any) -> float | None:
    """Seconds since the epoch of a datetime or an RFC 3339 string; ``None`` if it is neither."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


class Changelog:
    """The log side of one replica (see the module docstring)."""

    def __init__(self, source: Any, learner: ActiveLearner, pending: PendingRequests, metrics: Metrics,
                 *, topic_training: str, topic_label_requests: str, max_message_bytes: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.source = source
        #: The learner the training records go to (the service may replace it at start-up).
        self.learner = learner
        self.pending = pending
        self.metrics = metrics
        self.topic_training = topic_training
        self.topic_label_requests = topic_label_requests
        self.max_message_bytes = max_message_bytes
        self.clock = clock
        self._target: dict[Partition, int] = {}
        #: The log was read up to where it ended at start-up.
        self.replayed = False
        #: Labeled examples predicted before they were learned, and how many of those were right.
        self.labeled_seen = 0
        self.labeled_correct = 0
        #: Ids of the pseudo-labels this replica produced and has not read back yet (they count against the cap).
        self.pseudo_in_flight: set[str] = set()

    def start(self, positions: Mapping[str, Mapping[int, int]]) -> None:
        """Seek every partition to ``positions`` (topic → partition → offset; 0 if absent) and replay."""
        assigned = self.source.assignment()
        for topic, partition in assigned:
            self.source.seek(topic, partition, positions.get(topic, {}).get(partition, 0))
        self._target = self.source.end_offsets(assigned)
        self.read(0.0)

    def positions(self) -> dict[str, dict[int, int]]:
        """Where the log has been read to, for a checkpoint."""
        out: dict[str, dict[int, int]] = {}
        for topic, partition in self.source.assignment():
            out.setdefault(topic, {})[partition] = self.source.position(topic, partition)
        return out

    def read(self, timeout_s: float = 0.0) -> int:
        """Learn every new training record; note every new label request. Returns records read."""
        total = 0
        while True:
            records = self.source.poll(timeout_s, 5000)
            if not records:
                break
            total += len(records)
            for record in records:
                if record.topic == self.topic_training:
                    self._learn(record)
                elif record.topic == self.topic_label_requests:
                    self._note_request(record)
            timeout_s = 0.0
        if not self.replayed:
            self.replayed = all(self.source.position(t, p) >= end for (t, p), end in self._target.items())
        self.metrics.model_version.set(self.learner.n_learned)
        if self.labeled_seen:
            self.metrics.accuracy.set(self.labeled_correct / self.labeled_seen)
        return total

    def catch_up(self, wait_s: float = 0.05, max_s: float = 10.0) -> None:
        """Read up to the log's end offsets as the broker gives them now (at most ``max_s``).

        A label's request was acknowledged (``acks=all``) before anyone could
        answer it, so it lies below the end offsets read after the label
        arrived: one ListOffsets request bounds the read, where waiting for a
        0.5 s poll to come back empty cost every such step half a second
        (a trickle of 1 unknown-id label per 100 instances halved the
        throughput: benchmarks/unknown_labels.py). Tansu can report ends that
        lag the real ones right after fast producing (DESIGN section 6): a
        label for a request in that lag is counted ``orphaned`` there.
        """
        deadline = time.monotonic() + max_s
        try:
            ends = self.source.end_offsets(self.source.assignment())
        except Exception as exc:  # the broker did not say: read until a 0.5 s poll finds nothing, as before
            log.debug("end offsets unavailable, reading the log until it is quiet: %s", exc)
            while self.read(0.5) and time.monotonic() < deadline:
                pass
            return
        while time.monotonic() < deadline:
            if all(self.source.position(t, p) >= end for (t, p), end in ends.items()):
                return
            self.read(wait_s)

    def _learn(self, record: Record) -> None:
        try:
            example = parse_training_record(record.value, self.max_message_bytes)
        except InvalidMessage as exc:  # another writer's bad record: skip it, never stop
            self.metrics.rejected.labels(record.topic, exc.reason).inc()
            if self.pseudo_in_flight and record.key:  # one of ours that cannot be read back: no longer in flight
                self.pseudo_in_flight.discard(record.key.decode("utf-8", "replace"))
            return
        features = dict(example.features)
        learner = self.learner
        if example.source == "pseudo":
            self._learn_pseudo(record, example.id, features, example.label)
            return
        try:
            if learner.task == "classification" and not learner.cold:
                correct = learner.predict_one(features) == example.label
                self.labeled_seen += 1
                self.metrics.labeled_seen.inc()
                if correct:
                    self.labeled_correct += 1
                    self.metrics.labeled_correct.inc()
            learner.learn(features, example.label)
        except (ArithmeticError, ValueError) as exc:  # extreme numbers a River model cannot learn: skip, never stop
            self.metrics.rejected.labels(record.topic, "unlearnable").inc()
            log.warning("training record %s@%d not learned: %s: %s", record.topic, record.offset,
                        type(exc).__name__, exc, extra={"instance_id": example.id})
        self.pending.mark_joined(example.id)
        labeled_at = epoch(example.labeled_at)
        if labeled_at is not None and self.replayed:
            self.metrics.learn_latency.observe(max(0.0, self.clock() - labeled_at))

    def _learn_pseudo(self, record: Record, id_: str, features: dict[str, Any], label: Any) -> None:
        """Learn a pseudo-label: as a training record, counted apart; never marks its id as answered.

        A person's label for the same id (unsolicited) still trains the model
        afterwards: a pseudo-label is no answer.
        """
        self.pseudo_in_flight.discard(id_)
        try:
            self.learner.learn(features, label, pseudo=True)
        except (ArithmeticError, ValueError) as exc:
            self.metrics.rejected.labels(record.topic, "unlearnable").inc()
            log.warning("training record %s@%d not learned: %s: %s", record.topic, record.offset,
                        type(exc).__name__, exc, extra={"instance_id": id_})

    def _note_request(self, record: Record) -> None:
        key = record.key.decode("utf-8", "replace") if record.key else None
        again = False
        if key is not None and (key in self.pending or self.pending.was_joined(key)):
            if self.replayed or key not in self.pending:
                return  # our own request read back, or one already answered: nothing to parse
            again = True  # rebuilding: a second request for a pending id re-asked it after it expired
        try:
            request = parse_label_request(record.value, self.max_message_bytes)
        except InvalidMessage as exc:  # another writer's bad record: counted, never stops the loop
            self.metrics.rejected.labels(record.topic, exc.reason).inc()
            return
        requested_at = epoch(request.requested_at) or self.clock()
        if again:
            self.pending.renew(request.id, requested_at, rfc3339(requested_at))
        else:
            self.pending.add(request.id, request.features, requested_at, rfc3339(requested_at))
