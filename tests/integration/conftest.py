"""Real Kafka-protocol brokers over TCP for the integration tests (DESIGN section 6).

The session's ``broker`` is, in this order: the one named by
``STREAMAL_TEST_BOOTSTRAP``; else Apache Kafka in a container (testcontainers)
if a Docker engine answers; else Apache Kafka itself, one KRaft node started
from the jars ``.ci/fetch-kafka`` fetched (``tests/apache_kafka.py``). Two more
brokers, each started only if a test asks for it: ``tansu``, the demo's
embedded broker, and ``cluster``, three Apache Kafka nodes (replication factor
3, ``min.insync.replicas=2``). Every test gets its own topics and consumer group.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: apache_kafka.py
from apache_kafka import ApacheKafka, ApacheKafkaCluster, kafka_version  # noqa: E402

from helpers import fresh_names  # noqa: E402

from streamal.service.settings import Settings, load_settings  # noqa: E402

BOOTSTRAP_ENV = "STREAMAL_TEST_BOOTSTRAP"
# 6 s is Apache Kafka's smallest accepted session timeout (group.min.session.timeout.ms);
# Tansu answers a JoinGroup after half of it, so each group join costs 3 s there.
TEST_SESSION_TIMEOUT_MS = 6000

#: Start-up times of the Apache Kafka brokers of this session, for the summary.
_STARTED: list[str] = []


@dataclass(frozen=True)
class Broker:
    """A broker of this test session."""

    bootstrap: str
    kind: str  # "external", "testcontainers", "apache-kafka" or "tansu"


def docker_answers(timeout_s: float = 2.0) -> bool:
    """Whether a Docker engine answers a ping within ``timeout_s``."""
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=timeout_s)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no socket, no permission, engine down: all mean "no Docker"
        return False


def _kafka_container() -> Any:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers < 4.10
        from testcontainers.kafka import KafkaContainer
    return KafkaContainer().with_kraft()


def _started(what: str, kafka: ApacheKafkaCluster) -> None:
    _STARTED.append(f"{what} (Apache Kafka {kafka_version()}) ready in {kafka.started_in_s:.1f} s")


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    external = os.environ.get(BOOTSTRAP_ENV)
    if external:
        yield Broker(external, "external")
    elif docker_answers():
        with _kafka_container() as kafka:
            yield Broker(kafka.get_bootstrap_server(), "testcontainers")
    else:
        with ApacheKafka() as kafka:
            _started("one node", kafka)
            yield Broker(kafka.bootstrap, "apache-kafka")


@pytest.fixture(scope="session")
def tansu() -> Iterator[Broker]:
    """Tansu (``streamal.service.broker.LocalBroker``), the embedded broker of ``streamal demo``."""
    from streamal.service.broker import LocalBroker

    with LocalBroker() as local:
        yield Broker(local.bootstrap, "tansu")


@pytest.fixture(scope="session")
def cluster() -> Iterator[ApacheKafkaCluster]:
    """Three Apache Kafka nodes for failover tests; started by the first test that asks for it."""
    with ApacheKafkaCluster(3) as kafka:
        _started("three nodes", kafka)
        yield kafka


@pytest.fixture(params=["broker", "tansu"])
def each_broker(request: pytest.FixtureRequest) -> Broker:
    """The session's broker, then Tansu: for the tests that must pass on both."""
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _STARTED:
        terminalreporter.write_line(line)


# ---------------------------------------------------------------------- settings


@pytest.fixture
def settings_for(broker: Broker) -> Callable[..., Settings]:
    """Settings on the session's broker with fresh topic names and group; keywords override."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "bootstrap_servers": broker.bootstrap,
            **fresh_names(),
            "session_timeout_ms": TEST_SESSION_TIMEOUT_MS,
            "partitions": 3,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def settings(settings_for: Callable[..., Settings]) -> Settings:
    return settings_for()


# ---------------------------------------------------------------------- a second client

# librdkafka 2.0.2 (Debian 12's kcat) reads Apache Kafka as it is, but cannot parse
# Tansu's ApiVersions v3 answer (it sends the optional tagged fields explicitly);
# with the legacy protocol it can still list metadata and fetch from absolute offsets.
_KCAT_LEGACY = ["-X", "api.version.request=false", "-X", "broker.version.fallback=0.9.0"]


def kcat_command(broker: Broker) -> list[str]:
    """kcat's command prefix for ``broker`` (skips if kcat is not installed)."""
    binary = shutil.which("kcat")
    if binary is None:
        pytest.skip("kcat is not installed (Debian: apt-get install kcat)")
    # Apache Kafka must be readable as it is; the legacy protocol is for Tansu (or an unknown broker).
    apache = broker.kind in ("apache-kafka", "testcontainers")
    for flags in ([],) if apache else ([], _KCAT_LEGACY):
        probe = subprocess.run(
            [binary, *flags, "-b", broker.bootstrap, "-L", "-m", "3"],
            capture_output=True,
            timeout=30,
        )
        if probe.returncode == 0:
            return [binary, *flags, "-b", broker.bootstrap]
    pytest.fail(f"kcat cannot read metadata from {broker.bootstrap}: {probe.stderr.decode()[-500:]}")


@pytest.fixture(scope="session")
def kcat(broker: Broker) -> list[str]:
    """kcat's command prefix for the session's broker."""
    return kcat_command(broker)
