"""Throughput, label→model latency and memory of ``streamal serve`` on a real broker.

All in one run, on each broker of ``--broker`` (default: a Tansu broker and
an Apache Kafka 4.4 broker this script starts, one after the other, with the
same phases, then side by side; or ``--bootstrap``):

1. baseline: a bare kafka-python consume→produce pipe drains a pre-filled
   instances topic, forwards every 20th record (the 5 % a budget of 0.05
   asks for) to another topic, flushes and commits every 1,000 records;
2. streamal: ``serve``'s Service (``streamal.apps.serve.build``, default
   model / strategy / budget manager, ``--budget``) drains the same topic in
   a consumer group of its own: validate, decide, produce label requests,
   flush, commit, read its log back. Both sides use streamal's client
   settings (tuned fetches, ``acks=all``, 1 MiB batches) and polls of 5,000
   records, and are timed from the first non-empty poll to the last commit,
   so group joins are not timed; ratio = streamal ÷ baseline;
3. label→model latency: with the service running in a thread, labels for
   outstanding requests are produced at ``--label-rate`` per second; per
   label, the time from the broker's acknowledgement (and from the label
   record's timestamp, what ``streamal_label_to_model_seconds`` measures)
   until the service's model has learned it, observed by wrapping the
   service's learn step from outside;
4. memory: a fresh process builds a Service, then reads ``--pending`` label
   requests (10 numeric features each, as the service writes them) from its
   label-requests topic, as a restarted replica does; resident memory
   (VmRSS) before and after, in that process;
5. scale-out: ``--replicas`` (default 1 and 2) replicas of the service, each a
   child process building ``serve``'s Service, share one consumer group on
   a pre-filled 2-partition instances topic (``--replica-partitions``); the
   children are built first and step only once all are, so they join the
   group together (Apache Kafka is started with its default
   ``group.initial.rebalance.delay.ms`` of 3 s for that). Timed from the first
   non-empty poll of any replica to the last commit of any; ratio = k
   replicas ÷ 1. On one machine the replicas share its cores (and the broker
   and this script), so k replicas give at most min(k, cores)×.

Instances are ``{"id", "features"}`` JSON (about 270 bytes) from River's
``Hyperplane(seed=42, n_features=10)`` (``--stream sea`` or any bundled
dataset name of ``streamal simulate``, cycled, also work).
``--profile`` adds a cProfile pass of a Service step loop over the same
topic and prints where serve spends its time per instance.

    python benchmarks/serve_throughput.py [--n 50000] [--budget 0.05] [--profile]
    python benchmarks/serve_throughput.py --broker tansu --replicas 1,2   # one broker
    python benchmarks/serve_throughput.py --bootstrap HOST:PORT   # topics bench-<run>.* are left there
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import importlib
import importlib.util
import itertools
import json
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import orjson  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402

from streamal.apps import serve  # noqa: E402
from streamal.core.learner import default_strategy  # noqa: E402
from streamal.service import kafka  # noqa: E402
from streamal.service.messages import LabelRequest, Prediction, encode  # noqa: E402
from streamal.service.metrics import Metrics  # noqa: E402
from streamal.service.settings import Settings, load_settings  # noqa: E402

#: Apache Kafka's smallest accepted session timeout; Tansu answers a JoinGroup after half of it.
SESSION_TIMEOUT_MS = 6000
POLL_RECORDS = 5000  # the Service's poll size (LoopConfig.poll_max_records)
BASELINE_COMMIT_EVERY = 1000
PHASE_TIMEOUT_S = 600.0
ROOT = Path(__file__).resolve().parent.parent
#: Apache Kafka's own default (the test harness sets 0 for fast joins): the group waits this
#: long after its first member for others, so replicas started together share the first generation.
KAFKA_INITIAL_REBALANCE_DELAY_MS = "3000"
BROKERS = ("tansu", "kafka")


# ----------------------------------------------------------------------------- helpers


class Progress:
    """Progress of a long phase on stderr: one redrawn line on a terminal, a line every 5 s otherwise."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total = label, total
        self.started = self._shown = time.monotonic()
        self.tty = sys.stderr.isatty()

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._shown >= (0.5 if self.tty else 5.0):
            self._shown = now
            rate = done / max(now - self.started, 1e-9)
            line = f"  {self.label}: {done:,}/{self.total:,} ({rate:,.0f}/s)"
            sys.stderr.write(f"\r{line}   " if self.tty else f"{line}\n")
            sys.stderr.flush()

    def done(self, done: int) -> None:
        self.update(done, force=True)
        if self.tty:
            sys.stderr.write("\n")


