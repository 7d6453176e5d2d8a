"""The bridge's loop: label requests become Label Studio tasks, finished annotations become labels.

One thread runs :meth:`Bridge.step` every ``poll_s`` seconds, and at once when
a webhook or a new label request arrives. A step, once the topics are read
(:mod:`.feed`):

1. connects (:mod:`.project`: the project, its labeling config, the tab
   sorted by score, the webhook); then lists the project's tasks once, so
   that no request gets a second task after a restart;
2. makes tasks of the waiting requests, the highest score first, in batches
   (adding new classes to the bridge's own config first);
3. reads the annotations of the tasks webhooks named (the webhook is only a
   trigger: what is sent is read from the API with the bridge's token, so a
   forged or repeated delivery sends nothing of its own);
4. every ``poll_s``, reads the annotations of every open task that has one:
   the fallback that catches whatever no webhook announced (Label Studio
   could not reach the bridge, the bridge was down, a webhook was lost).

Outcomes of trouble, none of which loses a request or an annotation:

- Label Studio down or unreachable (:class:`LabelStudioUnavailable`): the
  step stops, is logged once per outage and tried again every ``poll_s``;
  requests wait in memory (they are on the topic anyway), annotations are
  read by the first poll after it is back. An import whose answer was lost may
  have created its tasks: the tasks after the last known one are listed
  before anything is imported again.
- A batch Label Studio refuses (4xx): its tasks are imported one by one; one
  refused again is tried without its pre-annotation, then parked for
  ``PARK_S`` and tried again (a fixed config lets it through), counted.
- A request the bridge cannot read: dropped and counted by reason.
- The broker does not acknowledge a label: see :mod:`.ledger` (sent again
  only once the topic shows it was not stored).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from streamal.apps.annotate.classes import ClassBook
from streamal.apps.label_studio.annotations import annotator_name, created_by_text, read_annotation
from streamal.apps.label_studio.client import LabelStudioClient, LabelStudioRefused, LabelStudioUnavailable
from streamal.apps.label_studio.config import LabelingConfig
from streamal.apps.label_studio.ledger import Ledger
from streamal.apps.label_studio.project import Project
from streamal.apps.label_studio.tasks import make_task, task_key
from streamal.service.errors import InvalidMessage
from streamal.service.messages import LabelRequest, parse_label_request
from streamal.service.settings import Settings

log = logging.getLogger("streamal.label_studio")

#: Tasks imported per call.
BATCH: Final = 100
#: Open tasks asked about per listing call.
CHUNK: Final = 200
#: Seconds between steps while the topics are read, or a send's outcome is being settled.
SETTLE_S: Final = 0.5
#: Seconds an import Label Studio took without saying which tasks it made waits to be listed before a retry.
UNCONFIRMED_S: Final = 60.0
#: Seconds a request whose task Label Studio refused waits before it is tried again.
PARK_S: Final = 600.0
_HAS_ANNOTATION: Final = {"filter": "filter:tasks:total_annotations", "operator": "greater", "type": "Number",
                          "value": 0}


def webhook_task_ids(payload: Mapping[str, Any]) -> list[int]:
    """The task ids a webhook payload names (``task``, ``annotation(s)``; one object or a list).

    >>> webhook_task_ids({"action": "ANNOTATION_CREATED", "task": {"id": 7}, "annotation": {"id": 3, "task": 7}})
    [7]
    >>> webhook_task_ids({"action": "ANNOTATIONS_CREATED", "annotation": [{"task": 1}, {"task": 2}]})
    [1, 2]
    """
    found: list[int] = []
    for key, field in (("task", "id"), ("tasks", "id"), ("annotation", "task"), ("annotations", "task")):
        value = payload.get(key)
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, Mapping):
                continue
            ident = item.get(field)
            if isinstance(ident, Mapping):
                ident = ident.get("id")
            if isinstance(ident, int) and not isinstance(ident, bool):
                found.append(ident)
    return list(dict.fromkeys(found))


class Bridge:
    """See the module docstring; ``writer.send(id, label, annotator)`` sends a label and waits for the broker."""

    def __init__(self, settings: Settings, client: LabelStudioClient, ledger: Ledger, classes: ClassBook,
                 writer: Any, *, feed: Any = None, project_id: int | None = None, project_title: str,
                 webhook_url: str | None = None, webhook_secret: str | None = None, poll_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.client = client
        self.ledger = ledger
        self.classes = classes
        self.writer = writer
        self.feed = feed
        self.site = Project(client, settings, classes, project_id=project_id, title=project_title,
                            webhook_url=webhook_url, webhook_secret=webhook_secret, poll_s=poll_s)
        self.poll_s = poll_s
        self.clock = clock
        self.stop = threading.Event()
        self.wake = threading.Event()
        #: What ``/status`` shows.
        self.status = "starting"
        self._listed = False
        self._max_task_id = 0
        self._resync = False
        self._unconfirmed: set[str] = set()  # imported, not yet seen in a listing
        self._hooked: deque[int] = deque()
        self._hook_lock = threading.Lock()
        self._polled_at = -math.inf
        self._users: dict[Any, str] = {}
        self._barrier: tuple[int, threading.Event] | None = None
        self._down_since: float | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ running

    def start(self) -> Bridge:
        self._thread = threading.Thread(target=self.run, name="streamal-label-studio", daemon=True)
        self._thread.start()
        return self

    @property
    def project(self) -> dict[str, Any] | None:
        """The project as Label Studio last showed it; ``None`` before it is connected."""
        return self.site.data

    @property
    def config(self) -> LabelingConfig | None:
        return self.site.config

    @property
    def webhook_url(self) -> str | None:
        return self.site.webhook_url

    @property
    def webhook_secret(self) -> str | None:
        return self.site.webhook_secret

    @property
    def alive(self) -> bool:
        """Whether the loop's thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def close(self, timeout_s: float = 30.0) -> None:
        self.stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def run(self) -> None:
        """Steps until :attr:`stop` is set; never raises for trouble with Label Studio or the broker."""
        while not self.stop.is_set():
            self.wake.clear()  # before the step: a webhook arriving during it wakes the next one
            delay = self.poll_s  # after a failed step: the retry interval
            try:
                delay = self.step()
                if self._down_since is not None:
                    log.info("label-studio: Label Studio answers again after %.0f s", self.clock() - self._down_since)
                    self._down_since = None
            except LabelStudioUnavailable as exc:
                if self._down_since is None:
                    self._down_since = self.clock()
                    log.warning("label-studio: Label Studio is unavailable, trying again every %g s: %s",
                                self.poll_s, exc)
                self.status = f"Label Studio unavailable: {exc}"
            except LabelStudioRefused as exc:
                status = f"Label Studio refused a call: {exc}"
                if exc.status in (401, 403):
                    status += (" (check STREAMAL_LABEL_STUDIO_TOKEN: a personal access token from Account & "
                               "Settings of a user of the project's organization)")
                if status != self.status:  # said once, not at every retry
                    log.error("label-studio: %s", status)
                self.status = status
                if exc.status == 404:
                    self.site.forget()  # the project was deleted (or the id is wrong): look for it again
            except Exception as exc:  # a bug must not end the bridge silently: logged, tried again
                self.status = f"step failed: {exc!r}"
                log.exception("label-studio: step failed")
            self.wake.wait(delay)

    def hook(self, task_ids: Iterable[int]) -> None:
        """A webhook named these tasks: read their annotations at once (on the bridge's thread)."""
        with self._hook_lock:
            self._hooked.extend(task_ids)
        self.wake.set()

    def step(self) -> float:
        """One round (see the module docstring); the seconds until the next one is due."""
        if self.feed is not None and not self.feed.caught_up.is_set():
            self.status = f"reading the topics: {self.feed.status}"
            return SETTLE_S
        settling = self._settle_uncertain()
        if self.project is None:
            self.site.connect()
        if not self._listed or self._resync or self._unconfirmed:
            self._list_tasks(after=self._max_task_id if self._listed else 0)
            self._listed, self._resync = True, False
            self._unconfirmed = {i for i in self._unconfirmed
                                 if not self.ledger.has_task(i) and not self.ledger.is_answered(i)}
        self._make_tasks()
        self._read_hooked()
        if self.clock() >= self._polled_at + self.poll_s:
            self.site.refresh()
            self._poll_open_tasks()
            self._polled_at = self.clock()
        self.status = "live"
        due = max(0.0, self._polled_at + self.poll_s - self.clock())
        return min(due, SETTLE_S) if settling else due

    # ------------------------------------------------------------------ requests -> tasks

    def _list_tasks(self, after: int) -> None:
        """Note the bridge's tasks of the project after task id ``after`` (all of them at start-up)."""
        listed = 0
        for task in self.client.iter_tasks(self.site.id, include="id,meta", after_id=after):
            self._max_task_id = max(self._max_task_id, int(task["id"]))
            ident = task_key(task)
            if ident is not None:
                self.ledger.note_task(ident, int(task["id"]))
                listed += 1
        if after == 0:
            log.info("label-studio: %d tasks of the bridge in the project, %d open", listed,
                     len(self.ledger.open_tasks()))

    def _make_tasks(self) -> None:
        assert self.config is not None
        while not self.stop.is_set():
            batch = self.ledger.to_create(BATCH)
            if not batch:
                return
            requests: list[LabelRequest] = []
            for pending in batch:
                try:
                    requests.append(parse_label_request(pending.raw, self.settings.max_message_bytes))
                except InvalidMessage as exc:
                    self.ledger.forget_request(pending.id, exc.reason)
            if not requests:
                continue
            self.site.extend(requests)
            self._import(requests)

    def _import(self, requests: list[LabelRequest]) -> None:
        assert self.config is not None
        text = self.settings.text_features
        try:
            answer = self.client.import_tasks(self.site.id, [make_task(r, text, self.config) for r in requests])
        except LabelStudioUnavailable:
            self._resync = True  # the tasks may exist: list them before importing again
            raise
        except LabelStudioRefused as exc:
            if len(requests) > 1:
                log.warning("label-studio: Label Studio refused %d tasks at once (%s): one by one", len(requests), exc)
                for request in requests:
                    self._import([request])
                return
            self._import_alone(requests[0], exc)
            return
        self._noted(requests, answer)

    def _import_alone(self, request: LabelRequest, refusal: LabelStudioRefused) -> None:
        """A task refused as it is: without its pre-annotation, else parked (counted, logged)."""
        assert self.config is not None
        try:
            answer = self.client.import_tasks(self.site.id, [make_task(request, self.settings.text_features,
                                                                             self.config, with_prediction=False)])
        except LabelStudioUnavailable:
            self._resync = True
            raise
        except LabelStudioRefused as exc:
            self.ledger.park(request.id, time.time() + PARK_S)
            self.ledger.count("tasks_refused")
            log.warning("label-studio: Label Studio refused the task of %r (%s); tried again in %g s",
                        request.id, exc, PARK_S)
            return
        self.ledger.count("tasks_without_prediction")
        log.warning("label-studio: the task of %r was made without its pre-annotation, which Label Studio "
                    "refused: %s", request.id, refusal)
        self._noted([request], answer)

    def _noted(self, requests: list[LabelRequest], answer: Any) -> None:
        ids = answer.get("task_ids") if isinstance(answer, dict) else None
        if isinstance(ids, list) and len(ids) == len(requests):
            for request, task_id in zip(requests, ids, strict=True):
                self.ledger.note_task(request.id, int(task_id))
                self._max_task_id = max(self._max_task_id, int(task_id))
        else:  # imported in the background (Label Studio with a job queue): find them by listing
            self._list_tasks(after=self._max_task_id)
            for request in requests:
                if not self.ledger.has_task(request.id) and not self.ledger.is_answered(request.id):
                    # not listed yet: not imported again before a later listing had the chance to find it
                    self.ledger.park(request.id, time.time() + UNCONFIRMED_S)
                    self.ledger.count("imports_unconfirmed")
                    self._unconfirmed.add(request.id)
        self.ledger.count("tasks_created", len(requests))

    # ------------------------------------------------------------------ annotations -> labels

    def _read_hooked(self) -> None:
        with self._hook_lock:
            hooked, self._hooked = list(dict.fromkeys(self._hooked)), deque()
        for i, task_id in enumerate(hooked):
            try:
                ident = self.ledger.ident_of_task(task_id)
                if ident is None:
                    task = self.client.task(task_id)
                    ident = task_key(task)
                    if ident is None or task.get("project") != self.site.id:
                        self.ledger.count("webhooks_not_for_the_bridge")
                        continue
                    self.ledger.note_task(ident, task_id)
                    self._take(task_id, ident, task.get("annotations") or [])
                else:
                    self._take(task_id, ident, self.client.annotations(task_id))
            except LabelStudioRefused as exc:
                if exc.status != 404:
                    raise
                self.ledger.count("webhooks_for_deleted_tasks")
            except LabelStudioUnavailable:
                with self._hook_lock:  # read them when Label Studio is back (without waking the loop now)
                    self._hooked.extendleft(reversed(hooked[i:]))
                raise

    def _poll_open_tasks(self) -> None:
        open_tasks = self.ledger.open_tasks()
        ids = sorted(open_tasks)
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            for task in self.client.iter_tasks(self.site.id, filters=[_HAS_ANNOTATION], include="id,meta",
                                               task_ids=chunk):
                task_id = int(task["id"])
                ident = open_tasks.get(task_id)
                if ident is None or not self.ledger.has_task(ident):
                    continue  # answered meanwhile
                self._take(task_id, ident, self.client.annotations(task_id))

    def _take(self, task_id: int, ident: str, annotations: list[dict[str, Any]]) -> None:
        """The annotations of one task, oldest first: the first usable one is the label (see :mod:`.ledger`)."""
        assert self.config is not None
        for annotation in sorted(annotations, key=lambda a: (str(a.get("created_at") or ""), a.get("id") or 0)):
            aid = int(annotation.get("id") or 0)
            version = str(annotation.get("updated_at") or "")
            answer = read_annotation(annotation, self.config, self.classes)
            if answer.status != "label":
                if self.ledger.first_time(aid, version, answer.status):
                    self.ledger.count(f"annotations_{answer.status}")
                    if answer.status == "refused" or answer.status == "empty":
                        log.warning("label-studio: annotation %d of task %d (%r) gives no label: %s; fix it in Label "
                                    "Studio, the task stays open", aid, task_id, ident, answer.reason)
                continue
            assert answer.label is not None
            annotator = self._annotator(annotation)
            decision = self.ledger.decide(ident, answer.label, annotator)
            if decision == "wait":
                return
            if decision != "send":
                if self.ledger.first_time(aid, version, decision):
                    self.ledger.count(decision)
                    if decision == "updated_after_send":
                        log.warning("label-studio: annotation %d of task %d (%r) was changed to %r after its label "
                                    "was sent; a label is sent once and not taken back", aid, task_id, ident,
                                    answer.label)
                continue
            try:
                self.writer.send(ident, answer.label, annotator)
            except Exception as exc:  # DeliveryError, or anything else: the broker may have stored it anyway
                self.ledger.failed(ident)
                log.warning("label-studio: the label of %r was not acknowledged (%s); sent again only if the "
                            "topic shows it was not stored", ident, exc)
                return
            self.ledger.sent(ident, answer.label, annotator)
            self.ledger.first_time(aid, version, "sent")
            log.info("label-studio: label %r for %r by %s (task %d)", answer.label, ident, annotator, task_id)

    def _annotator(self, annotation: Mapping[str, Any]) -> str:
        user = annotation.get("completed_by")
        if isinstance(user, Mapping):
            return annotator_name(user, user.get("id"))
        if user not in self._users:
            try:
                self._users[user] = annotator_name(self.client.user(int(user)), user) if user is not None else \
                    annotator_name(None, "unknown")
            except (LabelStudioRefused, TypeError, ValueError):
                self._users[user] = created_by_text(annotation) or annotator_name(None, user)
        return self._users[user]

    def _settle_uncertain(self) -> bool:
        """After failed sends, wait until the feed re-read the topics; then those ids may be sent again.

        True while some are still waiting (the next step comes soon, to look again).
        """
        generation = self.ledger.uncertain()
        if generation is None or self.feed is None:
            if generation is not None:
                self.ledger.release_uncertain(generation)
            return False
        if self._barrier is None:
            self._barrier = (generation, self.feed.barrier())
        upto, event = self._barrier
        if event.is_set():
            self.ledger.release_uncertain(upto)
            self._barrier = None
        return self.ledger.uncertain() is not None
