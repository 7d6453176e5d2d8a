"""Message contracts of DESIGN section 3, validated with pydantic, (de)coded with orjson.

Inbound records are parsed by one function per contract (:func:`parse_instance`,
:func:`parse_label`, ...); the service's hot path reads instances and writes
label requests with the faster twins of :mod:`streamal.service.codec`, tested
equal to these. Each takes the raw Kafka value and raises a single
error class, :class:`~streamal.service.errors.InvalidMessage`, whose ``reason``
is one of :data:`REASONS`. Outbound records are built as models and turned into
bytes by :func:`encode`; :func:`dead_letter` builds a dead-letter record.

Decoding notes (orjson 3.x): ``NaN``/``Infinity`` literals and numbers that
overflow a double (``1e400``) are rejected by the decoder, so no non-finite
float can come out of :func:`orjson.loads`; the models still reject non-finite
floats (``allow_inf_nan=False``) because values built in Python are not so
protected, and ``orjson.dumps`` would silently write ``NaN`` as ``null``.

Cost: parsing a 210-byte instance (8 features and a timestamp) takes 3-5 µs
on the (shared, 2-core) development machine with pydantic 2.14, of which
``orjson.loads`` is 0.5-0.8 µs and ``model_validate`` the rest.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, TypeVar, Union

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from streamal.service.errors import InvalidMessage

__all__ = [
    "MAX_ERROR_CHARS",
    "MAX_ID_CHARS",
    "REASONS",
    "DeadLetter",
    "Instance",
    "Label",
    "LabelRequest",
    "Prediction",
    "PredictionRecord",
    "RecordSource",
    "TrainingRecord",
    "dead_letter",
    "encode",
    "parse_instance",
    "parse_label",
    "parse_label_request",
    "parse_training_record",
    "rfc3339",
]

#: Longest accepted instance id, in characters.
MAX_ID_CHARS: Final = 256
#: The ``error`` text of a dead letter is cut to this many characters.
MAX_ERROR_CHARS: Final = 1000

#: Every ``reason`` an :class:`InvalidMessage` can carry.
REASONS: Final = frozenset(
    {
        "empty",  # null (tombstone) or empty / whitespace-only value
        "too_large",  # value longer than the configured maximum
        "invalid_utf8",
        "malformed_json",
        "not_an_object",  # valid JSON, but not an object
        "missing_id",  # no "id", or "id": null
        "bad_id",  # id not a non-empty string of at most MAX_ID_CHARS characters
        "bad_features",  # features not an object of number | string | bool
        "non_finite",  # NaN, Infinity or a number that overflows a double
        "bad_label",  # label missing, a bool, an empty string, or not str | number
        "bad_field",  # any other field of the contract has the wrong type
    }
)


def rfc3339(moment: float | datetime) -> str:
    """A moment (epoch seconds or an aware datetime) as RFC 3339 UTC text, to the millisecond.

    Every timestamp streamal writes has this form (a datetime with finer
    digits keeps them).

    >>> rfc3339(1795000000.5)
    '2026-11-18T11:06:40.500Z'
    """
    if isinstance(moment, (int, float)):
        when, digits = datetime.fromtimestamp(moment, UTC), "milliseconds"
    else:
        when = moment.astimezone(UTC)
        digits = "milliseconds" if when.microsecond % 1000 == 0 else "microseconds"
    return when.isoformat(timespec=digits).replace("+00:00", "Z")


_RFC3339_START: Final = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d")


def _only_text(value: Any) -> Any:
    """Accept a timestamp only as an RFC 3339 string (or a datetime built in Python).

    pydantic alone would also take a number, or a string of one (``"1700000000"``), as epoch seconds.
    """
    if isinstance(value, (int, float)):
        raise ValueError("must be an RFC 3339 string, not a number")
    if isinstance(value, str) and not _RFC3339_START.match(value):
        raise ValueError("must be an RFC 3339 string, such as 2026-11-24T12:00:00Z")
    return value


def _in_range(value: datetime) -> datetime:
    """Refuse a moment that epoch seconds in UTC cannot hold (before year 1 or after 9999 once the offset
    is applied, e.g. ``9999-12-31T23:59:59-23:59``): it could be read, but not written again."""
    try:
        datetime.fromtimestamp(value.timestamp(), UTC)
    except (OverflowError, ValueError, OSError):
        raise ValueError("must lie in the years 1 to 9999 in UTC") from None
    return value


def _stringify_keys(value: Any) -> Any:
    """Class labels become JSON object keys, so they are strings on the wire."""
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): v for k, v in value.items()}
    return value


FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
#: A feature value: a bool, an int, a finite float or a string (tried in that order).
FeatureValue = Annotated[
    Union[StrictBool, StrictInt, FiniteFloat, StrictStr], Field(union_mode="left_to_right")
]
Features = dict[StrictStr, FeatureValue]
#: A class label or regression target: a non-empty string or a finite number, never a bool.
LabelValue = Annotated[
    Union[StrictInt, FiniteFloat, Annotated[StrictStr, Field(min_length=1)]],
    Field(union_mode="left_to_right"),
]
InstanceId = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_CHARS)]
Timestamp = Annotated[
    AwareDatetime, BeforeValidator(_only_text), AfterValidator(_in_range), PlainSerializer(rfc3339, when_used="json")
]
Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class _Message(BaseModel):
    # Unknown fields are ignored, so a newer producer (or a newer streamal
    # writing the training topic during a rolling upgrade) is still readable.
    model_config = ConfigDict(frozen=True, extra="ignore")


class Instance(_Message):
    """An unlabeled instance: ``{"id", "features", "ts"?, "meta"?}``."""

    id: InstanceId
    features: Features
    ts: Timestamp | None = None
    meta: dict[str, Any] | None = None


class Prediction(_Message):
    """The model's prediction at request time; ``label`` is ``None`` before any class is known."""

    label: LabelValue | None
    proba: Annotated[dict[str, Probability], BeforeValidator(_stringify_keys)]


