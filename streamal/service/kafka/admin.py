"""Topics: whether a broker answers, partition counts, creating topics co-partitioned, checking the layout."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import kafka.errors
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from streamal.service.errors import KafkaAdapterError, TopicLayoutError
from streamal.service.kafka.access import check_access
from streamal.service.kafka.configuration import ADMIN_TIMEOUT_MS, CLIENT_ID, client_config, connect, topic_names
from streamal.service.settings import Settings


def _admin(settings: Settings) -> KafkaAdminClient:
    return connect(KafkaAdminClient, {**client_config(settings), "request_timeout_ms": ADMIN_TIMEOUT_MS})


def broker_answers(bootstrap: str, timeout_s: float = 2.0, **security: Any) -> bool:
    """Whether a Kafka-protocol broker at ``bootstrap`` answers a metadata request.

    Raises :class:`~streamal.service.errors.KafkaAccessError` if it answers but
    refuses the ``security`` settings (authentication, TLS).
    """
    return cluster_id(bootstrap, timeout_s, **security) is not None


def cluster_id(bootstrap: str, timeout_s: float = 2.0, **security: Any) -> str | None:
    """The cluster id the broker at ``bootstrap`` reports, ``None`` if it does not answer;
    :class:`~streamal.service.errors.KafkaAccessError` if it refuses the ``security`` settings."""
    ms = max(1, int(timeout_s * 1000))
    check_access({"bootstrap_servers": bootstrap.split(","), **security})  # its own, longer bound
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
