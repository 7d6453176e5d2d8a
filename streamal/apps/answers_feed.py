"""What the labeling front ends (``annotate``, the Label Studio bridge) read from the broker.

:class:`AnswersFeed` reads every partition of the label-requests, labels and
training topics from the start, outside any consumer group (so it never takes
partitions from the service), on a daemon thread, and hands each usable
record to its subclass: a request to label, or an id that is answered (a
label, or a training record). It is *caught up* once it has read to where the
topics ended when it started; until then a front end offers nothing (after a
restart it must first know every answer). :meth:`AnswersFeed.barrier` settles
a send whose outcome is unknown: its event is set once the feed has read the
topics up to their ends as they are *after* the call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Self

import orjson

from streamal.apps.annotate.classes import ClassBook
from streamal.service import kafka
from streamal.service.changelog import epoch
from streamal.service.errors import InvalidMessage, StreamalError
from streamal.service.messages import Label, LabelRequest, parse_label, parse_label_request
from streamal.service.records import Record
from streamal.service.settings import Settings

#: Seconds between attempts to open the topics (they may not exist before the service starts).
RETRY_S = 2.0


class AnswersFeed:
    """The three topics on a daemon thread (see the module docstring); subclasses say where records go."""

    #: The thread's name and the log's.
    name = "streamal-feed"

    def __init__(self, settings: Settings, classes: ClassBook,
                 open_source: Callable[[Settings, list[str]], Any] = kafka.reader) -> None:
        self.settings = settings
        self.classes = classes
        self._open = open_source
        self.topics = [settings.topic_label_requests, settings.topic_labels, settings.topic_training]
        #: What a front end shows while nothing can be offered yet.
        self.status = "connecting to Kafka"
        self.caught_up = threading.Event()
        self.stop = threading.Event()
        self._positions: dict[tuple[str, int], int] = {}  # where to go on after a reconnect
        self._barriers: list[threading.Event] = []
        self._lock = threading.Lock()
        self._log = logging.getLogger(self.name.replace("-", "."))
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    # -- what a subclass does with the records ------------------------------------------
    def request(self, request: LabelRequest, requested_at: float, raw: bytes) -> None:
        """A label request to offer."""

    def unreadable_request(self, reason: str) -> None:
        """A label-requests record that is no request (counted by the subclass)."""

    def answered(self, ident: str, label: Any, annotator: str | None, record: Record) -> None:
        """An id answered by a label or a training record (``label`` ``None`` if not a plain value)."""

    def caught_up_message(self) -> str:
        return "topics read"

    # -- the thread -----------------------------------------------------------------------
    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self, timeout_s: float = 10.0) -> None:
        self.stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout_s)

    def barrier(self) -> threading.Event:
        """An event set once the topics are read to their ends as they are now (see the module docstring)."""
        event = threading.Event()
        with self._lock:
            self._barriers.append(event)
        return event

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
                self._log.warning("reading the topics failed: %r", exc)
                self.stop.wait(RETRY_S)
            finally:
                source.close()

    def _read(self, source: Any) -> None:
        for (topic, partition), offset in self._positions.items():
            source.seek(topic, partition, offset)
        partitions = source.assignment()
        ends = source.end_offsets(partitions)
        if not self.caught_up.is_set():
            self.status = "reading the topics"
        waiting: list[tuple[threading.Event, dict[tuple[str, int], int]]] = []
        while not self.stop.is_set():
            with self._lock:
                fresh, self._barriers = self._barriers, []
            if fresh:
                targets = source.end_offsets(partitions)
                waiting += [(event, targets) for event in fresh]
            for record in source.poll(0.5):
                self.handle(record)
                self._positions[(record.topic, record.partition)] = record.offset + 1
            if waiting or not self.caught_up.is_set():
                where = {(t, p): source.position(t, p) for t, p in partitions}
                if not self.caught_up.is_set() and all(where[tp] >= end for tp, end in ends.items()):
                    self.status = "live"
                    self.caught_up.set()
                    self._log.info(self.caught_up_message())
                for event, targets in [w for w in waiting if all(where[tp] >= e for tp, e in w[1].items())]:
                    event.set()
                    waiting.remove((event, targets))

    # -- reading one record -------------------------------------------------------------------
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
        except InvalidMessage as exc:
            self.unreadable_request(exc.reason)
            return
        self.classes.note_names(request.prediction.proba)
        if request.prediction.label is not None:
            self.classes.note_value(request.prediction.label)
        self.request(request, epoch(request.requested_at) or time.time(), bytes(record.value or b""))

    def _label(self, record: Record) -> None:
        try:
            label: Label = parse_label(record.value, self.settings.max_message_bytes)
        except InvalidMessage:  # the service does not let a malformed label use up a request: nor do we
            return
        allowed = self.settings.classes
        if allowed is not None and str(label.label) not in allowed:
            return  # dead-lettered by the service: the request is still open
        self.classes.note_value(label.label)
        self.answered(label.id, label.label, label.annotator, record)

    def _training(self, record: Record) -> None:
        try:
            data = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            return
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            label = data.get("label")
            annotator = data.get("annotator") if isinstance(data.get("annotator"), str) else None
            self.classes.note_value(label)
            self.answered(data["id"], label if isinstance(label, (str, int, float)) else None, annotator, record)
