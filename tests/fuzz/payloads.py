"""Fuzzing inputs for the decoders, and the invariants of what they accept.

Records are generated from the contracts (DESIGN section 3) and then broken:
a field gets a hostile value (wrong type, NaN / Infinity as literals and as
strings, 1e308 and 1e400, 64-bit edges, ids of 256 and 257 characters, deep
nesting, escaped lone surrogates, invalid UTF-8), a key is repeated, emptied
or dropped, and the bytes may be cut, flipped or prefixed with a BOM. JSON is
written by hand (:func:`dump`) so that what no encoder writes can be written.

How hard to fuzz: ``STREAMAL_FUZZ_EXAMPLES`` (default 100) examples per cheap
test; a test ``cost`` times dearer runs a ``cost``-th of them. CI keeps the
default (the whole package in well under a minute on 2 shared cores); raise it
for a long run, e.g. ``STREAMAL_FUZZ_EXAMPLES=20000 pytest tests/fuzz``.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from streamal.service.errors import InvalidMessage
from streamal.service.messages import (
    MAX_ID_CHARS,
    REASONS,
    DeadLetter,
    Instance,
    Label,
    LabelRequest,
    TrainingRecord,
    dead_letter,
    encode,
    parse_instance,
    parse_label,
    parse_label_request,
    parse_training_record,
    rfc3339,
)

try:
    EXAMPLES = int(os.environ.get("STREAMAL_FUZZ_EXAMPLES", "100"))
except ValueError:
    raise ValueError(
        f"STREAMAL_FUZZ_EXAMPLES must be an integer, got {os.environ['STREAMAL_FUZZ_EXAMPLES']!r}"
    ) from None


def fuzz(cost: int = 1) -> settings:
    """Hypothesis settings of a fuzz test that costs ``cost`` cheap examples per example."""
    return settings(
        max_examples=max(1, EXAMPLES // cost),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


# --------------------------------------------------------------------------- writing JSON by hand


class Raw(bytes):
    """Bytes written into the JSON text as they are: ``NaN``, ``1e400``, ``"\\ud800"``, invalid UTF-8."""


class Obj(tuple):
    """A JSON object as ``(key, value)`` pairs, so a key can repeat."""


def dump(value: Any) -> bytes:
    """JSON text of ``value``; :class:`Raw` is copied verbatim, :class:`Obj` may repeat keys."""
    if isinstance(value, Raw):
        return bytes(value)
    if isinstance(value, Obj):
        return b"{" + b",".join(dump(k) + b":" + dump(v) for k, v in value) + b"}"
    if isinstance(value, dict):
        return dump(Obj(value.items()))
    if isinstance(value, list):
        return b"[" + b",".join(dump(v) for v in value) + b"]"
    return orjson.dumps(value)


def nested(depth: int, inner: bytes = b"1") -> Raw:
    """``[[[...1...]]]``: orjson refuses more than 1024 levels."""
    return Raw(b"[" * depth + inner + b"]" * depth)


# --------------------------------------------------------------------------- hostile values

#: Each value with the instance decoder's verdict when it is the value of one feature.
FEATURE_VALUES: list[tuple[Any, str | type]] = [
    (Raw(b"NaN"), "malformed_json"),  # orjson refuses the literals
    (Raw(b"Infinity"), "malformed_json"),
    (Raw(b"-Infinity"), "malformed_json"),
    (Raw(b"1e400"), "non_finite"),  # overflows a double
    (Raw(b"-1e400"), "non_finite"),
    (Raw(b"1" + b"0" * 400), "non_finite"),
    (Raw(b"1e308"), float),
    (Raw(b"-1.7976931348623157e308"), float),
    (Raw(b"5e-324"), float),
    (Raw(b"1e-400"), float),  # underflows to 0.0
    (Raw(b"-0"), int),
    (Raw(b"-0.0"), float),
    (Raw(b"18446744073709551615"), int),  # u64 max: still an int
    (Raw(b"18446744073709551616"), float),  # beyond: orjson makes it a float
    (Raw(b"-9223372036854775809"), float),
    (Raw(b"01"), "malformed_json"),
    (Raw(b"1."), "malformed_json"),
    (Raw(b"+1"), "malformed_json"),
    (Raw(b"0x10"), "malformed_json"),
    ("NaN", str),  # a string feature that says NaN is a string
    ("Infinity", str),
    ("-inf", str),
    ("1e400", str),
    ("", str),
    ("\ufeff", str),
    ("\x00", str),
    ("\U0001f600" * 300, str),
    (True, bool),
    (False, bool),
    (0, int),
    (-(2**63), int),
    (None, "bad_features"),
    ([], "bad_features"),
    ([1.5], "bad_features"),
    ({}, "bad_features"),
    ({"a": 1}, "bad_features"),
    (nested(100), "bad_features"),
    (nested(1025), "malformed_json"),
    (Raw(b'"\\ud800"'), "malformed_json"),  # an escaped lone surrogate
    (Raw(b'"\\udc00x"'), "malformed_json"),
    (Raw(b'"\\ud83d\\ude00"'), str),  # an escaped pair is one character
    (Raw(b'"\\u0000"'), str),
    (Raw(b'"\xed\xa0\x80"'), "invalid_utf8"),  # a surrogate encoded in UTF-8
    (Raw(b'"\xff"'), "invalid_utf8"),
    (Raw(b'"\xc3"'), "invalid_utf8"),  # a cut sequence
    (Raw(b'"\xc0\xaf"'), "invalid_utf8"),  # overlong
    (Raw(b'"\xf4\x90\x80\x80"'), "invalid_utf8"),  # above U+10FFFF
    (Raw(b"'a'"), "malformed_json"),
    (Raw(b'"a\nb"'), "malformed_json"),  # a raw control character in a string
    (Raw(b"tru"), "malformed_json"),
]

#: Each value with the verdict when it is the ``id`` of an otherwise valid instance.
ID_VALUES: list[tuple[Any, str | None]] = [
    ("x" * MAX_ID_CHARS, None),
    ("é" * MAX_ID_CHARS, None),  # characters, not bytes
    ("\U0001f600" * MAX_ID_CHARS, None),
    (Raw(b'"' + b"\\ud83d\\ude00" * MAX_ID_CHARS + b'"'), None),
    ("x" * (MAX_ID_CHARS + 1), "bad_id"),
    ("é" * (MAX_ID_CHARS + 1), "bad_id"),
    ("", "bad_id"),
    (" ", None),
    ("NaN", None),
    ("\x00", None),
    (7, "bad_id"),  # a number is not an id
    (0, "bad_id"),
    (1.5, "bad_id"),
    (Raw(b"1e400"), "non_finite"),
    (True, "bad_id"),
    (False, "bad_id"),
    ([], "bad_id"),
    (["a"], "bad_id"),
    ({"a": "b"}, "bad_id"),
    (None, "missing_id"),
    (Raw(b"NaN"), "malformed_json"),
    (Raw(b'"\xff"'), "invalid_utf8"),
    (Raw(b'"\\ud800"'), "malformed_json"),
]

#: Each value with the verdict when it is the ``label`` of an otherwise valid label.
LABEL_VALUES: list[tuple[Any, str | type]] = [
    ("fraud", str),
    ("NaN", str),
    (" ", str),
    (0, int),
    (-3, int),
    (Raw(b"18446744073709551615"), int),
    (Raw(b"1e308"), float),
    (2.5, float),
    (Raw(b"1e400"), "non_finite"),
    (Raw(b"NaN"), "malformed_json"),
    (Raw(b"-Infinity"), "malformed_json"),
    ("", "bad_label"),
    (True, "bad_label"),  # a bool is not a class
    (False, "bad_label"),
    (None, "bad_label"),
    ([1], "bad_label"),
    ({"c": 1}, "bad_label"),
    (Raw(b'"\xff"'), "invalid_utf8"),
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
hostile = st.sampled_from([v for v, _ in FEATURE_VALUES] + [v for v, _ in ID_VALUES] + [v for v, _ in LABEL_VALUES])
keys = st.text(max_size=6) | st.sampled_from(["", "id", "features", "label", "ts", "\ufeffid", "ID"])
json_values = st.recursive(
    json_scalars | hostile,
    lambda inner: st.lists(inner, max_size=3) | st.lists(st.tuples(keys, inner), max_size=3).map(Obj),
    max_leaves=8,
)

feature_values = (
    st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
good_features = st.dictionaries(st.text(max_size=8), feature_values, max_size=6)
good_ids = st.text(min_size=1, max_size=MAX_ID_CHARS)
offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
timestamps = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets).map(
    lambda d: d.isoformat().replace("+00:00", "Z")
)
timestamp_values = (
    timestamps
    | st.sampled_from([
        "2026-11-24T12:00:00Z",
        "2026-11-24T12:00:00.1234567Z",  # more digits than a microsecond
        "2026-11-24T12:00:00",  # no offset
        "2026-11-24",
        "2026-13-01T00:00:00Z",
        "2026-11-24T23:59:60Z",  # a leap second
        "9999-12-31T23:59:59.999999Z",
        "9999-12-31T23:59:59-23:59",  # later than 9999 in UTC
        "0001-01-01T00:00:00+23:59",  # earlier than year 1 in UTC
        "0001-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
        "yesterday",
        "",
    ])
    | st.integers(0, 2**40)
)
classes = st.text(min_size=1, max_size=6) | st.integers(-5, 5) | st.floats(allow_nan=False, allow_infinity=False)


def _fields(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({k: v for k, v in fields.items() if not k.endswith("_")},
                                 optional={k[:-1]: v for k, v in fields.items() if k.endswith("_")})


#: A valid record of each contract, as a dict ready to be broken.
VALID = {
    "instance": _fields(
        id=good_ids, features=good_features, ts_=timestamps, meta_=st.dictionaries(keys, json_values, max_size=3)
    ),
    "label": _fields(id=good_ids, label=classes, annotator_=st.text(max_size=8), features_=good_features),
    "training": _fields(
        id=good_ids, features=good_features, label=classes, source=st.sampled_from(["joined", "unsolicited"]),
        annotator_=st.text(max_size=8), requested_at_=timestamps, labeled_at=timestamps,
    ),
    "label_request": _fields(
        id=good_ids, features=good_features, score=st.floats(0, 1), strategy=st.text(min_size=1, max_size=8),
        threshold=st.floats(allow_nan=False, allow_infinity=False),
        prediction=st.fixed_dictionaries({
            "label": st.none() | classes,
            "proba": st.dictionaries(st.text(max_size=4), st.floats(0, 1), max_size=3),
        }),
        model_version=st.integers(0, 2**63 - 1), mode=st.sampled_from(["stream", "pool"]),
        batch_id_=st.text(max_size=8), rank_=st.integers(0, 1000), requested_at=timestamps,
    ),
}


@st.composite
def broken(draw: st.DrawFn, contract: str) -> bytes:
    """A record of ``contract`` with up to three things wrong with it, then maybe its bytes damaged."""
    pairs = list(draw(VALID[contract]).items())
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.integers(0, max(0, len(pairs) - 1)))
        kind = draw(st.sampled_from(["value", "drop", "repeat", "extra", "inner"]))
        if not pairs or kind == "extra":
            pairs.insert(where, (draw(keys | st.just(Raw(b'"\xff"'))), draw(json_values)))
        elif kind == "value":
            pairs[where] = (pairs[where][0], draw(json_values | timestamp_values))
        elif kind == "drop":
            del pairs[where]
        elif kind == "repeat":  # the same key again, before or after: orjson keeps the last
            pairs.insert(draw(st.integers(0, len(pairs))), (pairs[where][0], draw(json_values)))
        else:  # inside an object field (features, prediction, meta): a hostile value or key
            key, value = pairs[where]
            if isinstance(value, dict):
                inner = list(value.items())
                inner.append((draw(keys | st.just(Raw(b'"\xc3"'))), draw(hostile | json_values)))
                pairs[where] = (key, Obj(draw(st.permutations(inner))))
    raw = dump(Obj(pairs))
    damage = draw(st.sampled_from(["none"] * 6 + ["bom", "cut", "flip", "pad", "wrap"]))
    if damage == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif damage == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif damage == "flip":
        i = draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([draw(st.integers(0, 255))]) + raw[i + 1:]
    elif damage == "pad":
        raw = b" \t\r\n" + raw + b"\n"
    elif damage == "wrap":
        raw = b"[" + raw + b"]"
    return raw


def any_record(contract: str) -> st.SearchStrategy[bytes | None]:
    """Anything a topic can hold: arbitrary bytes, a tombstone, any JSON, or a broken record of ``contract``."""
    return st.one_of(
        st.binary(max_size=64),
        st.just(None),
        json_values.map(dump),
        broken(contract),
        broken(contract),
    )


# --------------------------------------------------------------------------- invariants

_FEATURE_TYPES = (bool, int, float, str)


def check_features(features: Any) -> None:
    assert type(features) is dict
    for name, value in features.items():
        assert type(name) is str
        assert type(value) in _FEATURE_TYPES, (name, value)
        assert type(value) is not float or math.isfinite(value)


def check_id(value: Any) -> None:
    assert type(value) is str and 0 < len(value) <= MAX_ID_CHARS


def check_label(value: Any) -> None:
    assert type(value) in (int, float, str), value  # never a bool
    assert value != "" and (type(value) is not float or math.isfinite(value))


def check_timestamp(value: Any) -> None:
    assert isinstance(value, datetime) and value.utcoffset() is not None
    rfc3339(value)  # it can be written again, in UTC
    rfc3339(value.timestamp())  # and as epoch seconds (the changelog keeps a request's time so)


def check_message(message: Any) -> None:
    """What a decoded message of each contract guarantees, and that it is written back as it was read."""
    check_id(message.id)
    if not isinstance(message, Label):
        check_features(message.features)
    if isinstance(message, Instance):
        if message.ts is not None:
            check_timestamp(message.ts)
        assert message.meta is None or type(message.meta) is dict
    elif isinstance(message, Label):
        check_label(message.label)
        assert message.annotator is None or type(message.annotator) is str
        if message.features is not None:
            check_features(message.features)
    elif isinstance(message, TrainingRecord):
        check_label(message.label)
        assert message.source in ("joined", "unsolicited")
        check_timestamp(message.labeled_at)
        if message.requested_at is not None:
            check_timestamp(message.requested_at)
    elif isinstance(message, LabelRequest):
        assert type(message.score) is float and 0.0 <= message.score <= 1.0
        assert type(message.threshold) is float and math.isfinite(message.threshold)
        assert type(message.model_version) is int and message.model_version >= 0
        assert message.mode in ("stream", "pool")
        assert message.rank is None or (type(message.rank) is int and message.rank >= 0)
        if message.prediction.label is not None:
            check_label(message.prediction.label)
        for cls, p in message.prediction.proba.items():
            assert type(cls) is str and type(p) is float and 0.0 <= p <= 1.0
        check_timestamp(message.requested_at)
    else:  # pragma: no cover - a contract this module does not know
        raise TypeError(f"no invariants known for {type(message).__name__}")
    if isinstance(message, Instance) and depth(message.meta) > 200:
        return  # orjson reads 1024 levels but writes 254; streamal never writes an instance back
    assert PARSERS[type(message)](encode(message), 1 << 30) == message


def depth(value: Any) -> int:
    """How deeply JSON arrays and objects nest in ``value`` (without recursion: it may be 1000 deep)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, level + 1)
            stack.extend((v, level + 1) for v in value)
    return deepest


PARSERS: dict[type, Callable[[bytes | None, int], Any]] = {
    Instance: parse_instance,
    Label: parse_label,
    TrainingRecord: parse_training_record,
    LabelRequest: parse_label_request,
}


def check_rejection(exc: InvalidMessage, raw: bytes | None) -> None:
    """A rejection carries a known reason and a message, and becomes a dead letter that fits."""
    assert type(exc) is InvalidMessage
    assert exc.reason in REASONS
    assert str(exc)
    again = pickle.loads(pickle.dumps(exc))  # it crosses processes intact
    assert (type(again), again.reason, str(again)) == (InvalidMessage, exc.reason, str(exc))
    letter = DeadLetter.model_validate_json(dead_letter(raw, exc.reason, str(exc), "t", 0, 1, 16))
    assert letter.reason == exc.reason and letter.raw_size == len(raw or b"")


def outcome(parse: Callable[[bytes | None, int], Any], raw: bytes | None, max_bytes: int) -> Any:
    """``parse(raw)``, or the :class:`InvalidMessage` it raised; any other exception propagates (a bug)."""
    try:
        return parse(raw, max_bytes)
    except InvalidMessage as exc:
        return exc