def rss_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB (MiB)."""
    values = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) / 1024
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return peak, peak
    return values["VmRSS"], values["VmHWM"]


def settings_for(bootstrap: str, run: str, state_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": f"{run}-serve",
        "topic_instances": f"{run}.instances",
        "topic_label_requests": f"{run}.label-requests",
        "topic_labels": f"{run}.labels",
        "topic_training": f"{run}.training",
        "topic_dead_letter": f"{run}.dead-letter",
        "session_timeout_ms": SESSION_TIMEOUT_MS,
        "state_dir": state_dir,
    }
    values.update(overrides)
    return load_settings(**values)


def examples(stream: str, seed: int = 42) -> Iterator[tuple[dict[str, Any], Any]]:
    """An endless stream of (features, label) with string feature names."""
    from river.datasets import synth

    if stream == "hyperplane":
        source: Any = synth.Hyperplane(seed=seed, n_features=10)
    elif stream == "sea":
        source = synth.SEA(seed=seed)
    else:
        from streamal.apps.datasets import load

        source = itertools.cycle(load(stream).examples)
    for x, y in source:
        features = {str(k): v for k, v in x.items() if v is not None and not isinstance(v, (dict, list))}
        yield features, (str(y) if isinstance(y, bool) or not isinstance(y, (int, float, str)) else y)


def instance_messages(stream: str, n: int) -> tuple[list[tuple[bytes, bytes]], dict[str, Any]]:
    """``n`` (key, value) instance records and the ground truth by id."""
    records, truth = [], {}
    for i, (x, y) in enumerate(itertools.islice(examples(stream), n)):
        ident = f"{stream}-{i}"
        records.append((ident.encode(), orjson.dumps({"id": ident, "features": x})))
        truth[ident] = y
    return records, truth


def fill(settings: Settings, topic: str, records: list[tuple[bytes, bytes]], label: str) -> float:
    """Produce ``records`` and wait for every acknowledgement; records per second."""
    sink = kafka.producer(settings)
    progress = Progress(label, len(records))
    started = time.perf_counter()
    try:
        for i, (key, value) in enumerate(records, 1):
            sink.send(topic, value, key=key)
            if i % 5000 == 0:
                sink.flush()
                progress.update(i)
        sink.flush()
    finally:
        sink.close()
    progress.done(len(records))
    return len(records) / (time.perf_counter() - started)


class FirstPoll:
    """Wraps a Service's group source from outside: notes when the first records arrived (by ``clock``)."""

    def __init__(self, source: Any, clock: Callable[[], float] = time.perf_counter) -> None:
        self.source = source
        self.clock = clock
        self.first: float | None = None

    def poll(self, timeout_s: float = 1.0, max_records: int | None = None) -> list[Any]:
        records = self.source.poll(timeout_s, max_records)
        if records and self.first is None:
            self.first = self.clock()
        return records

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)


def deadline_check(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise SystemExit(f"{what} did not finish within {PHASE_TIMEOUT_S:g} s")


# ----------------------------------------------------------------------------- phase 1: baseline


def baseline(settings: Settings, n: int, budget: float) -> float:
    """A bare kafka-python consume→produce pipe: instances per second."""
    every = max(1, round(1 / budget))
    consumer = KafkaConsumer(**kafka.consumer_config(settings, group_id=f"{settings.group_id}-baseline"))
    consumer.subscribe([settings.topic_instances])
    producer = KafkaProducer(**kafka.producer_config(settings))
    out = f"{settings.topic_instances}.baseline-out"
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_list, **settings.kafka_security_kwargs())
    try:
        admin.create_topics([NewTopic(out, 1, -1)])
    finally:
        admin.close()
    seen = forwarded = 0
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    first: float | None = None
    progress = Progress("baseline pipe", n)
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    try:
        while seen < n:
            batches = consumer.poll(timeout_ms=200, max_records=POLL_RECORDS)
            if batches and first is None:
                first = time.perf_counter()
            for tp, records in batches.items():
                for r in records:
                    seen += 1
                    if seen % every == 0:
                        producer.send(out, value=r.value, key=r.key)
                        forwarded += 1
                    offsets[tp] = OffsetAndMetadata(r.offset + 1, "", -1)
                    if seen % BASELINE_COMMIT_EVERY == 0:
                        producer.flush()
                        consumer.commit(offsets)
            progress.update(seen)
            deadline_check(deadline, "the baseline pipe")
        producer.flush()
        consumer.commit(offsets)
        elapsed = time.perf_counter() - (first or 0.0)
    finally:
        producer.close()
        consumer.close(autocommit=False)
    progress.done(seen)
    return n / elapsed


