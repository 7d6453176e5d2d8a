"""The service loop, broker-agnostic: poll → validate → decide → produce → flush → commit.

Two consumers feed it. The *group* source (the consumer group shared by the
replicas) reads the instances and labels topics, which are co-partitioned, so
the replica that asked for a label gets it. The *log* source
(:mod:`~streamal.service.changelog`) reads every partition of the training
and label-requests topics outside the group. One step:

1. poll the group source;
2. each label is validated and joined with its pending request
   (:mod:`~streamal.service.join`); the joined (or unsolicited) example is
   produced to the training topic — the model does not learn it yet;
3. each instance is validated; one already asked about (a pending or answered
   request: read again after a crash) is skipped and counted; the others are
   scored and the budget manager decides on a copy of its state; a label
   request is produced for each instance it asks about (pool mode: windows,
   :mod:`~streamal.service.window`); with ``STREAMAL_PSEUDO_LABELS``, a
   training record with ``"source": "pseudo"`` for each unasked instance the
   model is sure enough of (:mod:`streamal.core.pseudo`) — learned, like every
   training record, only once read back in 5;
4. flush: once the broker acknowledged everything produced, the decisions are
   confirmed (the budget state moves) and the offsets of the records handled
   are committed — so an instance's offset is committed only after its label
   request is stored, a label's only after its example is. A failed flush
   moves no budget, commits nothing and leaves no checkpoint;
5. read the log: learn every training record, note every label request;
6. housekeeping (:mod:`~streamal.service.housekeeping`).

Bad records never stop the loop: each goes to the dead-letter topic with the
reason, or is counted and dropped (DESIGN section 3).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from streamal.core.budget.capacity import Capacity
from streamal.core.learner import ActiveLearner, Decision, Tentative, default_budget_manager
from streamal.core.pseudo import PseudoLabels
from streamal.service import checkpoint as ckpt
from streamal.service.changelog import Changelog
from streamal.service.errors import CommitError, InvalidMessage
from streamal.service.housekeeping import Housekeeping
from streamal.service.join import Joined, join_label
from streamal.service.codec import label_request, prediction_record, read_instance
from streamal.service.messages import Label, TrainingRecord, dead_letter, encode, parse_label, rfc3339
from streamal.service.metrics import Metrics
from streamal.service.partitioning import partition_for_key
from streamal.service.pending import PendingRequests
from streamal.service.records import Delivered, Partition, Record
from streamal.service.window import PoolWindow, Unlabeled

log = logging.getLogger("streamal.service")

#: The first millisecond of the year 10000: a record timestamp from then on is no time RFC 3339 can write.
LAST_WRITABLE_MS = 253_402_300_800_000

#: What a River model raises on valid but extreme numbers (e.g. squaring 1e200 in a Gaussian leaf).
UNSCORABLE = (ArithmeticError, ValueError)


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
    #: None: no predictions are published (the default).
    topic_predictions: str | None = None
    max_message_bytes: int = 1_048_576
    dead_letter_max_bytes: int = 65_536
    classes: tuple[str, ...] | None = None
    mode: str = "stream"
    pool_size: int = 1000
    pool_seconds: float = 60.0
    state_dir: Path = Path("./state")
    pending_max: int = 100_000
    pending_max_age_s: float = 86_400.0
    reask_expired: bool = False
    checkpoint_every_s: float = 30.0
    poll_max_records: int = 5000
    lag_every_s: float = 5.0
    labels_per_hour: float | None = None
    #: Partitions of the instances topic (the group's capacity is shared by them); None: this replica is the group.
    instance_partitions: int | None = None
    #: Pseudo-labels for confident unasked instances (stream mode, classification); the rule's parameters.
    pseudo_labels: bool = False
    pseudo_min_proba: float = 0.99
    pseudo_warmup: int = 20
    pseudo_per_label: float = 1.0

    def pseudo_rule(self) -> PseudoLabels | None:
        """The pseudo-label rule these settings describe; None when ``pseudo_labels`` is off."""
        if not self.pseudo_labels:
            return None
        return PseudoLabels(self.pseudo_min_proba, self.pseudo_warmup, self.pseudo_per_label)

    @classmethod
    def from_settings(cls, settings: Any) -> LoopConfig:
        names = {f for f in cls.__dataclass_fields__}
        values = {k: getattr(settings, k) for k in names if hasattr(settings, k)}
        if values.get("classes") is not None:
            values["classes"] = tuple(values["classes"])
        return cls(**values)


def learner_shape(learner: ActiveLearner, classes: Sequence[str] | None) -> dict[str, Any]:
    """What shaped a learner: a checkpoint with another shape is not loaded (the model is rebuilt)."""
    return {
        "task": learner.task,
        "model": str(learner.model),
        "strategy": str(learner.strategy),
        "budget_manager": str(learner.budget_manager) if learner.budget_manager is not None
        else default_budget_manager(learner.task),
        "text_features": list(learner.text_features),
        "classes": list(classes) if classes is not None else None,
    }


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
    ) -> None:
        self.config = config
        self.group = group
        self.sink = sink
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.pending = PendingRequests(config.pending_max, config.pending_max_age_s)
        if config.pseudo_labels and config.mode != "stream":
            raise ValueError("pseudo_labels: stream mode only, not pool mode")
        self.learner = learner_factory()
        self.learner.set_pseudo_labels(config.pseudo_rule())  # the settings say, also for a restored learner
        strategy = self.learner.strategy
        #: The strategy's name in label requests and metrics.
        self.strategy_name = strategy if isinstance(strategy, str) else getattr(strategy, "name", type(strategy).__name__)
        self.changelog = Changelog(
            log_source, self.learner, self.pending, self.metrics, topic_training=config.topic_training,
            topic_label_requests=config.topic_label_requests, max_message_bytes=config.max_message_bytes, clock=clock,
        )
        self.window = PoolWindow(config.pool_size, config.pool_seconds, clock)
        self.housekeeping = Housekeeping(
            self.metrics, clock, topic_instances=config.topic_instances,
            instance_partitions=config.instance_partitions,
            capacity=Capacity(config.labels_per_hour, ceiling=self.learner.budget) if config.labels_per_hour else None,
            lag_every_s=config.lag_every_s, checkpoint_every_s=config.checkpoint_every_s,
        )
        self._seq = 0
        self._caught_up = False  # the log was read to its end during this step
        self._decided_since = 0
        self._tentative: Tentative | None = None
        self._failed = False  # a flush failed: nothing more is committed or checkpointed
        self._request_counters: dict[str, Any] = {}
        self._reasking: set[str] = set()  # ids of expired requests being decided again in this step
        #: Per instances partition, the offset below which this replica decided and stored everything.
        self._decided_upto: dict[Partition, int] = {}
        #: Instances decided by this replica since it started.
        self.instances_decided = 0
        #: Called after every step (the metrics port's liveness heartbeat).
        self.on_step: Callable[[], None] | None = None
        self.metrics.budget.set(self.learner.budget_in_force)

    # -- start-up ------------------------------------------------------------
    def start(self) -> None:
        """Load the newest valid checkpoint (if it fits the settings) and replay the log after it.

        A checkpoint records what shaped its learner (:func:`learner_shape`).
        A changed budget or drift boost applies to the restored learner at
        once; a changed task, model, strategy, budget manager, text features
        or classes rebuilds the learner and the pending requests from the
        start of the training and label-requests topics instead.
        """
        fresh = self.learner
        shape = learner_shape(fresh, self.config.classes)
        restored = ckpt.load_latest(self.config.state_dir)
        positions: dict[str, dict[int, int]] = {}
        if restored is not None:
            self._seq = restored.seq  # new checkpoints come after it in either case
            old = restored.extra.get("shape")
            if old != shape:
                changed = sorted(k for k in shape if old is None or old.get(k) != shape[k])
                log.warning("the settings that shaped the learner changed (%s): rebuilding it from the training "
                            "topic instead of loading checkpoint %d",
                            ", ".join(f"{k} {(old or {}).get(k)!r} -> {shape[k]!r}" for k in changed), restored.seq)
            else:
                self.learner = restored.learner
                self.pending.load_state(restored.pending)
                positions = restored.positions
                if self.learner.budget_in_force != fresh.budget:
                    log.info("budget %g -> %g, in force now", self.learner.budget_in_force, fresh.budget)
                    self.learner.set_budget(fresh.budget)
                self.learner.drift_boost = fresh.drift_boost
                if self.learner.pseudo_labels != fresh.pseudo_labels:
                    log.info("pseudo-labels %r -> %r, in force now", self.learner.pseudo_labels, fresh.pseudo_labels)
                    self.learner.set_pseudo_labels(fresh.pseudo_labels)
                log.info("restored checkpoint %d: %d examples learned, %d pending requests",
                         restored.seq, self.learner.n_learned, len(self.pending))
        self.changelog.learner = self.learner
        self.changelog.start(positions)
        self._end_cold_start()
        self.metrics.budget.set(self.learner.budget_in_force)

    def _end_cold_start(self) -> None:
        """Once the log is replayed: labels learned or requested before mean the cold start is over.

        The budget guard's advance is sought only at the first start of the
        first replica: a replica restarted in a crash loop, or one joining a
        group that has asked already, would otherwise spend it again each time.
        """
        if self.replayed and self.learner.eager_start and (self.learner.n_learned or len(self.pending)):
            self.learner.end_eager_start()

    @property
    def replayed(self) -> bool:
        return self.changelog.replayed

    # -- one step ------------------------------------------------------------
    def step(self, timeout_s: float = 0.2) -> int:
        """Handle one poll of the group source; returns the number of records handled."""
        if not self.replayed:  # no label is taken before the pending requests are rebuilt from the log
            self.changelog.read(timeout_s)
            if not self.replayed:
                if self.on_step is not None:
                    self.on_step()
                return 0
            self._end_cold_start()
        self._caught_up = False
        reasks = self._expire()
        pool = self.config.mode == "pool"
        limit = min(self.config.poll_max_records, self.window.room) if pool else self.config.poll_max_records
        records = self.group.poll(timeout_s, limit)
        commit: dict[Partition, int] = {}
        instances: list[Unlabeled] = []
        sources: list[Record | None] = []  # the record of each instance, for a dead letter (None: a re-ask)
        topic_instances, topic_labels = self.config.topic_instances, self.config.topic_labels
        pending = self.pending
        decided_upto, redecided = self._decided_upto, 0
        for record in records:
            topic = record.topic
            if topic == topic_instances:
                if record.offset < decided_upto.get((topic, record.partition), -1):
                    # decided here already and its request stored: read again because a commit failed
                    redecided += 1
                    commit[(topic, record.partition)] = record.offset + 1
                    continue
                instance = self._validate(record, read_instance)
                if instance is not None:
                    if instance[0] in pending or pending.was_joined(instance[0]):
                        self._skip(instance[0], "already_requested" if instance[0] in pending else "already_labeled")
                    else:
                        instances.append(instance)
                        sources.append(record)
                if pool:  # committed once the window is decided
                    self.window.hold((topic, record.partition), record.offset + 1)
                else:
                    commit[(topic, record.partition)] = record.offset + 1
            elif topic == topic_labels:
                self._handle_label(record)
                commit[(topic, record.partition)] = record.offset + 1
        if redecided:
            self.metrics.skipped.labels("already_decided").inc(redecided)
            log.info("%d instances read again after a failed commit were decided here already: not again", redecided)
        if reasks:  # decided like instances (the budget pays for them), without a record: not counted as instances
            instances.extend(reasks)
            sources.extend([None] * len(reasks))
        if instances:
            started = time.perf_counter()
            if pool:
                self.window.add(instances, sources)
                decided = len(instances) - len(reasks)
            else:
                decided = self._decide_stream(instances, sources)
            self.metrics.processing.observe((time.perf_counter() - started) / len(instances))
            self.metrics.instances.inc(decided)
            self.instances_decided += decided
            self._decided_since += decided + len(reasks)
        if pool and self.window.due():
            self._decide_pool()
            commit.update(self.window.release())
        self._flush_and_commit(commit)
        self.changelog.read(0.0)
        if self.housekeeping.tick(self.learner, pending, self.group, self._decided_since):
            self.checkpoint()
        self._decided_since = 0
        self.metrics.ready.set(1.0 if self.ready else 0.0)
        if self.on_step is not None:
            self.on_step()
        return len(records)

    def _flush_and_commit(self, commit: dict[Partition, int]) -> None:
        try:
            self.sink.flush()  # raises if anything was not stored: then nothing is confirmed or committed
        except Exception:
            self._failed = True
            self._tentative = None
            raise
        topic_instances = self.config.topic_instances
        for partition, offset in commit.items():  # decided and stored, whether or not the commit goes through
            if partition[0] == topic_instances and offset > self._decided_upto.get(partition, -1):
                self._decided_upto[partition] = offset
        if self._tentative is not None:  # the broker has the requests: the budget moves now
            self.learner.confirm(self._tentative)
            self._tentative = None
            self.metrics.threshold.set(self.learner.threshold)
            self.metrics.label_rate.set(self.learner.label_rate)
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

    def _expire(self) -> list[Unlabeled]:
        """Drop the requests older than ``pending_max_age_s``; those to decide again (``reask_expired``).

        An expired request stays spent in the budget; asked again, it is
        decided like a new instance (asked only if it beats the threshold in
        force, and paid for then), and only once.
        """
        expired = self.pending.expire(self.clock())
        if not expired:
            return []
        self.metrics.labels.labels("expired").inc(len(expired))  # the group's requests, as every replica sees them
        if not self.config.reask_expired:
            return []
        owned = self._owner()  # every replica expires the group's requests; only the owner asks again
        again = [(request_id, request.features) for request_id, request in expired
                 if not request.reasked and owned(request_id)]
        self._reasking.update(request_id for request_id, _ in again)
        return again

    def _owner(self) -> Callable[[str], bool]:
        """Whether this replica holds the instances partition of an id (the one that asked about it)."""
        n, topic = self.config.instance_partitions, self.config.topic_instances
        if not n:
            return lambda request_id: True
        mine = {p for t, p in self.group.assignment() if t == topic}
        return lambda request_id: partition_for_key(request_id, n) in mine

    def _skip(self, instance_id: str, reason: str) -> None:
        self.metrics.skipped.labels(reason).inc()
        log.info("instance %s not asked again: %s", instance_id, reason.replace("_", " "),
                 extra={"instance_id": instance_id})

    # -- labels ------------------------------------------------------------
    def _handle_label(self, record: Record) -> None:
        label: Label | None = self._validate(record, parse_label)
        if label is None:
            return
        classes = self.config.classes
        if classes is not None:
            if str(label.label) not in classes:
                self._reject(record, "unknown_class", f"label {label.label!r} is not one of STREAMAL_CLASSES")
                return
            if not isinstance(label.label, str):  # 1 and "1" are the one class "1" of the list
                label = label.model_copy(update={"label": str(label.label)})
        ts = record.timestamp  # a producer may set any int64: only one RFC 3339 can write is taken
        labeled_at = ts / 1000.0 if ts and 0 < ts < LAST_WRITABLE_MS else self.clock()
        joined = join_label(label, self.pending, labeled_at, None if self._caught_up else self._catch_up)
        if not isinstance(joined, Joined):
            self.metrics.labels.labels(joined).inc()
            log.info("%s label for %s dropped", joined, label.id, extra={"instance_id": label.id})
            return
        self.metrics.labels.labels(joined.outcome).inc()
        if joined.delay_s is not None:
            self.metrics.label_delay.observe(joined.delay_s)
        if self.learner.task == "classification" and not self.learner.knows_class(label.label):
            self.metrics.labels.labels("new_class").inc()
        self.sink.send(self.config.topic_training, encode(joined.record), key=label.id)

    def _catch_up(self) -> None:
        """An unknown label id: its request may be on the log but not read yet (after a rebalance,
        or when the broker's end offsets lag). Read the log to its end, once a step."""
        self._caught_up = True
        self.changelog.catch_up()

    # -- instances: stream mode --------------------------------------------------
    def _decide_stream(self, instances: Sequence[Unlabeled], sources: Sequence[Record | None]) -> int:
        """Decide one poll (re-asks last, without a record); the number of instances decided."""
        # One poll is scored at once (same decisions as one by one: the model
        # learns only from the training topic, read between polls); the budget
        # moves once the requests are acknowledged (_flush_and_commit).
        try:
            tentative = self.learner.decide_many([features for _, features in instances])
        except UNSCORABLE:  # a valid instance the model cannot compute with (a River model overflowing)
            instances, sources = self._drop_unscorable(instances, sources)
            tentative = self.learner.decide_many([features for _, features in instances])
        self._tentative = tentative
        for instance, decision in zip(instances, tentative.decisions):
            if decision.query:
                self._request(instance, decision.score, decision.threshold, decision.prediction,
                              decision.proba, mode="stream")
        self._reasking.clear()
        real = [(instance, decision) for instance, decision, source in zip(instances, tentative.decisions, sources)
                if source is not None]
        if self.learner.pseudo_labels is not None:
            self._pseudo_label(real)
        topic = self.config.topic_predictions
        if topic is not None:
            self._publish_predictions(topic, [(x, d.prediction, d.proba, d.query) for x, d in real])
        return len(real)

    def _pseudo_label(self, decided: Sequence[tuple[Unlabeled, Decision]]) -> None:
        """A training record with ``"source": "pseudo"`` for each unasked instance the rule takes.

        Produced by the replica that owns the instance, before the flush: its
        offset is committed only once the record is stored (at least once:
        an instance read again after a crash may be pseudo-labeled again).
        The model learns it when the log is read back, on every replica, as
        any training record; until then it counts against the cap.
        """
        learner, in_flight = self.learner, self.changelog.pseudo_in_flight
        topic, send = self.config.topic_training, self.sink.send
        labeled_at = None
        produced = 0
        for (id_, features), decision in decided:
            label = learner.pseudo_label(features, decision, len(in_flight))
            if label is None or id_ in in_flight:  # the same id twice in one poll: once
                continue
            labeled_at = labeled_at or rfc3339(self.clock())
            record = TrainingRecord(id=id_, features=features, label=label, source="pseudo", labeled_at=labeled_at)
            send(topic, encode(record), key=id_)
            in_flight.add(id_)
            produced += 1
        if produced:
            self.metrics.pseudo_labels.inc(produced)

    def _publish_predictions(self, topic: str, predictions: Sequence[tuple[Unlabeled, Any, Mapping[Any, float], bool]]
                             ) -> None:
        """One record per instance on the predictions topic: ``(instance, label, proba, asked)`` each.

        Sent before the flush, so an instance's offset is committed only once
        its prediction is stored (at least once, like label requests).
        """
        version, text, send = self.learner.n_learned, rfc3339(self.clock()), self.sink.send
        for (id_, _), label, proba, asked in predictions:
            send(topic, prediction_record(id_, label, proba, version, asked, text), key=id_)
        self.metrics.predictions.inc(len(predictions))

    def _drop_unscorable(self, instances: Sequence[Unlabeled], sources: Sequence[Record | None]
                         ) -> tuple[list[Unlabeled], list[Record | None]]:
        """Dead-letter (``unscorable``) the instances the model raises on; the others and their records.

        A re-asked request (no record) the model cannot score is dropped, logged.

        Found by predicting each one (which changes nothing); the failed poll
        may already have counted some instances in the label-free feature
        statistics, a negligible tilt on a rare path.
        """
        kept: list[Unlabeled] = []
        kept_sources: list[Record | None] = []
        for instance, record in zip(instances, sources):
            try:
                self.learner.predict_one(instance[1])
            except UNSCORABLE as exc:
                error = f"the model cannot score this instance: {type(exc).__name__}: {exc}"
                if record is None:
                    log.warning("expired request %s not asked again: %s", instance[0], error)
                else:
                    self._reject(record, "unscorable", error)
            else:
                kept.append(instance)
                kept_sources.append(record)
        return kept, kept_sources

    def _request(self, instance: Unlabeled, score: float, threshold: float, prediction: Any,
                 proba: Mapping[Any, float], mode: str, batch_id: str | None = None, rank: int | None = None) -> None:
        id_, features = instance
        now = self.clock()
        text = rfc3339(now)
        reasked = id_ in self._reasking
        if not self.pending.add(id_, features, now, text, reasked=reasked):  # the same id twice in one poll
            self._skip(id_, "already_requested")
            return
        if reasked:
            self.metrics.reasked.inc()
            log.info("expired request %s asked again", id_, extra={"instance_id": id_})
        request = label_request(
            id_, features, score, self.strategy_name, threshold if math.isfinite(threshold) else 0.0,
            prediction, proba, self.learner.n_learned, mode, text, batch_id, rank,
        )
        self.sink.send(self.config.topic_label_requests, request, key=id_)
        counter = self._request_counters.get(mode)
        if counter is None:  # a labelled child costs a lock and a lookup: one per mode
            counter = self._request_counters[mode] = self.metrics.label_requests.labels(self.strategy_name, mode)
        counter.inc()

    # -- instances: pool mode ------------------------------------------------------
    def _decide_pool(self) -> None:
        batch = self.window.take(self.learner.budget_in_force)  # annotator capacity reaches pool mode too
        try:
            picked = self.learner.select([features for _, features in batch.instances], batch.k)
        except UNSCORABLE:
            kept, sources = self._drop_unscorable(batch.instances, batch.sources)
            batch = dataclasses.replace(batch, instances=kept, sources=sources)
            picked = self.learner.select([features for _, features in batch.instances], batch.k)
        topic = self.config.topic_predictions
        predict = self._predict
        for rank, i in enumerate(picked):
            self._request(batch.instances[i], 1.0, 0.0, *predict(batch.instances[i][1]), mode="pool",
                          batch_id=batch.batch_id, rank=rank)
        self._reasking.difference_update(id_ for id_, _ in batch.instances)
        if topic is not None:
            asked = set(picked)
            self._publish_predictions(topic, [(x, *predict(x[1]), i in asked) for i, (x, source)
                                              in enumerate(zip(batch.instances, batch.sources)) if source is not None])

    def _predict(self, features: Mapping[str, Any]) -> tuple[Any, Mapping[Any, float]]:
        """The prediction and class probabilities (none for regression) of one instance."""
        if self.learner.task != "classification":
            return self.learner.predict_one(features), {}
        proba = self.learner.predict_proba_one(features)
        return (max(proba, key=proba.get) if proba else None), proba

    def flush_pool(self) -> None:
        """Decide a partly filled window now (before a rebalance or at shutdown) and commit it."""
        if len(self.window):
            self._decide_pool()
        self._flush_and_commit(self.window.release())

    def read_log(self, timeout_s: float = 0.0) -> int:
        """Read the log (see :class:`~streamal.service.changelog.Changelog`); records read."""
        return self.changelog.read(timeout_s)

    @property
    def ready(self) -> bool:
        return self.replayed and bool(self.group.assignment())

    def checkpoint(self) -> Path:
        """Write the model, the log positions, the pending requests and the learner's shape atomically."""
        self._seq += 1
        extra = {"shape": learner_shape(self.learner, self.config.classes)}
        path = ckpt.save(self.config.state_dir, ckpt.Checkpoint(self._seq, self.learner, self.changelog.positions(),
                                                                 self.pending.to_state(), extra))
        self.housekeeping.last_checkpoint = self.clock()
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
            if max_instances is not None and self.instances_decided >= max_instances:
                break
            if timeout_s is not None and now - started >= timeout_s:
                break
            if idle_timeout_s is not None and now - idle_since >= idle_timeout_s:
                break

    def close(self) -> None:
        """Decide what is buffered, commit, checkpoint, and close the clients.

        After a failed flush only the clients are closed: unacknowledged work
        is neither committed nor checkpointed (it is read again on restart).
        """
        try:
            if not self._failed:
                if self.config.mode == "pool":
                    self.flush_pool()
                self.changelog.read(0.0)
                self.checkpoint()
        finally:
            self.group.close()
            self.changelog.source.close()
            self.sink.close()
