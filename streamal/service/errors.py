"""One error root for streamal, and the errors of the service layer.

Every error streamal raises on purpose is a :class:`StreamalError`, so a caller
can catch them all at once. Errors that concern a Kafka record carry its
``topic``, ``partition`` and ``offset`` (``None`` when not known).
"""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "CommitError",
    "DeliveryError",
    "InvalidMessage",
    "KafkaAccessError",
    "KafkaAdapterError",
    "SettingsError",
    "StreamalError",
    "TopicLayoutError",
]


class StreamalError(Exception):
    """Root of every error streamal raises on purpose."""


class SettingsError(StreamalError, ValueError):
    """Invalid configuration; the message names the setting as its environment variable."""


class InvalidMessage(StreamalError, ValueError):
    """A record value that breaks its message contract.

    ``reason`` is short and machine-readable (it becomes the ``reason`` label of
    ``streamal_rejected_total`` and of the dead letter); the message says what
    is wrong for a human.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self):  # keep pickling (multiprocessing, pytest-xdist) working
        return (type(self), (self.reason, str(self)))


class KafkaAdapterError(StreamalError):
    """A failure of the Kafka adapter, located by topic, partition and offset where known."""

    def __init__(
        self,
        message: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        where = ", ".join(
            f"{name}={value}"
            for name, value in (("topic", topic), ("partition", partition), ("offset", offset))
            if value is not None
        )
        super().__init__(f"{message} ({where})" if where else message)
        self.topic = topic
        self.partition = partition
        self.offset = offset


class KafkaAccessError(KafkaAdapterError):
    """The broker answers but refuses this client: authentication failed, or TLS could not be
    established (an untrusted certificate, a handshake that failed). Retrying does not help;
    the message names the cause and the settings to look at, never a secret."""


class DeliveryError(KafkaAdapterError):
    """The broker did not acknowledge a produced record."""


class CommitError(KafkaAdapterError):
    """An offset commit failed (e.g. the group rebalanced away the partition)."""


class TopicLayoutError(KafkaAdapterError):
    """Topics are missing or not co-partitioned."""


class BrokerError(StreamalError):
    """The local broker could not be found, started or reached."""
