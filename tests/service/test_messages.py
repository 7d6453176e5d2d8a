"""Message contracts: every bad input maps to one reason, good ones survive a round trip."""

from __future__ import annotations

import base64
import math
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from streamal.service.errors import InvalidMessage, StreamalError
from streamal.service.codec import label_request as write_label_request
from streamal.service.codec import read_instance
from streamal.service.messages import (
    MAX_ERROR_CHARS,
    REASONS,
    DeadLetter,
    Instance,
    Label,
    LabelRequest,
    Prediction,
    TrainingRecord,
    dead_letter,
    encode,
    parse_instance,
    parse_label,
    parse_label_request,
    parse_training_record,
)

MAX = 1024
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def reason_of(parse, raw: bytes | None, max_bytes: int = MAX) -> str:
    with pytest.raises(InvalidMessage) as caught:
        parse(raw, max_bytes)
    assert str(caught.value)  # a human message, always
    return caught.value.reason


# ---------------------------------------------------------------------- instances


def test_a_valid_instance_keeps_its_value_types() -> None:
    raw = (
        b'{"id": "t-1", "features": {"amount": 12.5, "n": 3, "online": true, "shop": "a"},'
        b' "ts": "2026-11-24T12:00:00Z", "meta": {"source": "pos"}, "extra": 1}'
    )
    inst = parse_instance(raw, MAX)
    assert inst.id == "t-1"
    assert inst.features == {"amount": 12.5, "n": 3, "online": True, "shop": "a"}
    assert [type(v) for v in inst.features.values()] == [float, int, bool, str]
    assert inst.ts == NOW
    assert inst.meta == {"source": "pos"}


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5)
)
json_values = json_scalars | st.lists(json_scalars, max_size=3) | st.dictionaries(
    st.text(max_size=5), json_scalars | st.lists(json_scalars, max_size=2), max_size=3
)


@given(
    ident=st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=3) | st.just("x" * 257),
    features=st.dictionaries(st.text(max_size=3), json_values, max_size=3) | json_values,
    extra=st.dictionaries(st.sampled_from(["ts", "meta", "other"]), json_values, max_size=1),
)
def test_read_instance_accepts_and_rejects_exactly_as_the_model(ident, features, extra) -> None:
    raw = orjson.dumps({"id": ident, "features": features, **extra})
    try:
        expected = parse_instance(raw, MAX)
    except InvalidMessage as exc:
        with pytest.raises(InvalidMessage) as caught:
            read_instance(raw, MAX)
        assert caught.value.reason == exc.reason
    else:
        got = read_instance(raw, MAX)
        assert got == (expected.id, expected.features)
        assert [type(v) for v in got[1].values()] == [type(v) for v in expected.features.values()]


def test_an_id_of_256_characters_is_accepted() -> None:
    assert parse_instance(orjson.dumps({"id": "x" * 256, "features": {}}), MAX).id == "x" * 256


INSTANCE_CASES = [
    (None, "empty"),
    (b"", "empty"),
    (b" \n\t", "empty"),
    (b"\xff\xfe{}", "invalid_utf8"),
    (b'{"id": "a\xc3", "features": {}}', "invalid_utf8"),
    (b'{"id": "a", "features": ', "malformed_json"),
    (b"{'id': 'a'}", "malformed_json"),
    (b'{"id": "a", "features": {"x": NaN}}', "malformed_json"),  # orjson refuses the literal
    (b'{"id": "a", "features": {"x": Infinity}}', "malformed_json"),
    (b'{"id": "a", "features": {"x": 1e400}}', "non_finite"),
    (b'{"id": "a", "features": {"x": -1e400}}', "non_finite"),
    (b"[1, 2]", "not_an_object"),
    (b"null", "not_an_object"),
    (b'"a string"', "not_an_object"),
    (b"42", "not_an_object"),
    (b'{"features": {}}', "missing_id"),
    (b'{"id": null, "features": {}}', "missing_id"),
    (b'{"id": 17, "features": {}}', "bad_id"),
    (b'{"id": 1.5, "features": {}}', "bad_id"),
    (b'{"id": true, "features": {}}', "bad_id"),
    (b'{"id": "", "features": {}}', "bad_id"),
    (b'{"id": ["a"], "features": {}}', "bad_id"),
    (orjson.dumps({"id": "x" * 257, "features": {}}), "bad_id"),
    (b'{"id": "a"}', "bad_features"),
    (b'{"id": "a", "features": null}', "bad_features"),
    (b'{"id": "a", "features": [1, 2]}', "bad_features"),
    (b'{"id": "a", "features": {"x": null}}', "bad_features"),
    (b'{"id": "a", "features": {"x": [1]}}', "bad_features"),
    (b'{"id": "a", "features": {"x": {"y": 1}}}', "bad_features"),
    (b'{"id": "a", "features": {}, "ts": 1700000000}', "bad_field"),
    (b'{"id": "a", "features": {}, "ts": "yesterday"}', "bad_field"),
    (b'{"id": "a", "features": {}, "ts": "2026-11-24T12:00:00"}', "bad_field"),  # no offset
    (b'{"id": "a", "features": {}, "meta": "text"}', "bad_field"),
]


