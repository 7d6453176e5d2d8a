"""The Kafka adapter: the only module of streamal that imports kafka-python.

It stays thin: client factories with streamal's settings (manual commits,
``acks=all``, Kafka's default murmur2 partitioner, tuned fetches), topic
creation with co-partitioning, and the plain values of
:mod:`streamal.service.records`, so that nothing else needs kafka-python types. Every error
it raises is a :class:`~streamal.service.errors.KafkaAdapterError` carrying the
topic, partition and offset concerned where known.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Self

import kafka.errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata

from streamal.service.errors import CommitError, DeliveryError, KafkaAdapterError, TopicLayoutError
from streamal.service.partitioning import partition_for_key  # what the producer's murmur2 gives
from streamal.service.records import Delivered, Partition, Record
from streamal.service.settings import Settings

__all__ = [
    "Delivered",
    "KafkaSink",
    "KafkaSource",
    "Record",
    "broker_answers",
    "check_copartitioning",
    "cluster_id",
    "consumer_config",
    "ensure_topics",
    "group_consumer",
    "partition_counts",
    "partition_for_key",
    "producer",
    "producer_config",
    "reader",
    "topic_names",
]

CLIENT_ID: Final = "streamal"

# Fetch tuning, measured against Tansu (the local broker) with kafka-python 3.0.12
# on a 2-core machine. Draining a 50k-record backlog runs at ~37k records/s with
# kafka-python's defaults and with any mix of fetch_max_wait_ms 10/100/500,
# max_poll_records 500/5000 and 1/8 MiB partition fetches: Python decoding is
# the limit, not the fetch settings. What does matter on Tansu:
# - fetch_max_wait_ms: Tansu answers a fetch with what it read within this
#   wait: 0 returns no records at all (a consumer never advances) and 10 ms
#   returns partial batches. 100 ms bounds the time a poll can sit on an idle
#   partition while keeping fetches full.
# - max_partition_fetch_bytes: at least one maximal message (with headroom).
# Joining a group is what is slow on Tansu: the JoinGroup answer comes after
# half the session timeout (measured: 1 s at 2 s, 3 s at 6 s, 5 s at 10 s,
# 10 s at 20 s), so kafka-python's 45 s default would cost ~22 s per join.
FETCH_MAX_WAIT_MS: Final = 100
MIN_PARTITION_FETCH_BYTES: Final = 1024 * 1024
# Producer: a few milliseconds of linger batch a burst of label requests into
# one request without adding noticeable latency; large batches, because
# kafka-python wakes its sender thread for every new batch (a syscall and a
# GIL hand-over): with 1 MiB instead of 16 KiB a send of a 700-byte label
# request costs 15 µs instead of 34 µs on the development machine.
LINGER_MS: Final = 5
BATCH_BYTES: Final = 1024 * 1024
#: How long admin and readiness requests may take before they count as failed.
ADMIN_TIMEOUT_MS: Final = 10_000


def topic_names(settings: Settings) -> list[str]:
    """The five topics of streamal, instances first."""
    return [
        settings.topic_instances,
        settings.topic_label_requests,
        settings.topic_labels,
        settings.topic_training,
        settings.topic_dead_letter,
    ]


# ---------------------------------------------------------------------- configuration


def _client_config(settings: Settings) -> dict[str, Any]:
    return {
        "bootstrap_servers": settings.bootstrap_list,
        "client_id": CLIENT_ID,
        **settings.kafka_security_kwargs(),
    }


def consumer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """kafka-python consumer arguments: manual commits, earliest start, tuned fetches.

    Pass ``max_records`` to :meth:`KafkaSource.poll` to size a scoring batch.
    """
    session = settings.session_timeout_ms
    config = {
        **_client_config(settings),
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",  # a new group reads the topic from its start
        "allow_auto_create_topics": False,  # topics are created co-partitioned, never implicitly
        "session_timeout_ms": session,
        # Kafka wants heartbeats well inside the session: a third of it, at most the usual 3 s.
        "heartbeat_interval_ms": max(100, min(3000, session // 3)),
        "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
        "max_partition_fetch_bytes": max(MIN_PARTITION_FETCH_BYTES, 2 * settings.max_message_bytes),
    }
    config.update(overrides)
    return config


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """kafka-python producer arguments: acks from all in-sync replicas, default partitioner."""
    config = {
        **_client_config(settings),
        "acks": "all",
        "allow_auto_create_topics": False,
        "linger_ms": LINGER_MS,
        "batch_size": BATCH_BYTES,
        # A label request carries an instance (up to max_message_bytes) plus the
        # prediction; leave room for both.
        "max_request_size": max(1_048_576, 2 * settings.max_message_bytes),
    }
    config.update(overrides)
    return config


# ---------------------------------------------------------------------- consuming


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


class _Closing:
    """``with`` closes the client."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class KafkaSource(_Closing):
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
        """Leave the group and close the connections; never commits."""
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
    consumer = _connect(KafkaConsumer, config)
    consumer.subscribe(list(topics), listener=_Listener(on_assign, on_revoke))
    return KafkaSource(consumer)


