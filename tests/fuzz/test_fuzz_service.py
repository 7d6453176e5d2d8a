"""Fuzzing the real service step on the in-memory broker: bad records never stop it nor cost a good one.

Each example builds a fresh service, writes a batch of fuzzed records among
good ones to every topic it reads, and steps it until it is idle. Then every
record is accounted for: a bad one has its dead letter (with the reason the
decoder gives) or its count, and every good one was decided, joined or learned.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamal import ActiveLearner
from streamal.service.codec import read_instance
from streamal.service.errors import InvalidMessage
from streamal.service.loop import LoopConfig, Service
from streamal.service.memory import MemoryBroker
from streamal.service.messages import (
    parse_label,
    parse_label_request,
    parse_training_record,
    rfc3339,
)
from streamal.service.metrics import Metrics

from .payloads import any_record, fuzz, outcome

INSTANCES, REQUESTS, LABELS, TRAINING, DEAD = TOPICS = (
    "streamal.instances", "streamal.label-requests", "streamal.labels", "streamal.training", "streamal.dead-letter",
)
MAX_BYTES = 4096
#: A service and its model are built per example: a fuzz test here costs this many cheap examples.
COST = 8


def make(state: Path, **config: Any) -> tuple[MemoryBroker, Service]:
    broker = MemoryBroker()
    for topic in TOPICS:
        broker.create(topic, 2)
    cfg = LoopConfig(state_dir=state, max_message_bytes=MAX_BYTES, dead_letter_max_bytes=64, **config)
    service = Service(
        cfg, lambda: ActiveLearner(budget=1.0, seed=0),
        group=broker.source([INSTANCES, LABELS], group_id="g"), log_source=broker.source([TRAINING, REQUESTS]),
        sink=broker.sink(), metrics=Metrics(),
    )
    service.start()
    return broker, service


def drain(service: Service) -> None:
    for _ in range(6):
        service.step(0)


def good_instance(i: int) -> bytes:
    return orjson.dumps({"id": f"good-{i}", "features": {"a": i % 7 - 3.0, "b": i % 2, "shop": "ab"[i % 2]}})


def count(service: Service, name: str, **labels: str) -> float:
    return service.metrics.registry.get_sample_value(name, labels) or 0.0


def dead_letters(broker: MemoryBroker, topic: str) -> dict[tuple[int, int], str]:
    """(partition, offset) of each dead-lettered record of ``topic`` -> its reason."""
    out = {}
    for r in broker.records(DEAD):
        letter = orjson.loads(r.value)
        if letter["source"]["topic"] == topic:
            key = (letter["source"]["partition"], letter["source"]["offset"])
            assert key not in out, f"two dead letters for {topic} {key}"
            out[key] = letter["reason"]
    return out


def mixed(contract: str) -> st.SearchStrategy[list[tuple[bool, Any]]]:
    """Fuzzed records and good ones (numbered 0, 1, ...), shuffled: ``[(is_good, record or number), ...]``."""
    return st.tuples(
        st.lists(any_record(contract), min_size=1, max_size=8),
        st.integers(1, 6),
    ).flatmap(lambda b: st.permutations([(False, v) for v in b[0]] + [(True, i) for i in range(b[1])]))


keys = st.none() | st.binary(max_size=8) | st.text(max_size=8).map(str.encode)


@fuzz(COST)
@given(batch=mixed("instance"), data=st.data())
def test_fuzzed_instances_are_dead_lettered_and_good_ones_all_decided(batch: list, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as state:
        broker, service = make(Path(state))
        valid = Counter()  # id -> records of it that decode
        bad: dict[tuple[int, int], str] = {}
        goods: dict[tuple[int, int], str] = {}
        for is_good, value in batch:
            raw = good_instance(value) if is_good else value
            delivered = broker.append(INSTANCES, raw, data.draw(keys, label="key"))
            where = (delivered.partition, delivered.offset)
            got = outcome(read_instance, raw, MAX_BYTES)
            if isinstance(got, InvalidMessage):
                assert not is_good
                bad[where] = got.reason
            else:
                valid[got[0]] += 1
                if is_good:
                    goods[where] = got[0]
        drain(service)

        dead = dead_letters(broker, INSTANCES)
        unscorable = {where for where, reason in dead.items() if reason == "unscorable"}
        assert {where: reason for where, reason in dead.items() if where not in unscorable} == bad
        assert not unscorable & set(goods)
        for reason, n in Counter(dead.values()).items():
            assert count(service, "streamal_rejected_total", topic=INSTANCES, reason=reason) == n
        decided = count(service, "streamal_instances_total")
        skipped = sum(count(service, "streamal_instances_skipped_total", reason=r)
                      for r in ("already_requested", "already_labeled"))
        # Every decodable record is decided or skipped, and only an id seen again is skipped. (Not "exactly
        # one of them": the second of two records with one id in one poll is decided, then skipped.)
        assert decided + len(unscorable) <= sum(valid.values()) <= decided + skipped + len(unscorable)
        assert skipped <= sum(n - 1 for n in valid.values())
        asked = {orjson.loads(r.value)["id"] for r in broker.records(REQUESTS)}
        assert asked <= set(valid)
        assert set(goods.values()) <= asked  # at a budget of 1, every good instance is asked about
        for p, part in enumerate(broker.topics[INSTANCES]):
            assert broker.committed["g"].get((INSTANCES, p), 0) == len(part)


def label_outcomes(service: Service) -> float:
    return sum(count(service, "streamal_labels_total", outcome=o) for o in ("joined", "unsolicited", "orphaned",
                                                                          "duplicate"))


@fuzz(COST)
@given(
    labels=mixed("label"), training=st.lists(any_record("training"), max_size=5),
    requests=st.lists(any_record("label_request"), max_size=5), with_classes=st.booleans(), data=st.data(),
)
def test_fuzzed_labels_and_log_records_are_accounted_for_and_good_labels_all_join(
    labels: list, training: list, requests: list, with_classes: bool, data: st.DataObject,
) -> None:
    classes = ("yes", "no") if with_classes else None
    with tempfile.TemporaryDirectory() as state:
        broker, service = make(Path(state), classes=classes)
        n = sum(is_good for is_good, _ in labels)
        for i in range(n):
            broker.append(INSTANCES, good_instance(i), f"good-{i}")
        drain(service)
        assert len(broker.records(REQUESTS)) == n

        bad: dict[tuple[int, int], str] = {}
        accepted = 0
        for is_good, value in labels:
            raw = orjson.dumps({"id": f"good-{value}", "label": "yes" if value % 2 else "no"}) if is_good else value
            delivered = broker.append(LABELS, raw, data.draw(keys, label="key"))
            got = outcome(parse_label, raw, MAX_BYTES)
            if isinstance(got, InvalidMessage):
                bad[(delivered.partition, delivered.offset)] = got.reason
            elif classes is not None and str(got.label) not in classes:
                bad[(delivered.partition, delivered.offset)] = "unknown_class"
            else:
                accepted += 1
        log_rejected: dict[str, Counter] = {TRAINING: Counter(), REQUESTS: Counter()}
        valid_training = 0
        for topic, parse, values in ((TRAINING, parse_training_record, training),
                                     (REQUESTS, parse_label_request, requests)):
            for raw in values:
                broker.append(topic, raw, None)
                got = outcome(parse, raw, MAX_BYTES)
                if isinstance(got, InvalidMessage):
                    log_rejected[topic][got.reason] += 1
                elif topic == TRAINING:
                    valid_training += 1
        drain(service)

        assert dead_letters(broker, LABELS) == bad
        for reason, k in Counter(bad.values()).items():
            assert count(service, "streamal_rejected_total", topic=LABELS, reason=reason) == k
        assert label_outcomes(service) == accepted  # each valid label has one counted outcome
        trained = {orjson.loads(r.value)["id"] for r in broker.records(TRAINING) if r.key is not None}
        assert {f"good-{i}" for i in range(n)} <= trained  # every asked id got its good label joined
        produced = [r for r in broker.records(TRAINING) if r.key is not None]
        assert len(produced) == count(service, "streamal_labels_total", outcome="joined") + count(
            service, "streamal_labels_total", outcome="unsolicited")
        for topic, reasons in log_rejected.items():
            for reason, k in reasons.items():
                assert count(service, "streamal_rejected_total", topic=topic, reason=reason) == k
        unlearnable = count(service, "streamal_rejected_total", topic=TRAINING, reason="unlearnable")
        assert service.learner.n_learned + unlearnable == len(produced) + valid_training
        for p, part in enumerate(broker.topics[LABELS]):
            assert broker.committed["g"].get((LABELS, p), 0) == len(part)


@pytest.mark.parametrize("timestamp_ms", [
    -1, 0, 1, int(time.time() * 1000), 253_402_300_799_999,  # the last millisecond of 9999
    253_402_300_800_000, 2**63 - 1,
])
def test_a_label_with_any_kafka_timestamp_joins(tmp_path: Path, timestamp_ms: int) -> None:
    """A producer sets a record's timestamp (CreateTime) to any int64: the label still joins."""
    broker, service = make(tmp_path)
    broker.append(INSTANCES, good_instance(0), "good-0")
    drain(service)
    part = broker.topics[LABELS][broker.append(LABELS, b'{"id":"good-0","label":"yes"}', "good-0").partition]
    part[-1] = part[-1]._replace(timestamp=timestamp_ms)
    drain(service)
    assert count(service, "streamal_labels_total", outcome="joined") == 1
    [record] = [orjson.loads(r.value) for r in broker.records(TRAINING)]
    assert parse_training_record(orjson.dumps(record), MAX_BYTES).id == "good-0"


@pytest.mark.parametrize("requested_at", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+00:01",
                                          "9999-12-31T23:59:59.999999Z"])
def test_a_label_request_on_the_log_dated_beyond_utc_is_counted_not_a_crash(tmp_path: Path, requested_at: str) -> None:
    """Regression: the contract took these times, then the log reader's rfc3339 raised ValueError (every restart)."""
    broker, service = make(tmp_path)
    request = {"id": "r1", "features": {"a": 1.0}, "score": 0.5, "strategy": "margin", "threshold": 0.5,
               "prediction": {"label": None, "proba": {}}, "model_version": 0, "mode": "stream"}
    broker.append(REQUESTS, orjson.dumps(request | {"requested_at": requested_at}), None)
    broker.append(REQUESTS, orjson.dumps(request | {"id": "r2", "requested_at": rfc3339(time.time())}), None)
    drain(service)
    assert count(service, "streamal_rejected_total", topic=REQUESTS, reason="bad_field") == 1
    assert "r1" not in service.pending and "r2" in service.pending
