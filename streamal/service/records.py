"""Plain values the loop and both adapters share (no Kafka import)."""

from __future__ import annotations

from typing import NamedTuple


class Record(NamedTuple):
    """One consumed record, as plain values.

    kafka-python's ``ConsumerRecord`` has these attributes too (and more), so
    the Kafka adapter passes its records through as they are: no copy per record.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int  # milliseconds since the epoch


class Delivered(NamedTuple):
    """Where the broker stored a produced record."""

    topic: str
    partition: int
    offset: int


Partition = tuple[str, int]
"""A partition as ``(topic, partition number)``."""
