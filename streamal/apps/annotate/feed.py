"""The broker side of ``streamal annotate``: reading the topics into the queue, writing labels, and the service's figures.

- :class:`Feed` reads the label-requests, labels and training topics
  (:class:`~streamal.apps.answers_feed.AnswersFeed`) into the queue:
  requests become pending items, labels and training records mark their ids
  answered; until it is caught up the page offers nothing (a restarted
  annotate must not offer a request whose label it has not read yet).
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

from prometheus_client.parser import text_string_to_metric_families

from streamal.apps.annotate.classes import ClassBook, LabelValue
from streamal.apps.annotate.queue import AnnotationQueue
from streamal.apps.answers_feed import AnswersFeed
from streamal.service import kafka
from streamal.service.errors import DeliveryError, StreamalError
from streamal.service.messages import Label, LabelRequest, encode
from streamal.service.records import Record
from streamal.service.settings import Settings

log = logging.getLogger("streamal.annotate")

#: Seconds the broker has to acknowledge a label before the answer counts as not sent.
SEND_TIMEOUT_S = 10.0


class Feed(AnswersFeed):
    """The three topics, read into ``queue`` and ``classes`` (see :class:`~streamal.apps.answers_feed.AnswersFeed`)."""

    name = "streamal-annotate-feed"

    def __init__(self, settings: Settings, queue: AnnotationQueue, classes: ClassBook,
                 open_source: Callable[[Settings, list[str]], Any] = kafka.reader) -> None:
        self.queue = queue
        super().__init__(settings, classes, open_source)

    def request(self, request: LabelRequest, requested_at: float, raw: bytes) -> None:
        self.queue.add_request(request.id, request.score, requested_at, raw)

    def unreadable_request(self, reason: str) -> None:  # skipped and counted, shown on the page
        self.queue.counts[f"malformed_requests:{reason}"] += 1

    def answered(self, ident: str, label: Any, annotator: str | None, record: Record) -> None:
        self.queue.mark_answered(ident)
        if record.topic == self.settings.topic_labels and record.timestamp and record.timestamp > 0:
            self.queue.note_label(record.timestamp / 1000.0)

    def caught_up_message(self) -> str:
        return f"annotate: topics read, {self.queue.size()} requests pending"


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