@pytest.mark.parametrize(("raw", "reason"), INSTANCE_CASES)
def test_a_bad_instance_is_refused_with_its_reason(raw: bytes | None, reason: str) -> None:
    assert reason_of(parse_instance, raw) == reason


def test_a_value_over_the_limit_is_too_large_before_it_is_decoded() -> None:
    raw = b"\xff" * 2000  # would be invalid_utf8 if it were decoded
    with pytest.raises(InvalidMessage) as caught:
        parse_instance(raw, 1999)
    assert caught.value.reason == "too_large"
    assert "2000" in str(caught.value) and "1999" in str(caught.value)
    assert parse_instance(orjson.dumps({"id": "a", "features": {}}), len(b'{"id":"a","features":{}}'))


def test_messages_name_the_problem_without_echoing_the_value() -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse_instance(orjson.dumps({"id": "a", "features": {"amount": ["secret-card-number"]}}), MAX)
    assert "features.amount" in str(caught.value)
    assert "secret-card-number" not in str(caught.value)


def test_every_reason_is_reachable() -> None:
    reached = {reason for _, reason in INSTANCE_CASES} | {"too_large", "bad_label"}
    assert reached == REASONS


def test_invalid_message_belongs_to_the_error_root() -> None:
    assert issubclass(InvalidMessage, StreamalError)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_built_in_python_are_refused(bad: float) -> None:
    with pytest.raises(ValidationError):
        Instance(id="a", features={"x": bad})
    with pytest.raises(ValidationError):
        Label(id="a", label=bad)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_an_instance_or_one_invalid_message(raw: bytes) -> None:
    try:
        parse_instance(raw, 200)
    except InvalidMessage as exc:
        assert exc.reason in REASONS


@given(st.dictionaries(st.sampled_from(["id", "features", "ts", "meta", "label", "x"]), json_values))
def test_arbitrary_json_objects_give_a_message_or_one_invalid_message(data: dict) -> None:
    raw = orjson.dumps(data)
    for parse in (parse_instance, parse_label):
        try:
            parse(raw, 10_000)
        except InvalidMessage as exc:
            assert exc.reason in REASONS


feature_values = (
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
instances = st.builds(
    Instance,
    id=st.text(min_size=1, max_size=256),
    features=st.dictionaries(st.text(max_size=10), feature_values, max_size=8),
    ts=st.none() | st.datetimes(timezones=st.just(timezone.utc)),
)


@given(instances)
def test_an_instance_survives_encode_then_parse(inst: Instance) -> None:
    again = parse_instance(encode(inst), 1 << 20)
    assert again == inst
    assert [type(v) for v in again.features.values()] == [type(v) for v in inst.features.values()]


# ---------------------------------------------------------------------- labels


@pytest.mark.parametrize("label", ["fraud", 0, 3, -2.5])
def test_a_label_is_a_string_or_a_number(label: object) -> None:
    got = parse_label(orjson.dumps({"id": "t-1", "label": label, "annotator": "ann"}), MAX)
    assert got.label == label and type(got.label) is type(label)
    assert got.annotator == "ann" and got.features is None


def test_a_label_may_carry_features() -> None:
    got = parse_label(b'{"id": "t-1", "label": "x", "features": {"a": 1}}', MAX)
    assert got.features == {"a": 1}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"id": "a", "label": true}', "bad_label"),
        (b'{"id": "a", "label": false}', "bad_label"),
        (b'{"id": "a", "label": null}', "bad_label"),
        (b'{"id": "a"}', "bad_label"),
        (b'{"id": "a", "label": ""}', "bad_label"),
        (b'{"id": "a", "label": [1]}', "bad_label"),
        (b'{"id": "a", "label": {"c": 1}}', "bad_label"),
        (b'{"id": "a", "label": 1e400}', "non_finite"),
        (b'{"id": "a", "label": NaN}', "malformed_json"),
        (b'{"label": "x"}', "missing_id"),
        (b'{"id": 5, "label": "x"}', "bad_id"),
        (b'{"id": "a", "label": "x", "features": [1]}', "bad_features"),
        (b'{"id": "a", "label": "x", "annotator": 5}', "bad_field"),
    ],
)
def test_a_bad_label_is_refused_with_its_reason(raw: bytes, reason: str) -> None:
    assert reason_of(parse_label, raw) == reason


# ---------------------------------------------------------------------- outbound messages


def label_request(**changes: object) -> LabelRequest:
    values: dict[str, object] = dict(
        id="t-1",
        features={"a": 1.0},
        score=0.75,
        strategy="margin",
        threshold=0.5,
        prediction=Prediction(label=None, proba={}),
        model_version=0,
        mode="stream",
        requested_at=NOW,
    )
    values.update(changes)
    return LabelRequest(**values)


def test_a_label_request_encodes_to_the_contract() -> None:
    data = orjson.loads(encode(label_request()))
    assert data == {
        "id": "t-1",
        "features": {"a": 1.0},
        "score": 0.75,
        "strategy": "margin",
        "threshold": 0.5,
        "prediction": {"label": None, "proba": {}},  # a null label stays
        "model_version": 0,
        "mode": "stream",
        "requested_at": "2026-11-24T12:00:00.000Z",
    }  # and the unset batch_id / rank are left out


