"""The whole service against a real broker over TCP: the loop end to end, and bad input.

``streamal.apps.serve.serve`` runs on a thread (its metrics registry is read
directly); ``streamal.apps.replay`` produces a bundled dataset and answers
label requests from ground truth. What reached the broker is then read back,
by kafka-python through the adapter and independently by Debian's kcat.
"""

from __future__ import annotations

import base64
import subprocess
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest
from conftest import Broker, kcat_command
from helpers import (
    LABEL_REQUEST_FIELDS,
    OracleThread,
    ServiceThread,
    committed_reach_ends,
    free_port,
    http_get,
    parse_metrics,
    port_released,
    read_topic,
    values,
    wait_until,
)

from streamal.apps.datasets import load
from streamal.apps.replay import instances, produce
from streamal.core.learner import default_strategy
from streamal.service import kafka
from streamal.service.settings import Settings

integration = pytest.mark.integration
PARTITIONS = 3


def _kcat_read(kcat: list[str], topic: str, counts: dict[int, int]) -> list[tuple[int, int, str, bytes]]:
    """``(partition, offset, key, value)`` of the first ``counts[p]`` records of each partition, by kcat."""
    out = []
    for partition, count in sorted(counts.items()):
        if not count:
            continue
        done = subprocess.run(
            [*kcat, "-C", "-t", topic, "-p", str(partition), "-o", "0", "-c", str(count), "-q",
             "-f", "%p\t%o\t%k\t%s\n"],
            capture_output=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr.decode()[-1000:]
        for line in done.stdout.splitlines():
            p, offset, key, value = line.split(b"\t", 3)
            out.append((int(p), int(offset), key.decode(), value))
        got = sum(1 for row in out if row[0] == partition)
        assert got == count, f"kcat read {got} records of {topic}[{partition}], expected {count}"
    return out


@integration
@pytest.mark.timeout(180)
def test_end_to_end_budget_contract_join_learn_commit_and_kcat_agrees(
    settings_for: Callable[..., Settings], tmp_path: Path, each_broker: Broker,
) -> None:
    """The whole loop, on Apache Kafka (the session's broker) and on Tansu (the demo's)."""
    n, budget = 2000, 0.05
    dataset = load("image_segments", limit=n)  # 7 classes, string labels
    port = free_port()
    kcat = kcat_command(each_broker)
    settings = settings_for(bootstrap_servers=each_broker.bootstrap, partitions=PARTITIONS, budget=budget,
                            state_dir=tmp_path / "state", metrics_port=port)
    settings = settings.model_copy(update={"topic_predictions": f"{settings.topic_instances}.predictions"})
    truth = {ident: (features, label) for ident, features, label in instances(dataset)}

    with ServiceThread(settings) as service:
        service.wait_ready()  # the topics exist once the service is up
        assert http_get(port, "/readyz") == (200, "ok\n") and http_get(port, "/healthz")[0] == 200
        with OracleThread(settings, dataset) as oracle:
            assert produce(settings, dataset) == n

            def finished() -> bool:
                asked = service.requests
                return (service.instances >= n and oracle.answered >= asked
                        and service.value("streamal_model_version") >= asked)

            wait_until(finished, 90, "every instance decided and every answered label learned",
                       failed=lambda: service.failed() or oracle.failed())
            requests_metric = service.requests
            # The labels' offsets are committed in the step that joined them; wait for that step.
            labels_so_far = read_topic(settings, settings.topic_labels, at_least=int(requests_metric))
            wait_until(lambda: committed_reach_ends(settings, settings.topic_labels, labels_so_far, PARTITIONS)[0],
                       30, "the labels' offsets to be committed", failed=service.failed)
        status, text = http_get(port, "/metrics")
        scraped = parse_metrics(text) if status == 200 else {}
        key = ("streamal_label_requests_total", (("mode", "stream"), ("strategy", default_strategy(settings.task))))
        assert scraped.get(key) == requests_metric, f"/metrics answered {status}"
    learned = service.service.learner.n_learned
    assert port_released(port), "the metrics port is still bound after the service stopped"

    # ---- what is on the broker
    instance_records = read_topic(settings, settings.topic_instances, at_least=n)
    request_records = read_topic(settings, settings.topic_label_requests, at_least=int(requests_metric))
    label_records = read_topic(settings, settings.topic_labels, at_least=int(requests_metric))
    training_records = read_topic(settings, settings.topic_training, at_least=int(requests_metric))
    prediction_records = read_topic(settings, settings.topic_predictions, at_least=n)
    assert read_topic(settings, settings.topic_dead_letter, idle_polls=1) == []

    assert len(instance_records) == n
    instance_partition = {r.key.decode(): r.partition for r in instance_records}
    assert len(instance_partition) == n

    # ---- label requests: at the budget, every field of section 3, keyed and placed by instance id
    requests = values(request_records)
    ids = [q["id"] for q in requests]
    assert len(ids) == len(set(ids)) == requests_metric, "each instance is asked about at most once"
    assert abs(len(ids) - budget * n) <= 0.05 * budget * n + 2, f"{len(ids)} requests for {n} instances at {budget:.0%}"
    model_versions: dict[int, list[int]] = {}
    request_of_id = {q["id"]: q for q in requests}
    for record, request in zip(request_records, requests):
        assert LABEL_REQUEST_FIELDS <= set(request), f"missing {LABEL_REQUEST_FIELDS - set(request)}"
        ident = request["id"]
        assert record.key == ident.encode()
        assert record.partition == instance_partition[ident] == kafka.partition_for_key(ident, PARTITIONS)
        features, label = truth[ident]
        assert request["features"] == pytest.approx(features)
        assert 0.0 <= request["score"] <= 1.0
        assert request["strategy"] == default_strategy(settings.task) and request["mode"] == "stream"
        assert isinstance(request["threshold"], float)
        prediction = request["prediction"]
        assert set(prediction) == {"label", "proba"}
        assert all(0.0 <= p <= 1.0 for p in prediction["proba"].values())
        if prediction["proba"]:
            assert prediction["label"] in prediction["proba"]
        assert isinstance(request["model_version"], int) and request["model_version"] >= 0
        requested_at = datetime.fromisoformat(request["requested_at"].replace("Z", "+00:00"))
        assert requested_at.utcoffset() == timezone.utc.utcoffset(None)
        model_versions.setdefault(record.partition, []).append(request["model_version"])
    assert all(v == sorted(v) for v in model_versions.values()), "model versions go back in time"

    # ---- one prediction per instance (STREAMAL_TOPIC_PREDICTIONS), keyed and placed like it
    predictions = values(prediction_records)
    assert sorted(p["id"] for p in predictions) == sorted(instance_partition)
    assert all(r.key.decode() == p["id"] and r.partition == instance_partition[p["id"]]
               for r, p in zip(prediction_records, predictions))
    assert {p["id"] for p in predictions if p["asked"]} == set(ids)
    assert all(p["prediction"] == request_of_id[p["id"]]["prediction"] for p in predictions if p["asked"])
    assert service.value("streamal_predictions_total") == n

    # ---- every answered label was joined, is on the training topic once, and was learned
    labels = values(label_records)
    assert sorted(lab["id"] for lab in labels) == sorted(ids)  # the oracle answered each request once
    training = values(training_records)
    assert [r.key.decode() for r in training_records] == [t["id"] for t in training]
    on_training = Counter(t["id"] for t in training)
    assert on_training == Counter(ids), "each answered label is on the training topic exactly once"
    request_of = dict(zip(ids, requests))
    for example in training:
        features, label = truth[example["id"]]
        assert example["source"] == "joined" and example["label"] == label and example["annotator"] == "oracle"
        assert example["features"] == request_of[example["id"]]["features"]
        assert example["requested_at"] == request_of[example["id"]]["requested_at"]
        assert example["labeled_at"]
    assert service.value("streamal_labels_total", outcome="joined") == len(ids)
    for outcome in ("orphaned", "duplicate", "unsolicited", "expired"):
        assert service.value("streamal_labels_total", outcome=outcome) == 0, outcome
    assert learned == len(training) == service.value("streamal_model_version")

    # ---- the group's committed offsets reach the ends of the instances and labels topics
    for topic, records in ((settings.topic_instances, instance_records), (settings.topic_labels, label_records)):
        done, got, want = committed_reach_ends(settings, topic, records, PARTITIONS)
        assert done, f"{topic}: committed {got}, records end at {want}"

    # ---- a second, independent client sees the same
    counts = Counter(r.partition for r in request_records)
    by_kcat = _kcat_read(kcat, settings.topic_label_requests, dict(counts))
    assert sorted((p, o) for p, o, _, _ in by_kcat) == sorted((r.partition, r.offset) for r in request_records)
    assert all(orjson.loads(v)["id"] == k for _, _, k, v in by_kcat)
    assert sorted(k for _, _, k, _ in by_kcat) == sorted(ids)
    by_kcat = _kcat_read(kcat, settings.topic_training, {0: len(training_records)})
    assert [k for _, _, k, _ in by_kcat] == [t["id"] for t in training]
    assert [orjson.loads(v) for _, _, _, v in by_kcat] == training


# ---------------------------------------------------------------------- bad input over Kafka

MAX_BYTES, DEAD_LETTER_BYTES = 2048, 100
_FEATURES = b'"features": {"a": 1.0}'

#: (raw value, reason) of instances that break the contract, in every way section 3 names.
BAD_INSTANCES: list[tuple[bytes | None, str]] = [
    (b"{not json", "malformed_json"),
    (b"[1, 2]", "not_an_object"),
    (b'"a string"', "not_an_object"),
    (b"{" + _FEATURES + b"}", "missing_id"),
    (b'{"id": null, ' + _FEATURES + b"}", "missing_id"),
    (b'{"id": 7, ' + _FEATURES + b"}", "bad_id"),
    (b'{"id": "", ' + _FEATURES + b"}", "bad_id"),
    (b'{"id": "' + b"x" * 257 + b'", ' + _FEATURES + b"}", "bad_id"),
    (b'{"id": "x", "features": [1]}', "bad_features"),
    (b'{"id": "x", "features": "a=1"}', "bad_features"),
    (b'{"id": "x", "features": {"a": {"b": 1}}}', "bad_features"),
    (b'{"id": "x", "features": {"a": NaN}}', "malformed_json"),  # orjson refuses the NaN literal
    (b'{"id": "x", "features": {"a": 1e400}}', "non_finite"),
    (b'{"id": "x", "features": {"a": -1e400}}', "non_finite"),
    (b"\xff\xfe\xfd", "invalid_utf8"),
    (b'{"id": "caf\xe9", ' + _FEATURES + b"}", "invalid_utf8"),
    (b"", "empty"),
    (b"   ", "empty"),
    (None, "empty"),  # a tombstone
    (b'{"id": "x", "features": {"a": "' + b"z" * 3000 + b'"}}', "too_large"),
    (b'{"id": "x", ' + _FEATURES + b', "ts": 12}', "bad_field"),
]


def _label(ident: str, label: object, **extra: object) -> bytes:
    return orjson.dumps({"id": ident, "label": label, **extra})


@integration
@pytest.mark.timeout(120)
def test_bad_input_over_kafka_is_dead_lettered_or_counted_and_every_good_message_processed(
    settings_for: Callable[..., Settings], tmp_path: Path,
) -> None:
    dataset = load("phishing", limit=120)
    truth = {ident: label for ident, _, label in instances(dataset)}
    settings = settings_for(partitions=PARTITIONS, budget=0.2, classes="True,False", max_message_bytes=MAX_BYTES,
                            dead_letter_max_bytes=DEAD_LETTER_BYTES, state_dir=tmp_path / "state", metrics_port=0)
    expected_dead: dict[tuple[str, int, int], tuple[str, bytes | None, str | None]] = {}

    def send(sink: kafka.KafkaSink, topic: str, batch: list[tuple[bytes | None, str | None, str | None]]) -> None:
        """Send ``(raw, key, reason)``; note where each bad one (reason set) landed."""
        for raw, key, _ in batch:
            sink.send(topic, raw, key=key)
        for (raw, key, reason), where in zip(batch, sink.flush(timeout_s=30), strict=True):
            if reason is not None:
                expected_dead[(topic, where.partition, where.offset)] = (reason, raw, key)

    with ServiceThread(settings) as service, kafka.producer(settings) as sink:
        service.wait_ready()
        # ---- instances: each bad kind between good ones
        good = [(orjson.dumps({"id": i, "features": x}), i, None) for i, x, _ in instances(dataset)]
        batch = []
        for k, (raw, reason) in enumerate(BAD_INSTANCES):
            batch += [good[k], (raw, f"bad-{k}" if k % 4 else None, reason)]
        batch += good[len(BAD_INSTANCES):]
        send(sink, settings.topic_instances, batch)
        wait_until(lambda: service.instances >= len(good), 30, "every good instance decided", failed=service.failed)
        asked = [q["id"] for q in values(read_topic(settings, settings.topic_label_requests,
                                                      at_least=int(service.requests)))]
        assert len(asked) >= 6, f"too few label requests to test with: {asked}"
        first, second, rest = asked[0], asked[1], asked[2:]

        # ---- labels: every kind, the good ones among them
        labels: list[tuple[bytes | None, str | None, str | None]] = [
            (_label(first, truth[first]), first, None),  # joined
            (_label(first, truth[first]), first, None),  # duplicate: counted, dropped
            (_label(second, True), second, "bad_label"),  # a bool is not a label ...
            (_label(second, {"class": "True"}), second, "bad_label"),  # ... nor an object
            (_label(second, ""), second, "bad_label"),
            (_label(second, [1]), second, "bad_label"),
            (orjson.dumps({"id": second}), second, "bad_label"),  # no label at all
            (_label(second, "purple"), second, "unknown_class"),  # not in STREAMAL_CLASSES
            (_label(second, 1), second, "unknown_class"),
            (_label(second, truth[second], annotator="ann"), second, None),  # ... and the request still joins
            (_label("never-asked", "True"), "never-asked", None),  # orphaned: counted, dropped
            (_label("unsolicited-1", "False", features={"a": 1.0, "b": "x"}), "unsolicited-1", None),  # trains
            (_label("unsolicited-2", "purple", features={"a": 1.0}), "unsolicited-2", "unknown_class"),
            (_label("unsolicited-3", "True", features=[1.0]), "unsolicited-3", "bad_features"),
            (b'{"id": "unsolicited-4", "label": "True", "features": {"a": 1e400}}', "unsolicited-4", "non_finite"),
            (b'{"id": "unsolicited-5", "label": 1e400}', "unsolicited-5", "non_finite"),
            (_label(7, "True"), "7", "bad_id"),  # type: ignore[arg-type]
            (orjson.dumps({"label": "True"}), None, "missing_id"),
            (b"{not json", "junk", "malformed_json"),
            (b"[]", "junk", "not_an_object"),
            (b"\xc3\x28", "junk", "invalid_utf8"),
            (b"", "junk", "empty"),
            (None, rest[0], "empty"),  # a tombstone under a pending id
            (_label(rest[0], "T" * 3000), rest[0], "too_large"),
        ] + [(_label(i, truth[i]), i, None) for i in rest]
        send(sink, settings.topic_labels, labels)

        def labels_done() -> bool:
            out = {o: service.value("streamal_labels_total", outcome=o)
                   for o in ("joined", "duplicate", "orphaned", "unsolicited")}
            return out == {"joined": len(asked), "duplicate": 1, "orphaned": 1, "unsolicited": 1}

        wait_until(labels_done, 30, "every label handled", failed=service.failed)
        instance_records = read_topic(settings, settings.topic_instances, at_least=len(batch))
        label_records = read_topic(settings, settings.topic_labels, at_least=len(labels))
        for topic, records in ((settings.topic_instances, instance_records), (settings.topic_labels, label_records)):
            wait_until(lambda: committed_reach_ends(settings, topic, records, PARTITIONS)[0], 30,
                       f"the offsets of {topic} to be committed", failed=service.failed)

    # ---- each bad record: one dead letter with its reason, source and raw bytes
    dead_records = read_topic(settings, settings.topic_dead_letter, at_least=len(expected_dead))
    dead = {}
    for record in dead_records:
        letter = orjson.loads(record.value)
        assert set(letter) == {"reason", "error", "source", "raw_b64", "raw_size", "truncated"}
        src = letter["source"]
        where = (src["topic"], src["partition"], src["offset"])
        assert where not in dead, f"two dead letters for {where}"
        dead[where] = letter
        reason, raw, key = expected_dead.get(where, (None, None, None))
        assert letter["reason"] == reason, f"{where}: {letter}"
        raw = raw or b""
        assert base64.b64decode(letter["raw_b64"]) == raw[:DEAD_LETTER_BYTES]
        assert letter["raw_size"] == len(raw) and letter["truncated"] == (len(raw) > DEAD_LETTER_BYTES)
        assert letter["error"]
        assert record.key == (key.encode() if key is not None else None)
    assert set(dead) == set(expected_dead)
    rejected = Counter((topic, reason) for (topic, _, _), (reason, _, _) in expected_dead.items())
    for (topic, reason), count in rejected.items():
        assert service.value("streamal_rejected_total", topic=topic, reason=reason) == count, (topic, reason)
    total_rejected = sum(s.value for m in service.metrics.registry.collect() if m.name == "streamal_rejected"
                         for s in m.samples if s.name == "streamal_rejected_total")
    assert total_rejected == len(expected_dead)
    assert {reason for _, reason in BAD_INSTANCES} <= {r for (t, r) in rejected if t == settings.topic_instances}

    # ---- every good message was processed
    assert service.instances == len(good)
    training = values(read_topic(settings, settings.topic_training, at_least=len(asked) + 1))
    assert Counter(t["id"] for t in training) == Counter(asked + ["unsolicited-1"])
    by_id = {t["id"]: t for t in training}
    assert by_id["unsolicited-1"]["source"] == "unsolicited"
    assert by_id["unsolicited-1"]["features"] == {"a": 1.0, "b": "x"}
    assert by_id[second]["label"] == truth[second] and by_id[second]["annotator"] == "ann"
    assert {t["source"] for i, t in by_id.items() if i != "unsolicited-1"} == {"joined"}
    assert service.service.learner.n_learned == len(training)
