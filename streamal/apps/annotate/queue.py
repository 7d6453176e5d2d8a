"""What annotators are offered, and what they answered: pending requests, leases, exactly-once answers.

Pure: no broker, no web, no threads of its own (one lock, because the topic
reader and the web server call it from different threads). Time comes from
an injected clock, so every rule here is tested without waiting.

- **Order**: the highest ``score`` first; ties, the oldest request first.
- **Leases**: :meth:`AnnotationQueue.lease` hands one request to one
  annotator for ``lease_s`` seconds; nobody else gets it meanwhile. A lease
  that runs out (a closed tab, a lost connection) puts the request back.
  An annotator who asks again while holding a live lease gets the same one
  back (a reloaded page shows the same request).
- **Skip** puts it back for everyone else at once, and for the skipper after
  ``skip_s``; **don't know** puts it back for everyone but this annotator.
- **Exactly once**: the lease key is the idempotency key of the answer.
  :meth:`~AnnotationQueue.answer` says ``"send"`` once per request; the
  caller sends the label, then :meth:`~AnnotationQueue.confirm` (or
  :meth:`~AnnotationQueue.undo` if the broker did not take it, so that a
  retry with the same key sends it then). Every later answer with the key
  gets the first one back (``"saved"``, nothing sent). An id answered by
  anyone (on the labels topic, or with a training record) is never offered.
"""

from __future__ import annotations

import bisect
import heapq
import math
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

#: How many lease keys (and their answers) are remembered for a late retry.
MAX_KEYS = 100_000
#: How often (seconds) requests too old to be joined are swept out.
SWEEP_EVERY_S = 60.0


@dataclass(slots=True)
class Item:
    """One pending label request; ``raw`` is its record value, decoded again only for display."""

    id: str
    score: float
    requested_at: float  # seconds since the epoch
    raw: bytes
    version: int = 0  # bumped when the service asks again (a newer request replaces this one)
    lease: str | None = None  # the key of the lease holding it


@dataclass(frozen=True, slots=True)
class Lease:
    """A request reserved for one annotator until ``expires_at``; ``key`` is the answer's idempotency key."""

    key: str
    id: str
    annotator: str
    expires_at: float
    item: Item = field(repr=False, compare=False)


AnswerStatus = Literal["send", "saved", "already_answered", "unknown_lease"]


@dataclass(frozen=True, slots=True)
class Answer:
    """What to do with an answer: ``send`` it (the first time), or nothing and why not."""

    status: AnswerStatus
    id: str | None = None
    label: str | float | None = None  # a str, an int or a float
    annotator: str | None = None


