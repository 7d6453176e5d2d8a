"""Outstanding label requests: bounded by count and age, rebuilt after a restart.

Every replica keeps the requests of the whole group: it learns them from the
label-requests topic (its own as it makes them), and forgets an id once its
joined example shows up on the training topic. So after a rebalance the
replica that now owns a partition can join its labels, and a restarted
replica rebuilds the map from its checkpoint plus the label-requests topic.
The ids of recently joined requests are kept too (bounded), to tell a
duplicate label from an orphan.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(slots=True)
class Request:
    """What a label needs to be joined with: the instance's features and when it was asked.

    The features are kept as their JSON bytes, about 190 bytes for 10
    features against 1,250 for the dict, and decoded once, when the label
    arrives.
    """

    features_json: bytes
    requested_at: float  # seconds since the epoch
    requested_at_text: str  # as in the label request (RFC 3339)
    #: Asked a second time after the first request expired unanswered (``STREAMAL_REASK_EXPIRED``).
    reasked: bool = False

    @property
    def features(self) -> dict[str, Any]:
        return orjson.loads(self.features_json)  # type: ignore[no-any-return]


def _json(features: Mapping[str, Any]) -> bytes:
    """The features as JSON bytes, copied: an ``orjson.dumps`` result holds on
    to its ~4 KiB working buffer (measured: 4,120 bytes of RSS each, 186 copied)."""
    return bytes(memoryview(orjson.dumps(features)))


class PendingRequests:
    """Outstanding requests, oldest first, at most ``max_count`` and ``max_age_s`` old.

    >>> p = PendingRequests(max_count=2, max_age_s=60)
    >>> [p.add(i, {"x": n}, float(n), f"t{n}") for n, i in enumerate("abc")]
    [True, True, True]
    >>> list(p.ids()), p.evicted
    (['b', 'c'], 1)
    >>> p.join("b").features, p.was_joined("b"), len(p)
    ({'x': 1}, True, 1)
    >>> [request_id for request_id, _ in p.expire(now=100.0)], len(p)
    (['c'], 0)

    A dropped request read back from the log is not taken again; a later
    request for the same id (asked again) is:

    >>> p.add("a", {"x": 0}, 0.0, "t0"), p.add("a", {"x": 0}, 200.0, "t200")
    (False, True)


    """

    def __init__(self, max_count: int = 100_000, max_age_s: float = 86_400.0) -> None:
        if max_count < 1:
            raise ValueError(f"max_count must be ≥ 1, got {max_count}")
        if max_age_s <= 0:
            raise ValueError(f"max_age_s must be > 0, got {max_age_s}")
        self.max_count = max_count
        self.max_age_s = max_age_s
        #: How many joined and dropped ids are remembered (a small pending bound must not forget them at once).
        self.remembered = max(max_count, 10_000)
        self._requests: OrderedDict[str, Request] = OrderedDict()
        self._joined: OrderedDict[str, None] = OrderedDict()
        #: Ids of requests evicted or expired → when they had been asked (bounded like the joined ids).
        self._dropped: OrderedDict[str, float] = OrderedDict()
        #: Requests dropped because the map was full / too old (a label for them is orphaned).
        self.evicted = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._requests)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._requests

    def ids(self):  # type: ignore[no-untyped-def]
        return self._requests.keys()

    def add(self, request_id: str, features: Mapping[str, Any], requested_at: float, requested_at_text: str,
            *, reasked: bool = False) -> bool:
        """Record a request; False if it was known (pending, joined, or dropped and this is not a later ask)."""
        if request_id in self._requests or request_id in self._joined:
            return False
        dropped_at = self._dropped.get(request_id)
        if dropped_at is not None:
            if requested_at < dropped_at + 1.0:  # the same request (its time read back at millisecond precision)
                return False
            del self._dropped[request_id]
        self._requests[request_id] = Request(_json(features), requested_at, requested_at_text, reasked)
        while len(self._requests) > self.max_count:
            self._drop(*self._requests.popitem(last=False))
            self.evicted += 1
        return True

    def _drop(self, request_id: str, request: Request) -> None:
        self._dropped[request_id] = request.requested_at
        while len(self._dropped) > self.remembered:
            self._dropped.popitem(last=False)

    def join(self, request_id: str) -> Request | None:
        """Take the request a label answers, or ``None`` if there is none."""
        request = self._requests.pop(request_id, None)
        if request is not None:
            self.mark_joined(request_id)
        return request

    def mark_joined(self, request_id: str) -> None:
        """Forget a request whose label was joined (by this or another replica)."""
        self._requests.pop(request_id, None)
        self._joined[request_id] = None
        self._joined.move_to_end(request_id)
        while len(self._joined) > self.remembered:
            self._joined.popitem(last=False)

    def was_joined(self, request_id: str) -> bool:
        return request_id in self._joined

    def renew(self, request_id: str, requested_at: float, requested_at_text: str) -> None:
        """A pending request was asked again later (read back from the log): it is a re-ask, aged from now."""
        request = self._requests.get(request_id)
        if request is not None and requested_at > request.requested_at:
            self._requests[request_id] = Request(request.features_json, requested_at, requested_at_text, True)
            self._requests.move_to_end(request_id)

    def expire(self, now: float) -> list[tuple[str, Request]]:
        """Drop the requests older than ``max_age_s`` and return them, oldest first."""
        cutoff = now - self.max_age_s
        dropped = []
        while self._requests:
            request_id, request = next(iter(self._requests.items()))
            if request.requested_at >= cutoff:
                break
            del self._requests[request_id]
            self._drop(request_id, request)
            dropped.append((request_id, request))
        self.expired += len(dropped)
        return dropped

    def oldest_age(self, now: float) -> float:
        """Age in seconds of the oldest outstanding request (0 if none)."""
        if not self._requests:
            return 0.0
        return max(0.0, now - next(iter(self._requests.values())).requested_at)

    # -- checkpoints (JSON-able, no pickle) ---------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "requests": [
                [k, r.features_json.decode(), r.requested_at, r.requested_at_text, r.reasked]
                for k, r in self._requests.items()
            ],
            "joined": list(self._joined),
            "dropped": list(self._dropped.items()),
            "evicted": self.evicted,
            "expired": self.expired,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self._requests = OrderedDict(
            (k, Request(f.encode() if isinstance(f, str) else _json(f), float(t), str(s), bool(rest and rest[0])))
            for k, f, t, s, *rest in state.get("requests", [])  # no 5th item: written before re-asks existed
        )
        self._joined = OrderedDict((k, None) for k in state.get("joined", []))
        self._dropped = OrderedDict((k, float(t)) for k, t in state.get("dropped", []))
        self.evicted = int(state.get("evicted", 0))
        self.expired = int(state.get("expired", 0))