class LabelRequest(_Message):
    """A request for a human label, emitted when an instance is informative enough."""

    id: InstanceId
    features: Features
    score: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
    strategy: Annotated[str, Field(min_length=1)]
    threshold: Annotated[float, Field(allow_inf_nan=False)]
    prediction: Prediction
    model_version: Annotated[int, Field(ge=0)]
    mode: Literal["stream", "pool"]
    batch_id: str | None = None
    rank: Annotated[int, Field(ge=0)] | None = None
    requested_at: Timestamp


class Label(_Message):
    """A label from an annotator: ``{"id", "label", "annotator"?, "features"?}``."""

    id: InstanceId
    label: LabelValue
    annotator: StrictStr | None = None
    features: Features | None = None


class TrainingRecord(_Message):
    """A labeled example on the training topic, the only thing the model learns from.

    ``source`` says where the label comes from: a person's answer to a
    request (``joined``), a person's label nobody asked for
    (``unsolicited``), or the model's own confident prediction for an
    instance it did not ask about (``pseudo``, with ``STREAMAL_PSEUDO_LABELS``:
    learned like the others, counted apart, never as a person's).
    """

    id: InstanceId
    features: Features
    label: LabelValue
    source: Literal["joined", "unsolicited", "pseudo"]
    annotator: StrictStr | None = None
    requested_at: Timestamp | None = None
    labeled_at: Timestamp


class PredictionRecord(_Message):
    """A prediction for one instance, on the optional predictions topic (``STREAMAL_TOPIC_PREDICTIONS``).

    ``model_version`` is the number of examples the model had learned when
    it predicted; ``asked`` says whether a label request went out for it.
    """

    id: InstanceId
    prediction: Prediction
    model_version: Annotated[int, Field(ge=0)]
    asked: bool
    predicted_at: Timestamp


class RecordSource(_Message):
    """Where a rejected record was read from."""

    topic: str
    partition: int | None
    offset: int | None


class DeadLetter(_Message):
    """A rejected record, with its raw bytes (possibly cut) in base64."""

    reason: str
    error: str
    source: RecordSource
    raw_b64: str
    raw_size: Annotated[int, Field(ge=0)]
    truncated: bool

    @field_validator("error")
    @classmethod
    def _cut_error(cls, value: str) -> str:
        return value if len(value) <= MAX_ERROR_CHARS else value[: MAX_ERROR_CHARS - 1] + "…"


# --------------------------------------------------------------------------- decoding

M = TypeVar("M", bound=_Message)

_JSON_TYPES: Final = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "bool",
    int: "number",
    float: "number",
    type(None): "null",
}


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _path(loc: tuple[int | str, ...]) -> str:
    """``('features', 'amount', 'float')`` -> ``features.amount`` (union branch names dropped)."""
    return ".".join(str(part) for part in loc[:2] if part is not None)


def _invalid(error: ValidationError, data: dict[str, Any]) -> InvalidMessage:
    """Map a pydantic error onto one reason and a short message (never echoing the input)."""
    errors = error.errors(include_url=False)
    for err in errors:
        if err["type"] == "finite_number":
            return InvalidMessage("non_finite", f"{_path(err['loc'])} is not a finite number")
    err = errors[0]
    field = err["loc"][0] if err["loc"] else None
    if field == "id":
        if data.get("id") is None:
            return InvalidMessage("missing_id", "'id' is missing")
        return InvalidMessage(
            "bad_id",
            f"'id' must be a non-empty string of at most {MAX_ID_CHARS} characters, "
            f"got {_json_type(data['id'])}"
            + (f" of {len(data['id'])} characters" if isinstance(data["id"], str) else ""),
        )
    if field == "features":
        if len(err["loc"]) == 1:
            got = "nothing" if err["type"] == "missing" else _json_type(err["input"])
            return InvalidMessage("bad_features", f"'features' must be an object, got {got}")
        return InvalidMessage(
            "bad_features",
            f"{_path(err['loc'])} must be a finite number, a string or a bool, "
            f"got {_json_type(err['input'])}",
        )
    if field == "label":
        got = "nothing" if err["type"] == "missing" else _json_type(err["input"])
        if got == "string":
            got = "an empty string"
        return InvalidMessage(
            "bad_label", f"'label' must be a non-empty string or a finite number, got {got}"
        )
    where = ".".join(str(p) for p in err["loc"]) or "value"
    return InvalidMessage("bad_field", f"{where}: {err['msg']}")