# ----------------------------------------------------------------------------- phase 2: the service


def total(metrics: Metrics, name: str) -> float:
    return sum(s.value for m in metrics.registry.collect() for s in m.samples if s.name == name)


def drain(service: Any, metrics: Metrics, n: int, label: str) -> float:
    """Step the service until it decided ``n`` instances; seconds from its first records to the last commit."""
    probe = FirstPoll(service.group)
    service.group = probe
    progress = Progress(label, n)
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    try:
        decided = 0
        while decided < n:
            service.step()
            decided = service.instances_decided  # as Service.run counts
            progress.update(decided)
            deadline_check(deadline, label)
        ended = time.perf_counter()
    finally:
        service.group = probe.source
    progress.done(decided)
    assert probe.first is not None
    return ended - probe.first


# ----------------------------------------------------------------------------- phase 3: latency


def label_latency(service: Any, settings: Settings, truth: dict[str, Any], count: int,
                  rate: float) -> dict[str, Any]:
    """Labels for outstanding requests at ``rate``/s; ack→learned and timestamp→learned, in seconds."""
    ids = [i for i in list(service.pending.ids()) if i in truth][:count]
    learned: dict[str, float] = {}
    inner = service.changelog._learn  # wrapped from outside: when did the model learn which id

    def timed_learn(record: Any) -> None:
        inner(record)
        try:
            learned[orjson.loads(record.value)["id"]] = time.time()
        except (orjson.JSONDecodeError, KeyError, TypeError):
            pass

    service.changelog._learn = timed_learn
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            service.run(stop=stop.is_set)
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="streamal-service", daemon=True)
    thread.start()
    time.sleep(1.0)  # let it settle into idle polling
    producer = KafkaProducer(**kafka.producer_config(settings))
    acked: dict[str, float] = {}
    stamped: dict[str, float] = {}
    progress = Progress("labels", len(ids))
    started = time.monotonic()
    try:
        for i, ident in enumerate(ids):
            pause = started + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            value = orjson.dumps({"id": ident, "label": truth[ident], "annotator": "benchmark"})
            meta = producer.send(settings.topic_labels, value=value, key=ident.encode()).get(timeout=30)
            acked[ident] = time.time()
            stamped[ident] = meta.timestamp / 1000.0
            progress.update(i + 1)
            if failure:
                raise failure[0]
        wait_until = time.monotonic() + 30.0
        while len(learned.keys() & acked.keys()) < len(acked) and time.monotonic() < wait_until and not failure:
            time.sleep(0.05)
    finally:
        progress.done(len(acked))
        producer.close()
        stop.set()
        thread.join(timeout=30)
        service.changelog._learn = inner
    if failure:
        raise failure[0]
    got = [i for i in acked if i in learned]
    return {
        "sent": len(acked),
        "learned": len(got),
        "from_ack": np.array([learned[i] - acked[i] for i in got]),
        "from_timestamp": np.array([learned[i] - stamped[i] for i in got]),
    }


def histogram_quantile(metrics: Metrics, name: str, q: float) -> float | None:
    """Upper bound of the bucket holding quantile ``q`` of a prometheus histogram."""
    buckets = sorted(
        (float(s.labels["le"]), s.value)
        for m in metrics.registry.collect() for s in m.samples if s.name == f"{name}_bucket"
    )
    count = buckets[-1][1] if buckets else 0
    if not count:
        return None
    return next(le for le, c in buckets if c >= q * count)


# ----------------------------------------------------------------------------- phase 4: memory


