"""Restarts of ``streamal serve`` replicas: time to ready, and how long partitions go unserved.

Two replicas, A and B, run ``streamal serve`` as separate processes (the
console entry point, JSON logs) in one consumer group on a 2-partition
instances topic, while a producer sends ``--rate`` instances per second
(random keys, so both partitions get traffic). Each replica keeps its state
directory and metrics port across its restarts, as a pod of a StatefulSet
does. One pass per mode (default: dynamic, static), on fresh topics and a fresh group each:

- ``dynamic``: no ``STREAMAL_GROUP_INSTANCE_ID``; a SIGTERM'd replica sends a
  LeaveGroup (kafka-python's ``close``);
- ``static``: ``STREAMAL_GROUP_INSTANCE_ID`` = the replica's name (the pod
  name): the broker keeps its partitions for it for the session timeout and a
  replica that comes back within it gets them again without a rebalance. By
  design (KIP-345) a static member sends no LeaveGroup on close;
- ``static-leave`` (``--modes``): static, and a LeaveGroup (with the
  instance id) on SIGTERM, the change proposed for ``KafkaSource.close``,
  patched into the replica processes only (``CHILD``); ``MODE@MS`` also
  patches their heartbeat interval to MS ms (proposed: 1000 instead of 3000).

In each pass, one after the other:

(a) ``SIGTERM A``: signal A, start it again as soon as the old process has
    exited; (b) ``SIGKILL A``: the same with SIGKILL; (c) ``rolling``: SIGTERM
    A, restart it, wait until it is ready, then the same for B.

Per restart: seconds from the signal to the old process's exit, to the new
process's metrics port answering (imports done), to ``/readyz`` 200 and to
its first decided instance (``streamal_instances_total`` > 0 on its
``/metrics``); the port is probed every 20 ms.

Unserved partitions: the group's committed offsets of the instances topic,
read every 50 ms (one OffsetFetch for both partitions, by an admin client).
The service commits after every step that handled records, so while a
partition is served its committed offset moves several times a second (the
producer keeps it fed); a partition's *gap* is the longest time its committed
offset stood still, from shortly before the first signal of the scenario until
both partitions have moved again after the last replica was ready. The
``quiet`` row is the same measure over a stretch with no restart: the floor.

    python -m benchmarks.restart [--broker apache|tansu] [--rate 200] [--session-timeout-ms 10000]
    python -m benchmarks.restart --modes dynamic,static,static-leave,dynamic@1000,static-leave@1000
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from kafka import KafkaAdminClient, KafkaProducer  # noqa: E402

from streamal.service import kafka  # noqa: E402
from streamal.service.settings import Settings, load_settings  # noqa: E402

PARTITIONS = 2
PROBE_EVERY_S = 0.02
OFFSETS_EVERY_S = 0.05
#: Longest wait for a restarted replica to be ready and decide (dynamic members after a SIGKILL wait
#: for the session timeout; Tansu answers each join after half of it).
READY_TIMEOUT_S = 120.0
SETTLE_S = 3.0


#: A replica: ``streamal serve``; the environment variables below switch on the changes this benchmark
#: measures before they are made (patched in the replica process only).
CHILD = """
import os
from streamal.service.kafka import consumer
heartbeat = int(os.environ.get("BENCH_HEARTBEAT_INTERVAL_MS") or 0)
if heartbeat:  # proposed: configuration.consumer_config's heartbeat_interval_ms
    config = consumer.consumer_config
    consumer.consumer_config = lambda settings, **o: config(settings, **{"heartbeat_interval_ms": heartbeat, **o})
if os.environ.get("BENCH_STATIC_LEAVES"):  # proposed: a static member sends LeaveGroup on close (as KIP-1092 allows)
    close = consumer.KafkaSource.close
    def leaving(self):
        coordinator = getattr(self.client, "_coordinator", None)
        if coordinator is not None and coordinator.group_id is not None:
            coordinator.is_dynamic_member = lambda: True  # kafka-python then sends LeaveGroup v3+ with the instance id
        close(self)
    consumer.KafkaSource.close = leaving
from streamal.apps.cli import main
main()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""


def instances_decided(metrics_text: bytes) -> float:
    for line in metrics_text.decode("utf-8", "replace").splitlines():
        if line.startswith("streamal_instances_total "):
            return float(line.split()[1])
    return 0.0


# ----------------------------------------------------------------------------- a replica


