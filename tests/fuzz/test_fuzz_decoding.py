"""Fuzzing the decoders: every input is a valid message or an InvalidMessage with its reason, nothing else.

Complements tests/service/test_messages.py (tables of one bad value each, and
JSON that orjson itself writes): here the JSON is written by hand and broken.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from streamal.service.codec import label_request, read_instance
from streamal.service.errors import InvalidMessage
from streamal.service.messages import (
    MAX_ID_CHARS,
    LabelRequest,
    Prediction,
    parse_instance,
    parse_label,
    parse_label_request,
    parse_training_record,
    rfc3339,
)

from .payloads import (
    FEATURE_VALUES,
    ID_VALUES,
    LABEL_VALUES,
    Obj,
    any_record,
    check_message,
    check_rejection,
    classes,
    dump,
    feature_values,
    fuzz,
    good_features,
    good_ids,
    hostile,
    json_values,
    nested,
    outcome,
)

PARSERS = {
    "instance": parse_instance,
    "label": parse_label,
    "training": parse_training_record,
    "label_request": parse_label_request,
}
BIG = 1 << 20


def limits(raw: bytes | None) -> st.SearchStrategy[int]:
    """The configured maximum: generous, or right at the record's size."""
    n = len(raw or b"")
    return st.sampled_from([BIG, max(1, n - 1), max(1, n), n + 1])


def check_outcome(parse: Any, raw: bytes | None, max_bytes: int) -> Any:
    got = outcome(parse, raw, max_bytes)
    if isinstance(got, InvalidMessage):
        check_rejection(got, raw)
        too_large = raw is not None and raw.strip() != b"" and len(raw) > max_bytes
        assert (got.reason == "too_large") == too_large, (got.reason, len(raw or b""), max_bytes)
    else:
        assert raw is not None and len(raw) <= max_bytes
        check_message(got)
    return got


# ---------------------------------------------------------------------- every decoder, every input


@pytest.mark.parametrize("contract", sorted(PARSERS))
@fuzz()
@given(data=st.data())
def test_every_record_decodes_to_a_valid_message_or_a_reason(contract: str, data: st.DataObject) -> None:
    raw = data.draw(any_record(contract), label="raw")
    check_outcome(PARSERS[contract], raw, data.draw(limits(raw), label="max_bytes"))


TIMESTAMPS = [
    ("2026-11-24T12:00:00Z", True),
    ("2026-11-24T12:00:00.1234567+05:30", True),
    ("0001-01-01T00:00:00Z", True),
    ("9999-12-31T23:59:59.999Z", True),
    # Regression: outside years 1-9999 once in UTC, these were accepted, and then writing them again
    # raised OverflowError, and a label request's time read back from the log raised ValueError in the loop.
    ("9999-12-31T23:59:59-23:59", False),
    ("0001-01-01T00:00:00+00:01", False),
    ("9999-12-31T23:59:59.999999Z", False),  # rounds up to year 10000 as epoch seconds
    ("2026-11-24T12:00:00", False),  # no offset
    ("2026-11-24", False),
    # Regression: pydantic took a string of digits as epoch seconds (2023-11-14T22:13:20Z).
    ("1700000000", False),
    ("1700000000.5", False),
    (" 2026-11-24T12:00:00Z", False),
]


@pytest.mark.parametrize(("ts", "accepted"), TIMESTAMPS)
@pytest.mark.parametrize(("parse", "field", "doc"), [
    (parse_instance, "ts", {"id": "a", "features": {}}),
    (parse_training_record, "labeled_at", {"id": "a", "features": {}, "label": "x", "source": "joined"}),
    (parse_training_record, "requested_at",
     {"id": "a", "features": {}, "label": 1, "source": "joined", "labeled_at": "2026-01-01T00:00:00Z"}),
    (parse_label_request, "requested_at", {
        "id": "a", "features": {}, "score": 0.5, "strategy": "m", "threshold": 0.1,
        "prediction": {"label": None, "proba": {}}, "model_version": 0, "mode": "stream",
    }),
])
def test_a_timestamp_is_one_utc_can_write_or_it_is_refused(parse: Any, field: str, doc: dict, ts: str,
                                                           accepted: bool) -> None:
    got = check_outcome(parse, orjson.dumps(doc | {field: ts}), BIG)
    if accepted:
        assert not isinstance(got, InvalidMessage), got
    else:
        assert isinstance(got, InvalidMessage) and got.reason == "bad_field" and str(got).startswith(field)


