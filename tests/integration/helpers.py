"""Helpers of the service-level integration tests: run the service, read topics, wait boundedly.

Everything here talks to a real broker through streamal's own Kafka adapter.
Records are counted by reading them (Tansu's reported end offsets lag the
real ends, DESIGN section 6), and every wait has a deadline.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from streamal.apps.datasets import Dataset
from streamal.apps.replay import Oracle
from streamal.apps.serve import serve
from streamal.core.learner import default_strategy
from streamal.service import kafka
from streamal.service.metrics import Metrics
from streamal.service.records import Record
from streamal.service.settings import Settings, env_name

#: Fields of section 3 that every label request carries (``batch_id``/``rank`` only in pool mode).
LABEL_REQUEST_FIELDS = frozenset(
    {"id", "features", "score", "strategy", "threshold", "prediction", "model_version", "mode", "requested_at"}
)


def fresh_names(prefix: str = "test") -> dict[str, str]:
    """A group id and topic names of their own (a uuid per call): tests on one broker never share state."""
    run = f"{prefix}-{uuid.uuid4().hex[:12]}"
    return {
        "group_id": run,
        "topic_instances": f"{run}.instances",
        "topic_label_requests": f"{run}.label-requests",
        "topic_labels": f"{run}.labels",
        "topic_training": f"{run}.training",
        "topic_dead_letter": f"{run}.dead-letter",
    }


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1,
               failed: Callable[[], str | None] | None = None, required: bool = True) -> Any:
    """Poll ``predicate`` until it is truthy; AssertionError naming ``what`` after ``timeout_s``.

    ``failed`` may return a reason to give up early (a crashed thread or process).
    With ``required=False`` a timeout returns the last (falsy) value instead, for the
    caller's own, more telling assertion.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if failed is not None and (reason := failed()):
            raise AssertionError(f"while waiting for {what}: {reason}")
        if time.monotonic() > deadline:
            if not required:
                return value
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_released(port: int) -> bool:
    """Whether nothing listens on ``port`` any more (it can be bound again)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def http_get(port: int, path: str) -> tuple[int, str]:
    """``(status, body)`` of a GET on the metrics port; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text: ``(sample name, sorted labels) → value``."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


# ---------------------------------------------------------------------- reading topics


def read_topic(settings: Settings, topic: str, *, at_least: int = 0, timeout_s: float = 30.0,
               idle_polls: int = 2) -> list[Record]:
    """Every record of ``topic`` (all partitions, from offset 0), by reading until it goes quiet.

    Reads at least ``at_least`` records (AssertionError after ``timeout_s``), then
    until ``idle_polls`` consecutive polls of 0.5 s return nothing.
    """
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    idle = 0
    with kafka.reader(settings, [topic]) as source:
        while idle < idle_polls or len(records) < at_least:
            if time.monotonic() > deadline:
                raise AssertionError(f"read {len(records)} records of {topic}, expected at least {at_least}")
            batch = source.poll(0.5)
            records += batch
            idle = 0 if batch else idle + 1
    return records


def values(records: Iterable[Record]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]


def lost_labels(settings: Settings) -> tuple[set[str], Counter[str]]:
    """Ids whose label reached the broker, whose request exists, but that are not on the training topic."""
    asked = {q["id"] for q in values(read_topic(settings, settings.topic_label_requests, idle_polls=1))}
    answered = {lab["id"] for lab in values(read_topic(settings, settings.topic_labels, idle_polls=1))}
    trained = Counter(t["id"] for t in values(read_topic(settings, settings.topic_training, idle_polls=1)))
    return (answered & asked) - set(trained), trained


def ends(records: Iterable[Record]) -> dict[int, int]:
    """Per partition, the offset after the last record read (offsets are contiguous from 0)."""
    out: dict[int, int] = {}
    counts: Counter[int] = Counter()
    for r in records:
        out[r.partition] = max(out.get(r.partition, 0), r.offset + 1)
        counts[r.partition] += 1
    assert dict(counts) == out, f"offsets are not contiguous from 0: {dict(counts)} records, ends {out}"
    return out


def committed(settings: Settings, topic: str, partitions: Iterable[int],
              group_id: str | None = None) -> dict[int, int | None]:
    """The group's committed offsets, read without joining the group."""
    consumer = KafkaConsumer(**kafka.consumer_config(settings, group_id=group_id or settings.group_id))
    source = kafka.KafkaSource(consumer)
    try:
        return {p: source.committed(topic, p) for p in partitions}
    finally:
        source.close()


def committed_reach_ends(settings: Settings, topic: str, records: list[Record], partitions: int,
                         group_id: str | None = None) -> tuple[bool, dict[int, int | None], dict[int, int]]:
    """Whether the committed offset of every partition is the end of what was read."""
    want = {p: ends(records).get(p, 0) for p in range(partitions)}
    got = committed(settings, topic, range(partitions), group_id)
    return all((got[p] or 0) == want[p] for p in want), got, want