def reader(settings: Settings, topics: Sequence[str], **overrides: Any) -> KafkaSource:
    """A consumer outside any group that reads every partition of ``topics`` from the start.

    For replaying the training topic into a model, and for tests.
    """
    consumer = _connect(KafkaConsumer, consumer_config(settings, group_id=None, **overrides))
    partitions = []
    for topic in topics:
        numbers = consumer.partitions_for_topic(topic)
        if not numbers:
            consumer.close()
            raise TopicLayoutError("topic does not exist", topic=topic)
        partitions += [TopicPartition(topic, p) for p in sorted(numbers)]
    consumer.assign(partitions)
    return KafkaSource(consumer)


# ---------------------------------------------------------------------- producing


class KafkaSink(_Closing):
    """A producer whose :meth:`flush` says whether every record since the last flush was stored."""

    def __init__(self, producer: KafkaProducer) -> None:
        self.client = producer
        self._pending: list[tuple[str, Any]] = []

    def send(self, topic: str, value: bytes | None, key: str | bytes | None = None) -> None:
        """Queue a record; ``key`` (an instance id) is UTF-8 encoded and picks the partition."""
        data = key.encode("utf-8") if isinstance(key, str) else key
        try:
            future = self.client.send(topic, value=value, key=data)
        except kafka.errors.KafkaError as exc:
            raise DeliveryError(f"send failed: {exc}", topic=topic) from exc
        self._pending.append((topic, future))

    def flush(self, timeout_s: float | None = None) -> list[Delivered]:
        """Wait until the broker acknowledged every queued record; where each one landed.

        Raises :class:`DeliveryError` for the first record that was not stored;
        offsets depending on these records must then not be committed.
        """
        try:
            self.client.flush(timeout=timeout_s)
        except kafka.errors.KafkaError as exc:  # timed out: the records stay pending
            raise DeliveryError(f"flush did not finish: {exc}") from exc
        pending, self._pending = self._pending, []
        delivered = []
        for topic, future in pending:
            try:
                meta = future.get(timeout=0)
            except kafka.errors.KafkaError as exc:
                raise DeliveryError(f"record not stored: {exc}", topic=topic) from exc
            delivered.append(Delivered(meta.topic, meta.partition, meta.offset))
        return delivered

    def close(self, timeout_s: float | None = None) -> None:
        """Send what is queued, then close."""
        self.client.close(timeout=timeout_s)


def producer(settings: Settings, **overrides: Any) -> KafkaSink:
    """A producer with ``acks=all`` and Kafka's default (murmur2) partitioner."""
    return KafkaSink(_connect(KafkaProducer, producer_config(settings, **overrides)))


# ---------------------------------------------------------------------- topics


def _connect(client_class: type, config: dict[str, Any]) -> Any:
    try:
        return client_class(**config)
    except kafka.errors.KafkaError as exc:
        raise KafkaAdapterError(
            f"cannot reach Kafka at {','.join(config['bootstrap_servers'])}: {exc}"
        ) from exc


def _admin(settings: Settings) -> KafkaAdminClient:
    return _connect(KafkaAdminClient, {**_client_config(settings), "request_timeout_ms": ADMIN_TIMEOUT_MS})


def broker_answers(bootstrap: str, timeout_s: float = 2.0, **security: Any) -> bool:
    """Whether a Kafka-protocol broker at ``bootstrap`` answers a metadata request."""
    return cluster_id(bootstrap, timeout_s, **security) is not None


def cluster_id(bootstrap: str, timeout_s: float = 2.0, **security: Any) -> str | None:
    """The cluster id the broker at ``bootstrap`` reports, ``None`` if it does not answer."""
    ms = max(1, int(timeout_s * 1000))
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap.split(","),
            client_id=CLIENT_ID,
            request_timeout_ms=ms,
            bootstrap_timeout_ms=ms,
            **security,
        )
    except Exception:  # any failure means "not (yet) answering"
        return None
    try:
        return str(admin.describe_cluster()["cluster_id"])
    except Exception:
        return None
    finally:
        admin.close()