class Replica:
    """One ``streamal serve`` process at a time under a stable name, state dir and metrics port."""

    def __init__(self, name: str, env: dict[str, str], state: Path, log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.env = {**env, "STREAMAL_STATE_DIR": str(state), "STREAMAL_METRICS_PORT": str(self.port)}
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> float:
        self.starts += 1
        log = open(self.log_dir / f"{self.name}-{self.starts}.log", "wb")  # noqa: SIM115 — the child owns it
        started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, "serve", "--json-logs"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT),
        )
        log.close()
        return started

    def signal(self, sig: int) -> float:
        assert self.process is not None
        sent = time.monotonic()
        self.process.send_signal(sig)
        return sent

    def wait_exit(self, timeout_s: float = 60.0) -> float:
        assert self.process is not None
        self.process.wait(timeout=timeout_s)
        return time.monotonic()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def watch(self, since: float, timeout_s: float = READY_TIMEOUT_S) -> dict[str, float]:
        """Seconds after ``since`` until the port answers, /readyz is 200 and the first instance is decided."""
        seen: dict[str, float] = {}
        deadline = time.monotonic() + timeout_s
        while len(seen) < 3:
            if time.monotonic() > deadline:
                raise SystemExit(f"replica {self.name} not ready and deciding within {timeout_s:g} s "
                                 f"(log: {self.log_dir}/{self.name}-{self.starts}.log)")
            assert self.process is not None
            if self.process.poll() is not None:
                raise SystemExit(f"replica {self.name} exited ({self.process.returncode}); "
                                 f"log: {self.log_dir}/{self.name}-{self.starts}.log")
            ready, _ = get(self.url("/readyz"))
            now = time.monotonic()
            if ready:
                seen.setdefault("port", now - since)
            if ready == 200:
                seen.setdefault("ready", now - since)
            if "port" in seen and "decided" not in seen:
                status, body = get(self.url("/metrics"))
                if status == 200 and instances_decided(body) > 0:
                    seen.setdefault("decided", time.monotonic() - since)
                    seen.setdefault("ready", seen["decided"])  # ready between two probes
            time.sleep(PROBE_EVERY_S)
        return seen

    def said(self, start: int, prefix: str, timeout_s: float = 2.0) -> str | None:
        """The message of start number ``start``'s first log line that begins with ``prefix``."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                lines = (self.log_dir / f"{self.name}-{start}.log").read_bytes().splitlines()
            except OSError:
                lines = []
            for line in lines:
                try:
                    message = orjson.loads(line).get("message", "")
                except orjson.JSONDecodeError:
                    continue
                if message.startswith(prefix):
                    return str(message)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ----------------------------------------------------------------------------- traffic and offsets


class Producer(threading.Thread):
    """A steady stream of instances with random keys, ``rate`` per second."""

    def __init__(self, settings: Settings, rate: float) -> None:
        super().__init__(name="producer", daemon=True)
        self.settings, self.rate = settings, rate
        self.stopped = threading.Event()
        self.sent = 0

    def run(self) -> None:
        import random

        rng = random.Random(7)
        producer = KafkaProducer(**kafka.producer_config(self.settings))
        started = time.monotonic()
        try:
            while not self.stopped.is_set():
                ident = f"r-{uuid.uuid4().hex[:12]}"
                features = {f"x{j}": rng.random() for j in range(10)}
                producer.send(self.settings.topic_instances, key=ident.encode(),
                              value=orjson.dumps({"id": ident, "features": features}))
                self.sent += 1
                pause = started + self.sent / self.rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        finally:
            producer.close(timeout=10)


class Offsets(threading.Thread):
    """The group's committed offsets of the instances topic, read every 50 ms: (time, {partition: offset})."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="offsets", daemon=True)
        self.settings = settings
        self.stopped = threading.Event()
        self.samples: list[tuple[float, dict[int, int]]] = []
        self.errors = 0
        self.last_error: Exception | None = None

    def run(self) -> None:
        admin = KafkaAdminClient(bootstrap_servers=self.settings.bootstrap_list, request_timeout_ms=5000)
        try:
            while not self.stopped.is_set():
                group = self.settings.group_id
                try:
                    found = admin.list_group_offsets({group: None}).get(group, {})
                except Exception as exc:  # a coordinator moving: read again
                    self.errors += 1
                    self.last_error = exc
                    found = {}
                now = time.monotonic()
                self.samples.append((now, {tp.partition: meta.offset for tp, meta in found.items()
                                           if tp.topic == self.settings.topic_instances}))
                time.sleep(OFFSETS_EVERY_S)
        finally:
            admin.close()

    def moves(self) -> dict[int, list[float]]:
        """Per partition, the times its committed offset was seen to advance."""
        out: dict[int, list[float]] = {p: [] for p in range(PARTITIONS)}
        last: dict[int, int] = {}
        for t, offsets in list(self.samples):
            for p, offset in offsets.items():
                if p in last and offset > last[p]:
                    out[p].append(t)
                last[p] = offset
        return out

    def gaps(self, start: float, end: float) -> dict[int, float]:
        """Per partition, the longest time between two advances within [start, end]."""
        result = {}
        for p, times in self.moves().items():
            inside = [start] + [t for t in times if start < t <= end] + [end]
            result[p] = max(b - a for a, b in itertools.pairwise(inside))
        return result

    def wait_moved(self, after: float, timeout_s: float = 60.0) -> float:
        """Wait until every partition's committed offset advanced after ``after``; when it did."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            moves = self.moves()
            later = [next((t for t in moves[p] if t > after), None) for p in range(PARTITIONS)]
            if all(t is not None for t in later):
                return max(t for t in later if t is not None)
            time.sleep(0.1)
        raise SystemExit(f"a partition was not served within {timeout_s:g} s "
                         f"({self.errors} failed offset reads, last: {self.last_error!r})")


# ----------------------------------------------------------------------------- one pass


@dataclass
class Row:
    mode: str
    scenario: str
    replica: str
    exit_s: float | None = None
    port_s: float | None = None
    ready_s: float | None = None
    decided_s: float | None = None
    gaps: dict[int, float] = field(default_factory=dict)
    notes: str = ""


def restart(replica: Replica, sig: int) -> dict[str, Any]:
    sent = replica.signal(sig)
    exited = replica.wait_exit()
    replica.start()
    seen: dict[str, Any] = {"exit": exited - sent, **replica.watch(sent)}
    closed = replica.said(replica.starts - 1, "closed in", 0) if sig == signal.SIGTERM else None
    seen["notes"] = "; ".join(x for x in (closed and closed.split(" (")[0], notes(replica)) if x)
    return seen


def notes(replica: Replica) -> str:
    """What the replica's own log says its start-up phases cost."""
    ready = replica.said(replica.starts, "ready ")
    return ready.replace("ready ", "", 1) if ready else ""


