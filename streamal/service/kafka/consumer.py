"""Consuming: the group consumer of the instances and labels topics, and readers outside any group."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import kafka.errors
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata

from streamal.service.errors import CommitError, KafkaAdapterError, TopicLayoutError
from streamal.service.kafka.configuration import Closing, connect, consumer_config
from streamal.service.records import Partition, Record
from streamal.service.settings import Settings


class _Listener(ConsumerRebalanceListener):
    def __init__(
        self,
        on_assign: Callable[[set[Partition]], None] | None,
        on_revoke: Callable[[set[Partition]], None] | None,
    ) -> None:
        self._on_assign = on_assign
        self._on_revoke = on_revoke

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        if self._on_revoke is not None:
            self._on_revoke({(tp.topic, tp.partition) for tp in revoked})

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        if self._on_assign is not None:
            self._on_assign({(tp.topic, tp.partition) for tp in assigned})


class KafkaSource(Closing):
    """A consumer that hands out :class:`Record` values and commits only when told to."""

    def __init__(self, consumer: KafkaConsumer) -> None:
        self.client = consumer  # escape hatch for what the adapter does not cover

    def poll(self, timeout_s: float = 1.0, max_records: int | None = None) -> list[Record]:
        """Records fetched within ``timeout_s``, in offset order within each partition."""
        try:
            batches = self.client.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        except kafka.errors.KafkaError as exc:
            raise KafkaAdapterError(f"poll failed: {exc}") from exc
        # ConsumerRecords have Record's attributes: passed through, not copied.
        return [r for records in batches.values() for r in records]

    def commit(self, offsets: Mapping[Partition, int]) -> None:
        """Commit, for each partition, the offset of the next record to read (last processed + 1)."""
        if not offsets:
            return
        request = {
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
            for (topic, partition), offset in offsets.items()
        }
        try:
            self.client.commit(request)
        except kafka.errors.KafkaError as exc:
            (topic, partition), offset = next(iter(offsets.items()))
            where = "" if len(offsets) == 1 else f" and {len(offsets) - 1} more partitions"
            raise CommitError(
                f"offset commit failed{where}: {exc}", topic=topic, partition=partition, offset=offset
            ) from exc

    def committed(self, topic: str, partition: int) -> int | None:
        """The group's committed offset of a partition, ``None`` when there is none."""
        try:
            return self.client.committed(TopicPartition(topic, partition))
        except kafka.errors.KafkaError as exc:
            raise KafkaAdapterError(
                f"reading the committed offset failed: {exc}", topic=topic, partition=partition
            ) from exc

    def position(self, topic: str, partition: int) -> int:
        """The offset of the next record this consumer will return for an assigned partition."""
        try:
            return self.client.position(TopicPartition(topic, partition))
        except kafka.errors.KafkaError as exc:
            raise KafkaAdapterError(f"no position: {exc}", topic=topic, partition=partition) from exc

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Read an assigned partition from ``offset`` on."""
        try:
            self.client.seek(TopicPartition(topic, partition), offset)
        except (kafka.errors.KafkaError, ValueError) as exc:  # ValueError: unassigned or negative
            raise KafkaAdapterError(
                f"seek failed: {exc}", topic=topic, partition=partition, offset=offset
            ) from exc

    def assignment(self) -> set[Partition]:
        """The partitions this consumer currently reads."""
        return {(tp.topic, tp.partition) for tp in self.client.assignment()}

    def end_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """Offsets after the last record. Approximate on Tansu right after fast producing."""
        tps = [TopicPartition(t, p) for t, p in partitions]
        try:
            ends = self.client.end_offsets(tps)
        except kafka.errors.KafkaError as exc:
            raise KafkaAdapterError(f"reading end offsets failed: {exc}") from exc
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    def close(self) -> None:
        """Leave the group and close the connections; never commits.

        A static member (``group_instance_id``) leaves too. kafka-python
        3.0.12, like the Java client before KIP-1092, sends no LeaveGroup for
        one, so on SIGTERM its partitions wait for it: for the whole restart
        (measured 6-12 s on a loaded 2-core machine), or for the session
        timeout when it does not come back. Leaving hands them to the other
        replicas within a heartbeat (0.2-1.2 s); a replica killed without
        ``close`` still takes them back at once when it returns under the same
        id (benchmarks/restart.py). Reaches into the coordinator: its
        ``is_dynamic_member`` only gates this LeaveGroup, which then carries
        the instance id (LeaveGroup v3+).
        """
        coordinator = getattr(self.client, "_coordinator", None)
        if getattr(coordinator, "group_id", None) is not None and hasattr(coordinator, "is_dynamic_member"):
            coordinator.is_dynamic_member = lambda: True
        self.client.close(autocommit=False)


def group_consumer(
    settings: Settings,
    topics: Sequence[str],
    *,
    group_id: str | None = None,
    on_assign: Callable[[set[Partition]], None] | None = None,
    on_revoke: Callable[[set[Partition]], None] | None = None,
    **overrides: Any,
) -> KafkaSource:
    """A consumer in the group ``group_id`` (default: ``settings.group_id``) subscribed to ``topics``.

    ``on_revoke`` runs before partitions are taken away (flush and commit
    there), ``on_assign`` after new ones arrive; both get ``{(topic, partition)}``.
    """
    config = consumer_config(settings, group_id=group_id or settings.group_id, **overrides)
    consumer = connect(KafkaConsumer, config)
    # The topics' metadata first: Apache Kafka answers a JoinGroup within
    # milliseconds, and a join made before the consumer knows the topics gets
    # no partitions; kafka-python 3.0.12 then starts a second join that a short
    # poll can leave unfinished and never picks up again, so the member holds
    # no partitions for good (seen in 3 of 5 integration runs). Tansu answers a
    # join only after half the session timeout, which hid this.
    for topic in topics:
        consumer.partitions_for_topic(topic)
    _finish_joins_in_flight(consumer)
    consumer.subscribe(list(topics), listener=_Listener(on_assign, on_revoke))
    return KafkaSource(consumer)


def _finish_joins_in_flight(consumer: KafkaConsumer) -> None:
    """Make kafka-python 3.0.12 finish a group join a short poll left in flight.

    A poll whose timeout ends during a JoinGroup leaves the join task running
    for the next poll to await, but the next poll awaits it only if the
    coordinator still *needs* a rejoin, which a leader's own assignment can
    have reset meanwhile: the finished join is then never picked up,
    heartbeats stay off and the member expires holding no partitions (seen on
    Apache Kafka, which answers joins within milliseconds, in 3 of 5
    integration runs). A join in flight counts as needing one. Reaches into
    the client's coordinator: this module is the one place that knows
    kafka-python.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None or not hasattr(coordinator, "_join_task"):
        return  # another kafka-python: nothing to mend
    need_rejoin = coordinator.need_rejoin
    coordinator.need_rejoin = lambda: coordinator._join_task is not None or need_rejoin()


#: How long a reader waits for a topic missing from the metadata: a topic created a moment ago may not be
#: in the metadata of the broker answering yet (seen once in 8 start-ups right after ``streamal check``).
TOPIC_WAIT_S = 3.0


def reader(settings: Settings, topics: Sequence[str], **overrides: Any) -> KafkaSource:
    """A consumer outside any group that reads every partition of ``topics`` from the start.

    For replaying the training topic into a model, and for tests. A topic
    missing from the metadata is looked up again for up to
    :data:`TOPIC_WAIT_S` before :class:`TopicLayoutError`.
    """
    consumer = connect(KafkaConsumer, consumer_config(settings, group_id=None, **overrides))
    partitions = []
    for topic in topics:
        numbers = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + TOPIC_WAIT_S
        while not numbers and time.monotonic() < deadline:
            time.sleep(0.2)
            numbers = consumer.partitions_for_topic(topic)  # asks the cluster again when it is not cached
        if not numbers:
            consumer.close()
            raise TopicLayoutError("topic does not exist", topic=topic)
        partitions += [TopicPartition(topic, p) for p in sorted(numbers)]
    consumer.assign(partitions)
    return KafkaSource(consumer)
