"""The broker side of ``streamal annotate``: reading the topics into the queue, writing labels, and the service's figures.

- :class:`Feed` reads every partition of the label-requests, labels and
  training topics from the start, outside any consumer group (so it never
  takes partitions from the service), on a daemon thread: requests become
  pending items, labels and training records mark their ids answered. It is
  *caught up* once it has read to where the topics ended when it started;
  until then the page offers nothing (a restarted annotate must not offer a
  request whose label it has not read yet).
- :class:`LabelWriter` sends one label and waits for the broker's
  acknowledgement (``acks=all``).
- :class:`ServiceFigures` reads the budget and realised label rate from the
  service's ``/metrics``.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any, Final

import orjson
from prometheus_client.parser import text_string_to_metric_families

from streamal.apps.annotate.classes import ClassBook, LabelValue
from streamal.apps.annotate.queue import AnnotationQueue
from streamal.service import kafka
from streamal.service.changelog import epoch
from streamal.service.errors import DeliveryError, InvalidMessage, StreamalError
from streamal.service.messages import Label, encode, parse_label, parse_label_request
from streamal.service.records import Record
from streamal.service.settings import Settings

log = logging.getLogger("streamal.annotate")

#: Seconds between attempts to open the topics (they may not exist before the service starts).
RETRY_S = 2.0
#: Seconds the broker has to acknowledge a label before the answer counts as not sent.
SEND_TIMEOUT_S = 10.0


class Feed:
    """The three topics, read into ``queue`` and ``classes`` on a daemon thread (see the module docstring)."""

    def __init__(self, settings: Settings, queue: AnnotationQueue, classes: ClassBook,
                 open_source: Callable[[Settings, list[str]], Any] = kafka.reader) -> None:
        self.settings = settings
        self.queue = queue
        self.classes = classes
        self._open = open_source
        self.topics = [settings.topic_label_requests, settings.topic_labels, settings.topic_training]
        #: What the page shows while nothing can be offered yet.
        self.status = "connecting to Kafka"
        self.caught_up = threading.Event()
        self.stop = threading.Event()
        self._positions: dict[tuple[str, int], int] = {}  # where to go on after a reconnect
        self._thread = threading.Thread(target=self._run, name="streamal-annotate-feed", daemon=True)

    def start(self) -> Feed:
        self._thread.start()
        return self

    def close(self, timeout_s: float = 10.0) -> None:
        self.stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                source = self._open(self.settings, self.topics)
            except StreamalError as exc:
                self.status = f"waiting for the topics: {exc}"
                self.stop.wait(RETRY_S)
                continue
            try:
                self._read(source)
            except Exception as exc:  # the broker went away (or the client broke): reconnect, go on where we were
                self.status = f"reading the topics failed, retrying: {exc}"
                log.warning("annotate: reading the topics failed: %r", exc)
                self.stop.wait(RETRY_S)
            finally:
                source.close()

    def _read(self, source: Any) -> None:
        for (topic, partition), offset in self._positions.items():
            source.seek(topic, partition, offset)
        ends = source.end_offsets(source.assignment())
        if not self.caught_up.is_set():
            self.status = "reading the topics"
        while not self.stop.is_set():
            for record in source.poll(0.5):
                self.handle(record)
                self._positions[(record.topic, record.partition)] = record.offset + 1
            if not self.caught_up.is_set() and all(source.position(t, p) >= end for (t, p), end in ends.items()):
                self.status = "live"
                self.caught_up.set()
                log.info("annotate: topics read, %d requests pending", self.queue.size())

    def handle(self, record: Record) -> None:
        """One record of any of the three topics."""
        if record.topic == self.settings.topic_label_requests:
            self._request(record)
        elif record.topic == self.settings.topic_labels:
            self._label(record)
        elif record.topic == self.settings.topic_training:
            self._training(record)

    def _request(self, record: Record) -> None:
        try:
            request = parse_label_request(record.value, self.settings.max_message_bytes)
        except InvalidMessage as exc:  # skipped and counted, shown on the page
            self.queue.counts[f"malformed_requests:{exc.reason}"] += 1
            return
        self.classes.note_names(request.prediction.proba)
        if request.prediction.label is not None:
            self.classes.note_value(request.prediction.label)
        requested_at = epoch(request.requested_at) or time.time()
        self.queue.add_request(request.id, request.score, requested_at, bytes(record.value or b""))

    def _label(self, record: Record) -> None:
        try:
            label = parse_label(record.value, self.settings.max_message_bytes)
        except InvalidMessage:  # the service does not let a malformed label use up a request: nor do we
            return
        allowed = self.settings.classes
        if allowed is not None and str(label.label) not in allowed:
            return  # dead-lettered by the service: the request is still open
        self.classes.note_value(label.label)
        self.queue.mark_answered(label.id)
        if record.timestamp and record.timestamp > 0:
            self.queue.note_label(record.timestamp / 1000.0)

    def _training(self, record: Record) -> None:
        try:
            data = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            return
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            self.queue.mark_answered(data["id"])
            self.classes.note_value(data.get("label"))


class LabelWriter:
    """Sends a label to the labels topic and waits for the broker to store it."""

    def __init__(self, settings: Settings, make_sink: Callable[[Settings], Any] = kafka.producer) -> None:
        self.settings = settings
        self._make_sink = make_sink
        self._sink: Any = None
        self._lock = threading.Lock()

    def send(self, ident: str, label: LabelValue, annotator: str | None) -> None:
        """Key = the instance id; value ``{"id", "label", "annotator"}``. Raises :class:`DeliveryError`."""
        value = encode(Label(id=ident, label=label, annotator=annotator))
        with self._lock:
            try:
                if self._sink is None:
                    self._sink = self._make_sink(self.settings)
                self._sink.send(self.settings.topic_labels, value, key=ident)
                self._sink.flush(SEND_TIMEOUT_S)
            except StreamalError as exc:
                # Drop the producer with what it still holds, so that a record the broker did not
                # take is not sent later behind the retry's back (a retry sends it anew).
                sink, self._sink = self._sink, None
                try:
                    if sink is not None:
                        sink.close(0)
                except Exception:  # closing a broken producer: nothing more to save
                    pass
                raise exc if isinstance(exc, DeliveryError) else DeliveryError(str(exc)) from exc

    def close(self) -> None:
        with self._lock:
            if self._sink is not None:
                self._sink.close(5)
                self._sink = None


class ServiceFigures:
    """The service's budget in force and realised label rate, from its ``/metrics`` (cached for ``ttl_s``)."""

    NAMES: Final = {
        "streamal_budget_ratio": "budget",
        "streamal_label_rate_ratio": "label_rate",
        "streamal_model_version": "model_version",
        "streamal_pending_requests": "pending",
    }

    def __init__(self, url: str | None, ttl_s: float = 5.0, timeout_s: float = 2.0) -> None:
        self.url = url
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._at = -float("inf")
        self._figures: dict[str, Any] = {}
        self._lock = threading.Lock()

    def read(self) -> dict[str, Any]:
        """``{"budget", "label_rate", "model_version", "pending", "source"}``; figures ``None`` when unknown."""
        if self.url is None:
            return {**dict.fromkeys(self.NAMES.values()), "source": "unknown (no --service-metrics given)"}
        with self._lock:
            if time.monotonic() - self._at >= self.ttl_s:
                self._figures = self._fetch(self.url)
                self._at = time.monotonic()
            return dict(self._figures)

    def _fetch(self, url: str) -> dict[str, Any]:
        figures: dict[str, Any] = dict.fromkeys(self.NAMES.values())
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as answer:  # a URL the operator gave
                text = answer.read(4_000_000).decode("utf-8", "replace")
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name in self.NAMES:
                        figures[self.NAMES[sample.name]] = sample.value
        except (OSError, ValueError) as exc:  # unreachable, or not Prometheus text
            return {**figures, "source": f"unknown ({url} did not answer: {type(exc).__name__})"}
        return {**figures, "source": url}