class AnnotationQueue:
    """Pending requests by score, leased one at a time (see the module docstring).

    >>> clock = [1000.0]
    >>> q = AnnotationQueue(lease_s=300, clock=lambda: clock[0])
    >>> q.add_request("a", 0.4, 990.0, b"{}"), q.add_request("b", 0.9, 995.0, b"{}")
    (True, True)
    >>> ann = q.lease("ann"); bob = q.lease("bob")
    >>> ann.id, bob.id, q.lease("cat")
    ('b', 'a', None)
    >>> q.answer(ann.key, "spam").status, q.answer(ann.key, "ham")
    ('send', Answer(status='saved', id='b', label='spam', annotator='ann'))
    >>> clock[0] += 301; q.lease("cat").id  # bob's lease ran out
    'a'
    """

    def __init__(self, *, lease_s: float = 300.0, skip_s: float | None = None, max_age_s: float = math.inf,
                 max_pending: int = 1_000_000, clock: Callable[[], float] = time.time,
                 new_key: Callable[[], str] = lambda: secrets.token_urlsafe(16)) -> None:
        if not lease_s > 0:
            raise ValueError(f"lease_s must be > 0, got {lease_s}")
        if not max_age_s > 0:
            raise ValueError(f"max_age_s must be > 0, got {max_age_s}")
        self.lease_s = lease_s
        self.skip_s = lease_s if skip_s is None else skip_s
        self.max_age_s = max_age_s
        self.max_pending = max_pending
        self.clock = clock
        self._new_key = new_key
        self._lock = threading.RLock()
        self._items: dict[str, Item] = {}  # insertion order: oldest arrival first
        self._heap: list[tuple[float, float, int, str, int]] = []  # (-score, requested_at, seq, id, version)
        self._seq = 0
        self._answered: set[str] = set()
        self._leases: dict[str, Lease] = {}  # live leases by key
        self._by_annotator: dict[str, str] = {}  # annotator -> key of the live lease
        self._keys: OrderedDict[str, tuple[str, str]] = OrderedDict()  # every key issued -> (id, annotator)
        self._results: dict[str, Answer] = {}  # key -> the answer it sent
        self._inflight: dict[str, Item] = {}  # key -> item answered but not yet confirmed
        self._seen_inflight: set[str] = set()  # keys in flight whose id the topics showed meanwhile
        self._aside: dict[str, dict[str, float]] = {}  # annotator -> {id: until}
        self._label_times: list[float] = []  # sorted: labels arrive out of order across partitions
        self._swept_at = -math.inf
        #: Counters shown on the page.
        self.counts: Counter[str] = Counter()

    # ------------------------------------------------------------------ what the topics say

    def add_request(self, ident: str, score: float, requested_at: float, raw: bytes) -> bool:
        """Note a label request; False if its id is answered, or a newer request for it is known."""
        with self._lock:
            if ident in self._answered:
                self.counts["requests_already_answered"] += 1
                return False
            old = self._items.get(ident)
            if old is not None:
                if requested_at <= old.requested_at:
                    return False  # the same request read again (at-least-once), or an older one
                old.score, old.requested_at, old.raw = score, requested_at, raw  # asked again: newest wins
                old.version += 1
                if old.lease is None:
                    self._push(old)
                return True
            item = Item(ident, score, requested_at, raw)
            self._items[ident] = item
            self._push(item)
            if len(self._items) > self.max_pending:
                self._evict_oldest()
            return True

    def mark_answered(self, ident: str) -> None:
        """An id answered elsewhere (labels or training topic): never offered again."""
        with self._lock:
            self._answered.add(ident)
            self._seen_inflight.update(k for k, item in self._inflight.items() if item.id == ident)
            item = self._items.pop(ident, None)
            if item is not None and item.lease is not None:
                self._drop_lease(item.lease)
            if len(self._heap) > 2 * len(self._items) + 1000:  # entries of answered requests pile up
                self._compact()

    def note_label(self, at: float) -> None:
        """A label reached the labels topic at ``at`` (seconds): for the labels-per-hour figure."""
        with self._lock:
            now = self.clock()
            if at >= now - 3600.0:
                bisect.insort(self._label_times, at)
                self._trim_rate(now)

    def is_answered(self, ident: str) -> bool:
        with self._lock:
            return ident in self._answered

    # ------------------------------------------------------------------ what annotators do

    def lease(self, annotator: str) -> Lease | None:
        """The best request this annotator may take now (their live lease, if any); ``None`` if none."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            held = self._by_annotator.get(annotator)
            if held is not None:
                return self._leases[held]
            aside = self._aside.get(annotator, {})
            kept: list[tuple[float, float, int, str, int]] = []
            found: Item | None = None
            while self._heap:
                entry = heapq.heappop(self._heap)
                item = self._items.get(entry[3])
                if item is None or item.version != entry[4] or item.lease is not None:
                    continue  # answered, replaced by a newer request, or leased: a stale entry
                if now - item.requested_at > self.max_age_s:
                    self._forget(item, "requests_too_old")
                    continue
                if aside.get(item.id, -math.inf) > now:
                    kept.append(entry)
                    continue
                found = item
                break
            for entry in kept:
                heapq.heappush(self._heap, entry)
            if found is None:
                return None
            aside.pop(found.id, None)
            key = self._new_key()
            lease = Lease(key, found.id, annotator, now + self.lease_s, found)
            found.lease = key
            self._leases[key] = lease
            self._by_annotator[annotator] = key
            self._keys[key] = (found.id, annotator)
            while len(self._keys) > MAX_KEYS:
                old, _ = self._keys.popitem(last=False)
                self._results.pop(old, None)
            return lease

    def answer(self, key: str, label: str | float) -> Answer:
        """Answer the request of lease ``key`` (also after the lease ran out, if nobody answered it since).

        ``"send"`` exactly once per request: the caller sends the label, then
        calls :meth:`confirm` or :meth:`undo`; callers serialise the three.
        """
        with self._lock:
            if key in self._results:
                return self._results[key]
            known = self._keys.get(key)
            if known is None:
                return Answer("unknown_lease")
            ident, annotator = known
            if ident in self._answered:
                self._drop_lease(key)
                return Answer("already_answered", ident)
            item = self._items.pop(ident, None)
            if item is None:  # swept out as too old, or evicted
                self._drop_lease(key)
                return Answer("unknown_lease", ident)
            if item.lease is not None:
                self._drop_lease(item.lease)  # this key's lease, or someone's who got it after it ran out
            self._answered.add(ident)
            self._inflight[key] = item
            self._results[key] = Answer("saved", ident, label, annotator)
            self._by_aside_drop(ident)
            return Answer("send", ident, label, annotator)

    def confirm(self, key: str) -> None:
        """The label of ``key`` is on the broker."""
        with self._lock:
            self._seen_inflight.discard(key)
            if self._inflight.pop(key, None) is not None:
                self.counts["answered_here"] += 1

    def undo(self, key: str) -> None:
        """The label of ``key`` did not reach the broker: its request is pending again (same key).

        Unless its id showed up on the topics meanwhile (the broker had stored
        it after all): then it counts as sent, and a retry gets ``"saved"``.
        """
        with self._lock:
            if key in self._seen_inflight:
                self.confirm(key)
                return
            item = self._inflight.pop(key, None)
            self._results.pop(key, None)
            if item is None:
                return
            self._answered.discard(item.id)
            item.lease = None
            self._items[item.id] = item
            self._push(item)

    def skip(self, key: str) -> bool:
        """Back to the queue: others may take it at once, this annotator after ``skip_s``."""
        return self._put_back(key, self.skip_s, "skipped")

    def dont_know(self, key: str) -> bool:
        """Back to the queue for everyone but this annotator."""
        return self._put_back(key, math.inf, "dont_know")

    def release(self, key: str) -> bool:
        """Back to the queue for everyone (the page was closed)."""
        return self._put_back(key, None, "released")

    # ------------------------------------------------------------------ figures

    def size(self) -> int:
        """Requests waiting for an annotator (not leased)."""
        with self._lock:
            self._expire(self.clock())
            return len(self._items) - len(self._leases)

    def leased(self) -> int:
        with self._lock:
            self._expire(self.clock())
            return len(self._leases)

    def labels_per_hour(self) -> float:
        """Labels that reached the labels topic in the last hour, per hour (from every annotator).

        Over less than an hour when the first of them is younger (at least a minute).
        """
        with self._lock:
            now = self.clock()
            self._trim_rate(now)
            if not self._label_times:
                return 0.0
            span = min(3600.0, max(60.0, now - self._label_times[0]))
            return len(self._label_times) * 3600.0 / span

    # ------------------------------------------------------------------ inside

    def _push(self, item: Item) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (-item.score, item.requested_at, self._seq, item.id, item.version))
        if len(self._heap) > 2 * len(self._items) + 1000:
            self._compact()

    def _compact(self) -> None:
        """Rebuild the heap from the pending items: it collects entries of answered and replaced requests."""
        self._heap = [(-i.score, i.requested_at, n, i.id, i.version)
                      for n, i in enumerate(self._items.values()) if i.lease is None]
        heapq.heapify(self._heap)
        self._seq = len(self._heap)

    def _put_back(self, key: str, aside_s: float | None, count: str) -> bool:
        with self._lock:
            lease = self._leases.get(key)
            if lease is None:
                return False
            self._drop_lease(key)
            if aside_s is not None:
                self._aside.setdefault(lease.annotator, {})[lease.id] = self.clock() + aside_s
            self.counts[count] += 1
            return True

    def _drop_lease(self, key: str) -> None:
        """End a live lease; its request, if still pending, goes back to the queue."""
        lease = self._leases.pop(key, None)
        if lease is None:
            return
        if self._by_annotator.get(lease.annotator) == key:
            del self._by_annotator[lease.annotator]
        item = self._items.get(lease.id)
        if item is not None and item.lease == key:
            item.lease = None
            self._push(item)

    def _expire(self, now: float) -> None:
        for key in [k for k, lease in self._leases.items() if lease.expires_at <= now]:
            self._drop_lease(key)
            self.counts["leases_expired"] += 1
        if now - self._swept_at >= SWEEP_EVERY_S and self.max_age_s < math.inf:
            self._swept_at = now
            for item in [i for i in self._items.values() if i.lease is None and now - i.requested_at > self.max_age_s]:
                self._forget(item, "requests_too_old")

    def _forget(self, item: Item, count: str) -> None:
        self._items.pop(item.id, None)
        self._by_aside_drop(item.id)
        self.counts[count] += 1

    def _evict_oldest(self) -> None:
        for item in self._items.values():
            if item.lease is None:
                self._forget(item, "requests_evicted")
                return

    def _by_aside_drop(self, ident: str) -> None:
        for aside in self._aside.values():
            aside.pop(ident, None)

    def _trim_rate(self, now: float) -> None:
        del self._label_times[: bisect.bisect_left(self._label_times, now - 3600.0)]
