"""The broker side of the bridge: the label-requests, labels and training topics, read into the ledger.

The topics are read as the annotate page reads them
(:class:`~streamal.apps.answers_feed.AnswersFeed`): requests are noted for a
task, labels and training records mark their ids answered. Until it is caught
up the bridge creates no task and sends no label (a restarted bridge must
first know every label it sent before). ``barrier()`` is how a send whose
outcome is unknown is settled: any label the broker stored before is then
known.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


from streamal.apps.annotate.classes import ClassBook
from streamal.apps.answers_feed import AnswersFeed
from streamal.apps.label_studio.ledger import Ledger
from streamal.service import kafka
from streamal.service.messages import LabelRequest
from streamal.service.records import Record
from streamal.service.settings import Settings




class TopicFeed(AnswersFeed):
    """The three topics, read into ``ledger`` and ``classes`` (see :class:`~streamal.apps.answers_feed.AnswersFeed`)."""

    name = "streamal-label-studio-feed"

    def __init__(self, settings: Settings, ledger: Ledger, classes: ClassBook,
                 open_source: Callable[[Settings, list[str]], Any] = kafka.reader) -> None:
        self.ledger = ledger
        #: Called when a request that needs a task arrives after the catch-up (the bridge wakes up for it).
        self.on_request: Callable[[], None] | None = None
        super().__init__(settings, classes, open_source)

    def request(self, request: LabelRequest, requested_at: float, raw: bytes) -> None:
        fresh = self.ledger.add_request(request.id, request.score, requested_at, raw)
        if fresh and self.on_request is not None and self.caught_up.is_set():
            self.on_request()

    def unreadable_request(self, reason: str) -> None:  # a request the bridge cannot read never becomes a task
        self.ledger.count(f"requests_unusable:{reason}")

    def answered(self, ident: str, label: Any, annotator: str | None, record: Record) -> None:
        self.ledger.mark_answered(ident, label, annotator)

    def caught_up_message(self) -> str:
        return (f"label-studio: topics read: {self.ledger.pending_count()} unanswered requests, "
                f"{self.ledger.answered_count()} ids answered")
