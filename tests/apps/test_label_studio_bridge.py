"""``streamal label-studio`` without servers: the exactly-once bookkeeping, the bridge's loop over an
in-memory Label Studio and a fake producer, the REST client's tokens, the webhook endpoint and the settings."""

from __future__ import annotations

import io
import json
import time
import urllib.error
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from starlette.testclient import TestClient

from streamal.apps.annotate.classes import ClassBook
from streamal.apps.label_studio import label_studio
from streamal.apps.label_studio.bridge import Bridge
from streamal.apps.label_studio.client import (
    LabelStudioClient,
    LabelStudioRefused,
    LabelStudioUnavailable,
)
from streamal.apps.label_studio.command import load_label_studio_settings
from streamal.apps.label_studio.config import CLASS_CONTROL, OTHER_CONTROL, LabelingConfig
from streamal.apps.label_studio.feed import TopicFeed
from streamal.apps.label_studio.ledger import Ledger
from streamal.apps.label_studio.project import VIEW_TITLE, WEBHOOK_HEADER
from streamal.apps.label_studio.web import create_app
from streamal.service.errors import DeliveryError
from streamal.service.records import Record
from streamal.service.settings import load_settings

# ---------------------------------------------------------------------- the ledger


class Clock:
    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_requests_need_a_task_once_the_best_first() -> None:
    book = Ledger(clock=Clock())
    assert book.add_request("a", 0.2, 9_000.0, b"a") and book.add_request("b", 0.9, 9_000.0, b"b")
    assert not book.add_request("a", 0.2, 9_000.0, b"a"), "read again (at-least-once)"
    assert book.add_request("a", 0.95, 9_500.0, b"a2"), "asked again: the newer request wins"
    assert [p.id for p in book.to_create(10)] == ["a", "b"]
    book.note_task("a", 5)
    assert not book.add_request("a", 0.99, 9_900.0, b"a3") and book.counts["requests_with_task"] == 1
    book.mark_answered("b", "spam", "ann")
    assert book.to_create(10) == [] and not book.add_request("b", 0.5, 9_999.0, b"b")
    assert book.counts["requests_already_answered"] == 1


def test_too_old_requests_get_no_task_and_the_oldest_is_evicted_past_the_bound() -> None:
    clock = Clock()
    book = Ledger(max_age_s=100.0, max_pending=2, clock=clock)
    book.add_request("old", 0.9, clock.now - 200, b"")
    book.add_request("new", 0.1, clock.now, b"")
    assert [p.id for p in book.to_create(10)] == ["new"] and book.counts["requests_too_old"] == 1
    book.add_request("newer", 0.1, clock.now + 1, b"")
    book.add_request("newest", 0.1, clock.now + 2, b"")
    assert book.counts["requests_evicted"] == 1 and book.pending_count() == 2


def test_one_task_per_id_the_first_one_wins_and_answered_ids_close_their_task() -> None:
    book = Ledger()
    book.note_task("a", 7)
    book.note_task("a", 9)
    book.note_task("a", 3)
    assert book.open_tasks() == {3: "a"} and book.counts["tasks_duplicated_in_label_studio"] == 2
    book.mark_answered("a", "x", None)
    assert book.open_tasks() == {} and book.ident_of_task(3) is None
    book.note_task("a", 11)
    assert book.open_tasks() == {}, "an answered id gets no open task"


def test_a_label_is_sent_once_and_what_comes_after_is_counted() -> None:
    book = Ledger()
    book.note_task("a", 1)
    assert book.decide("a", "spam", "ann") == "send"
    book.sent("a", "spam", "ann")
    assert book.decide("a", "spam", "ann") == "duplicate"
    assert book.decide("a", "ham", "ann") == "updated_after_send"
    assert book.decide("a", "ham", "bob") == "already_answered"
    book.mark_answered("n", 1, "ann")
    assert book.decide("n", 1.0, "ann") == "updated_after_send", "1 and 1.0 are two labels to the model"
    assert book.counts["labels_sent"] == 1