# ---------------------------------------------------------------------- the fast reader is the model


def fast_path_shapes() -> st.SearchStrategy[bytes]:
    """Objects of exactly an id and features (the fast reader's own case), with hostile parts."""
    features = st.lists(st.tuples(st.text(max_size=4), feature_values | hostile), max_size=4).map(Obj)
    ident = st.tuples(st.just("id"), good_ids | hostile | json_values)
    pair = st.tuples(st.just("features"), features | json_values)
    return st.lists(ident | pair, min_size=2, max_size=3).map(lambda p: dump(Obj(p)))


def check_same(raw: bytes | None, max_bytes: int) -> None:
    model = outcome(parse_instance, raw, max_bytes)
    fast = outcome(read_instance, raw, max_bytes)
    if isinstance(model, InvalidMessage):
        assert isinstance(fast, InvalidMessage), (raw, fast)
        assert (fast.reason, str(fast)) == (model.reason, str(model))
    else:
        assert not isinstance(fast, InvalidMessage), (raw, fast)
        assert fast == (model.id, model.features)
        assert [type(v) for v in fast[1].values()] == [type(v) for v in model.features.values()]


@example(b'{"id":"a","features":{"x":1},"id":"b"}', 0)  # a repeated key: the last one counts, in both
@example(b'{"id":"' + b"x" * (MAX_ID_CHARS + 1) + b'","features":{}}', 0)
@example(b'{"id":"' + "é".encode() * MAX_ID_CHARS + b'","features":{}}', 0)
@example(b'{"id":"a","features":{"x":18446744073709551615,"y":18446744073709551616}}', 0)
@fuzz()
@given(st.one_of(fast_path_shapes(), any_record("instance")), st.integers(0, 3))
def test_the_fast_instance_reader_agrees_with_the_model(raw: bytes | None, limit: int) -> None:
    """codec.read_instance accepts and rejects exactly what parse_instance does, with the same values."""
    n = len(raw or b"")
    check_same(raw, [BIG, max(1, n - 1), max(1, n), n + 1][limit])


# ---------------------------------------------------------------------- one defect, one known outcome


def expect(raw: bytes, verdict: Any, where: str, parse: Any = parse_instance) -> Any:
    got = check_outcome(parse, raw, BIG)
    if isinstance(verdict, str):
        assert isinstance(got, InvalidMessage) and got.reason == verdict, (raw[:200], got)
    else:
        assert not isinstance(got, InvalidMessage), (raw[:200], got)
        assert verdict is None or type(getattr(got, where) if where != "feature" else got.features["~k"]) is verdict
    if parse is parse_instance:
        check_same(raw, BIG)
    return got


@fuzz()
@given(st.sampled_from(FEATURE_VALUES), good_ids, good_features, st.data())
def test_one_bad_feature_value_has_its_outcome(case: tuple[Any, Any], ident: str, features: dict, data: Any) -> None:
    value, verdict = case
    pairs = list(features.items())
    pairs.insert(data.draw(st.integers(0, len(pairs))), ("~k", value))  # ~k: longer than any generated name
    expect(dump({"id": ident, "features": Obj(pairs)}), verdict, "feature")


@fuzz()
@given(st.sampled_from(ID_VALUES), good_features, st.booleans())
def test_one_bad_id_has_its_outcome(case: tuple[Any, Any], features: dict, id_first: bool) -> None:
    value, verdict = case
    pairs = [("id", value), ("features", features)]
    expect(dump(Obj(pairs if id_first else pairs[::-1])), verdict, "id")


@fuzz()
@given(st.sampled_from(LABEL_VALUES), good_ids, st.none() | good_features)
def test_one_bad_label_has_its_outcome(case: tuple[Any, Any], ident: str, features: dict | None) -> None:
    value, verdict = case
    doc = {"id": ident, "label": value} | ({"features": features} if features is not None else {})
    expect(dump(doc), verdict, "label", parse_label)


