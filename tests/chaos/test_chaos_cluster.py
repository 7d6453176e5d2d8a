"""3. A 3-node Apache Kafka cluster loses the leader of the labels, instances and training partitions in turn.

Replication factor 3, ``min.insync.replicas=2``, and every streamal producer
(and the annotator, with streamal's producer settings) uses ``acks=all``
(``streamal/service/kafka/configuration.py``): an acknowledged record is on
two nodes at least, so killing any one node loses nothing. Under load, the
leader of partition 0 of the labels topic, then of the instances topic, then
of the training topic is SIGKILLed, stays down a seeded while, and is
restarted; the next kill waits until every partition is fully in sync again
(two nodes down at once would stop ``acks=all`` writes, by design).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from apache_kafka import ApacheKafkaCluster
from harness import Annotator, Feeder, Replica, Scraper
from helpers import wait_until
from invariants import check_rates, settle

from streamal.apps.datasets import load
from streamal.service import kafka
from streamal.service.settings import Settings

CHAOS = "cluster"
PARTITIONS = 3
SEED = 3


def _in_sync(cluster: ApacheKafkaCluster, topics: list[str]) -> bool:
    """Whether every partition of ``topics`` has a leader and all three replicas in sync."""
    admin = cluster.admin(request_timeout_ms=5000)
    try:
        described = admin.describe_topics(topics)
    except Exception:  # noqa: BLE001 -- a node down or electing: not in sync yet
        return False
    finally:
        admin.close()
    return all(state["leader_id"] >= 0 and len(state["isr_nodes"]) == cluster.n
               for topic in described for state in topic.get("partitions") or [])


@pytest.mark.chaos
@pytest.mark.integration
def test_leaders_killed_in_turn_lose_no_label(three_nodes: ApacheKafkaCluster, chaos_settings: Callable[..., Settings],
                                              scale, figures, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(SEED)
    cluster = three_nodes
    settings = chaos_settings(cluster.bootstrap, partitions=PARTITIONS)
    assert kafka.producer_config(settings)["acks"] == "all"
    dataset = load("sea", limit=200_000)
    replicas = [Replica(name, settings, tmp_path / name) for name in ("a", "b")]
    topics = [settings.topic_labels, settings.topic_instances, settings.topic_training]
    producer: Feeder | None = None
    kills: list[dict[str, object]] = []
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_ready(120)
        all_topics = kafka.topic_names(settings)
        wait_until(lambda: _in_sync(cluster, all_topics), 60, "the topics to be in sync")
        with Scraper(replicas), Annotator(settings, dataset, withhold=scale.withheld) as annotator:
            producer = Feeder(settings, dataset, scale.cluster_rate).start()

            def failed() -> str | None:
                return next((r.process.failed() for r in replicas if r.process.failed()), None) or annotator.failed()

            wait_until(lambda: annotator.acknowledged(), 60, "labels to flow", failed=failed)
            for _ in range(scale.cluster_rounds):
                for topic in topics:
                    leader = cluster.leader(topic, 0)
                    down_s = rng.uniform(*scale.cluster_down_s)
                    cluster.nodes[leader].kill()
                    killed = time.monotonic()
                    new_leader = cluster.leader(topic, 0, timeout_s=60, among=lambda n, old=leader: n != old)
                    elected = time.monotonic()
                    # Under load without the old leader: new label requests and decisions go on.
                    first_new = wait_until(lambda t=killed: annotator.first_new_after(t), 60,
                                           "a new label request with a node down", interval_s=0.1, failed=failed)
                    time.sleep(max(0.0, killed + down_s - time.monotonic()))
                    cluster.restart(leader)  # the same data and ports; waits until it is a broker again
                    back = time.monotonic()
                    wait_until(lambda: _in_sync(cluster, all_topics), 90, "every partition in sync again",
                               interval_s=0.5, failed=failed)
                    kills.append({"topic": topic.rsplit(".", 1)[1], "leader": leader, "new_leader": new_leader,
                                  "election_s": round(elected - killed, 1),
                                  "to_first_new_request_s": round(first_new - killed, 2),
                                  "down_s": round(back - killed, 1), "resync_s": round(time.monotonic() - back, 1)})
            for replica in replicas:
                wait_until(lambda r=replica: r.total("instances") >= scale.rate_min_instances, 120,
                           f"replica {replica.name} to decide enough instances", interval_s=0.5, failed=failed)
            sent = producer.stop()
            verdict = settle(settings, PARTITIONS, annotator, replicas, failed=failed)
            codes = [replica.terminate() for replica in replicas]
        check_rates(replicas, scale.budget, scale.rate_tolerance, scale.rate_min_instances, verdict)
    finally:
        if producer is not None:
            producer.halt()
        for replica in replicas:
            replica.close()
    figures.update(leader_kills_survived=len(kills), sent=sent, **verdict.figures, kills=kills,
                   replica_runs=[r.process.runs for r in replicas], sigterm_exit_codes=codes)
    assert codes == [0, 0], f"a replica did not stop cleanly: {codes}"
    assert all(r.process.runs == 1 for r in replicas), "a replica was restarted or died"
    assert verdict.figures["trained"] > 0, "no label flowed at all"
    assert not verdict.problems, "\n".join(verdict.problems)
