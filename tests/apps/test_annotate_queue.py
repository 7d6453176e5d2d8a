"""``streamal annotate`` without a broker: the queue (order, leases, exactly-once answers), the
classes and their types, the bounded view, the topics' records, and the web app with a fake producer.

(Not named ``test_annotate.py``: ``tests/integration/test_annotate.py`` holds the browser test, and
two test modules of one basename cannot be collected together without ``__init__.py`` files.)
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from starlette.testclient import TestClient

from streamal.apps.annotate.classes import ClassBook
from streamal.apps.annotate.command import annotate as annotate_command
from streamal.apps.annotate.feed import Feed, LabelWriter, ServiceFigures
from streamal.apps.annotate.queue import AnnotationQueue
from streamal.apps.annotate.view import MAX_FEATURES, MAX_TEXT_CHARS, present
from streamal.apps.annotate.web import Annotate, create_app
from streamal.service.errors import DeliveryError
from streamal.service.messages import parse_label_request
from streamal.service.records import Record
from streamal.service.settings import load_settings


class Clock:
    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_queue(**kwargs: Any) -> tuple[AnnotationQueue, Clock]:
    clock = Clock()
    return AnnotationQueue(clock=clock, **kwargs), clock


# ---------------------------------------------------------------------- order and leases


def test_highest_score_first_ties_oldest_first_and_no_request_to_two_annotators():
    q, clock = make_queue()
    for ident, score, at in [("low", 0.2, 1.0), ("high", 0.9, 3.0), ("tie-new", 0.5, 5.0), ("tie-old", 0.5, 4.0)]:
        assert q.add_request(ident, score, clock.now - 100 + at, b"{}")
    got = [q.lease(name) for name in ("a", "b", "c", "d")]
    assert [lease.id for lease in got if lease] == ["high", "tie-old", "tie-new", "low"]
    assert q.lease("e") is None and q.size() == 0 and q.leased() == 4


def test_a_lease_runs_out_and_the_request_returns_and_asking_again_gives_the_same_lease():
    q, clock = make_queue(lease_s=300)
    q.add_request("x", 0.5, clock.now, b"{}")
    first = q.lease("ann")
    assert q.lease("ann") == first, "a reloaded page shows the same request"
    assert q.lease("bob") is None
    clock.now += 299
    assert q.lease("bob") is None
    clock.now += 2
    later = q.lease("bob")
    assert later is not None and later.id == "x" and later.key != first.key
    assert q.counts["leases_expired"] == 1


def test_skip_returns_it_to_the_others_at_once_and_to_the_skipper_later():
    q, clock = make_queue(lease_s=300, skip_s=60)
    q.add_request("top", 0.9, clock.now, b"{}")
    q.add_request("next", 0.1, clock.now, b"{}")
    lease = q.lease("ann")
    assert lease.id == "top" and q.skip(lease.key)
    assert q.lease("ann").id == "next", "the skipper gets the next one"
    assert q.lease("bob").id == "top", "the others get the skipped one at once"
    q.release(q.lease("bob").key)
    q.release(q.lease("ann").key)
    assert q.lease("ann").id == "next", "still set aside for the skipper"
    clock.now += 61
    q.release(q.lease("ann").key)
    assert q.lease("ann").id == "top", "back to the skipper after skip_s"


def test_dont_know_sets_it_aside_for_that_annotator_only():
    q, clock = make_queue()
    q.add_request("hard", 0.9, clock.now, b"{}")
    lease = q.lease("ann")
    assert q.dont_know(lease.key)
    clock.now += 10 ** 6
    assert q.lease("ann") is None
    assert q.lease("bob").id == "hard"
    assert not q.dont_know(lease.key), "the lease is over"


def test_release_puts_it_back_for_everyone():
    q, clock = make_queue()
    q.add_request("x", 0.5, clock.now, b"{}")
    lease = q.lease("ann")
    assert q.release(lease.key) and q.lease("ann").id == "x"


# ---------------------------------------------------------------------- exactly once


def test_a_double_submit_sends_once_and_returns_the_first_answer():
    q, clock = make_queue()
    q.add_request("x", 0.5, clock.now, b"{}")
    lease = q.lease("ann")
    first = q.answer(lease.key, "spam")
    assert (first.status, first.id, first.label, first.annotator) == ("send", "x", "spam", "ann")
    q.confirm(lease.key)
    again = q.answer(lease.key, "ham")
    assert (again.status, again.label) == ("saved", "spam")
    assert q.counts["answered_here"] == 1 and q.is_answered("x")
    assert q.lease("bob") is None


def test_a_late_answer_counts_unless_someone_else_answered_first():
    q, clock = make_queue(lease_s=10)
    q.add_request("x", 0.5, clock.now, b"{}")
    slow = q.lease("ann")
    clock.now += 11
    fast = q.lease("bob")
    assert fast.id == "x"
    assert q.answer(slow.key, "spam").status == "send", "ann's work is not thrown away"
    q.confirm(slow.key)
    assert q.answer(fast.key, "ham").status == "already_answered"
    assert q.leased() == 0


def test_a_failed_send_is_undone_and_a_retry_with_the_same_key_sends_it():
    q, clock = make_queue()
    q.add_request("x", 0.5, clock.now, b"{}")
    lease = q.lease("ann")
    assert q.answer(lease.key, 1).status == "send"
    q.undo(lease.key)
    assert not q.is_answered("x") and q.size() == 1
    assert q.answer(lease.key, 1).status == "send"
    q.confirm(lease.key)
    assert q.answer(lease.key, 1).status == "saved" and q.size() == 0


def test_a_send_reported_failed_but_seen_on_the_topic_is_not_sent_again():
    q, clock = make_queue()
    q.add_request("x", 0.5, clock.now, b"{}")
    lease = q.lease("ann")
    assert q.answer(lease.key, "spam").status == "send"
    q.mark_answered("x")  # the feed read it back: the broker had stored it
    q.undo(lease.key)
    assert q.answer(lease.key, "spam").status == "saved" and q.size() == 0


def test_unknown_lease_keys_are_refused():
    q, _ = make_queue()
    assert q.answer("made-up", "spam").status == "unknown_lease"
    assert not q.skip("made-up") and not q.release("made-up")


# ---------------------------------------------------------------------- what the topics say


def test_answered_ids_are_never_offered_whatever_the_reading_order():
    q, clock = make_queue()
    q.mark_answered("before")  # a restart reads the label before (or after) its request
    assert not q.add_request("before", 0.9, clock.now, b"{}")
    q.add_request("after", 0.8, clock.now, b"{}")
    lease = q.lease("ann")
    q.mark_answered("after")  # answered elsewhere (another annotate, the oracle) while leased
    assert q.lease("ann") is None and q.leased() == 0
    assert q.answer(lease.key, "spam").status == "already_answered"


def test_a_request_read_twice_is_one_item_and_a_newer_request_replaces_it():
    q, clock = make_queue()
    assert q.add_request("x", 0.2, clock.now - 50, b"old")
    assert not q.add_request("x", 0.2, clock.now - 50, b"old"), "at-least-once: the same record again"
    assert q.add_request("x", 0.7, clock.now, b"new"), "asked again later: newest wins"
    assert q.size() == 1
    lease = q.lease("ann")
    assert lease.item.raw == b"new" and lease.item.score == 0.7
    assert q.lease("bob") is None


def test_requests_too_old_to_join_are_not_offered():
    q, clock = make_queue(max_age_s=3600)
    q.add_request("stale", 0.9, clock.now - 3601, b"{}")
    q.add_request("fresh", 0.1, clock.now - 10, b"{}")
    assert q.lease("ann").id == "fresh"
    assert q.counts["requests_too_old"] == 1


def test_the_queue_is_bounded_oldest_arrival_out():
    q, clock = make_queue(max_pending=2)
    for ident in "abc":
        q.add_request(ident, 0.5, clock.now, b"{}")
    assert q.size() == 2 and q.counts["requests_evicted"] == 1
    assert {q.lease("x").id, q.lease("y").id} == {"b", "c"}


def test_requests_answered_elsewhere_do_not_pile_up_and_the_order_holds():
    q, clock = make_queue()
    for i in range(5000):
        q.add_request(f"r{i}", (i % 97) / 97, clock.now, b"{}")
    for i in range(4990):
        q.mark_answered(f"r{i}")
    assert len(q._heap) <= 2 * q.size() + 1000
    got = [q.lease(f"a{n}").id for n in range(10)]
    assert got == sorted(got, key=lambda ident: -(int(ident[1:]) % 97) / 97)
    assert set(got) == {f"r{i}" for i in range(4990, 5000)}


def test_labels_per_hour_over_the_last_hour():
    q, clock = make_queue()
    assert q.labels_per_hour() == 0.0
    for age in (7200, 1800, 600, 60):  # the first is older than an hour: not counted
        q.note_label(clock.now - age)
    assert q.labels_per_hour() == pytest.approx(3 * 3600 / 1800)


OPS = st.lists(st.tuples(st.sampled_from(["lease", "answer", "skip", "dont_know", "release", "tick", "feed"]),
                         st.sampled_from(["ann", "bob", "cat"]), st.integers(0, 5)), max_size=80)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_any_sequence_keeps_leases_exclusive_and_answers_once(ops):
    q, clock = make_queue(lease_s=30, skip_s=10)
    for i in range(6):
        q.add_request(f"r{i}", i / 10, clock.now, b"{}")
    held: dict[str, Any] = {}
    sent: list[str] = []
    for op, who, n in ops:
        if op == "lease":
            lease = q.lease(who)
            if lease is not None:
                held[who] = lease
        elif op == "tick":
            clock.now += n * 7
        elif op == "feed":
            q.mark_answered(f"r{n}")
        elif who in held:
            key = held[who].key
            if op == "answer":
                outcome = q.answer(key, "y")
                if outcome.status == "send":
                    sent.append(outcome.id)
                    (q.confirm if n % 2 else q.undo)(key)
                    if not n % 2:
                        sent.pop()
            else:
                getattr(q, op)(key)
        live = [lease.id for lease in q._leases.values()]
        assert len(live) == len(set(live)), "two annotators hold the same request"
        assert len(sent) == len(set(sent)), "a request was answered twice"
        assert not set(live) & q._answered, "an answered request is leased"


# ---------------------------------------------------------------------- classes and types


def test_numbers_stay_numbers_when_the_model_knows_numbers_and_text_stays_text():
    ints = ClassBook()
    ints.note_names(["0", "1"])
    ints.note_value(1)
    assert ints.offered() == ["0", "1"] and ints.parse("0") == 0 and ints.parse(" 2 ") == 2
    assert ints.parse("2.5") == 2.5 and ints.parse("fraud") == "fraud"
    words = ClassBook()
    words.note_names(["10", "9", "ham"])
    words.note_value("ham")
    assert words.parse("9") == "9" and words.offered() == ["10", "9", "ham"]
    floats = ClassBook()
    floats.note_value(1.0)
    assert floats.parse("1.0") == 1.0 and isinstance(floats.parse("1.0"), float)
    unknown = ClassBook()
    unknown.note_names(["2", "10"])
    assert unknown.parse("2") == "2", "no typed evidence: sent as text"
    assert unknown.offered() == ["2", "10"], "number-looking classes in numeric order"


def test_configured_classes_refuse_anything_else_and_regression_wants_a_number():
    book = ClassBook(("spam", "ham"))
    assert book.offered() == ["spam", "ham"] and book.parse("ham") == "ham"
    with pytest.raises(ValueError, match="STREAMAL_CLASSES"):
        book.parse("eggs")
    reg = ClassBook(task="regression")
    assert reg.offered() == [] and reg.parse("3.25") == 3.25
    with pytest.raises(ValueError, match="not a number"):
        reg.parse("high")
    for bad in ("", "   ", "x" * 201):
        with pytest.raises(ValueError):
            ClassBook().parse(bad)


# ---------------------------------------------------------------------- the view


def request_bytes(ident: str = "t1", features: dict[str, Any] | None = None, score: float = 0.9,
                  proba: dict[str, float] | None = None, label: Any = "billing") -> bytes:
    return orjson.dumps({
        "id": ident, "features": features if features is not None else {"body": "card was declined", "age": 3.5},
        "score": score, "strategy": "margin", "threshold": 0.5,
        "prediction": {"label": label, "proba": proba if proba is not None else {"billing": 0.7, "login": 0.3}},
        "model_version": 12, "mode": "stream", "requested_at": "2026-01-01T00:00:00Z",
    })


def test_a_huge_request_is_shown_cut_to_a_normal_page():
    features: dict[str, Any] = {"body": "word " * 200_000}
    features.update({f"f{i:03d}": i * 0.5 for i in range(100)})
    raw = request_bytes(features=features)
    assert len(raw) > 1_000_000
    page = present(parse_label_request(raw, 2_000_000), {"body"}, now=1767225600.0)
    assert len(page["texts"][0]["text"]) == MAX_TEXT_CHARS and page["texts"][0]["cut"]
    assert len(page["table"]) == MAX_FEATURES - 1 and page["hidden_features"] == 101 - MAX_FEATURES
    assert len(orjson.dumps(page)) < 10_000


# ---------------------------------------------------------------------- the topics' records


def record(topic: str, value: bytes, timestamp: int = 1) -> Record:
    return Record(topic, 0, 0, None, value, timestamp)


def test_the_feed_notes_requests_marks_labels_and_training_records_and_counts_malformed_requests():
    settings = load_settings(classes="spam,ham")
    q, clock = make_queue()
    book = ClassBook(settings.classes)
    feed = Feed(settings, q, book)
    feed.handle(record(settings.topic_label_requests, request_bytes("a", label="spam", proba={"spam": 0.6})))
    feed.handle(record(settings.topic_label_requests, request_bytes("b", label="spam")))
    feed.handle(record(settings.topic_label_requests, request_bytes("c")))
    feed.handle(record(settings.topic_label_requests, b"{not json"))
    feed.handle(record(settings.topic_label_requests, orjson.dumps({"id": "d", "score": 2})))
    assert q.size() == 3
    assert sum(v for k, v in q.counts.items() if k.startswith("malformed_requests:")) == 2
    feed.handle(record(settings.topic_labels, orjson.dumps({"id": "a", "label": "eggs"})))  # dead-lettered there
    assert not q.is_answered("a")
    feed.handle(record(settings.topic_labels, orjson.dumps({"id": "a", "label": "ham"}), int(clock.now * 1000)))
    feed.handle(record(settings.topic_training, orjson.dumps({"id": "b", "label": "spam"})))
    assert q.is_answered("a") and q.is_answered("b") and q.size() == 1
    assert q.labels_per_hour() == pytest.approx(60.0)


def test_the_label_writer_sends_the_contract_and_drops_a_producer_that_failed():
    settings = load_settings()
    sinks: list[Any] = []

    class Sink:
        def __init__(self) -> None:
            self.sent: list[tuple[str, bytes, str]] = []
            self.fail = not sinks
            self.closed: float | None = None

        def send(self, topic: str, value: bytes, key: str) -> None:
            self.sent.append((topic, value, key))

        def flush(self, timeout_s: float) -> None:
            if self.fail:
                raise DeliveryError("not acknowledged")

        def close(self, timeout_s: float | None = None) -> None:
            self.closed = timeout_s

    def make(_: Any) -> Sink:
        sinks.append(Sink())
        return sinks[-1]

    writer = LabelWriter(settings, make)
    with pytest.raises(DeliveryError):
        writer.send("a", 1, "ann")
    assert sinks[0].closed == 0, "what the failed producer still holds is dropped, not sent behind the retry"
    writer.send("a", 1, "ann")
    topic, value, key = sinks[1].sent[0]
    assert (topic, key) == (settings.topic_labels, "a")
    assert orjson.loads(value) == {"id": "a", "label": 1, "annotator": "ann"}


def test_service_figures_are_unknown_without_a_url_or_when_it_does_not_answer():
    assert ServiceFigures(None).read()["budget"] is None
    figures = ServiceFigures("http://127.0.0.1:9/metrics", timeout_s=0.5).read()
    assert figures["budget"] is None and "did not answer" in figures["source"]


# ---------------------------------------------------------------------- the web app, with a fake producer


class FakeWriter:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, str | None]] = []
        self.fail = 0

    def send(self, ident: str, label: Any, annotator: str | None) -> None:
        if self.fail:
            self.fail -= 1
            raise DeliveryError("broker away") if self.fail % 2 else ConnectionError("no route")
        self.sent.append((ident, label, annotator))

    def close(self) -> None:
        pass


TOKEN = "correct-horse-battery"


def make_client(token: str | None = TOKEN, classes: str | None = None, header: str | None = None,
                requests: int = 3, known: tuple[Any, ...] = ("billing", "login"),
                ) -> tuple[TestClient, FakeWriter, AnnotationQueue]:
    settings = load_settings(classes=classes, text_features="body")
    q = AnnotationQueue()
    book = ClassBook(settings.classes)
    for value in known:
        book.note_value(value)
    for i in range(requests):
        q.add_request(f"t{i}", 0.5 + i / 10, 1767225600.0, request_bytes(f"t{i}"))
    writer = FakeWriter()
    annotate = Annotate(settings, q, book, writer, ServiceFigures(None), None, header)  # type: ignore[arg-type]
    app = create_app(annotate, SecretStr(token) if token else None)
    return TestClient(app, base_url="http://testserver", follow_redirects=False), writer, q


def test_the_page_needs_the_token_and_a_login_link_sets_a_cookie():
    client, _, _ = make_client()
    assert client.get("/").status_code == 401
    assert client.get("/api/next").status_code == 401
    assert client.get("/", headers={"X-Streamal-Token": "nope"}).status_code == 403
    assert client.get("/?token=nope").status_code == 403
    login = client.get("/?token=" + TOKEN)
    assert login.status_code == 303 and login.headers["location"] == "/"
    assert "httponly" in login.headers["set-cookie"].lower() and TOKEN not in login.headers["set-cookie"]
    page = client.get("/")
    assert page.status_code == 200 and "streamal annotate" in page.text
    fresh, _, _ = make_client()
    assert fresh.get("/api/stats", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_without_auth_the_page_is_open_only_as_built_so():
    client, _, _ = make_client(token=None)
    assert client.get("/").status_code == 200


def test_labels_through_the_api_once_per_lease_even_with_a_failed_send_and_a_double_submit():
    client, writer, _ = make_client()
    client.get("/?token=" + TOKEN)
    assert client.get("/api/next").json()["status"] == "need_name"
    assert client.post("/api/name", json={"name": "  Ann   Lee "}).json()["name"] == "Ann Lee"
    got = client.get("/api/next").json()
    assert got["status"] == "ok" and got["item"]["id"] == "t2" and got["classes"] == ["billing", "login"]
    assert got["preselect"] == "billing" and got["item"]["texts"][0]["text"] == "card was declined"
    writer.fail = 2  # the broker does not take it, then the producer cannot even connect
    lease = got["lease"]
    assert client.post("/api/answer", json={"lease": lease, "label": "login"}).status_code == 503
    assert client.post("/api/answer", json={"lease": lease, "label": "login"}).status_code == 503
    first = client.post("/api/answer", json={"lease": lease, "label": "login"})
    second = client.post("/api/answer", json={"lease": lease, "label": "billing"})
    assert first.json() == {"status": "saved", "id": "t2", "label": "login", "duplicate": False}
    assert second.status_code == 200 and second.json()["duplicate"] and second.json()["label"] == "login"
    assert writer.sent == [("t2", "login", "Ann Lee")]
    assert client.get("/api/next").json()["item"]["id"] == "t1"
    stats = client.get("/api/stats").json()
    assert stats["queue"] == 1 and stats["leased"] == 1 and stats["answered_by_you"] == 1
    assert stats["service"]["budget"] is None


def test_bad_answers_have_defined_outcomes():
    client, writer, _ = make_client(classes="billing,login")
    client.get("/?token=" + TOKEN)
    client.post("/api/name", json={"name": "ann"})
    lease = client.get("/api/next").json()["lease"]
    refused = client.post("/api/answer", json={"lease": lease, "label": "shipping"})
    assert refused.status_code == 422 and "STREAMAL_CLASSES" in refused.json()["error"]
    assert client.post("/api/answer", json={"lease": "forged", "label": "login"}).status_code == 410
    assert client.post("/api/answer", content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    assert client.post("/api/answer", content=b"lease=x", headers={
        "Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
    assert client.post("/api/answer", json={"lease": lease, "label": True}).status_code == 400
    assert client.post("/api/name", json={"name": "\x00"}).status_code == 422
    assert client.post("/api/skip", json={"lease": lease}).json()["status"] == "ok"
    assert writer.sent == []


def test_number_classes_are_sent_as_numbers_zero_included():
    client, writer, _ = make_client(known=(0, 1))
    client.get("/?token=" + TOKEN)
    client.post("/api/name", json={"name": "ann"})
    got = client.get("/api/next").json()
    assert got["classes"] == ["0", "1"]
    assert client.post("/api/answer", json={"lease": got["lease"], "label": "0"}).json()["label"] == 0
    assert writer.sent == [("t2", 0, "ann")]


def test_the_proxy_header_names_the_annotator():
    client, writer, _ = make_client(header="X-Forwarded-User")
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Forwarded-User": "bob@team"}
    lease = client.get("/api/next", headers=headers).json()["lease"]
    client.post("/api/answer", json={"lease": lease, "label": "login"}, headers=headers)
    assert writer.sent[0][2] == "bob@team"
    assert client.get("/api/stats", headers=headers).json()["name_fixed"] is True


# ---------------------------------------------------------------------- the command


def test_the_command_refuses_to_run_open_or_contradictory(monkeypatch):
    from click.testing import CliRunner

    monkeypatch.delenv("STREAMAL_ANNOTATE_TOKEN", raising=False)
    result = CliRunner().invoke(annotate_command, [])
    assert result.exit_code != 0 and "--no-auth" in result.output and "STREAMAL_ANNOTATE_TOKEN" in result.output
    result = CliRunner().invoke(annotate_command, ["--no-auth"], env={"STREAMAL_ANNOTATE_TOKEN": TOKEN})
    assert result.exit_code != 0 and "contradict" in result.output
    result = CliRunner().invoke(annotate_command, ["--token", "short"])
    assert result.exit_code != 0 and "--token" in result.output
    result = CliRunner().invoke(annotate_command, ["--service-metrics", "host:9400"], env={
        "STREAMAL_ANNOTATE_TOKEN": TOKEN})
    assert result.exit_code != 0 and "--service-metrics" in result.output