def label_request_messages(n: int, stream: str) -> list[tuple[bytes, bytes]]:
    """``n`` label requests as the service writes them (encoded from its own contract)."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out = []
    for i, (x, _) in enumerate(itertools.islice(examples(stream, seed=7), n)):
        ident = f"mem-{stream}-{i}"
        request = LabelRequest(
            id=ident, features=x, score=0.42, strategy="margin", threshold=0.4,
            prediction=Prediction(label=1, proba={"0": 0.45, "1": 0.55}), model_version=100, mode="stream",
            requested_at=now,
        )
        out.append((ident.encode(), encode(request)))
    return out


def memory(bootstrap: str, stream: str, pending: int, partitions: int) -> dict[str, Any]:
    """Build a Service in a fresh process and fill it with ``pending`` requests from its log."""
    run = f"bench-{uuid.uuid4().hex[:8]}-mem"
    with tempfile.TemporaryDirectory(prefix="streamal-bench-") as state:
        settings = settings_for(bootstrap, run, Path(state), partitions=partitions)
        kafka.ensure_topics(settings)
        messages = label_request_messages(pending, stream)
        child = subprocess.Popen(
            [sys.executable, __file__, "--memory-child", bootstrap, run, state, str(pending), str(partitions)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        try:
            before = json.loads(child.stdout.readline())
            fill(settings, settings.topic_label_requests, messages, "label requests for memory")
            del messages
            child.stdin.write("go\n")
            child.stdin.flush()
            after = json.loads(child.stdout.readline())
        finally:
            child.stdin.close()
            child.wait(timeout=60)
    return {**after, "rss_before": before["rss"], "hwm_before": before["hwm"]}


def memory_child(bootstrap: str, run: str, state: str, pending: int, partitions: int) -> None:
    """The fresh process of :func:`memory`: a Service, RSS before and after its requests arrive."""
    settings = settings_for(bootstrap, run, Path(state), partitions=partitions, pending_max=max(pending, 100_000))
    service = serve.build(settings, Metrics())
    deadline = time.monotonic() + 60
    while not service.ready and time.monotonic() < deadline:  # joined, log read: a service at rest
        service.step()
    for _ in range(3):
        service.step()
    gc.collect()
    rss, hwm = rss_mb()
    print(json.dumps({"rss": rss, "hwm": hwm}), flush=True)
    sys.stdin.readline()
    progress = Progress("service reading them", pending)
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while len(service.pending) < pending and time.monotonic() < deadline:
        service.step()
        progress.update(len(service.pending))
    progress.done(len(service.pending))
    gc.collect()
    rss, hwm = rss_mb()
    print(json.dumps({"rss": rss, "hwm": hwm, "pending": len(service.pending)}), flush=True)
    for client in (service.group, service.changelog.source, service.sink):
        client.close()


# ----------------------------------------------------------------------------- phase 5: replicas


def replicas(bootstrap: str, stream: str, n: int, count: int, budget: float, partitions: int,
             records: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    """``count`` service replicas (child processes, one group) drain ``n`` instances: instances per second."""
    run = f"bench-{uuid.uuid4().hex[:8]}-r{count}"
    with tempfile.TemporaryDirectory(prefix="streamal-bench-") as state:
        settings = settings_for(bootstrap, run, Path(state), partitions=partitions, budget=budget)
        kafka.ensure_topics(settings)
        fill(settings, settings.topic_instances, records or instance_messages(stream, n)[0],
             f"pre-fill for {count} replica(s)")
        children = [
            subprocess.Popen(
                [sys.executable, __file__, "--replica-child", bootstrap, run, str(Path(state) / f"replica-{i}"),
                 str(budget), str(partitions)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            for i in range(count)
        ]
        latest: list[dict[str, Any]] = [{} for _ in children]

        def read(i: int, child: subprocess.Popen[str]) -> None:
            assert child.stdout is not None
            for line in child.stdout:
                latest[i] = json.loads(line)

        readers = [threading.Thread(target=read, args=(i, c), daemon=True) for i, c in enumerate(children)]
        for reader in readers:
            reader.start()
        deadline = time.monotonic() + PHASE_TIMEOUT_S
        progress = Progress(f"{count} replica(s)", n)
        try:
            while not all(row.get("built") for row in latest):  # imports and clients first: not timed
                if any(c.poll() is not None for c in children):
                    raise SystemExit("a replica exited before it was built")
                deadline_check(deadline, "building the replicas")
                time.sleep(0.1)
            for child in children:
                assert child.stdin is not None
                child.stdin.write("go\n")
                child.stdin.flush()
            while sum(row.get("decided", 0) for row in latest) < n:
                if any(c.poll() is not None for c in children):
                    raise SystemExit("a replica exited before the topic was drained")
                deadline_check(deadline, f"{count} replica(s)")
                progress.update(sum(row.get("decided", 0) for row in latest))
                time.sleep(0.05)
            progress.done(sum(row.get("decided", 0) for row in latest))
            for child in children:
                assert child.stdin is not None
                child.stdin.write("stop\n")
                child.stdin.flush()
            for child, reader in zip(children, readers, strict=True):
                child.wait(timeout=60)
                reader.join(timeout=10)
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait()
    first = min(row["first"] for row in latest if row.get("first"))
    last = max(row["last"] for row in latest if row.get("last"))
    return {
        "rate": n / (last - first),
        "cores": sum(row.get("cpu", 0.0) for row in latest) / (last - first),
        "cpu_us": sum(row.get("cpu", 0.0) for row in latest) / n * 1e6,
        "decided": [row.get("decided", 0) for row in latest],
        "assignments": [row.get("assignments", []) for row in latest],
    }


def replica_child(bootstrap: str, run: str, state: str, budget: float, partitions: int) -> None:
    """One replica of :func:`replicas`: built, then stepping from "go" until "stop"; JSON lines on stdout."""
    settings = settings_for(bootstrap, run, Path(state), partitions=partitions, budget=budget)
    service = serve.build(settings, Metrics())
    probe = FirstPoll(service.group, clock=time.time)  # wall clock: compared across processes
    service.group = probe
    print(json.dumps({"built": True}), flush=True)
    stop = threading.Event()
    if sys.stdin.readline().strip() != "go":
        return

    def wait_for_stop() -> None:
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    cpu_at_go = time.process_time()  # this process, all threads
    last: float | None = None
    cpu_at_last = cpu_at_go
    shown = 0.0
    assignments: list[list[int]] = []
    while not stop.is_set():
        before = service.instances_decided
        service.step()
        assigned = sorted(number for topic, number in probe.source.assignment() if topic == settings.topic_instances)
        if not assignments or assignments[-1] != assigned:
            assignments.append(assigned)
        if service.instances_decided > before:
            last = time.time()  # the step flushed and committed what it decided
            cpu_at_last = time.process_time()
        if time.monotonic() - shown > 0.2:
            shown = time.monotonic()
            print(json.dumps({"built": True, "decided": service.instances_decided, "first": probe.first,
                              "last": last, "assignments": assignments}), flush=True)
    print(json.dumps({"built": True, "decided": service.instances_decided, "first": probe.first, "last": last,
                      "assignments": assignments, "cpu": cpu_at_last - cpu_at_go}), flush=True)
    service.group = probe.source
    service.close()


# ----------------------------------------------------------------------------- brokers


def apache_kafka_class() -> Any:
    """``tests/apache_kafka.py``'s ApacheKafka (Apache Kafka's jars in ``.cache``, see ``.ci/fetch-kafka``)."""
    spec = importlib.util.spec_from_file_location("streamal_bench_apache_kafka", ROOT / "tests" / "apache_kafka.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses and weakref finalizers look the module up
    spec.loader.exec_module(module)
    return module.ApacheKafka


@contextlib.contextmanager
def local_broker(name: str) -> Iterator[str]:
    """Start a throw-away broker: ``tansu`` (streamal's LocalBroker) or ``kafka`` (Apache Kafka, KRaft); its bootstrap."""
    import logging

    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # readiness probes log refused connections
    if name == "tansu":
        from streamal.service.broker import LocalBroker

        broker: Any = LocalBroker().start()
    elif name == "kafka":
        broker = apache_kafka_class()(config={"group.initial.rebalance.delay.ms": KAFKA_INITIAL_REBALANCE_DELAY_MS})
        broker.start()
    else:
        raise SystemExit(f"--broker {name}: choose tansu or kafka")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    try:
        yield broker.bootstrap
    finally:
        broker.close() if name == "kafka" else broker.stop()


# ----------------------------------------------------------------------------- profile


#: (row, function name, file suffix, caller name or None): cumulative time of the function
#: (only of calls from that caller, when one is given).
PROFILE_ROWS = [
    ("poll instances (group)", "poll", "streamal/service/kafka/consumer.py", "step"),
    ("parse + validate", "read_instance", "streamal/service/codec.py", "step"),
    ("decide (decide_many)", "decide_many", "streamal/core/learner.py", None),
    ("label request build+send", "_request", "streamal/service/loop.py", None),
    ("  of it: encode", "label_request", "streamal/service/codec.py", "_request"),
    ("  of it: producer.send", "send", "streamal/service/kafka/producer.py", "_request"),
    ("flush (wait for acks)", "flush", "streamal/service/kafka/producer.py", "_flush_and_commit"),
    ("commit", "commit", "streamal/service/kafka/consumer.py", "_flush_and_commit"),
    ("read the log (own requests back)", "read", "streamal/service/changelog.py", "step"),
    ("housekeeping", "tick", "streamal/service/housekeeping.py", "step"),
]


def profile(bootstrap: str, base: Settings, n: int, state: Path) -> None:
    """cProfile of a Service step loop over the pre-filled instances topic (its own other topics)."""
    run = f"{base.topic_instances.rsplit('.', 1)[0]}-prof"
    settings = settings_for(
        bootstrap, run, state / "profile", topic_instances=base.topic_instances, group_id=f"{run}-serve",
        budget=base.budget, partitions=base.partitions,
    )
    metrics = Metrics()
    service = serve.build(settings, metrics)
    probe = FirstPoll(service.group)
    service.group = probe
    while probe.first is None:  # the group join and the first poll are not profiled
        service.step()
    service.group = probe.source
    profiler = cProfile.Profile()
    first = service.instances_decided
    progress = Progress("profiled service", n)
    started = time.perf_counter()
    profiler.enable()
    while service.instances_decided < n:
        service.step()
        progress.update(service.instances_decided)
    profiler.disable()
    wall = time.perf_counter() - started
    progress.done(service.instances_decided)
    service.close()
    count = service.instances_decided - first
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    print(f"\nwhere serve spends its time (cProfile of Service.step over {count:,} instances; "
          f"{wall:.1f} s under the profiler, {count / wall:,.0f}/s):")
    print(f"  {'part':34} {'s':>7} {'µs/inst':>8} {'share':>6}")
    for row, name, suffix, caller in PROFILE_ROWS:
        ct = 0.0
        for (path, _, func), (_, _, _, cum, callers) in stats.items():
            if func != name or not path.endswith(suffix):
                continue
            if caller is None:
                ct += cum
            else:
                ct += sum(v[3] for (_, _, cf), v in callers.items() if cf == caller)
        print(f"  {row:34} {ct:7.2f} {ct / count * 1e6:8.1f} {ct / wall:6.1%}")
    print(f"  {'(all of Service.step)':34} {wall:7.2f} {wall / count * 1e6:8.1f} {1:6.1%}")
    print("  top functions by own time:")
    top = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:12]
    for (path, line, func), (_, calls, tt, _, _) in top:
        where = "/".join(Path(path).parts[-2:]) if path != "~" else "builtin"
        print(f"    {tt:6.2f} s {tt / count * 1e6:7.1f} µs/inst {calls:>9,} calls  {func} ({where}:{line})")