@pytest.mark.parametrize("pool", [False, True])
def test_the_services_label_request_bytes_parse_as_the_model(pool: bool) -> None:
    extra = {"batch_id": "b-7", "rank": 2} if pool else {}
    raw = write_label_request(
        "t-1", {"a": 1.0, "b": "x", "c": True}, 0.75, "margin", 1.2, 1, {0: 0.25, 1: 0.75}, 4,
        "pool" if pool else "stream", "2026-11-24T12:00:00.000Z", **extra,
    )
    expected = label_request(
        features={"a": 1.0, "b": "x", "c": True}, threshold=1.2, model_version=4,
        prediction=Prediction(label=1, proba={0: 0.25, 1: 0.75}), mode="pool" if pool else "stream", **extra,
    )
    assert parse_label_request(raw, MAX) == expected
    assert orjson.loads(raw) == orjson.loads(encode(expected)) | {"requested_at": "2026-11-24T12:00:00.000Z"}


def test_a_pool_label_request_round_trips() -> None:
    request = label_request(
        mode="pool", batch_id="b-7", rank=2, prediction=Prediction(label=1, proba={0: 0.25, 1: 0.75})
    )
    assert request.prediction.proba == {"0": 0.25, "1": 0.75}  # class keys become JSON keys
    again = parse_label_request(encode(request), MAX)
    assert again == request


@pytest.mark.parametrize(
    "changes",
    [
        {"score": 1.5},
        {"score": -0.1},
        {"score": math.nan},
        {"threshold": math.inf},
        {"mode": "batch"},
        {"model_version": -1},
        {"rank": -1},
        {"requested_at": datetime(2026, 1, 1)},  # naive: not RFC 3339
        {"prediction": {"label": True, "proba": {}}},  # a bool is not a class
    ],
)
def test_an_invalid_label_request_cannot_be_built(changes: dict) -> None:
    with pytest.raises(ValidationError):
        label_request(**changes)


def test_a_probability_outside_0_1_cannot_be_built() -> None:
    with pytest.raises(ValidationError):
        Prediction(label="a", proba={"a": 1.2})


def test_a_training_record_round_trips_and_leaves_unset_fields_out() -> None:
    record = TrainingRecord(id="t-1", features={"a": 1}, label="x", source="unsolicited", labeled_at=NOW)
    raw = encode(record)
    assert set(orjson.loads(raw)) == {"id", "features", "label", "source", "labeled_at"}
    assert parse_training_record(raw, MAX) == record
    joined = TrainingRecord(
        id="t-2", features={}, label=2, source="joined", annotator="ann",
        requested_at=NOW - timedelta(hours=3), labeled_at=NOW,
    )
    assert parse_training_record(encode(joined), MAX) == joined
    with pytest.raises(ValidationError):
        TrainingRecord(id="t-1", features={}, label="x", source="guess", labeled_at=NOW)


# ---------------------------------------------------------------------- dead letters


def test_a_dead_letter_keeps_the_raw_bytes_and_where_they_came_from() -> None:
    raw = b'\xff{"id": broken'
    letter = orjson.loads(dead_letter(raw, "invalid_utf8", "not UTF-8", "in", 2, 41, 1024))
    assert letter == {
        "reason": "invalid_utf8",
        "error": "not UTF-8",
        "source": {"topic": "in", "partition": 2, "offset": 41},
        "raw_b64": base64.b64encode(raw).decode(),
        "raw_size": len(raw),
        "truncated": False,
    }
    assert DeadLetter.model_validate(letter).source.offset == 41


@pytest.mark.parametrize(("size", "truncated"), [(99, False), (100, False), (101, True), (10_000, True)])
def test_a_dead_letter_cuts_raw_bytes_to_the_limit(size: int, truncated: bool) -> None:
    raw = bytes(range(256)) * (size // 256 + 1)
    raw = raw[:size]
    letter = orjson.loads(dead_letter(raw, "too_large", "big", "in", 0, 0, 100))
    kept = base64.b64decode(letter["raw_b64"])
    assert kept == raw[:100]
    assert letter["raw_size"] == size
    assert letter["truncated"] is truncated


def test_a_dead_letter_fits_in_a_kafka_message_whatever_the_input() -> None:
    letter = dead_letter(b"x" * (10 << 20), "too_large", "e" * 100_000, "in", 0, 0, 65_536)
    assert len(letter) < 65_536 * 4 // 3 + MAX_ERROR_CHARS * 4 + 1000
    assert len(orjson.loads(letter)["error"]) == MAX_ERROR_CHARS


def test_a_dead_letter_of_a_tombstone_is_empty() -> None:
    letter = orjson.loads(dead_letter(None, "empty", "the record value is empty", "in", None, None, 10))
    assert (letter["raw_b64"], letter["raw_size"], letter["truncated"]) == ("", 0, False)
    assert letter["source"] == {"topic": "in", "partition": None, "offset": None}
