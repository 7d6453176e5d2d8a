"""What the chaos tests drive: replicas of ``streamal serve`` (real processes) and an annotator (a real client).

- :class:`Replica`: one replica (its own state directory and metrics port) that
  may be started, SIGKILLed and SIGTERMed many times; a scraper thread reads
  its ``/metrics`` every half second, so its counters add up over every
  process it ran as (the last scrape before a SIGKILL is taken just before it).
- :class:`Annotator`: answers label requests from ground truth, each id once,
  and records which answers the broker acknowledged; it keeps a seeded share
  of the requests unanswered until :meth:`Annotator.release`, so the test can
  check at the end that those requests were still pending somewhere.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import orjson
from helpers import ServiceProcess, free_port, wait_until
from kafka import KafkaProducer

from streamal.apps.datasets import Dataset
from streamal.apps.replay import instances
from streamal.service import kafka
from streamal.service.errors import InvalidMessage, KafkaAdapterError
from streamal.service.messages import parse_label_request
from streamal.service.settings import Settings

SCRAPE_EVERY_S = 0.5
#: The test's own clients (feeder, annotator) reconnect to a broker that came back within a second
#: (Apache Kafka's Java default), so a time to recover measures streamal's clients, not the test's:
#: kafka-python's default backs off up to 30 s between attempts.
TEST_CLIENTS: dict[str, Any] = {"reconnect_backoff_max_ms": 1000}


def counters(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    """The few samples the chaos tests follow, from a parsed ``/metrics``."""
    return {
        "instances": metrics.get(("streamal_instances_total", ()), 0.0),
        "requests": sum(v for (name, _), v in metrics.items() if name == "streamal_label_requests_total"),
        "pending": metrics.get(("streamal_pending_requests", ()), 0.0),
        "ready": metrics.get(("streamal_ready", ()), 0.0),
        "label_rate": metrics.get(("streamal_label_rate_ratio", ()), 0.0),
        "orphaned": metrics.get(("streamal_labels_total", (("outcome", "orphaned"),)), 0.0),
        "joined": metrics.get(("streamal_labels_total", (("outcome", "joined"),)), 0.0),
        "commit_failures": metrics.get(("streamal_commit_failures_total", ()), 0.0),
    }


class Replica:
    """One replica of the group across its processes (see the module docstring)."""

    def __init__(self, name: str, settings: Settings, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.settings = settings.model_copy(update={"state_dir": folder / "state", "metrics_port": free_port()})
        self.process = ServiceProcess(self.settings, folder)
        self.runs: list[dict[str, float]] = []  # the last scrape of each process
        self.exits: list[tuple[str, int | None]] = []  # how each process ended
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        p = self.process.process
        return p is not None and p.poll() is None

    def start(self) -> Replica:
        self.process.start()
        with self._lock:
            self.runs.append({})
        return self

    def scrape(self) -> dict[str, float]:
        if not self.running:
            return {}
        found = self.process.metrics()
        if not found:
            return {}
        values = counters(found)
        with self._lock:
            if self.runs:
                self.runs[-1] = values
        return values

    @property
    def now(self) -> dict[str, float]:
        with self._lock:
            return dict(self.runs[-1]) if self.runs else {}

    def total(self, key: str) -> float:
        with self._lock:
            return sum(run.get(key, 0.0) for run in self.runs)

    def ready(self) -> bool:
        return self.running and self.process.ready

    def wait_ready(self, timeout_s: float = 90.0) -> float:
        """Seconds from now until ``/readyz`` answers 200."""
        started = time.monotonic()
        wait_until(self.ready, timeout_s, f"replica {self.name} to be ready", interval_s=0.05,
                   failed=self.process.failed)
        return time.monotonic() - started

    def kill(self) -> None:
        self.scrape()
        self.process.kill()
        self.exits.append(("SIGKILL", self.process.process.returncode if self.process.process else None))

    def terminate(self) -> int:
        self.scrape()
        code = self.process.terminate()
        self.exits.append(("SIGTERM", code))
        return code

    def realised_rate(self) -> tuple[float, float, float]:
        """(requests, instances, requests / instances) over every process of this replica."""
        asked, decided = self.total("requests"), self.total("instances")
        return asked, decided, (asked / decided if decided else 0.0)

    def close(self) -> None:
        self.process.__exit__(None, None, None)  # SIGKILL if still running


class Scraper:
    """Scrapes every replica's ``/metrics`` every :data:`SCRAPE_EVERY_S` on a daemon thread."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._body, name="chaos-scraper", daemon=True)

    def _body(self) -> None:
        while not self._stop.wait(SCRAPE_EVERY_S):
            for replica in list(self.replicas):
                try:
                    replica.scrape()
                except Exception:  # noqa: BLE001, S110 -- a process dying under the scrape: the next one tells
                    pass

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        for replica in self.replicas:
            replica.scrape()