# ----------------------------------------------------------------------------- main


def run_on(broker_name: str, bootstrap: str, args: argparse.Namespace) -> dict[str, Any]:
    """Phases 1 to 5 on one broker: the table printed; the figures for the side-by-side table."""
    run = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="streamal-bench-") as state:
        settings = settings_for(bootstrap, run, Path(state), budget=args.budget, partitions=args.partitions)
        print(f"broker {bootstrap} ({broker_name}), topics {run}.*, "
              f"{args.partitions} partition(s)")
        crc = getattr(importlib.import_module("kafka.record.util"), "_crc32c", None)
        fast_crc = type(crc).__name__ == "builtin_function_or_method"
        print("kafka-python CRC32C check of fetched batches: " + ("C (package crc32c)" if fast_crc else
              "pure Python (no package crc32c): it bounds consuming at ~30k records/s on this machine"))
        print(f"serve: model={settings.model} strategy={settings.strategy or default_strategy(settings.task)} "
              f"budget_manager={settings.budget_manager} budget={settings.budget:g}")
        kafka.ensure_topics(settings)
        records, truth = instance_messages(args.stream, args.n)
        size = sum(len(v) for _, v in records) / len(records)
        print(f"stream {args.stream}: {args.n:,} instances, {size:.0f} bytes each on average")
        fill_rate = fill(settings, settings.topic_instances, records, "pre-fill")

        base_rate = baseline(settings, args.n, args.budget)

        metrics = Metrics()
        service = serve.build(settings, metrics)
        elapsed = drain(service, metrics, args.n, "streamal serve")
        serve_rate = args.n / elapsed
        requests = total(metrics, "streamal_label_requests_total")
        rejected = total(metrics, "streamal_rejected_total")

        lat = label_latency(service, settings, truth, args.labels, args.label_rate)
        service.close()

        mem = memory(bootstrap, args.stream, args.pending, args.partitions)

        def pct(values: np.ndarray, q: float) -> str:
            return f"{np.percentile(values, q) * 1000:.0f} ms" if len(values) else "n/a"

        p50 = histogram_quantile(metrics, "streamal_label_to_model_seconds", 0.5)
        p99 = histogram_quantile(metrics, "streamal_label_to_model_seconds", 0.99)
        hist_n = total(metrics, "streamal_label_to_model_seconds_count")
        hist_mean = total(metrics, "streamal_label_to_model_seconds_sum") / hist_n if hist_n else float("nan")
        print()
        print(f"{'figure':44} {'value':>22}  note")
        rows = [
            ("pre-fill (producer, acks=all)", f"{fill_rate:,.0f} inst/s", "not compared"),
            ("baseline: kafka-python consume→produce", f"{base_rate:,.0f} inst/s",
             f"forwards 1 in {max(1, round(1 / args.budget))}, commit every {BASELINE_COMMIT_EVERY:,}"),
            ("streamal serve (Service.step)", f"{serve_rate:,.0f} inst/s",
             f"{int(requests):,} requests ({requests / args.n:.2%}), {int(rejected)} rejected"),
            ("ratio serve / baseline", f"{serve_rate / base_rate:.2f}", "target ≥ 0.5"),
            ("label→model p50 / p99, from broker ack",
             f"{pct(lat['from_ack'], 50)} / {pct(lat['from_ack'], 99)}",
             f"{lat['learned']}/{lat['sent']} labels learned, {args.label_rate:g}/s"),
            ("label→model p50 / p99, from label timestamp",
             f"{pct(lat['from_timestamp'], 50)} / {pct(lat['from_timestamp'], 99)}",
             "what the service's histogram measures"),
            ("  service histogram: mean, p50 / p99 bucket",
             f"{hist_mean * 1000:.0f} ms, ≤{p50} / ≤{p99} s" if hist_n else "n/a",
             f"{int(hist_n)} observations"),
            ("memory: RSS of a built Service", f"{mem['rss_before']:.0f} MB", "fresh process, no requests"),
            (f"memory: RSS with {mem['pending']:,} pending", f"{mem['rss']:.0f} MB",
             f"peak {mem['hwm']:.0f} MB; target ≤ 250 MB"),
            ("memory: added by the pending requests", f"{mem['rss'] - mem['rss_before']:.0f} MB",
             f"{(mem['rss'] - mem['rss_before']) * 2**20 / max(1, mem['pending']):,.0f} bytes each"),
        ]
        for name, value, note in rows:
            print(f"{name:44} {value:>22}  {note}")
        scale = scale_out(bootstrap, args, records)
        del records
        if args.profile:
            profile(bootstrap, settings, args.n, Path(state))
    return {
        "baseline": base_rate, "serve": serve_rate, "ratio": serve_rate / base_rate,
        "p99_ack": float(np.percentile(lat["from_ack"], 99)) if len(lat["from_ack"]) else None,
        "rss": mem["rss_before"], "rss_pending": mem["rss"], "pending": mem["pending"], "scale": scale,
    }