def one_pass(bootstrap: str, mode: str, rate: float, session_ms: int, log_dir: Path,
             heartbeat_ms: int | None = None) -> list[Row]:
    mode, _, heartbeat = mode.partition("@")
    heartbeat_ms = int(heartbeat) if heartbeat else heartbeat_ms
    label = f"{mode}@{heartbeat_ms}" if heartbeat_ms else mode
    run = f"restart-{mode}-{uuid.uuid4().hex[:6]}"
    values: dict[str, Any] = {
        "bootstrap_servers": bootstrap, "group_id": f"{run}-group", "partitions": PARTITIONS,
        "topic_instances": f"{run}.instances", "topic_label_requests": f"{run}.label-requests",
        "topic_labels": f"{run}.labels", "topic_training": f"{run}.training",
        "topic_dead_letter": f"{run}.dead-letter", "session_timeout_ms": session_ms,
    }
    settings = load_settings(**values)
    kafka.ensure_topics(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMAL_")}
    env.update({f"STREAMAL_{k.upper()}": str(v) for k, v in values.items()})
    rows: list[Row] = []
    producer, offsets = Producer(settings, rate), Offsets(settings)
    replicas = {}
    with tempfile.TemporaryDirectory(prefix="streamal-restart-") as state:
        for name in ("a", "b"):
            replica_env = dict(env)
            if mode.startswith("static"):
                replica_env["STREAMAL_GROUP_INSTANCE_ID"] = f"{run}-{name}"
            if mode == "static-leave":
                replica_env["BENCH_STATIC_LEAVES"] = "1"
            if heartbeat_ms:
                replica_env["BENCH_HEARTBEAT_INTERVAL_MS"] = str(heartbeat_ms)
            replicas[name] = Replica(f"{label}-{name}", replica_env, Path(state) / name, log_dir)
        a, b = replicas["a"], replicas["b"]
        producer.start()
        offsets.start()
        try:
            first = {name: (r, r.start()) for name, r in replicas.items()}
            for name, (r, started) in first.items():
                seen = r.watch(started)
                rows.append(Row(label, "first start", r.name, None, seen["port"], seen["ready"], seen["decided"],
                                notes=notes(r)))
            offsets.wait_moved(time.monotonic())
            time.sleep(SETTLE_S)
            quiet_start = time.monotonic()
            time.sleep(2 * SETTLE_S)
            rows.append(Row(label, "quiet (no restart)", "-", gaps=offsets.gaps(quiet_start, time.monotonic())))
            for scenario, sig in (("SIGTERM A", signal.SIGTERM), ("SIGKILL A", signal.SIGKILL)):
                begin = time.monotonic()
                seen = restart(a, sig)
                end = offsets.wait_moved(begin + seen["ready"])
                rows.append(Row(label, scenario, a.name, seen["exit"], seen["port"], seen["ready"], seen["decided"],
                                offsets.gaps(begin - 0.5, end), seen["notes"]))
                time.sleep(SETTLE_S)
            begin = time.monotonic()
            for r in (a, b):
                seen = restart(r, signal.SIGTERM)
                rows.append(Row(label, "rolling", r.name, seen["exit"], seen["port"], seen["ready"], seen["decided"],
                                notes=seen["notes"]))
                last_ready = time.monotonic()
            end = offsets.wait_moved(last_ready)
            rows[-1].gaps = offsets.gaps(begin - 0.5, end)
        finally:
            for r in replicas.values():
                r.stop()
            producer.stopped.set()
            offsets.stopped.set()
            producer.join(15)
            offsets.join(15)
    return rows


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=("apache", "tansu"), default="apache")
    parser.add_argument("--rate", type=float, default=200.0, help="instances per second, both partitions together")
    parser.add_argument("--session-timeout-ms", type=int, default=None,
                        help="STREAMAL_SESSION_TIMEOUT_MS of the replicas (default: streamal's own default)")
    parser.add_argument("--modes", default="dynamic,static",
                        help="comma-separated: dynamic, static, static-leave (static, and a LeaveGroup on SIGTERM: "
                             "the proposed change, patched into the replicas); MODE@MS also patches the "
                             "replicas' heartbeat interval to MS")
    parser.add_argument("--heartbeat-interval-ms", type=int, default=None,
                        help="patch the replicas' consumer heartbeat interval (default: streamal's, "
                             "min(3000, session/3)): the proposed change")
    parser.add_argument("--repeats", type=int, default=1, help="passes per mode (medians are not taken: all rows)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    session_ms = args.session_timeout_ms or Settings.model_fields["session_timeout_ms"].default
    broker: Any
    if args.broker == "apache":
        sys.path.insert(0, str(ROOT / "tests"))
        from apache_kafka import ApacheKafka

        broker = ApacheKafka().start()
        bootstrap = broker.bootstrap
    else:
        from streamal.service.broker import LocalBroker

        broker = LocalBroker().start()
        bootstrap = broker.bootstrap
    log_dir = Path(tempfile.mkdtemp(prefix="streamal-restart-logs-"))
    rows: list[Row] = []
    try:
        for _ in range(args.repeats):
            for mode in args.modes.split(","):
                rows += one_pass(bootstrap, mode, args.rate, session_ms, log_dir, args.heartbeat_interval_ms)
    finally:
        broker.close() if hasattr(broker, "close") else broker.stop()
    load = os.getloadavg()
    print(f"\nbroker {args.broker} ({bootstrap}), 2 partitions, {args.rate:g} instances/s, "
          f"session timeout {session_ms} ms, heartbeat "
          f"{args.heartbeat_interval_ms or max(100, min(3000, session_ms // 3))} ms; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"replica logs in {log_dir}")
    print("seconds after the signal (first start: after spawning); gap = longest time a partition's "
          "committed offset stood still")

    def s(v: float | None) -> str:
        return f"{v:6.2f}" if v is not None else "     -"

    print(f"{'mode':12} {'scenario':19} {'replica':10} {'exit':>6} {'port':>6} {'ready':>6} {'decide':>6} "
          f"{'gap p0':>6} {'gap p1':>6}")
    for r in rows:
        print(f"{r.mode:12} {r.scenario:19} {r.replica:10} {s(r.exit_s)} {s(r.port_s)} {s(r.ready_s)} "
              f"{s(r.decided_s)} {s(r.gaps.get(0))} {s(r.gaps.get(1))}")
    print("\nwhat each replica's log says (closed in: SIGTERM to clients closed; ready: from serve() on):")
    for r in rows:
        if r.notes:
            print(f"  {r.mode:12} {r.scenario:12} {r.replica:10} {r.notes}")


if __name__ == "__main__":
    main()