def withheld(ident: str, fraction: float) -> bool:
    """Whether the annotator keeps ``ident`` unanswered until the end: seeded by the id itself."""
    digest = hashlib.blake2b(ident.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


@dataclass
class Annotator:
    """A simulated annotator over Kafka (see the module docstring). Not Oracle: it must know which
    of its answers the broker acknowledged, and survive a broker that goes away."""

    settings: Settings
    dataset: Dataset
    withhold: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)  # every label request read, by id
    first_seen: dict[str, float] = field(default_factory=dict)  # id -> monotonic time it was first read
    acked: set[str] = field(default_factory=set)  # answers the broker acknowledged
    errors: list[str] = field(default_factory=list)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.truth = {ident: label for ident, _, label in instances(self.dataset)}
        self._todo: list[str] = []  # to answer now
        self._held: set[str] = set()  # withheld until release()
        self._released = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._body, name="chaos-annotator", daemon=True)

    # ---- what the test reads
    @property
    def held(self) -> set[str]:
        with self._lock:
            return set(self._held)

    def seen(self) -> set[str]:
        with self._lock:
            return set(self.requests)

    def acknowledged(self) -> set[str]:
        with self._lock:
            return set(self.acked)

    def first_new_after(self, t: float) -> float | None:
        """When the first request id never read before ``t`` was read (monotonic), if any."""
        with self._lock:
            later = [seen for seen in self.first_seen.values() if seen >= t]
        return min(later) if later else None

    def release(self) -> None:
        """Answer the withheld requests too, and every later one at once."""
        self._released.set()

    def failed(self) -> str | None:
        return f"the annotator failed: {self.error!r}" if self.error is not None else None

    # ---- the thread
    def _body(self) -> None:
        try:
            source = kafka.group_consumer(self.settings, [self.settings.topic_label_requests],
                                          group_id=f"{self.settings.group_id}-annotator", **TEST_CLIENTS)
            producer = KafkaProducer(**kafka.producer_config(self.settings, **TEST_CLIENTS))
            try:
                while not self._stop.is_set():
                    self._step(source, producer)
            finally:
                source.close()
                producer.close(timeout=5)
        except BaseException as exc:  # noqa: BLE001 -- kept for the test, which asserts on it
            self.error = exc

    def _step(self, source: Any, producer: KafkaProducer) -> None:
        try:
            records = source.poll(0.2)
        except KafkaAdapterError as exc:  # the broker is away: ask again
            self.errors.append(str(exc))
            time.sleep(0.5)
            return
        now = time.monotonic()
        commit: dict[tuple[str, int], int] = {}
        with self._lock:
            for record in records:
                commit[(record.topic, record.partition)] = record.offset + 1
                try:
                    request = parse_label_request(record.value, self.settings.max_message_bytes)
                except InvalidMessage as exc:
                    self.errors.append(f"invalid label request: {exc}")
                    continue
                ident = request.id
                self.requests[ident] += 1
                if ident in self.first_seen:
                    continue  # a duplicate request (at-least-once): answered once already
                self.first_seen[ident] = now
                if ident not in self.truth:
                    self.errors.append(f"request for an unknown id {ident}")
                elif withheld(ident, self.withhold) and not self._released.is_set():
                    self._held.add(ident)
                else:
                    self._todo.append(ident)
            if self._released.is_set() and self._held:
                self._todo += sorted(self._held)
                self._held.clear()
            todo, self._todo = self._todo, []
        futures = []
        for ident in todo:
            value = orjson.dumps({"id": ident, "label": self.truth[ident], "annotator": "chaos"})
            futures.append((ident, producer.send(self.settings.topic_labels, value=value, key=ident.encode())))
        if futures:
            try:
                producer.flush(timeout=30)
            except Exception as exc:  # noqa: BLE001 -- kafka-python raises a timeout: the futures say which ones failed
                self.errors.append(f"flush: {exc}")
        failed = []
        for ident, future in futures:
            if future.is_done and future.succeeded():
                with self._lock:
                    self.acked.add(ident)
            else:
                failed.append(ident)
        with self._lock:
            self._todo = failed + self._todo  # answered again (an id is answered until acknowledged)
        if commit and not failed:  # requests whose answers are all acknowledged
            try:
                source.commit(commit)
            except Exception as exc:  # noqa: BLE001 -- a rebalance or a broker away: read again (answers deduplicated by id)
                self.errors.append(f"commit: {exc}")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "the annotator did not stop"


class Feeder:
    """Instances of ``dataset`` to the instances topic at ``rate`` per second until stopped, on a thread
    (``streamal produce``'s loop, with :data:`TEST_CLIENTS`; a record the broker refused is sent again)."""

    def __init__(self, settings: Settings, dataset: Dataset, rate: float) -> None:
        self.settings = settings
        self.rate = rate
        self.records = [(ident, orjson.dumps({"id": ident, "features": features}))
                        for ident, features, _ in instances(dataset)]
        self.sent = 0  # acknowledged by the broker
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._body, name="chaos-feeder", daemon=True)

    def _body(self) -> None:
        try:
            producer = KafkaProducer(**kafka.producer_config(self.settings, **TEST_CLIENTS))
            try:
                started = time.monotonic()
                queued = 0
                while not self._stop.is_set() and queued < len(self.records):
                    batch = self.records[queued: queued + 10]
                    futures = [producer.send(self.settings.topic_instances, value=v, key=k.encode()) for k, v in batch]
                    try:
                        producer.flush(timeout=30)
                    except Exception:  # noqa: BLE001, S110 -- kafka-python's flush timeout: the futures tell what was stored
                        pass
                    if not all(f.is_done and f.succeeded() for f in futures):  # resend the batch (ids repeat)
                        continue
                    queued += len(batch)
                    self.sent = queued
                    ahead = queued / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        self._stop.wait(ahead)
            finally:
                producer.close(timeout=10)
        except BaseException as exc:  # noqa: BLE001 -- kept for the test, which asserts on it
            self.error = exc

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def halt(self) -> None:
        """Ask the thread to stop (for a ``finally``: never raises)."""
        self._stop.set()

    def stop(self, timeout_s: float = 60.0) -> int:
        """Stop; the number of instances the broker acknowledged."""
        self._stop.set()
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the feeder did not stop"
        if self.error is not None:
            raise AssertionError(f"the feeder failed: {self.error!r}") from self.error
        return self.sent