def scale_out(bootstrap: str, args: argparse.Namespace, records: list[tuple[bytes, bytes]]) -> dict[int, float]:
    """Phase 5: the replica counts of ``--replicas`` on a ``--replica-partitions`` topic; rates printed and returned."""
    counts = [int(c) for c in args.replicas.split(",") if c.strip()]
    rates: dict[int, float] = {}
    for count in counts:
        result = replicas(bootstrap, args.stream, args.n, count, args.budget, args.replica_partitions, records)
        rates[count] = result["rate"]
        moved = [a for a in result["assignments"] if len([x for x in a if x]) > 1]  # not just [] → its share
        print(f"{f'scale-out: {count} replica(s), {args.replica_partitions} partitions':44} "
              f"{result['rate']:>15,.0f} inst/s  decided {' + '.join(f'{d:,}' for d in result['decided'])}; "
              f"{result['cores']:.2f} cores used, {result['cpu_us']:.0f} µs CPU per instance"
              + (f"; assignments changed while draining: {moved}" if moved else ""))
    for count in counts[1:]:
        print(f"{f'ratio {count} replicas / {counts[0]}':44} {rates[count] / rates[counts[0]]:>22.2f}  "
              f"{os.cpu_count()} cores here, shared with the broker and this script; load average "
              f"{os.getloadavg()[0]:.1f}")
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="instances pre-filled and drained by each side")
    parser.add_argument("--budget", type=float, default=0.05)
    parser.add_argument("--stream", default="hyperplane", help="hyperplane, sea, or a bundled dataset name")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--labels", type=int, default=200, help="labels produced for the latency phase")
    parser.add_argument("--label-rate", type=float, default=20.0, help="labels per second in the latency phase")
    parser.add_argument("--pending", type=int, default=100_000, help="pending requests in the memory phase")
    parser.add_argument("--broker", default=",".join(BROKERS),
                        help="brokers started here, one after the other: tansu, kafka (Apache Kafka) or tansu,kafka")
    parser.add_argument("--bootstrap", help="use this broker instead of starting local ones")
    parser.add_argument("--replicas", default="1,2", help="replica counts of the scale-out phase ('' skips it)")
    parser.add_argument("--replica-partitions", type=int, default=2, help="instances partitions of that phase")
    parser.add_argument("--profile", action="store_true", help="also profile a Service step loop")
    parser.add_argument("--memory-child", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--replica-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        bootstrap, run, state, pending, partitions = args.memory_child
        memory_child(bootstrap, run, state, int(pending), int(partitions))
        return
    if args.replica_child:
        bootstrap, run, state, budget, partitions = args.replica_child
        replica_child(bootstrap, run, state, float(budget), int(partitions))
        return

    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.ERROR)
    names = ["external"] if args.bootstrap else [b.strip() for b in args.broker.split(",") if b.strip()]
    figures: dict[str, dict[str, Any]] = {}
    for name in names:
        where: Any = contextlib.nullcontext(args.bootstrap) if args.bootstrap else local_broker(name)
        with where as bootstrap:
            label = {"external": "external", "tansu": "local Tansu", "kafka": "local Apache Kafka"}.get(name, name)
            if len(names) > 1:
                print(f"\n=== {label} ===")
            figures[name] = run_on(label, bootstrap, args)
    if len(figures) > 1:
        side_by_side(figures)


