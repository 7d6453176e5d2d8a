"""Faults against a real broker over TCP: crashes, a frozen broker, and a rebalance.

- ``streamal serve`` runs as a child process and is SIGKILLed at seeded random
  points while instances and labels flow; restarted on the same state
  directory, it must lose no label (DESIGN section 4) and commit every instance.
- A service started on a label-requests topic 100,000 records deep must know
  every outstanding request before it takes a label.
- The broker process (a dedicated Apache Kafka node) is frozen with SIGSTOP for
  15 s; the service must carry on by itself once it resumes.
- Two replicas share a consumer group; the second joins while the first has
  requests outstanding; every answer must still be joined, once.

At-least-once delivery may repeat a label request after a crash; the tests
count such duplicates and print them, they do not forbid them.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest
from apache_kafka import ApacheKafka
from helpers import (
    Background,
    OracleThread,
    ServiceProcess,
    ServiceThread,
    committed_reach_ends,
    free_port,
    lost_labels,
    read_topic,
    values,
    wait_until,
)

from streamal.apps.datasets import Dataset, load
from streamal.apps.replay import produce
from streamal.service import kafka
from streamal.service.messages import Label, LabelRequest, Prediction, encode
from streamal.service.settings import Settings

integration = pytest.mark.integration
PARTITIONS = 3


# ---------------------------------------------------------------------- crashes


def _decided(service: ServiceProcess) -> float:
    return service.metrics().get(("streamal_instances_total", ()), 0.0)


@integration
@pytest.mark.timeout(240)
def test_sigkill_at_random_points_loses_no_label_and_commits_every_instance(
    settings_for: Callable[..., Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    n, rng = 2000, random.Random(20240607)
    # Where each SIGKILL lands, at seeded random times: "steady" 0-3 s after the service is ready, while
    # it keeps up with the flow; "startup" 1-5 s after the process started, whatever it is doing then:
    # starting, replaying the log, joining the group or deciding what piled up while it was down.
    kills = ["steady", "startup", "steady", "startup", "startup"]
    dataset = load("bananas", limit=n)
    # A killed member leaves the group after the session timeout: the tests' 6 s, Apache Kafka's minimum.
    settings = settings_for(partitions=PARTITIONS, budget=0.1, state_dir=tmp_path / "state",
                            metrics_port=free_port())
    service = ServiceProcess(settings, tmp_path)
    killed: list[str] = []
    with service:
        wait_until(lambda: service.ready, 60, "streamal serve to be ready", failed=service.failed)
        started = time.monotonic()
        with OracleThread(settings, dataset) as oracle:
            producer = Background(produce, settings, dataset, rate=80.0)  # ~25 s of instances
            for where in kills:
                if where == "steady":
                    wait_until(lambda: service.ready, 60, "streamal serve to be ready", failed=service.failed)
                    time.sleep(rng.uniform(0.0, 3.0))
                else:
                    time.sleep(max(0.0, service.started_at + rng.uniform(1.0, 5.0) - time.monotonic()))
                decided = _decided(service)
                assert service.failed() is None, service.failed()
                service.kill()
                killed.append(f"{where} at {time.monotonic() - started:.1f} s after {decided:.0f} decisions")
                service.start()
            assert producer.join(120) == n

            instance_records = read_topic(settings, settings.topic_instances, at_least=n)
            # Bounded waits; what they wait for is asserted below, with the report.
            wait_until(lambda: committed_reach_ends(settings, settings.topic_instances, instance_records,
                                                    PARTITIONS)[0],
                       90, "the instances' offsets to be committed", failed=service.failed, required=False)
            wait_until(lambda: not lost_labels(settings)[0], 30, "every answered label on the training topic",
                       interval_s=1.0, failed=lambda: service.failed() or oracle.failed(), required=False)
            answered = oracle.answered
        assert service.terminate() == 0, service.log_tail()

    # ---- nothing lost
    request_records = read_topic(settings, settings.topic_label_requests)
    requests = Counter(q["id"] for q in values(request_records))
    label_records = read_topic(settings, settings.topic_labels)
    labels = Counter(lab["id"] for lab in values(label_records))
    lost, trained = lost_labels(settings)
    done, got, want = committed_reach_ends(settings, settings.topic_instances, instance_records, PARTITIONS)
    done_labels, got_labels, want_labels = committed_reach_ends(settings, settings.topic_labels, label_records,
                                                                PARTITIONS)
    duplicate_requests = sum(requests.values()) - len(requests)
    report = (
        f"fault test: SIGKILL {'; '.join(killed)}. {n} instances; {len(requests)} ids asked about in "
        f"{sum(requests.values())} label requests: {duplicate_requests} duplicate label requests from "
        f"at-least-once delivery ({sum(labels.values()) - len(labels)} duplicate answers); "
        f"{len(trained)} ids on the training topic in {sum(trained.values())} records "
        f"({sum(trained.values()) - len(trained)} duplicates); {len(lost)} labels lost"
    )
    with capsys.disabled():
        print(f"\n{report}")
    # Labels must have flowed at all, or "nothing lost" would be vacuous.
    assert answered > 0 and trained, f"{report}: the oracle answered {answered} label requests"
    assert not lost, f"{report}: {sorted(lost)[:20]}"
    assert set(labels) <= set(requests), report  # the oracle answers requests only
    assert done, f"{report}: instances committed {got}, records end at {want}"
    assert done_labels, f"{report}: labels committed {got_labels}, records end at {want_labels}"
    assert duplicate_requests <= 0.5 * len(requests), report  # duplicates come only from around the crashes


@integration
@pytest.mark.timeout(120)
def test_a_restarted_service_joins_labels_whose_requests_are_deep_in_the_log(
    settings_for: Callable[..., Settings], tmp_path: Path,
) -> None:
    """Pending requests are rebuilt from the label-requests topic before any label is taken.

    100,000 outstanding requests (written by earlier runs) take the log reader
    seconds to read, longer than a group join (Apache Kafka answers the first
    JoinGroup of a new group at once, group.initial.rebalance.delay.ms=0):
    labels handed out at once must still find them.
    """
    n, answered = 100_000, 200
    settings = settings_for(partitions=PARTITIONS, state_dir=tmp_path / "state", metrics_port=0)
    kafka.ensure_topics(settings)
    template = LabelRequest(id="x", features={f"f{k}": k / 3 for k in range(20)}, score=0.5,
                            strategy="margin", threshold=0.1, prediction=Prediction(label=None, proba={}),
                            model_version=0, mode="stream", requested_at=datetime.now(timezone.utc))
    ids = [f"deep-{i}" for i in range(n)]
    picked = random.Random(7).sample(ids[: n - 100], answered - 100) + ids[n - 100:]
    with kafka.producer(settings) as sink:
        request = orjson.loads(encode(template))
        for ident in ids:
            request["id"] = ident
            sink.send(settings.topic_label_requests, orjson.dumps(request), key=ident)
        for ident in picked:
            sink.send(settings.topic_labels, encode(Label(id=ident, label="a")), key=ident)
        sink.flush(timeout_s=60)

    with ServiceThread(settings) as service:
        wait_until(lambda: sum(service.value("streamal_labels_total", outcome=o) for o in ("joined", "orphaned"))
                   >= answered, 60, "every label handled", failed=service.failed)
        assert service.value("streamal_labels_total", outcome="orphaned") == 0
        assert service.value("streamal_labels_total", outcome="joined") == answered
    trained = Counter(t["id"] for t in values(read_topic(settings, settings.topic_training, at_least=answered)))
    assert trained == Counter(picked)


# ---------------------------------------------------------------------- a frozen broker


@integration
@pytest.mark.timeout(180)
def test_the_service_recovers_by_itself_after_the_broker_froze_for_15_s(
    settings_for: Callable[..., Settings], tmp_path: Path,
) -> None:
    n = 1500
    dataset = load("bananas", limit=n)
    with ApacheKafka() as broker:  # its own broker: freezing it affects no other test
        settings = settings_for(bootstrap_servers=broker.bootstrap, partitions=PARTITIONS, budget=0.1,
                                state_dir=tmp_path / "state", metrics_port=0)
        with ServiceThread(settings) as service:
            service.wait_ready()
            with OracleThread(settings, dataset) as oracle:
                producer = Background(produce, settings, dataset, rate=150.0)  # ~10 s of instances
                wait_until(lambda: service.instances >= 300 and oracle.answered > 0, 90, "the loop to be running",
                           failed=lambda: service.failed() or oracle.failed())
                # 15 s: longer than the broker's own session with its controller (6 s), so
                # it also fences itself and comes back, and than the clients' sessions (6 s).
                broker.pause()
                try:
                    before = service.instances
                    time.sleep(15)
                    during = service.instances - before
                finally:
                    broker.resume()
                # Only what was fetched before the freeze can be decided during it (not 15 s × 150/s).
                assert during < 500, f"{during:.0f} instances decided while the broker was frozen"
                assert producer.join(120) == n

                def finished() -> bool:
                    asked = service.requests
                    return (service.instances >= n and oracle.answered >= asked
                            and service.value("streamal_model_version") >= asked)

                wait_until(finished, 90, "every instance decided and every label learned after the freeze",
                           failed=lambda: service.failed() or oracle.failed())
                instance_records = read_topic(settings, settings.topic_instances, at_least=n)
                wait_until(lambda: committed_reach_ends(settings, settings.topic_instances, instance_records,
                                                        PARTITIONS)[0],
                           60, "the instances' offsets to be committed", failed=service.failed)
        assert not lost_labels(settings)[0]
        assert len(instance_records) == n


# ---------------------------------------------------------------------- a rebalance


@integration
@pytest.mark.timeout(150)
def test_two_replicas_in_one_group_lose_no_pending_request_in_a_rebalance(
    settings_for: Callable[..., Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    n = 1200
    dataset = load("bananas", limit=n)
    settings = settings_for(partitions=PARTITIONS, budget=0.1, metrics_port=0)
    half = Dataset(dataset.name, dataset.examples[: n // 2], dataset.task,
                   [f"{dataset.name}-{i}" for i in range(n // 2)])
    rest = Dataset(dataset.name, dataset.examples[n // 2:], dataset.task,
                   [f"{dataset.name}-{i}" for i in range(n // 2, n)])
    a = ServiceThread(settings.model_copy(update={"state_dir": tmp_path / "a"}), name="replica-a")
    b = ServiceThread(settings.model_copy(update={"state_dir": tmp_path / "b"}), name="replica-b")
    with a:
        a.wait_ready()
        assert produce(settings, half) == n // 2
        wait_until(lambda: a.instances >= n // 2, 30, "replica A to decide the first half", failed=a.failed)
        asked_by_a = {q["id"] for q in values(read_topic(settings, settings.topic_label_requests,
                                                           at_least=int(a.requests)))}
        assert asked_by_a, "replica A asked for no label"
        # The second half streams in while B joins: A keeps deciding and committing through the rebalance.
        producer = Background(produce, settings, rest, rate=100.0)
        with b:
            b.wait_ready()  # the group rebalanced: B owns some partitions, A the others
            assert producer.join(60) == n - n // 2
            with OracleThread(settings, dataset) as oracle:

                def finished() -> bool:
                    asked = a.requests + b.requests
                    learned = min(a.value("streamal_model_version"), b.value("streamal_model_version"))
                    return a.instances + b.instances >= n and oracle.answered >= asked and learned >= len(
                        {q["id"] for q in values(read_topic(settings, settings.topic_label_requests, idle_polls=1))})

                wait_until(finished, 90, "both replicas to decide and learn everything", interval_s=0.5,
                           failed=lambda: a.failed() or b.failed() or oracle.failed())
                instance_records = read_topic(settings, settings.topic_instances, at_least=n)
                label_records = read_topic(settings, settings.topic_labels)
                for topic, records in ((settings.topic_instances, instance_records),
                                       (settings.topic_labels, label_records)):
                    wait_until(lambda: committed_reach_ends(settings, topic, records, PARTITIONS)[0], 30,
                               f"the offsets of {topic} to be committed", failed=lambda: a.failed() or b.failed())

    requests = Counter(q["id"] for q in values(read_topic(settings, settings.topic_label_requests)))
    labels = Counter(lab["id"] for lab in values(label_records))
    trained = Counter(t["id"] for t in values(read_topic(settings, settings.topic_training)))
    joined = {name: r.value("streamal_labels_total", outcome="joined") for name, r in (("A", a), ("B", b))}
    report = (f"rebalance: {len(requests)} ids asked about ({len(asked_by_a)} by A alone before B joined) in "
              f"{sum(requests.values())} label requests ({sum(requests.values()) - len(requests)} duplicates); "
              f"joined by A {joined['A']:.0f}, by B {joined['B']:.0f}; "
              f"{sum(trained.values()) - len(trained)} duplicates on the training topic")
    with capsys.disabled():
        print(f"\n{report}")
    assert set(labels) == set(requests), report
    assert asked_by_a <= set(trained), f"{report}: lost {sorted(asked_by_a - set(trained))[:10]}"
    not_once = [i for i, c in trained.items() if c != 1]
    assert trained == Counter(set(labels)), f"{report}: not exactly once: {not_once[:10]}"
    for replica in (a, b):
        assert replica.value("streamal_labels_total", outcome="orphaned") == 0, report
        assert replica.service.learner.n_learned == len(trained), report
    assert joined["A"] > 0 and joined["B"] > 0, report
    assert joined["A"] + joined["B"] == len(trained), report