def partition_counts(settings: Settings, topics: Iterable[str] | None = None) -> dict[str, int | None]:
    """Partition count of each topic (default: streamal's five); ``None`` for a missing topic."""
    names = list(topics) if topics is not None else topic_names(settings)
    admin = _admin(settings)
    try:
        return _partition_counts(admin, names)
    finally:
        admin.close()


def _partition_counts(admin: KafkaAdminClient, names: list[str]) -> dict[str, int | None]:
    try:
        existing = set(admin.list_topics())
        found = admin.describe_topics([n for n in names if n in existing]) if existing & set(names) else []
    except kafka.errors.KafkaError as exc:
        raise KafkaAdapterError(f"reading the topic layout failed: {exc}") from exc
    counts: dict[str, int | None] = dict.fromkeys(names)
    for topic in found:
        if topic["error_code"] == 0:
            counts[topic["name"]] = len(topic["partitions"])
    return counts


def check_copartitioning(settings: Settings, layout: Mapping[str, int | None] | None = None) -> int:
    """The partition count shared by the instances and labels topics.

    Raises :class:`TopicLayoutError` when one is missing or their counts
    differ: an instance and its label (same key) must land on the same
    partition number, so that the replica that asked for a label receives it.
    """
    instances, labels = settings.topic_instances, settings.topic_labels
    if layout is None:
        layout = partition_counts(settings, [instances, labels])
    for topic in (instances, labels):
        if layout.get(topic) is None:
            raise TopicLayoutError(
                "topic does not exist; create it or set STREAMAL_CREATE_TOPICS=true", topic=topic
            )
    n_instances, n_labels = layout[instances], layout[labels]
    if n_instances != n_labels:
        raise TopicLayoutError(
            f"topics {instances!r} ({n_instances} partitions) and {labels!r} ({n_labels} partitions) "
            "are not co-partitioned: they must have the same partition count, so that an instance "
            "and its label land on the same partition number",
            topic=labels,
        )
    assert n_instances is not None
    return n_instances


def ensure_topics(settings: Settings, *, timeout_s: float = 30.0) -> dict[str, int]:
    """Create missing topics (if ``STREAMAL_CREATE_TOPICS``) and check co-partitioning.

    New topics get the partition count of an existing instances or labels
    topic, else ``STREAMAL_PARTITIONS`` -- except the training topic, which
    gets one partition: every replica must learn the same examples in the
    same order. Returns each topic's partition count.
    """
    names = topic_names(settings)
    admin = _admin(settings)
    try:
        layout = _partition_counts(admin, names)
        missing = [name for name in names if layout[name] is None]
        if missing and not settings.create_topics:
            raise TopicLayoutError(
                f"missing topics {', '.join(missing)} and STREAMAL_CREATE_TOPICS is false",
                topic=missing[0],
            )
        if missing:
            shared = layout[settings.topic_instances] or layout[settings.topic_labels] or settings.partitions
            new = [
                # replication_factor=-1: the broker's default (KIP-464)
                NewTopic(name, 1 if name == settings.topic_training else shared, -1)
                for name in missing
            ]
            _create(admin, new)
            layout = _wait_for_topics(admin, names, timeout_s)
    finally:
        admin.close()
    check_copartitioning(settings, layout)
    return {name: count for name, count in layout.items() if count is not None}


def _create(admin: KafkaAdminClient, topics: list[NewTopic]) -> None:
    for topic in topics:  # one by one: another replica may be creating some of them now
        try:
            admin.create_topics([topic])
        except kafka.errors.TopicAlreadyExistsError:
            pass
        except kafka.errors.KafkaError as exc:
            raise TopicLayoutError(f"creating the topic failed: {exc}", topic=topic.name) from exc


def _wait_for_topics(admin: KafkaAdminClient, names: list[str], timeout_s: float) -> dict[str, int | None]:
    deadline = time.monotonic() + timeout_s
    while True:
        layout = _partition_counts(admin, names)
        missing = [name for name, count in layout.items() if count is None]
        if not missing:
            return layout
        if time.monotonic() > deadline:
            raise TopicLayoutError(f"topic not visible {timeout_s:g} s after creation", topic=missing[0])
        time.sleep(0.1)