def test_a_send_with_an_unknown_outcome_waits_for_the_topic() -> None:
    book = Ledger()
    book.failed("a")
    first = book.uncertain()
    assert first is not None and book.decide("a", "spam", None) == "wait"
    book.failed("b")
    book.release_uncertain(first)  # the topic was read to its end after a's failure, not after b's
    assert book.decide("a", "spam", None) == "send" and book.decide("b", "spam", None) == "wait"
    book.mark_answered("b", "spam", None)  # b's label had been stored after all
    assert book.uncertain() is None and book.decide("b", "spam", None) == "duplicate"


def test_each_version_of_an_annotation_is_counted_once() -> None:
    book = Ledger()
    assert book.first_time(1, "t1", "empty") and not book.first_time(1, "t1", "empty")
    assert book.first_time(1, "t2", "empty") and book.first_time(1, "t2", "refused")


# ---------------------------------------------------------------------- an in-memory Label Studio


class FakeLabelStudio:
    """What the bridge calls of :class:`LabelStudioClient`, in memory; ``down`` makes every call unavailable."""

    url = "http://label-studio.test"

    def __init__(self) -> None:
        self.projects: dict[int, dict[str, Any]] = {}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.annotation_of: dict[int, list[dict[str, Any]]] = {}
        self.webhook_list: list[dict[str, Any]] = []
        self.view_list: list[dict[str, Any]] = []
        self.down = False
        self.lose_next_import_answer = False
        self.import_later = False  # an import in the background: no task ids, the tasks appear later
        self.later: list[dict[str, Any]] = []
        self.refuse = lambda task: False  # a task Label Studio refuses
        self.calls: Counter[str] = Counter()
        self._next = {"project": 1, "task": 1, "annotation": 1}

    def _new(self, kind: str) -> int:
        self._next[kind] += 1
        return self._next[kind] - 1

    def _call(self, name: str) -> None:
        self.calls[name] += 1
        if self.down:
            raise LabelStudioUnavailable(f"{name}: connection refused")

    def whoami(self) -> dict[str, Any]:
        self._call("whoami")
        return {"id": 1, "email": "bridge@example.com"}

    def projects_titled(self, title: str) -> list[dict[str, Any]]:
        self._call("projects")
        return [p for p in self.projects.values() if p["title"] == title]

    def project(self, project_id: int) -> dict[str, Any]:
        self._call("project")
        if project_id not in self.projects:
            raise LabelStudioRefused("not found", 404)
        return dict(self.projects[project_id])

    def create_project(self, **fields: Any) -> dict[str, Any]:
        self._call("create_project")
        pid = self._new("project")
        self.projects[pid] = {"id": pid, **fields}
        return dict(self.projects[pid])

    def update_project(self, project_id: int, **fields: Any) -> dict[str, Any]:
        self._call("update_project")
        self.projects[project_id].update(fields)
        return dict(self.projects[project_id])

    def import_tasks(self, project_id: int, tasks: Sequence[dict[str, Any]]) -> dict[str, Any]:
        self._call("import")
        if any(self.refuse(t) for t in tasks):
            raise LabelStudioRefused("validation error", 400)
        if self.import_later:
            self.later += [json.loads(json.dumps(t)) for t in tasks]
            return {"task_count": len(tasks)}
        ids = []
        for task in tasks:
            tid = self._new("task")
            self.tasks[tid] = {"id": tid, "project": project_id, **json.loads(json.dumps(task))}
            ids.append(tid)
        if self.lose_next_import_answer:
            self.lose_next_import_answer = False
            raise LabelStudioUnavailable("import: the connection was reset")
        return {"task_count": len(ids), "task_ids": ids}

    def iter_tasks(self, project_id: int, *, filters: Sequence[dict[str, Any]] = (), include: str | None = None,
                   with_annotations: bool = False, after_id: int = 0,
                   task_ids: Sequence[int] | None = None) -> Iterator[dict[str, Any]]:
        self._call("list")
        annotated = any(f.get("filter") == "filter:tasks:total_annotations" for f in filters)
        for tid in sorted(self.tasks):
            task = self.tasks[tid]
            if task["project"] != project_id or tid <= after_id or (task_ids is not None and tid not in task_ids):
                continue
            if annotated and not any(not a.get("was_cancelled") for a in self.annotation_of.get(tid, [])):
                continue
            yield {"id": tid, "meta": task.get("meta"), "data": task.get("data")}

    def task(self, task_id: int) -> dict[str, Any]:
        self._call("task")
        if task_id not in self.tasks:
            raise LabelStudioRefused("not found", 404)
        return {**self.tasks[task_id], "annotations": self.annotations(task_id)}

    def annotations(self, task_id: int) -> list[dict[str, Any]]:
        self._call("annotations")
        return [dict(a) for a in self.annotation_of.get(task_id, [])]

    def user(self, user_id: int) -> dict[str, Any]:
        self._call("user")
        return {"id": user_id, "email": f"user{user_id}@example.com"}

    def webhooks(self, project_id: int) -> list[dict[str, Any]]:
        self._call("webhooks")
        return [w for w in self.webhook_list if w["project"] == project_id]

    def create_webhook(self, **fields: Any) -> dict[str, Any]:
        self._call("create_webhook")
        self.webhook_list.append({"id": len(self.webhook_list) + 1, **fields})
        return self.webhook_list[-1]

    def update_webhook(self, webhook_id: int, **fields: Any) -> dict[str, Any]:
        self._call("update_webhook")
        hook = next(w for w in self.webhook_list if w["id"] == webhook_id)
        hook.update(fields)
        return hook

    def views(self, project_id: int) -> list[dict[str, Any]]:
        self._call("views")
        return [v for v in self.view_list if v["project"] == project_id]

    def create_view(self, project_id: int, data: dict[str, Any]) -> dict[str, Any]:
        self._call("create_view")
        self.view_list.append({"id": len(self.view_list) + 1, "project": project_id, "data": data})
        return self.view_list[-1]

    # what a person does in Label Studio

    def finish_imports(self) -> None:
        self.import_later = False
        self.import_tasks(next(iter(self.projects)), self.later)
        self.later = []

    def annotate(self, ident: str, result: list[dict[str, Any]], user: int = 3, cancelled: bool = False) -> int:
        [tid] = [t for t, task in self.tasks.items() if task["meta"]["streamal_id"] == ident]
        aid = self._new("annotation")
        self.annotation_of.setdefault(tid, []).append({
            "id": aid, "task": tid, "result": result, "completed_by": user, "was_cancelled": cancelled,
            "created_at": f"2026-01-01T00:00:{aid:02d}Z", "updated_at": f"2026-01-01T00:00:{aid:02d}Z"})
        return tid

    def change(self, ident: str, result: list[dict[str, Any]]) -> int:
        [tid] = [t for t, task in self.tasks.items() if task["meta"]["streamal_id"] == ident]
        annotation = self.annotation_of[tid][0]
        annotation["result"] = result
        annotation["updated_at"] = "2026-01-02T00:00:00Z"
        return tid

    def tasks_of(self, ident: str) -> list[dict[str, Any]]:
        return [t for t in self.tasks.values() if t["meta"]["streamal_id"] == ident]


