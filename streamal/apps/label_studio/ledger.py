"""The bridge's bookkeeping: which requests need a task, which tasks are open, which labels may be sent.

Pure: no broker, no HTTP, no threads of its own (one lock: the topic reader
and the bridge loop call it from two threads). Rules:

- **One task per id.** A request becomes a task only if its id is not
  answered and has no task yet; the tasks already in Label Studio are noted
  (:meth:`Ledger.note_task`) from the project's listing at start-up, and from
  every import. A request read again (at-least-once) or asked again by the
  service changes nothing once its task exists.
- **One label per id.** Answered ids are rebuilt from the labels (and
  training) topics, read from the start, before anything is sent.
  :meth:`Ledger.decide` says ``send`` only for an id that is not answered and
  whose earlier send has no unknown outcome: a send the broker did not
  acknowledge (:meth:`Ledger.failed`) may still have been stored, so the id
  waits until the topic has been read to its end again
  (:meth:`Ledger.release_uncertain`) — if the label is there, it is answered.
- **Outcomes** are counted once per version of an annotation (its id and
  ``updated_at``): ``labels_sent``; ``duplicate`` (the same answer again: a
  double webhook delivery, the poll after a webhook, a restart); ``updated_after_send``
  (the annotator changed an answer whose label is on the topic: counted and
  logged, not sent again — a label cannot be taken back); ``already_answered``
  (someone else answered the id first, e.g. on the annotate page).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from streamal.apps.annotate.classes import LabelValue

#: Annotation versions remembered so that each is counted and logged once.
MAX_SEEN = 100_000

Decision = Literal["send", "wait", "duplicate", "updated_after_send", "already_answered"]


@dataclass(slots=True)
class Pending:
    """A label request without a task yet; ``raw`` is its record value (parsed again when the task is made)."""

    id: str
    score: float
    requested_at: float  # seconds since the epoch
    raw: bytes
    attempts: int = 0
    parked_until: float = 0.0  # Label Studio refused its task: tried again after this moment


class Ledger:
    """See the module docstring.

    >>> book = Ledger(clock=lambda: 1000.0)
    >>> book.add_request("a", 0.4, 990.0, b"{}"), book.add_request("b", 0.9, 990.0, b"{}")
    (True, True)
    >>> [p.id for p in book.to_create(10)]
    ['b', 'a']
    >>> book.note_task("b", 17); book.open_tasks(), [p.id for p in book.to_create(10)]
    ({17: 'b'}, ['a'])
    >>> book.decide("b", "spam", "ann"), book.sent("b", "spam", "ann"), book.decide("b", "spam", "ann")
    ('send', None, 'duplicate')
    >>> book.decide("b", "ham", "ann"), book.open_tasks()
    ('updated_after_send', {})
    """

    def __init__(self, *, max_age_s: float = math.inf, max_pending: int = 1_000_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.max_age_s = max_age_s
        self.max_pending = max_pending
        self.clock = clock
        self._lock = threading.RLock()
        self._answered: dict[str, tuple[LabelValue | None, str | None]] = {}  # id -> (label, annotator)
        self._pending: dict[str, Pending] = {}
        self._tasks: dict[str, int] = {}  # open tasks: id -> Label Studio task id
        self._by_task: dict[int, str] = {}
        self._uncertain: dict[str, int] = {}  # id -> generation of its failed send
        self._generation = 0
        self._seen: OrderedDict[tuple[int, str], str] = OrderedDict()  # (annotation id, updated_at) -> outcome
        #: Outcomes and refusals, for the log and ``/status``.
        self.counts: Counter[str] = Counter()

    # ------------------------------------------------------------------ what the topics say

    def add_request(self, ident: str, score: float, requested_at: float, raw: bytes) -> bool:
        """A label request read from the topic; True if it (now) needs a task."""
        with self._lock:
            if ident in self._answered:
                self.counts["requests_already_answered"] += 1
                return False
            if ident in self._tasks:
                self.counts["requests_with_task"] += 1
                return False
            old = self._pending.get(ident)
            if old is not None:
                if requested_at <= old.requested_at:
                    return False  # the same request read again (at-least-once), or an older one
                old.score, old.requested_at, old.raw = score, requested_at, raw
                return True
            self._pending[ident] = Pending(ident, score, requested_at, raw)
            if len(self._pending) > self.max_pending:
                oldest = min(self._pending.values(), key=lambda p: p.requested_at)
                del self._pending[oldest.id]
                self.counts["requests_evicted"] += 1
            return True

    def mark_answered(self, ident: str, label: LabelValue | None = None, annotator: str | None = None) -> None:
        """A label for ``ident`` is on the labels topic (or its training record on the training topic)."""
        with self._lock:
            if ident not in self._answered or self._answered[ident][0] is None:
                self._answered[ident] = (label, annotator)
            self._pending.pop(ident, None)
            self._uncertain.pop(ident, None)
            task = self._tasks.pop(ident, None)
            if task is not None:
                self._by_task.pop(task, None)

    def is_answered(self, ident: str) -> bool:
        with self._lock:
            return ident in self._answered

    def answered_count(self) -> int:
        with self._lock:
            return len(self._answered)

    # ------------------------------------------------------------------ tasks

    def note_task(self, ident: str, task_id: int) -> None:
        """Label Studio has a task for ``ident`` (listed, or just imported)."""
        with self._lock:
            self._pending.pop(ident, None)
            if ident in self._answered:
                return
            old = self._tasks.get(ident)
            if old is not None and old != task_id:
                self.counts["tasks_duplicated_in_label_studio"] += 1  # made by someone else, or by an old bridge
                if old < task_id:
                    return  # the first task is the one
                self._by_task.pop(old, None)
            self._tasks[ident] = task_id
            self._by_task[task_id] = ident

    def has_task(self, ident: str) -> bool:
        with self._lock:
            return ident in self._tasks

    def to_create(self, limit: int) -> list[Pending]:
        """Up to ``limit`` requests that need a task, the highest score first (too old ones dropped)."""
        with self._lock:
            now = self.clock()
            for p in [p for p in self._pending.values() if now - p.requested_at > self.max_age_s]:
                del self._pending[p.id]
                self.counts["requests_too_old"] += 1
            ready = [p for p in self._pending.values() if p.parked_until <= now]
            ready.sort(key=lambda p: (-p.score, p.requested_at))
            return ready[:limit]

    def park(self, ident: str, until: float) -> None:
        """Label Studio refused the task of ``ident``: try again after ``until``."""
        with self._lock:
            pending = self._pending.get(ident)
            if pending is not None:
                pending.attempts += 1
                pending.parked_until = until

    def forget_request(self, ident: str, reason: str) -> None:
        """A request that can never become a task (unreadable): dropped and counted."""
        with self._lock:
            if self._pending.pop(ident, None) is not None:
                self.counts[f"requests_unusable:{reason}"] += 1

    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending)

    def open_tasks(self) -> dict[int, str]:
        """Tasks whose id has no label yet: Label Studio task id -> instance id."""
        with self._lock:
            return dict(self._by_task)

    def ident_of_task(self, task_id: int) -> str | None:
        with self._lock:
            return self._by_task.get(task_id)

    # ------------------------------------------------------------------ labels

    def first_time(self, annotation_id: int, updated_at: str, outcome: str) -> bool:
        """Whether this version of an annotation is seen for the first time with this ``outcome``."""
        with self._lock:
            key = (annotation_id, updated_at)
            if self._seen.get(key) == outcome:
                return False
            self._seen[key] = outcome
            self._seen.move_to_end(key)
            while len(self._seen) > MAX_SEEN:
                self._seen.popitem(last=False)
            return True

    def decide(self, ident: str, label: LabelValue, annotator: str | None) -> Decision:
        """What to do with an annotation's label for ``ident`` (see the module docstring)."""
        with self._lock:
            if ident in self._uncertain:
                return "wait"
            known = self._answered.get(ident)
            if known is None:
                return "send"
            old_label, old_annotator = known
            if old_label is None or (old_label == label and type(old_label) is type(label)):
                return "duplicate"
            if old_annotator is not None and old_annotator == annotator:
                return "updated_after_send"
            return "already_answered"

    def sent(self, ident: str, label: LabelValue, annotator: str | None) -> None:
        """The broker acknowledged the label of ``ident``."""
        self.counts["labels_sent"] += 1
        self.mark_answered(ident, label, annotator)

    def failed(self, ident: str) -> None:
        """The label of ``ident`` was not acknowledged: it may still be on the topic."""
        with self._lock:
            self._generation += 1
            if ident not in self._answered:
                self._uncertain[ident] = self._generation
            self.counts["label_sends_failed"] += 1

    def uncertain(self) -> int | None:
        """The generation of the latest failed send still unresolved, ``None`` if there is none."""
        with self._lock:
            return max(self._uncertain.values()) if self._uncertain else None

    def release_uncertain(self, upto: int) -> None:
        """The labels topic was read to its end after the failed sends up to generation ``upto``.

        Their ids that are still unanswered were not stored: they may be sent again.
        """
        with self._lock:
            for ident in [i for i, g in self._uncertain.items() if g <= upto]:
                del self._uncertain[ident]

    def count(self, outcome: str, n: int = 1) -> None:
        with self._lock:
            self.counts[outcome] += n
