"""The service loop, broker-agnostic: poll → validate → decide → produce → flush → commit.

Two consumers feed it. The *group* source (the consumer group shared by the
replicas) reads the instances and labels topics, which are co-partitioned, so
the replica that asked for a label gets it. The *log* source reads every
partition of the training and label-requests topics outside the group, so
every replica learns the same examples in the same order and knows every
outstanding request. One step:

1. poll the group source;
2. each label is validated and joined with its pending request; the joined
   (or unsolicited) example is produced to the training topic — the model
   does not learn it yet;
3. each instance is validated and scored; the budget manager decides; a label
   request is produced for each instance it asks about (pool mode: windows);
4. flush: once the broker acknowledged everything produced, commit the
   offsets of the records handled — so an instance's offset is committed only
   after its label request is stored, a label's only after its example is;
5. read the log source: learn every training record (the only place the model
   learns), note every label request (pending requests of the whole group).

The group is first polled once the log has been read up to where it ended at
start-up, so that a restarted replica knows every outstanding request before it
takes a label; a label whose request is still unknown makes the step read the
log to its end once more before the label counts as orphaned or unsolicited.

Bad records never stop the loop: each goes to the dead-letter topic with the
reason, or is counted and dropped (DESIGN section 3).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from streamal.core.learner import ActiveLearner
from streamal.service import checkpoint as ckpt
from streamal.service.errors import CommitError, InvalidMessage
from streamal.service.messages import (
    Label,
    TrainingRecord,
    dead_letter,
    encode,
    label_request,
    parse_label,
    parse_label_request,
    parse_training_record,
    read_instance,
    rfc3339,
)
from streamal.service.capacity import Capacity
from streamal.service.metrics import Metrics
from streamal.service.pending import PendingRequests
from streamal.service.records import Delivered, Partition, Record

log = logging.getLogger("streamal.service")

#: A valid instance: ``(id, features)``.
Unlabeled = tuple[str, dict[str, Any]]


class Source(Protocol):
    def poll(self, timeout_s: float = ..., max_records: int | None = ...) -> list[Record]: ...
    def commit(self, offsets: Mapping[Partition, int]) -> None: ...
    def seek(self, topic: str, partition: int, offset: int) -> None: ...
    def position(self, topic: str, partition: int) -> int: ...
    def assignment(self) -> set[Partition]: ...
    def end_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]: ...
    def close(self) -> None: ...


class Sink(Protocol):
    def send(self, topic: str, value: bytes | None, key: str | bytes | None = ...) -> None: ...
    def flush(self, timeout_s: float | None = ...) -> list[Delivered]: ...
    def close(self, timeout_s: float | None = ...) -> None: ...


@dataclass(frozen=True)
class LoopConfig:
    """What the loop needs from the settings (the settings model maps onto it)."""

    topic_instances: str = "streamal.instances"
    topic_label_requests: str = "streamal.label-requests"
    topic_labels: str = "streamal.labels"
    topic_training: str = "streamal.training"
    topic_dead_letter: str = "streamal.dead-letter"
    max_message_bytes: int = 1_048_576
    dead_letter_max_bytes: int = 65_536
    classes: tuple[str, ...] | None = None
    mode: str = "stream"
    pool_size: int = 1000
    pool_seconds: float = 60.0
    state_dir: Path = Path("./state")
    pending_max: int = 100_000
    pending_max_age_s: float = 86_400.0
    checkpoint_every_s: float = 30.0
    poll_max_records: int = 5000
    lag_every_s: float = 5.0
    labels_per_hour: float | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> LoopConfig:
        names = {f for f in cls.__dataclass_fields__}
        values = {k: getattr(settings, k) for k in names if hasattr(settings, k)}
        if values.get("classes") is not None:
            values["classes"] = tuple(values["classes"])
        return cls(**values)


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


class Service:
    """One replica of the streamal service (see the module docstring)."""

    def __init__(
        self,
        config: LoopConfig,
        learner_factory: Callable[[], ActiveLearner],
        group: Source,
        log_source: Source,
        sink: Sink,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        strategy_name: str = "",
    ) -> None:
        self.config = config
        self.group = group
        self.log_source = log_source
        self.sink = sink
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.pending = PendingRequests(config.pending_max, config.pending_max_age_s)
        self._learner_factory = learner_factory
        self.learner = learner_factory()
        self.strategy_name = strategy_name or str(self.learner.strategy)
        self._seq = 0
        self._last_checkpoint = clock()
        self._replay_target: dict[Partition, int] = {}
        self.replayed = False
        self._pool: list[Unlabeled] = []
        self._pool_started: float | None = None
        self._pool_carry = 0.0
        self._batches = 0
        self._held: dict[Partition, int] = {}  # instance offsets to commit once their window is decided
        self._caught_up = False  # the log was read to its end during this step
        self._last_lag = 0.0
        self._lag_labels: set[Partition] = set()
        self._drifts_seen = 0
        self._decided_since = 0
        self._request_counters: dict[str, Any] = {}
        #: Annotator capacity (STREAMAL_LABELS_PER_HOUR): the budget follows it.
        self.capacity: Capacity | None = (
            Capacity(config.labels_per_hour, ceiling=self.learner.budget) if config.labels_per_hour else None
        )
        #: Called after every step (the metrics port's liveness heartbeat).
        self.on_step: Callable[[], None] | None = None
        self.metrics.budget.set(self.learner.budget)

    # -- start-up ------------------------------------------------------------
    def start(self) -> None:
        """Load the newest valid checkpoint and replay the log after it."""
        restored = ckpt.load_latest(self.config.state_dir)
        positions: dict[str, dict[int, int]] = {}
        if restored is not None:
            self.learner = restored.learner
            self.pending.load_state(restored.pending)
            self._seq = restored.seq
            positions = restored.positions
            log.info("restored checkpoint %d: %d examples learned, %d pending requests",
                     restored.seq, self.learner.n_learned, len(self.pending))
        assigned = self.log_source.assignment()
        for topic, partition in assigned:
            self.log_source.seek(topic, partition, positions.get(topic, {}).get(partition, 0))
        self._replay_target = self.log_source.end_offsets(assigned)
        self.read_log(timeout_s=0.0)
        self.metrics.model_version.set(self.learner.n_learned)

    # -- one step ------------------------------------------------------------
    def step(self, timeout_s: float = 0.2) -> int:
        """Handle one poll of the group source; returns the number of records handled."""
        if not self.replayed:  # no label is taken before the pending requests are rebuilt from the log
            self.read_log(timeout_s)
            if not self.replayed:
                if self.on_step is not None:
                    self.on_step()
                return 0
        self._caught_up = False
        limit = self.config.poll_max_records
        if self.config.mode == "pool":  # a poll never overfills the window
            limit = max(1, min(limit, self.config.pool_size - len(self._pool)))
        records = self.group.poll(timeout_s, limit)
        commit: dict[Partition, int] = {}
        instances: list[Unlabeled] = []
        topic_instances, topic_labels = self.config.topic_instances, self.config.topic_labels
        offsets = commit if self.config.mode == "stream" else self._held  # pool: committed once decided
        for record in records:
            topic = record.topic
            if topic == topic_instances:
                instance = self._validate(record, read_instance)
                if instance is not None:
                    instances.append(instance)
                offsets[(topic, record.partition)] = record.offset + 1
            elif topic == topic_labels:
                self._handle_label(record)
                commit[(topic, record.partition)] = record.offset + 1
        if instances:
            started = time.perf_counter()
            if self.config.mode == "stream":
                self._decide_stream(instances)
            else:
                self._pool.extend(instances)
                if self._pool_started is None:
                    self._pool_started = self.clock()
            self.metrics.processing.observe((time.perf_counter() - started) / len(instances))
            self.metrics.instances.inc(len(instances))
            self._decided_since += len(instances)
        if self.config.mode == "pool" and self._pool_due():
            self._decide_pool()
            commit.update(self._held)
            self._held.clear()
        self._flush_and_commit(commit)
        self.read_log(timeout_s=0.0)
        self._housekeeping()
        if self.on_step is not None:
            self.on_step()
        return len(records)

    def _flush_and_commit(self, commit: dict[Partition, int]) -> None:
        self.sink.flush()  # raises if anything was not stored: then nothing is committed
        if commit:
            try:
                self.group.commit(commit)
            except CommitError as exc:
                # The group rebalanced the partitions away: their new owner
                # re-reads these records (at-least-once; a repeated label is
                # counted as a duplicate there), so this is no reason to stop.
                self.metrics.commit_failures.inc()
                log.warning("offset commit failed, the records will be read again: %s", exc)

    # -- validation --------------------------------------------------------
    def _validate(self, record: Record, parse: Callable[[bytes | None, int], Any]) -> Any:
        try:
            return parse(record.value, self.config.max_message_bytes)
        except InvalidMessage as exc:
            self._reject(record, exc.reason, str(exc))
            return None

    def _reject(self, record: Record, reason: str, error: str) -> None:
        self.metrics.rejected.labels(record.topic, reason).inc()
        self.sink.send(
            self.config.topic_dead_letter,
            dead_letter(record.value, reason, error, record.topic, record.partition, record.offset,
                        self.config.dead_letter_max_bytes),
            key=record.key,
        )
        log.warning("dead-lettered %s[%d]@%d: %s (%s)", record.topic, record.partition, record.offset, reason, error)

    # -- labels ------------------------------------------------------------
    def _handle_label(self, record: Record) -> None:
        label: Label | None = self._validate(record, parse_label)
        if label is None:
            return
        classes = self.config.classes
        if classes is not None and str(label.label) not in classes:
            self._reject(record, "unknown_class", f"label {label.label!r} is not one of STREAMAL_CLASSES")
            return
        labeled_at = record.timestamp / 1000.0 if record.timestamp and record.timestamp > 0 else self.clock()
        request = self.pending.join(label.id)
        if request is None and not self.pending.was_joined(label.id) and not self._caught_up:
            # Its request (or joined example) may be on the log but not read yet: after a
            # rebalance, or when the broker's end offsets lag. Read the log to its end, once a step.
            self._caught_up = True
            self._catch_up_log()
            request = self.pending.join(label.id)
        if request is not None:
            outcome, features, requested_at = "joined", request.features, request.requested_at_text
            self.metrics.label_delay.observe(max(0.0, labeled_at - request.requested_at))
        elif self.pending.was_joined(label.id):
            self.metrics.labels.labels("duplicate").inc()
            log.info("duplicate label for %s dropped", label.id, extra={"instance_id": label.id})
            return
        elif label.features:
            outcome, features, requested_at = "unsolicited", dict(label.features), None
            self.pending.mark_joined(label.id)
        else:
            self.metrics.labels.labels("orphaned").inc()
            log.info("orphaned label for %s dropped", label.id, extra={"instance_id": label.id})
            return
        self.metrics.labels.labels(outcome).inc()
        if self.learner.task == "classification" and label.label not in self.learner._classes:
            self.metrics.labels.labels("new_class").inc()
        training = TrainingRecord(
            id=label.id, features=features, label=label.label, source=outcome, annotator=label.annotator,
            requested_at=requested_at, labeled_at=rfc3339(labeled_at),
        )
        self.sink.send(self.config.topic_training, encode(training), key=label.id)

    # -- instances: stream mode --------------------------------------------------
    def _decide_stream(self, instances: Sequence[Unlabeled]) -> None:
        # One poll is scored at once (same decisions as one by one: the model
        # learns only from the training topic, read between polls).
        decisions = self.learner.ask_many([features for _, features in instances])
        for instance, decision in zip(instances, decisions):
            if decision.query:
                self._request(instance, decision.score, decision.threshold, decision.prediction,
                              decision.proba, mode="stream")
        self.metrics.threshold.set(self.learner.threshold)
        self.metrics.label_rate.set(self.learner.label_rate)

    def _request(self, instance: Unlabeled, score: float, threshold: float, prediction: Any,
                 proba: Mapping[Any, float], mode: str, batch_id: str | None = None, rank: int | None = None) -> None:
        id_, features = instance
        now = self.clock()
        text = rfc3339(now)
        request = label_request(
            id_, features, score, self.strategy_name, threshold if math.isfinite(threshold) else 0.0,
            prediction, proba, self.learner.n_learned, mode, text, batch_id, rank,
        )
        self.sink.send(self.config.topic_label_requests, request, key=id_)
        self.pending.add(id_, features, now, text)
        counter = self._request_counters.get(mode)
        if counter is None:  # a labelled child costs a lock and a lookup: one per mode
            counter = self._request_counters[mode] = self.metrics.label_requests.labels(self.strategy_name, mode)
        counter.inc()

    # -- instances: pool mode ------------------------------------------------------
    def _pool_due(self) -> bool:
        if not self._pool:
            return False
        started = self._pool_started if self._pool_started is not None else self.clock()
        return len(self._pool) >= self.config.pool_size or self.clock() - started >= self.config.pool_seconds

    def _decide_pool(self) -> None:
        window, self._pool = self._pool, []
        self._pool_started = None
        wanted = self.learner.budget * len(window) + self._pool_carry
        k = int(wanted)
        self._pool_carry = wanted - k
        self._batches += 1
        batch_id = f"{int(self.clock())}-{self._batches}"
        picked = self.learner.select([features for _, features in window], k)
        for rank, i in enumerate(picked):
            instance = window[i]
            proba = self.learner.predict_proba_one(instance[1]) if self.learner.task == "classification" else {}
            prediction = max(proba, key=proba.get) if proba else None
            self._request(instance, 1.0, 0.0, prediction, proba, mode="pool", batch_id=batch_id, rank=rank)

    def flush_pool(self) -> None:
        """Decide a partly filled window now (before a rebalance or at shutdown) and commit it."""
        if self._pool:
            self._decide_pool()
        self._flush_and_commit(dict(self._held))
        self._held.clear()

    # -- the log: training examples and label requests of the whole group ------------
    def read_log(self, timeout_s: float = 0.0) -> int:
        """Learn every new training record; note every new label request. Returns records read."""
        total = 0
        while True:
            records = self.log_source.poll(timeout_s, 5000)
            if not records:
                break
            total += len(records)
            for record in records:
                if record.topic == self.config.topic_training:
                    self._learn(record)
                elif record.topic == self.config.topic_label_requests:
                    self._note_request(record)
            timeout_s = 0.0
        if not self.replayed:
            self.replayed = all(
                self.log_source.position(t, p) >= end for (t, p), end in self._replay_target.items()
            )
        self.metrics.model_version.set(self.learner.n_learned)
        return total

    def _catch_up_log(self, wait_s: float = 0.5, max_s: float = 10.0) -> None:
        """Read the log until a poll of ``wait_s`` finds nothing more (at most ``max_s``)."""
        deadline = time.monotonic() + max_s
        while self.read_log(wait_s) and time.monotonic() < deadline:
            pass

    def _learn(self, record: Record) -> None:
        try:
            example = parse_training_record(record.value, self.config.max_message_bytes)
        except InvalidMessage as exc:  # another writer's bad record: skip it, never stop
            self.metrics.rejected.labels(record.topic, exc.reason).inc()
            return
        features = dict(example.features)
        if self.learner.task == "classification" and not self.learner.cold:
            self.metrics.labeled_seen.inc()
            if self.learner.predict_one(features) == example.label:
                self.metrics.labeled_correct.inc()
        self.learner.learn(features, example.label)
        self.pending.mark_joined(example.id)
        labeled_at = _epoch(example.labeled_at)
        if labeled_at is not None and self.replayed:
            self.metrics.learn_latency.observe(max(0.0, self.clock() - labeled_at))

    def _note_request(self, record: Record) -> None:
        key = record.key.decode("utf-8", "replace") if record.key else None
        if key is not None and (key in self.pending or self.pending.was_joined(key)):
            return  # our own request read back, or one already answered: nothing to parse
        try:
            request = parse_label_request(record.value, self.config.max_message_bytes)
        except InvalidMessage:
            return
        requested_at = _epoch(request.requested_at) or self.clock()
        self.pending.add(request.id, request.features, requested_at, rfc3339(requested_at))

    # -- housekeeping ----------------------------------------------------------------
    def _housekeeping(self) -> None:
        now = self.clock()
        if self.capacity is not None:
            self.capacity.observe(self._decided_since, now)
            self._decided_since = 0
            budget = self.capacity.budget(len(self.pending), now)
            if abs(budget - self.learner._budget.budget) > 1e-9:
                self.learner._budget.set_budget(budget)
            self.metrics.budget.set(budget)
        if self.learner.drifts > self._drifts_seen:
            self.metrics.drift.inc(self.learner.drifts - self._drifts_seen)
            log.warning("drift detected in the error on labeled data (%d so far)", self.learner.drifts)
            self._drifts_seen = self.learner.drifts
        if now - self._last_lag >= self.config.lag_every_s:
            self._update_lag()
            self._last_lag = now
        expired = self.pending.expire(now)
        if expired:
            self.metrics.labels.labels("expired").inc(expired)
        self.metrics.pending.set(len(self.pending))
        self.metrics.pending_oldest.set(self.pending.oldest_age(now))
        seen = self.metrics.labeled_seen._value.get()
        if seen:
            self.metrics.accuracy.set(self.metrics.labeled_correct._value.get() / seen)
        self.metrics.ready.set(1.0 if self.ready else 0.0)
        if now - self._last_checkpoint >= self.config.checkpoint_every_s:
            self.checkpoint()

    def _update_lag(self) -> None:
        """Records behind the end of each assigned partition (approximate on Tansu, whose ends lag)."""
        assigned = self.group.assignment()
        try:
            ends = self.group.end_offsets(assigned)
        except Exception as exc:  # a metric must never stop the loop
            log.debug("end offsets unavailable: %s", exc)
            return
        for tp in self._lag_labels - assigned:
            self.metrics.lag.remove(tp[0], str(tp[1]))
        for (topic, partition), end in ends.items():
            try:
                position = self.group.position(topic, partition)
            except Exception:
                continue
            self.metrics.lag.labels(topic, str(partition)).set(max(0, end - position))
        self._lag_labels = set(assigned)

    @property
    def ready(self) -> bool:
        return self.replayed and bool(self.group.assignment())

    def checkpoint(self) -> Path:
        """Write the model, the log positions and the pending requests atomically."""
        self._seq += 1
        positions: dict[str, dict[int, int]] = {}
        for topic, partition in self.log_source.assignment():
            positions.setdefault(topic, {})[partition] = self.log_source.position(topic, partition)
        path = ckpt.save(self.config.state_dir, ckpt.Checkpoint(self._seq, self.learner, positions,
                                                                 self.pending.to_state()))
        self._last_checkpoint = self.clock()
        self.metrics.checkpoints.inc()
        return path

    # -- running -------------------------------------------------------------------
    def run(
        self,
        *,
        stop: Callable[[], bool] | None = None,
        max_instances: int | None = None,
        timeout_s: float | None = None,
        idle_timeout_s: float | None = None,
    ) -> None:
        """Step until ``stop()`` is true, ``max_instances`` were decided, or a timeout passes."""
        started = idle_since = time.monotonic()
        while True:
            handled = self.step()
            now = time.monotonic()
            if handled:
                idle_since = now
            if stop is not None and stop():
                break
            if max_instances is not None and self.metrics.instances._value.get() >= max_instances:
                break
            if timeout_s is not None and now - started >= timeout_s:
                break
            if idle_timeout_s is not None and now - idle_since >= idle_timeout_s:
                break

    def close(self) -> None:
        """Decide what is buffered, commit, checkpoint, and close the clients."""
        try:
            if self.config.mode == "pool":
                self.flush_pool()
            self.read_log(0.0)
            self.checkpoint()
        finally:
            self.group.close()
            self.log_source.close()
            self.sink.close()
