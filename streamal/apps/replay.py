"""``streamal produce`` and ``streamal oracle``: a data source and a simulated annotator.

Both read the same dataset (a bundled one or a CSV/JSONL file), so ids are
stable between them: an id column (``id``) if the file has one, else
``<dataset>-<row number>``.
"""

from __future__ import annotations

import heapq
import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from streamal.apps.datasets import Dataset
from streamal.service import kafka
from streamal.service.errors import CommitError, InvalidMessage
from streamal.service.messages import parse_label_request
from streamal.service.settings import Settings

log = logging.getLogger("streamal.oracle")


def instances(dataset: Dataset) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """``(id, features, label)`` for each example; labels as the contract wants them."""
    for i, (x, y) in enumerate(dataset.examples):
        ident = dataset.ids[i] if dataset.ids else f"{dataset.name}-{i}"
        features = {str(k): v for k, v in x.items() if v is not None and not isinstance(v, (dict, list))}
        yield ident, features, as_label(y)


def as_label(y: Any) -> str | int | float:
    """A label is a string or a number: booleans become ``"True"``/``"False"``."""
    return str(y) if isinstance(y, bool) or not isinstance(y, (int, float, str)) else y


def produce(settings: Settings, dataset: Dataset, *, rate: float | None = None,
            progress: Callable[[int], None] | None = None, stop: Callable[[], bool] | None = None) -> int:
    """Send every instance of ``dataset`` to the instances topic; at most ``rate`` per second."""
    sink = kafka.producer(settings)
    sent = 0
    started = time.monotonic()
    try:
        for ident, features, _ in instances(dataset):
            if stop is not None and stop():
                break
            sink.send(settings.topic_instances, orjson.dumps({"id": ident, "features": features}), key=ident)
            sent += 1
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            if sent % 500 == 0:
                sink.flush()
                if progress:
                    progress(500)
        sink.flush()
        if progress:
            progress(sent % 500)
    finally:
        sink.close()
    return sent


class Oracle:
    """Answers label requests from ground truth after ``delay_s``, wrong with probability ``error_rate``."""

    def __init__(self, settings: Settings, dataset: Dataset, *, delay_s: float = 0.0, error_rate: float = 0.0,
                 seed: int = 0, group_id: str = "streamal-oracle") -> None:
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"--error-rate must be in [0, 1], got {error_rate}")
        if delay_s < 0:
            raise ValueError(f"--delay must be ≥ 0, got {delay_s}")
        self.settings = settings
        self.truth = {ident: label for ident, _, label in instances(dataset)}
        self.classes = sorted({str(v) for v in self.truth.values()})
        self.delay_s = delay_s
        self.error_rate = error_rate
        self._rng = random.Random(seed)
        self._due: list[tuple[float, str]] = []
        self.answered = 0
        self.unknown = 0
        self.source = kafka.group_consumer(settings, [settings.topic_label_requests], group_id=group_id)
        self.sink = kafka.producer(settings)

    def _label(self, ident: str) -> Any:
        label = self.truth[ident]
        if self.error_rate and self._rng.random() < self.error_rate and len(self.classes) > 1:
            return self._rng.choice([c for c in self.classes if c != str(label)])
        return label

    def step(self, timeout_s: float = 0.2) -> int:
        commit = {}
        for record in self.source.poll(timeout_s):
            commit[(record.topic, record.partition)] = record.offset + 1
            try:
                request = parse_label_request(record.value, self.settings.max_message_bytes)
            except InvalidMessage:
                continue
            if request.id not in self.truth:
                self.unknown += 1
                continue
            heapq.heappush(self._due, (time.monotonic() + self.delay_s, request.id))
        now = time.monotonic()
        sent = 0
        while self._due and self._due[0][0] <= now:
            _, ident = heapq.heappop(self._due)
            self.sink.send(self.settings.topic_labels,
                           orjson.dumps({"id": ident, "label": self._label(ident), "annotator": "oracle"}), key=ident)
            sent += 1
        self.sink.flush()
        self.answered += sent
        if commit:
            try:
                self.source.commit(commit)
            except CommitError as exc:  # kicked out of the group (a frozen broker, a rebalance): read again
                log.warning("oracle: offset commit failed, the requests will be read again: %s", exc)
        return sent

    def run(self, stop: Callable[[], bool]) -> None:
        try:
            while not stop():
                self.step()
        finally:
            self.source.close()
            self.sink.close()