DOCUMENTS = [
    (b'\xef\xbb\xbf{"id":"a","features":{}}', "malformed_json"),  # a BOM
    (b'{"id":"a","features":{}}\x00', "malformed_json"),
    (b'{"id":"a","features":{}} {}', "malformed_json"),
    (b'{"id":"a","features":{}}\n', None),
    (b'{"id":"a","features":{"\xff":1}}', "invalid_utf8"),  # a name that is not UTF-8
    (b'{"id":"a","features":{"":1}}', None),  # an empty name is a name
    (b'{"id":"a","features":{},"":1}', None),  # unknown fields are ignored, even an empty one
    (b'{"id":5,"features":{},"id":"a"}', None),  # the last of repeated keys counts
    (b'{"id":"a","features":{},"id":5}', "bad_id"),
    (b'{"id":"a","features":{},"features":[]}', "bad_features"),
    (b'{"ID":"a","features":{}}', "missing_id"),  # keys are case-sensitive
    (b'{"id":"a","features":{},"meta":{"a":' + nested(1000) + b"}}", None),  # deep, but not too deep for orjson
    (b'{"id":"a","features":{},"meta":{"a":' + nested(1030) + b"}}", "malformed_json"),
    (b'{"id":"a","features":{},"meta":{"a":1e400}}', "non_finite"),
    (b'{"id":"a","features":{"x":1},"ts":"9999-12-31T23:59:59-23:59"}', "bad_field"),
    (b'{"id":"a","features":{"x":' + b"1" * 5000 + b"}}", "non_finite"),
    (b'{"id":"a","features":{"x":"' + b"y" * 100_000 + b'"}}', None),
    (b'["id","a"]', "not_an_object"),
    (b'"{\\"id\\":\\"a\\",\\"features\\":{}}"', "not_an_object"),  # JSON in a JSON string
    (b"\x00", "malformed_json"),
    (b"\xff", "invalid_utf8"),
]


@pytest.mark.parametrize(("raw", "verdict"), DOCUMENTS)
def test_a_whole_document_defect_has_its_outcome(raw: bytes, verdict: str | None) -> None:
    expect(raw, verdict, "id")


@pytest.mark.parametrize("parse", [parse_instance, read_instance, parse_training_record])
def test_missing_features_are_said_to_be_missing(parse: Any) -> None:
    """Regression: the message said "'features' must be an object, got object" (the whole record's type)."""
    raw = b'{"id":"a","label":"x","source":"joined","labeled_at":"2026-01-01T00:00:00Z"}'
    with pytest.raises(InvalidMessage, match="'features' must be an object, got nothing$") as caught:
        parse(raw, BIG)
    assert caught.value.reason == "bad_features"


# ---------------------------------------------------------------------- the label request writer


proba = st.dictionaries(classes, st.floats(0, 1), max_size=3)


@fuzz()
@given(
    ident=good_ids, features=good_features, score=st.floats(0, 1), strategy=st.text(min_size=1, max_size=8),
    threshold=st.floats(allow_nan=False, allow_infinity=False), prediction=st.none() | classes, proba=proba,
    model_version=st.integers(0, 2**63 - 1), pool=st.booleans(), at=st.floats(0, 253_402_300_799),
    batch_id=st.none() | st.text(max_size=8), rank=st.none() | st.integers(0, 10**6),
)
def test_every_label_request_written_parses_back_with_the_same_values(
    ident: str, features: dict, score: float, strategy: str, threshold: float, prediction: Any, proba: dict,
    model_version: int, pool: bool, at: float, batch_id: str | None, rank: int | None,
) -> None:
    mode, text = ("pool" if pool else "stream"), rfc3339(at)
    raw = label_request(ident, features, score, strategy, threshold, prediction, proba, model_version, mode, text,
                        batch_id, rank)
    got = parse_label_request(raw, BIG)
    assert got == LabelRequest(
        id=ident, features=features, score=score, strategy=strategy, threshold=threshold,
        prediction=Prediction(label=prediction, proba=proba), model_version=model_version, mode=mode,
        batch_id=batch_id, rank=rank, requested_at=text,
    )
    assert [type(v) for v in got.features.values()] == [type(v) for v in features.values()]
    check_message(got)
