"""A label and its pending request → a training record, or the outcome that says why not (DESIGN section 3).

Pure: no broker, no metrics. The loop validates the label first, counts the
outcome and produces the record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from streamal.service.messages import Label, TrainingRecord, rfc3339
from streamal.service.pending import PendingRequests


@dataclass(frozen=True, slots=True)
class Joined:
    """A label that trains the model: ``outcome`` is ``"joined"`` or ``"unsolicited"``."""

    outcome: str
    record: TrainingRecord
    #: Seconds from the request to the label (joined labels only).
    delay_s: float | None


def join_label(
    label: Label, pending: PendingRequests, labeled_at: float, catch_up: Callable[[], None] | None = None
) -> Joined | str:
    """Join ``label`` with its request; or ``"duplicate"`` / ``"orphaned"`` when it trains nothing.

    ``catch_up`` is called once when the request is unknown and not yet
    answered (its request may be on the label-requests topic but not read
    yet); the join is then tried again. A label for an id never asked about
    trains the model when it carries features (unsolicited), else it is
    orphaned; a second label for an answered request is a duplicate.

    >>> p = PendingRequests()
    >>> _ = p.add("a", {"x": 1.0}, 100.0, "2026-01-01T00:00:00.000Z")
    >>> j = join_label(Label(id="a", label="spam"), p, labeled_at=130.0)
    >>> j.outcome, j.record.features, j.delay_s
    ('joined', {'x': 1.0}, 30.0)
    >>> join_label(Label(id="a", label="ham"), p, 131.0), join_label(Label(id="b", label="ham"), p, 131.0)
    ('duplicate', 'orphaned')

    """
    request = pending.join(label.id)
    if request is None and catch_up is not None and not pending.was_joined(label.id):
        catch_up()
        request = pending.join(label.id)
    if request is not None:
        outcome, features, requested_at = "joined", request.features, request.requested_at_text
        delay: float | None = max(0.0, labeled_at - request.requested_at)
    elif pending.was_joined(label.id):
        return "duplicate"
    elif label.features:
        outcome, features, requested_at, delay = "unsolicited", dict(label.features), None, None
        pending.mark_joined(label.id)
    else:
        return "orphaned"
    record = TrainingRecord(
        id=label.id, features=features, label=label.label, source=outcome, annotator=label.annotator,
        requested_at=requested_at, labeled_at=rfc3339(labeled_at),
    )
    return Joined(outcome, record, delay)