def _decode(raw: bytes | None, max_bytes: int) -> dict[str, Any]:
    """Bytes -> JSON object, raising :class:`InvalidMessage` for every failure."""
    if raw is None or not raw or raw.isspace():
        raise InvalidMessage("empty", "the record value is empty")
    if len(raw) > max_bytes:
        raise InvalidMessage("too_large", f"the value has {len(raw)} bytes, more than {max_bytes}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _undecodable(raw, exc) from None
    if type(data) is not dict:
        raise InvalidMessage(
            "not_an_object", f"the value must be a JSON object, got {_json_type(data)}"
        )
    return data


def _undecodable(raw: bytes, exc: orjson.JSONDecodeError) -> InvalidMessage:
    """Tell invalid UTF-8 and overflowing numbers apart from other malformed JSON."""
    try:
        bytes(raw).decode("utf-8")
    except UnicodeDecodeError as utf8:
        return InvalidMessage("invalid_utf8", f"not UTF-8: invalid byte at position {utf8.start}")
    if "infinity" in str(exc):  # orjson: "number is infinity when parsed as double"
        return InvalidMessage("non_finite", f"a number overflows a double: {exc}")
    return InvalidMessage("malformed_json", f"malformed JSON: {exc}")


def _parse(model: type[M], raw: bytes | None, max_bytes: int) -> M:
    data = _decode(raw, max_bytes)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, data) from None


def parse_instance(raw: bytes | None, max_bytes: int) -> Instance:
    """Parse the value of an instances-topic record.

    >>> parse_instance(b'{"id": "t1", "features": {"amount": 12.5, "shop": "a"}}', 1024).features
    {'amount': 12.5, 'shop': 'a'}
    >>> parse_instance(b'{"id": 7, "features": {}}', 1024)
    Traceback (most recent call last):
    ...
    streamal.service.errors.InvalidMessage: 'id' must be a non-empty string of at most 256 characters, got number
    """
    return _parse(Instance, raw, max_bytes)


def parse_label(raw: bytes | None, max_bytes: int) -> Label:
    """Parse the value of a labels-topic record."""
    return _parse(Label, raw, max_bytes)


def parse_label_request(raw: bytes | None, max_bytes: int) -> LabelRequest:
    """Parse the value of a label-requests-topic record (used by annotators and the oracle)."""
    return _parse(LabelRequest, raw, max_bytes)


def parse_training_record(raw: bytes | None, max_bytes: int) -> TrainingRecord:
    """Parse the value of a training-topic record."""
    return _parse(TrainingRecord, raw, max_bytes)


# --------------------------------------------------------------------------- encoding


def encode(message: _Message) -> bytes:
    """UTF-8 JSON of a message; optional top-level fields that are ``None`` are left out.

    >>> encode(Label(id="t1", label="fraud"))
    b'{"id":"t1","label":"fraud"}'
    """
    data = message.model_dump(mode="json")
    for name, field in type(message).model_fields.items():
        if data[name] is None and not field.is_required():
            del data[name]
    return orjson.dumps(data)


def dead_letter(
    raw: bytes | None,
    reason: str,
    error: str,
    topic: str,
    partition: int | None,
    offset: int | None,
    max_bytes: int,
) -> bytes:
    """The dead-letter record for a rejected value; its raw bytes are cut to ``max_bytes``.

    >>> import orjson
    >>> d = orjson.loads(dead_letter(b"not json", "malformed_json", "bad", "in", 0, 7, 3))
    >>> d["raw_b64"], d["raw_size"], d["truncated"], d["source"]
    ('bm90', 8, True, {'topic': 'in', 'partition': 0, 'offset': 7})
    """
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    raw = b"" if raw is None else bytes(raw)
    kept = raw[:max_bytes]
    record = DeadLetter(
        reason=reason,
        error=error,
        source=RecordSource(topic=topic, partition=partition, offset=offset),
        raw_b64=base64.b64encode(kept).decode("ascii"),
        raw_size=len(raw),
        truncated=len(kept) < len(raw),
    )
    return encode(record)