class FakeWriter:
    """The labels topic: what was sent, acknowledged unless ``fail`` says otherwise."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, str | None]] = []
        self.fail = 0
        self.stored_anyway = False

    def send(self, ident: str, label: Any, annotator: str | None) -> None:
        if self.fail:
            self.fail -= 1
            if self.stored_anyway:
                self.sent.append((ident, label, annotator))
            raise DeliveryError("not acknowledged")
        self.sent.append((ident, label, annotator))

    def close(self) -> None:
        pass


def raw_request(ident: str, score: float = 0.5, label: Any = "billing",
                proba: dict[str, float] | None = None) -> bytes:
    return orjson.dumps({
        "id": ident, "features": {"body": f"ticket {ident}", "plan": "pro"}, "score": score, "strategy": "margin",
        "threshold": 0.4, "prediction": {"label": label, "proba": proba if proba is not None else {"billing": 0.6,
                                                                                                 "login": 0.4}},
        "model_version": 3, "mode": "stream", "requested_at": "2026-01-01T00:00:00Z"})


def chose(name: str) -> list[dict[str, Any]]:
    return [{"type": "choices", "from_name": CLASS_CONTROL, "to_name": "text_0", "value": {"choices": [name]}}]


def typed(text: str) -> list[dict[str, Any]]:
    return [{"type": "textarea", "from_name": OTHER_CONTROL, "to_name": "text_0", "value": {"text": [text]}}]


class Run:
    """A bridge over ``ls`` whose ledger is rebuilt from ``topic`` (the labels sent so far), as at a start."""

    def __init__(self, ls: FakeLabelStudio, topic: FakeWriter, requests: Sequence[bytes] = (),
                 **settings: Any) -> None:
        self.settings = load_settings(text_features="body", **settings)
        self.ledger = Ledger()
        self.classes = ClassBook(self.settings.classes, self.settings.task)
        for ident, label, annotator in topic.sent:
            self.ledger.mark_answered(ident, label, annotator)
        for raw in requests:
            data = orjson.loads(raw)
            self.classes.note_names(data["prediction"]["proba"])
            self.ledger.add_request(data["id"], data["score"], 1e12, raw)
        self.bridge = Bridge(self.settings, ls, self.ledger, self.classes, topic, project_title="streamal test",
                             webhook_url="http://bridge.test/webhook", webhook_secret="s3cret", poll_s=0.0)

    def step(self) -> None:
        self.bridge.step()


def test_requests_become_tasks_with_predictions_in_a_project_the_bridge_sets_up() -> None:
    ls, topic = FakeLabelStudio(), FakeWriter()
    run = Run(ls, topic, [raw_request("a", 0.2), raw_request("b", 0.9)])
    run.step()
    [project] = ls.projects.values()
    assert project["title"] == "streamal test" and project["model_version"] == "streamal"
    config = LabelingConfig.parse(project["label_config"])
    assert config.managed and config.choices == ("billing", "login") and config.other_name == OTHER_CONTROL
    assert [t["meta"]["streamal_id"] for t in ls.tasks.values()] == ["b", "a"], "the highest score first"
    assert all(t["predictions"][0]["result"] == chose("billing") for t in ls.tasks.values())
    assert [v["data"]["title"] for v in ls.view_list] == [VIEW_TITLE]
    [hook] = ls.webhook_list
    assert hook["url"] == "http://bridge.test/webhook" and hook["headers"] == {WEBHOOK_HEADER: "s3cret"}
    assert "ANNOTATION_CREATED" in hook["actions"] and "ANNOTATION_UPDATED" in hook["actions"]


def test_a_class_that_appears_later_is_added_to_the_choices() -> None:
    ls, topic = FakeLabelStudio(), FakeWriter()
    run = Run(ls, topic, [raw_request("cold", label=None, proba={})])
    run.step()
    assert LabelingConfig.parse(ls.projects[1]["label_config"]).choices_name is None, "no class known yet"
    run.ledger.add_request("warm", 0.5, 1e12, raw_request("warm", label="refund", proba={"refund": 1.0}))
    run.step()
    assert LabelingConfig.parse(ls.projects[1]["label_config"]).choices == ("refund",)
    assert ls.tasks_of("warm")[0]["predictions"][0]["result"] == chose("refund")


def test_an_annotation_becomes_one_label_also_after_restarts_and_double_webhooks() -> None:
    ls, topic = FakeLabelStudio(), FakeWriter()
    requests = [raw_request("a"), raw_request("b"), raw_request("c")]
    run = Run(ls, topic, requests)
    run.step()
    ls.annotate("a", chose("login"), user=3)
    ls.annotate("b", typed("refund"), user=4)
    run.step()
    assert sorted(topic.sent) == [("a", "login", "user3@example.com"), ("b", "refund", "user4@example.com")]

    task_a = ls.tasks_of("a")[0]["id"]
    run.bridge.hook([task_a, task_a])  # one webhook delivered twice
    run.bridge.hook([task_a])
    run.step()
    assert len(topic.sent) == 2 and run.ledger.counts["duplicate"] == 1

    ls.change("a", chose("billing"))  # changed after its label was sent
    run.bridge.hook([task_a])
    run.step()
    assert len(topic.sent) == 2 and run.ledger.counts["updated_after_send"] == 1

    # a restart: the ledger is rebuilt from the topic, the requests are read again
    again = Run(ls, topic, requests)
    again.step()
    assert all(len(ls.tasks_of(i)) == 1 for i in "abc"), "no task twice"
    assert again.ledger.open_tasks() == {ls.tasks_of("c")[0]["id"]: "c"}
    ls.annotate("c", chose("billing"), user=3)
    again.bridge.hook([task_a])
    again.step()
    assert Counter(s[0] for s in topic.sent) == Counter("abc")


def test_skipped_empty_and_refused_annotations_keep_the_task_open_until_fixed() -> None:
    ls, topic = FakeLabelStudio(), FakeWriter()
    run = Run(ls, topic, [raw_request("a"), raw_request("b")], classes="billing,login")
    run.step()
    ls.annotate("a", chose("billing"), cancelled=True)
    ls.annotate("b", typed("eggs"))
    run.step()
    run.step()
    assert topic.sent == [] and run.ledger.counts["annotations_refused"] == 1
    assert len(run.ledger.open_tasks()) == 2
    ls.change("b", chose("login"))
    run.step()
    assert topic.sent == [("b", "login", "user3@example.com")]


def test_label_studio_down_loses_nothing_and_an_import_whose_answer_was_lost_is_not_repeated() -> None:
    ls, topic = FakeLabelStudio(), FakeWriter()
    run = Run(ls, topic, [raw_request("a")])
    run.step()
    ls.down = True
    run.ledger.add_request("b", 0.5, 1e12, raw_request("b"))
    with pytest.raises(LabelStudioUnavailable):
        run.step()
    ls.down = False
    ls.lose_next_import_answer = True  # the tasks are made, the answer never arrives
    with pytest.raises(LabelStudioUnavailable):
        run.step()
    ls.annotate("a", chose("login"))
    run.step()
    assert len(ls.tasks_of("b")) == 1, "the lost import is found by listing, not repeated"
    assert topic.sent == [("a", "login", "user3@example.com")]


def test_an_import_in_the_background_is_found_by_listing_not_repeated() -> None:
    ls, topic = FakeLabelStudio(), FakeWriter()
    ls.import_later = True
    run = Run(ls, topic, [raw_request("a")])
    run.step()
    run.step()
    assert ls.tasks == {} and len(ls.later) == 1 and run.ledger.counts["imports_unconfirmed"] == 1
    ls.finish_imports()
    run.step()
    assert len(ls.tasks_of("a")) == 1 and run.ledger.open_tasks() == {1: "a"} and run.ledger.pending_count() == 0


def test_an_earlier_bridges_webhook_at_another_address_is_turned_off() -> None:
    ls, topic = FakeLabelStudio(), FakeWriter()
    Run(ls, topic).step()
    again = Run(ls, topic)
    again.bridge.site.webhook_url = "http://bridge.test:9999/webhook"
    again.step()
    assert [(w["url"], w["is_active"]) for w in ls.webhook_list] == [
        ("http://bridge.test/webhook", False), ("http://bridge.test:9999/webhook", True)]


def test_a_task_label_studio_refuses_is_tried_without_its_prediction_then_parked() -> None:
    ls, topic = FakeLabelStudio(), FakeWriter()
    ls.refuse = lambda task: task["meta"]["streamal_id"] == "bad" and "predictions" in task
    run = Run(ls, topic, [raw_request("good"), raw_request("bad")])
    run.step()
    assert len(ls.tasks_of("good")) == 1 and "predictions" not in ls.tasks_of("bad")[0]
    assert run.ledger.counts["tasks_without_prediction"] == 1
    ls.refuse = lambda task: task["meta"]["streamal_id"] == "worse"
    run.ledger.add_request("worse", 0.5, 1e12, raw_request("worse"))
    run.step()
    assert ls.tasks_of("worse") == [] and run.ledger.counts["tasks_refused"] == 1
    assert run.ledger.pending_count() == 1 and run.ledger.to_create(10) == [], "parked, tried again later"


def test_a_label_the_broker_did_not_acknowledge_is_sent_again_only_if_it_was_not_stored() -> None:
    ls, topic = FakeLabelStudio(), FakeWriter()
    run = Run(ls, topic, [raw_request("a"), raw_request("b")])
    run.step()
    ls.annotate("a", chose("login"))
    topic.fail = 1
    run.step()
    assert topic.sent == [] and run.ledger.uncertain() is not None
    run.step()  # without a feed, the topic counts as read: sent now
    assert topic.sent == [("a", "login", "user3@example.com")]
    ls.annotate("b", chose("billing"))
    topic.fail, topic.stored_anyway = 1, True
    run.step()
    run.ledger.mark_answered("b", "billing", "user3@example.com")  # the feed read it back from the topic
    run.step()
    assert Counter(s[0] for s in topic.sent) == Counter({"a": 1, "b": 1})


def test_an_existing_project_keeps_its_config() -> None:
    ls, topic = FakeLabelStudio(), FakeWriter()
    xml = ('<View><Text name="t" value="$text_0"/><Choices name="c" toName="t"><Choice value="billing"/>'
           '</Choices></View>')
    ls.create_project(title="theirs", label_config=xml)
    run = Run(ls, topic, [raw_request("a", label="login", proba={"login": 0.9, "refund": 0.1})])
    run.bridge.site.project_id = 1
    run.step()
    assert ls.projects[1]["label_config"] == xml and ls.calls["update_project"] == 0
    assert "predictions" not in ls.tasks_of("a")[0], "its choices lack the predicted class"
    ls.annotate("a", [{"type": "choices", "from_name": "c", "value": {"choices": ["billing"]}}])
    run.step()
    assert topic.sent == [("a", "billing", "user3@example.com")]


def test_the_run_loop_survives_label_studio_being_down() -> None:
    ls, topic = FakeLabelStudio(), FakeWriter()
    ls.down = True
    run = Run(ls, topic, [raw_request("a")])
    run.bridge.poll_s = 0.01
    run.bridge.start()
    try:
        time.sleep(0.1)
        assert run.bridge.alive and "unavailable" in run.bridge.status
        ls.down = False
        deadline = time.monotonic() + 5
        while not ls.tasks_of("a") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(ls.tasks_of("a")) == 1
    finally:
        run.bridge.close()
    assert not run.bridge.alive


# ---------------------------------------------------------------------- the webhook endpoint


def test_the_webhook_needs_the_secret_and_only_queues_tasks() -> None:
    ls, topic = FakeLabelStudio(), FakeWriter()
    run = Run(ls, topic)
    app = create_app(run.bridge)
    client = TestClient(app)  # no lifespan: the bridge's thread is not started
    body = {"action": "ANNOTATION_CREATED", "task": {"id": 5}, "annotation": {"id": 1, "task": 5}}
    assert client.post("/webhook", json=body).status_code == 403
    assert client.post("/webhook", json=body, headers={WEBHOOK_HEADER: "wrong"}).status_code == 403
    ok = client.post("/webhook", json=body, headers={WEBHOOK_HEADER: "s3cret"})
    assert ok.status_code == 200 and ok.json() == {"status": "queued", "tasks": [5]}
    other = client.post("/webhook", json={"action": "PROJECT_UPDATED"}, headers={WEBHOOK_HEADER: "s3cret"})
    assert other.json()["status"] == "ignored"
    bad = client.post("/webhook", content=b"[1", headers={WEBHOOK_HEADER: "s3cret"})
    assert bad.status_code == 400
    assert list(run.bridge._hooked) == [5] and run.bridge.wake.is_set()
    status = client.get("/status").json()
    assert status["counts"]["webhooks_refused"] == 2 and status["webhook"]["url"] == "http://bridge.test/webhook"
    assert client.get("/healthz").status_code == 503, "the loop is not running"


# ---------------------------------------------------------------------- the REST client


class Answer(io.BytesIO):
    def __enter__(self) -> Answer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def jwt(exp: float) -> str:
    import base64

    claims = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).decode().rstrip("=")
    return f"header.{claims}.signature"


def test_a_personal_access_token_is_exchanged_for_access_tokens_and_renewed() -> None:
    seen: list[tuple[str, str, str | None]] = []
    clock = Clock(1000.0)
    state = {"expired": False, "n": 0}

    def opener(request: Any, timeout: float) -> Answer:
        seen.append((request.get_method(), request.full_url, request.get_header("Authorization")))
        if request.full_url.endswith("/api/token/refresh/"):
            assert json.loads(request.data) == {"refresh": PAT}
            state["n"] += 1
            return Answer(json.dumps({"access": jwt(clock.now + 300) + str(state["n"])}).encode())
        if state["expired"]:
            state["expired"] = False
            raise urllib.error.HTTPError(request.full_url, 401, "Unauthorized", {}, io.BytesIO(b'{"detail":"x"}'))
        return Answer(b'{"id": 1}')

    PAT = jwt(9e9)
    client = LabelStudioClient("http://ls.test/", SecretStr(PAT), clock=clock, opener=opener)
    assert client.whoami() == {"id": 1}
    client.whoami()
    assert [s[1].rsplit("/api/", 1)[1] for s in seen] == ["token/refresh/", "current-user/whoami",
                                                           "current-user/whoami"]
    assert seen[1][2] == f"Bearer {jwt(1300.0)}1"
    clock.now += 290  # within the margin of its expiry: a new one first
    client.whoami()
    assert seen[-1][2] == f"Bearer {jwt(1590.0)}2"
    state["expired"] = True  # refused anyway (revoked, a new SECRET_KEY): renewed once, then retried
    assert client.whoami() == {"id": 1} and seen[-1][2].endswith("3")


def test_a_legacy_token_is_sent_as_it_is_and_errors_say_whether_to_retry() -> None:
    def opener(request: Any, timeout: float) -> Answer:
        assert request.get_header("Authorization") == "Token 0123456789abcdef"
        if "missing" in request.full_url:
            raise urllib.error.HTTPError(request.full_url, 404, "Not Found", {},
                                         io.BytesIO(b'{"detail": "Not found."}'))
        if "busy" in request.full_url:
            raise urllib.error.HTTPError(request.full_url, 503, "Unavailable", {}, io.BytesIO(b"<html>"))
        if "gone" in request.full_url:
            raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
        return Answer(b"")

    client = LabelStudioClient("http://ls.test", SecretStr("0123456789abcdef"), opener=opener)
    assert client.request("DELETE", "/api/x") is None
    with pytest.raises(LabelStudioRefused, match="404 Not found") as refused:
        client.request("GET", "/api/missing")
    assert refused.value.status == 404
    with pytest.raises(LabelStudioUnavailable, match="503"):
        client.request("GET", "/api/busy")
    with pytest.raises(LabelStudioUnavailable, match="did not answer"):
        client.request("GET", "/api/gone")


# ---------------------------------------------------------------------- settings and the command


def test_settings_name_the_variable_of_every_mistake(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("URL", "TOKEN", "PROJECT_ID", "WEBHOOK_URL", "POLL_S"):
        monkeypatch.delenv(f"STREAMAL_LABEL_STUDIO_{name}", raising=False)
    import click

    with pytest.raises(click.ClickException) as missing:
        load_label_studio_settings()
    assert "--url (STREAMAL_LABEL_STUDIO_URL) is required" in missing.value.message
    assert "--token (STREAMAL_LABEL_STUDIO_TOKEN) is required" in missing.value.message
    with pytest.raises(click.ClickException, match="--webhook-url .* must be an http"):
        load_label_studio_settings(url="http://ls", token="x" * 20, webhook_url="ftp://x")
    with pytest.raises(click.ClickException, match="--poll"):
        load_label_studio_settings(url="http://ls", token="x" * 20, poll_s=0)
    monkeypatch.setenv("STREAMAL_LABEL_STUDIO_URL", "http://ls:8080/")
    monkeypatch.setenv("STREAMAL_LABEL_STUDIO_TOKEN", "a.b.c-secret")
    options = load_label_studio_settings(project_id=3)
    assert options.url == "http://ls:8080" and options.project_id == 3 and options.poll_s == 10.0
    assert "a.b.c-secret" not in repr(options), "the token is a secret"


def test_the_command_is_named_label_studio_and_documents_the_token() -> None:
    assert label_studio.name == "label-studio"
    result = CliRunner().invoke(label_studio, ["--help"])
    assert result.exit_code == 0 and "Personal Access Token" in result.output
    assert "STREAMAL_LABEL_STUDIO_TOKEN" in result.output


# ---------------------------------------------------------------------- the topics


class FakeSource:
    """Three topics of one partition each, read as kafka.reader reads them; ``more`` arrives on the next poll."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self.at: dict[tuple[str, int], int] = {}
        self.more: list[Record] = []

    def assignment(self) -> set[tuple[str, int]]:
        return {("req", 0), ("lab", 0), ("train", 0)}

    def end_offsets(self, partitions: Any) -> dict[tuple[str, int], int]:
        return {p: sum(1 for r in self.records if (r.topic, r.partition) == p) for p in partitions}

    def seek(self, topic: str, partition: int, offset: int) -> None:
        self.at[(topic, partition)] = offset

    def position(self, topic: str, partition: int) -> int:
        return self.at.get((topic, partition), 0)

    def poll(self, timeout_s: float) -> list[Record]:
        self.records += self.more
        self.more = []
        out = [r for r in self.records if r.offset >= self.at.get((r.topic, r.partition), 0)]
        for r in out:
            self.at[(r.topic, r.partition)] = r.offset + 1
        time.sleep(0.01)
        return out

    def close(self) -> None:
        pass


