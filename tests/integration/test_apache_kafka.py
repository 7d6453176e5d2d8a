"""The Apache Kafka harness itself (``tests/apache_kafka.py``), over TCP: what later broker-crash
tests rely on. A single node keeps its log across a crash and a restart on the same port; in the
3-node cluster a topic has 3 replicas, and when its leader is killed another node leads and
``acks=all`` writes go on (2 in-sync replicas = ``min.insync.replicas``)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from apache_kafka import ApacheKafka, ApacheKafkaCluster
from helpers import port_released, read_topic

from streamal.service import kafka
from streamal.service.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _send(settings: Settings, ids: range) -> None:
    with kafka.producer(settings) as sink:
        for i in ids:
            sink.send(settings.topic_instances, f'{{"id": "{i}"}}'.encode(), key=str(i))
        assert len(sink.flush(timeout_s=60)) == len(ids)


@pytest.mark.timeout(120)
def test_a_node_keeps_its_log_across_a_crash_and_a_restart(settings_for: Callable[..., Settings]) -> None:
    with ApacheKafka() as node:
        settings = settings_for(bootstrap_servers=node.bootstrap, partitions=1)
        kafka.ensure_topics(settings)
        _send(settings, range(50))
        pid, bootstrap = node.pid, node.bootstrap
        assert pid is not None
        node.kill()  # SIGKILL: no clean shutdown
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        node.restart()
        assert node.pid not in (None, pid) and node.bootstrap == bootstrap
        _send(settings, range(50, 60))
        assert [r.key for r in read_topic(settings, settings.topic_instances, at_least=60)] == [
            str(i).encode() for i in range(60)
        ]
        node.stop()  # SIGTERM: a clean shutdown by pid
        assert node.pid is None and port_released(node.node.broker_port)


@pytest.mark.timeout(180)
def test_the_cluster_elects_a_new_leader_and_keeps_taking_acks_all_writes(
    cluster: ApacheKafkaCluster, settings_for: Callable[..., Settings],
) -> None:
    settings = settings_for(bootstrap_servers=cluster.bootstrap, partitions=1)
    kafka.ensure_topics(settings)  # replication factor -1: the cluster's default, 3
    topic = settings.topic_instances
    state = cluster.partition_state(topic, 0)
    assert sorted(state["replicas"]) == [0, 1, 2]
    _send(settings, range(20))

    leader = cluster.leader(topic)
    cluster.nodes[leader].kill()
    try:
        new_leader = cluster.leader(topic, among=lambda n: n != leader, timeout_s=60)
        _send(settings, range(20, 40))  # acks=all with 2 of 3 replicas in sync
    finally:
        cluster.restart(leader)
    assert new_leader != leader
    assert len(read_topic(settings, topic, at_least=40)) == 40
