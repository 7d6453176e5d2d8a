"""kafka-python client settings from streamal's settings, and connecting: what consumer, producer and admin share."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Final, Self

import kafka.errors

from streamal.service.errors import KafkaAdapterError
from streamal.service.kafka.access import check_access
from streamal.service.settings import Settings

CLIENT_ID: Final = "streamal"

# Fetch tuning, measured against Tansu (the local broker) with kafka-python 3.0.12
# on a 2-core machine. Draining a 50k-record backlog runs at ~37k records/s with
# kafka-python's defaults and with any mix of fetch_max_wait_ms 10/100/500,
# max_poll_records 500/5000 and 1/8 MiB partition fetches: Python decoding is
# the limit, not the fetch settings. What does matter on Tansu:
# - fetch_max_wait_ms: Tansu answers a fetch with what it read within this
#   wait: 0 returns no records at all (a consumer never advances) and 10 ms
#   returns partial batches. 100 ms bounds the time a poll can sit on an idle
#   partition while keeping fetches full.
# - max_partition_fetch_bytes: at least one maximal message (with headroom).
# Joining a group is what is slow on Tansu: the JoinGroup answer comes after
# half the session timeout (measured: 1 s at 2 s, 3 s at 6 s, 5 s at 10 s,
# 10 s at 20 s), so kafka-python's 45 s default would cost ~22 s per join.
FETCH_MAX_WAIT_MS: Final = 100
MIN_PARTITION_FETCH_BYTES: Final = 1024 * 1024
# Producer: a few milliseconds of linger batch a burst of label requests into
# one request without adding noticeable latency; large batches, because
# kafka-python wakes its sender thread for every new batch (a syscall and a
# GIL hand-over): with 1 MiB instead of 16 KiB a send of a 700-byte label
# request costs 15 µs instead of 34 µs on the development machine.
LINGER_MS: Final = 5
BATCH_BYTES: Final = 1024 * 1024
#: How long admin and readiness requests may take before they count as failed.
ADMIN_TIMEOUT_MS: Final = 10_000


def topic_names(settings: Settings) -> list[str]:
    """The topics of streamal, instances first (the predictions topic last, when set)."""
    names = [
        settings.topic_instances,
        settings.topic_label_requests,
        settings.topic_labels,
        settings.topic_training,
        settings.topic_dead_letter,
    ]
    if settings.topic_predictions is not None:
        names.append(settings.topic_predictions)
    return names


def client_config(settings: Settings) -> dict[str, Any]:
    return {
        "bootstrap_servers": settings.bootstrap_list,
        "client_id": CLIENT_ID,
        # kafka-python backs off up to 30 s between reconnects by default (Java: 1 s): after a broker
        # outage of 12 s decisions resumed 23-44 s after it was back; with 1 s, 1.1-1.7 s (tests/chaos).
        "reconnect_backoff_max_ms": 1000,
        **settings.kafka_security_kwargs(),
    }


def consumer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """kafka-python consumer arguments: manual commits, earliest start, tuned fetches.

    Pass ``max_records`` to :meth:`KafkaSource.poll` to size a scoring batch.
    """
    session = settings.session_timeout_ms
    config = {
        **client_config(settings),
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",  # a new group reads the topic from its start
        "allow_auto_create_topics": False,  # topics are created co-partitioned, never implicitly
        "session_timeout_ms": session,
        # Kafka wants heartbeats well inside the session. A member learns of a rebalance
        # from its next heartbeat, and every join waits for all members, so the interval
        # is what a restart or rebalance stalls the group for: a tenth of the session, at
        # most 1 s (3 s measured 2-4 s per join, 1 s 0.3-0.75 s: benchmarks/restart.py).
        "heartbeat_interval_ms": max(100, min(1000, session // 10)),
        "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
        "max_partition_fetch_bytes": max(MIN_PARTITION_FETCH_BYTES, 2 * settings.max_message_bytes),
    }
    config.update(overrides)
    return config


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """kafka-python producer arguments: acks from all in-sync replicas, default partitioner."""
    config = {
        **client_config(settings),
        "acks": "all",
        "allow_auto_create_topics": False,
        "linger_ms": LINGER_MS,
        "batch_size": BATCH_BYTES,
        # A label request carries an instance (up to max_message_bytes) plus the
        # prediction; leave room for both.
        "max_request_size": max(1_048_576, 2 * settings.max_message_bytes),
    }
    config.update(overrides)
    return config


def connect(client_class: type, config: dict[str, Any]) -> Any:
    check_access(config)
    try:
        return client_class(**config)
    except kafka.errors.KafkaError as exc:
        raise KafkaAdapterError(
            f"cannot reach Kafka at {','.join(config['bootstrap_servers'])}: {exc}"
        ) from exc


class Closing:
    """``with`` closes the client."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