def test_the_feed_rebuilds_answered_ids_and_settles_unknown_sends_by_reading_to_the_end() -> None:
    settings = load_settings(topic_label_requests="req", topic_labels="lab", topic_training="train")

    def record(topic: str, offset: int, value: Any) -> Record:
        return Record(topic, 0, offset, None, value if isinstance(value, bytes) else orjson.dumps(value), 0)

    source = FakeSource([
        record("req", 0, orjson.loads(raw_request("a"))), record("req", 1, orjson.loads(raw_request("b"))),
        record("req", 2, b"not json"), record("lab", 0, {"id": "a", "label": "login", "annotator": "ann"}),
        record("train", 0, {"id": "c", "label": "billing", "source": "unsolicited"}),
    ])
    ledger, classes = Ledger(), ClassBook()
    feed = TopicFeed(settings, ledger, classes, open_source=lambda s, topics: source)
    woken: list[bool] = []
    feed.on_request = lambda: woken.append(True)
    feed.start()
    try:
        assert feed.caught_up.wait(5)
        assert [p.id for p in ledger.to_create(10)] == ["b"] and ledger.is_answered("a") and ledger.is_answered("c")
        assert ledger.counts["requests_unusable:malformed_json"] == 1 and classes.offered() == \
            ["billing", "login"]
        assert ledger.decide("a", "login", "ann") == "duplicate" and woken == []
        ledger.failed("b")
        source.records.append(record("lab", 1, {"id": "b", "label": "billing", "annotator": "ann"}))  # stored after all
        barrier = feed.barrier()
        assert barrier.wait(5) and ledger.is_answered("b") and ledger.uncertain() is None
        source.more = [record("req", 3, orjson.loads(raw_request("d")))]
        wait_deadline = time.monotonic() + 5
        while not woken and time.monotonic() < wait_deadline:
            time.sleep(0.01)
        assert woken and [p.id for p in ledger.to_create(10)] == ["d"]
    finally:
        feed.close()