def side_by_side(figures: dict[str, dict[str, Any]]) -> None:
    """The figures of every broker in one table (each measured on its own broker, in this run)."""
    names = list(figures)
    print(f"\n{'side by side (same run)':44} " + " ".join(f"{n:>16}" for n in names))
    counts = sorted({c for f in figures.values() for c in f["scale"]})

    def row(title: str, fmt: Any) -> None:
        print(f"{title:44} " + " ".join(f"{fmt(figures[n]):>16}" for n in names))

    row("baseline pipe, inst/s", lambda f: f"{f['baseline']:,.0f}")
    row("streamal serve, inst/s", lambda f: f"{f['serve']:,.0f}")
    row("ratio serve / baseline", lambda f: f"{f['ratio']:.2f}")
    row("label→model p99 from ack", lambda f: f"{f['p99_ack'] * 1000:.0f} ms" if f["p99_ack"] is not None else "n/a")
    row("RSS built / with pending, MB", lambda f: f"{f['rss']:.0f} / {f['rss_pending']:.0f}")
    for c in counts:
        row(f"{c} replica(s), inst/s", lambda f, c=c: f"{f['scale'][c]:,.0f}" if c in f["scale"] else "n/a")
    for c in counts[1:]:
        row(f"ratio {c} replicas / {counts[0]}",
            lambda f, c=c: f"{f['scale'][c] / f['scale'][counts[0]]:.2f}" if c in f["scale"] else "n/a")

if __name__ == "__main__":
    main()
