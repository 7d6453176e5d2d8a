"""An in-memory broker with the adapter's interface, for unit tests of the loop.

Topics are lists of records per partition; keys are placed by Kafka's
default partitioner; a consumer group commits offsets; a member gets every
partition of its topics, or the partition numbers it is given. Nothing here is Kafka: it
is the smallest broker that makes the loop's contract testable without one
(the integration tests run the same loop against a real broker).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from streamal.service.partitioning import partition_for_key
from streamal.service.records import Delivered, Partition, Record


class MemoryBroker:
    def __init__(self) -> None:
        self.topics: dict[str, list[list[Record]]] = {}
        self.committed: dict[str, dict[Partition, int]] = {}

    def create(self, topic: str, partitions: int = 1) -> None:
        self.topics.setdefault(topic, [[] for _ in range(partitions)])

    def append(self, topic: str, value: bytes | None, key: bytes | str | None = None) -> Delivered:
        parts = self.topics[topic]
        data = key.encode("utf-8") if isinstance(key, str) else key
        p = partition_for_key(data, len(parts)) if data is not None else 0
        offset = len(parts[p])
        parts[p].append(Record(topic, p, offset, data, value, int(time.time() * 1000)))
        return Delivered(topic, p, offset)

    def records(self, topic: str) -> list[Record]:
        return [r for part in self.topics[topic] for r in part]

    def source(self, topics: Sequence[str], group_id: str | None = None,
               on_assign: Callable[[set[Partition]], None] | None = None,
               partitions: Iterable[int] | None = None) -> MemorySource:
        """A consumer of ``topics``: every partition, or only the partition numbers ``partitions``
        (a member of a group of several, the assignment fixed)."""
        return MemorySource(self, topics, group_id, on_assign, partitions)

    def sink(self) -> MemorySink:
        return MemorySink(self)


class MemorySource:
    """The consumer side: ``poll``, ``commit``, ``seek``, ``assignment``, ``end_offsets``, ``position``."""

    def __init__(self, broker: MemoryBroker, topics: Sequence[str], group_id: str | None,
                 on_assign: Callable[[set[Partition]], None] | None, partitions: Iterable[int] | None = None) -> None:
        self.broker = broker
        self.group_id = group_id
        numbers = set(partitions) if partitions is not None else None
        self._assignment = {(t, p) for t in topics for p in range(len(broker.topics[t]))
                            if numbers is None or p in numbers}
        committed = broker.committed.setdefault(group_id, {}) if group_id else {}
        self._positions = {tp: committed.get(tp, 0) for tp in self._assignment}
        self._on_assign = on_assign
        self._announced = False

    def poll(self, timeout_s: float = 0.0, max_records: int | None = None) -> list[Record]:
        if not self._announced and self._on_assign:
            self._on_assign(set(self._assignment))
        self._announced = True
        out: list[Record] = []
        for tp in sorted(self._assignment):
            topic, p = tp
            part = self.broker.topics[topic][p]
            start = self._positions[tp]
            take = part[start: start + (max_records - len(out) if max_records else len(part))]
            out += take
            self._positions[tp] = start + len(take)
            if max_records and len(out) >= max_records:
                break
        return out

    def commit(self, offsets: Mapping[Partition, int]) -> None:
        if self.group_id is None:
            raise ValueError("a reader outside a group cannot commit")
        self.broker.committed.setdefault(self.group_id, {}).update(offsets)

    def seek(self, topic: str, partition: int, offset: int) -> None:
        self._positions[(topic, partition)] = offset

    def position(self, topic: str, partition: int) -> int:
        return self._positions[(topic, partition)]

    def assignment(self) -> set[Partition]:
        return set(self._assignment)

    def end_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        return {(t, p): len(self.broker.topics[t][p]) for t, p in partitions}

    def close(self) -> None:
        pass


class MemorySink:
    """The producer side: ``send`` queues, ``flush`` stores and says where."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker
        self._queued: list[tuple[str, bytes | None, bytes | str | None]] = []

    def send(self, topic: str, value: bytes | None, key: str | bytes | None = None) -> None:
        self._queued.append((topic, value, key))

    def flush(self, timeout_s: float | None = None) -> list[Delivered]:
        queued, self._queued = self._queued, []
        return [self.broker.append(*q) for q in queued]

    def close(self, timeout_s: float | None = None) -> None:
        self.flush()
