"""A label request as the page shows it: bounded in size whatever the request holds.

A request may carry up to ``STREAMAL_MAX_MESSAGE_BYTES`` of features (1 MiB
by default): the page gets at most :data:`MAX_FEATURES` features, text cut to
:data:`MAX_TEXT_CHARS` and other values to :data:`MAX_VALUE_CHARS`, each cut
said so, so a huge request is still labelled in a page of normal size.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

from streamal.service.messages import LabelRequest

MAX_FEATURES: Final = 40
MAX_TEXT_CHARS: Final = 2000
MAX_VALUE_CHARS: Final = 120
#: Classes shown with their probability (the rest are summed up).
MAX_PROBA: Final = 12
#: A string value this long, or holding a line break, is shown as text even if not a declared text feature.
LONG_STRING: Final = 60


def cut(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters (an ellipsis at the end), and whether it was cut.

    >>> cut("abcdef", 4), cut("abc", 4)
    (('abc…', True), ('abc', False))
    """
    if len(text) <= limit:
        return text, False
    return text[: limit - 1] + "…", True


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def present(request: LabelRequest, text_features: Collection[str], now: float) -> dict[str, Any]:
    """The JSON the page renders for one request.

    >>> from streamal.service.messages import parse_label_request
    >>> raw = (b'{"id":"t1","features":{"body":"card was declined","age":3.5},"score":0.9,"strategy":"margin",'
    ...        b'"threshold":0.5,"prediction":{"label":"billing","proba":{"billing":0.7,"login":0.3}},'
    ...        b'"model_version":12,"mode":"stream","requested_at":"2026-01-01T00:00:00Z"}')
    >>> page = present(parse_label_request(raw, 10_000), {"body"}, now=1767225630.0)
    >>> page["texts"], page["table"], page["age_s"], page["proba"][0]
    ([{'name': 'body', 'text': 'card was declined', 'cut': False}], [{'name': 'age', 'value': '3.5', 'cut': False}], 30.0, {'class': 'billing', 'p': 0.7})
    """
    texts: list[dict[str, Any]] = []
    table: list[dict[str, Any]] = []
    for name, value in list(request.features.items())[:MAX_FEATURES]:
        shown_name, _ = cut(name, MAX_VALUE_CHARS)
        if isinstance(value, str) and (name in text_features or len(value) >= LONG_STRING or "\n" in value):
            text, was_cut = cut(value, MAX_TEXT_CHARS)
            texts.append({"name": shown_name, "text": text, "cut": was_cut})
        else:
            text, was_cut = cut(_value(value), MAX_VALUE_CHARS)
            table.append({"name": shown_name, "value": text, "cut": was_cut})
    proba = sorted(request.prediction.proba.items(), key=lambda kv: -kv[1])
    shown = [{"class": cut(c, MAX_VALUE_CHARS)[0], "p": p} for c, p in proba[:MAX_PROBA]]
    predicted = request.prediction.label
    return {
        "id": request.id,
        "texts": texts,
        "table": table,
        "hidden_features": max(0, len(request.features) - MAX_FEATURES),
        "prediction": None if predicted is None else str(predicted),
        "proba": shown,
        "proba_rest": sum(p for _, p in proba[MAX_PROBA:]),
        "score": request.score,
        "strategy": request.strategy,
        "model_version": request.model_version,
        "mode": request.mode,
        "rank": request.rank,
        "requested_at": request.requested_at.isoformat().replace("+00:00", "Z"),
        "age_s": max(0.0, round(now - request.requested_at.timestamp(), 1)),
    }
