"""Producing: a producer whose flush says whether every record since the last flush was stored."""

from __future__ import annotations

from typing import Any

import kafka.errors
from kafka import KafkaProducer

from streamal.service.errors import DeliveryError
from streamal.service.kafka.configuration import Closing, connect, producer_config
from streamal.service.records import Delivered
from streamal.service.settings import Settings


class KafkaSink(Closing):
    """A producer whose :meth:`flush` says whether every record since the last flush was stored."""

    def __init__(self, producer: KafkaProducer) -> None:
        self.client = producer
        self._pending: list[tuple[str, Any]] = []

    def send(self, topic: str, value: bytes | None, key: str | bytes | None = None) -> None:
        """Queue a record; ``key`` (an instance id) is UTF-8 encoded and picks the partition."""
        data = key.encode("utf-8") if isinstance(key, str) else key
        try:
            future = self.client.send(topic, value=value, key=data)
        except kafka.errors.KafkaError as exc:
            raise DeliveryError(f"send failed: {exc}", topic=topic) from exc
        self._pending.append((topic, future))

    def flush(self, timeout_s: float | None = None) -> list[Delivered]:
        """Wait until the broker acknowledged every queued record; where each one landed.

        Raises :class:`DeliveryError` for the first record that was not stored;
        offsets depending on these records must then not be committed.
        """
        try:
            self.client.flush(timeout=timeout_s)
        except kafka.errors.KafkaError as exc:  # timed out: the records stay pending
            raise DeliveryError(f"flush did not finish: {exc}") from exc
        pending, self._pending = self._pending, []
        delivered = []
        for topic, future in pending:
            try:
                meta = future.get(timeout=0)
            except kafka.errors.KafkaError as exc:
                raise DeliveryError(f"record not stored: {exc}", topic=topic) from exc
            delivered.append(Delivered(meta.topic, meta.partition, meta.offset))
        return delivered

    def close(self, timeout_s: float | None = None) -> None:
        """Send what is queued, then close."""
        self.client.close(timeout=timeout_s)


def producer(settings: Settings, **overrides: Any) -> KafkaSink:
    """A producer with ``acks=all`` and Kafka's default (murmur2) partitioner."""
    return KafkaSink(connect(KafkaProducer, producer_config(settings, **overrides)))