# ---------------------------------------------------------------------- the service in this process


class ServiceThread:
    """``streamal.apps.serve.serve`` on a thread, with its own metrics registry."""

    def __init__(self, settings: Settings, name: str = "streamal-test-service") -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.service: Any = None
        self._thread = threading.Thread(target=self._body, name=name, daemon=True)

    def _body(self) -> None:
        try:
            self.service = serve(self.settings, stop=self.stop, metrics=self.metrics)
        except BaseException as exc:  # surfaced by failed() and close()
            self.error = exc

    def start(self) -> ServiceThread:
        self._thread.start()
        return self

    def value(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels or None) or 0.0

    @property
    def instances(self) -> float:
        return self.value("streamal_instances_total")

    @property
    def requests(self) -> float:
        strategy = self.settings.strategy or default_strategy(self.settings.task)
        return self.value("streamal_label_requests_total", strategy=strategy, mode="stream")

    @property
    def ready(self) -> bool:
        return self.value("streamal_ready") == 1.0

    def failed(self) -> str | None:
        if self.error is not None:
            return f"the service failed: {self.error!r}"
        if not self._thread.is_alive() and not self.stop.is_set() and self._thread.ident is not None:
            return "the service thread ended by itself"
        return None

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        wait_until(lambda: self.ready, timeout_s, "the service to be ready", failed=self.failed)

    def close(self, timeout_s: float = 60.0) -> None:
        self.stop.set()
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the service did not stop"
        if self.error is not None:
            raise AssertionError(f"the service failed: {self.error!r}") from self.error

    def __enter__(self) -> ServiceThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(60)
        if exc[0] is None:
            self.close()


class OracleThread:
    """The simulated annotator of ``streamal oracle`` on a thread, in a group of its own."""

    def __init__(self, settings: Settings, dataset: Dataset, **kwargs: Any) -> None:
        self.oracle = Oracle(settings, dataset, group_id=f"{settings.group_id}-oracle", **kwargs)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._body, name="streamal-test-oracle", daemon=True)

    def _body(self) -> None:
        try:
            self.oracle.run(self.stop.is_set)
        except BaseException as exc:
            self.error = exc

    @property
    def answered(self) -> int:
        return self.oracle.answered

    def failed(self) -> str | None:
        return f"the oracle failed: {self.error!r}" if self.error is not None else None

    def __enter__(self) -> OracleThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "the oracle did not stop"
        if exc[0] is None and self.error is not None:
            raise AssertionError(f"the oracle failed: {self.error!r}") from self.error


class Background:
    """A function on a daemon thread whose exception is kept for the test."""

    def __init__(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None

        def body() -> None:
            try:
                self.result = target(*args, **kwargs)
            except BaseException as exc:
                self.error = exc

        self._thread = threading.Thread(target=body, daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout_s: float) -> Any:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "a background task did not finish"
        if self.error is not None:
            raise AssertionError(f"a background task failed: {self.error!r}") from self.error
        return self.result


# ---------------------------------------------------------------------- the service as a process


def settings_env(settings: Settings) -> dict[str, str]:
    """``STREAMAL_*`` environment variables that give a process exactly ``settings``."""
    env: dict[str, str] = {}
    for field, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, (tuple, list)):
            if not value:
                continue
            value = ",".join(map(str, value))
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[env_name(field)] = str(value)
    return env


class ServiceProcess:
    """``streamal serve`` as a child process (its own state directory, env settings), stopped by pid."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.port = settings.metrics_port
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.started_at = 0.0
        script = Path(sys.executable).with_name("streamal")  # the console script of this environment
        self.command = [str(script)] if script.exists() else [sys.executable, "-m", "streamal.apps.cli"]

    def start(self) -> ServiceProcess:
        assert self.process is None or self.process.poll() is not None, "already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMAL_")}
        env.update(settings_env(self.settings))
        self.runs += 1
        self.started_at = time.monotonic()
        log = open(self.log_dir / f"serve-{self.runs}.log", "wb")
        try:
            self.process = subprocess.Popen(
                [*self.command, "serve"],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        return self

    def _get(self, path: str) -> tuple[int, str]:
        return http_get(self.port, path)

    @property
    def ready(self) -> bool:
        return self._get("/readyz")[0] == 200

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of ``/metrics``: ``(name, sorted labels) → value``; empty if unreachable."""
        status, text = self._get("/metrics")
        return parse_metrics(text) if status == 200 else {}

    def failed(self) -> str | None:
        if self.process is not None and self.process.poll() is not None:
            return f"streamal serve exited with {self.process.returncode}:\n{self.log_tail()}"
        return None

    def log_tail(self, chars: int = 3000) -> str:
        path = self.log_dir / f"serve-{self.runs}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as in a crash."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM (a clean stop), SIGKILL if it does not stop in time; the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(f"streamal serve did not stop on SIGTERM:\n{self.log_tail()}") from None

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
