"""A label request as a Label Studio task: its data, its key and the model's prediction as a pre-annotation.

Task data (what the labeling config shows and the Data Manager lists):

- ``streamal_id``: the instance id, the task's key; also in the task's
  ``meta``, where the bridge looks for it (a task is never made twice for
  one id, also after a restart: the bridge lists the project's tasks first);
- ``streamal_score``: the request's informativeness score, the priority: the
  bridge's Data Manager tab sorts by it, highest first, and "Label All Tasks"
  from that tab follows the order;
- ``text_0``, ``text_1``, …: the text features (``STREAMAL_TEXT_FEATURES``),
  cut to :data:`MAX_TEXT_CHARS`;
- ``features``: every other feature, a table of at most :data:`MAX_FEATURES`
  (a text feature missing from a request shows as empty text);
- ``streamal_model_version``, ``streamal_strategy``, ``streamal_requested_at``.

The prediction (Label Studio's pre-annotation, pre-selected for the
annotator) is the model's predicted class with its probability as the
prediction's score; ``model_version`` is :data:`MODEL_VERSION`, the project's,
so Label Studio shows it. A request before the model knows any class has no
prediction; so has one whose class an existing project's choices lack.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from streamal.apps.annotate.view import cut
from streamal.apps.label_studio.config import FEATURES_KEY, LabelingConfig, text_key
from streamal.service.messages import LabelRequest

#: The ``model_version`` of the bridge's predictions (and of a project it creates).
MODEL_VERSION: Final = "streamal"
MAX_TEXT_CHARS: Final = 20_000
MAX_FEATURES: Final = 100
MAX_VALUE_CHARS: Final = 200


def request_classes(request: LabelRequest) -> list[str]:
    """The class names a request shows: its predicted label and its probabilities' keys."""
    names = list(request.prediction.proba)
    if request.prediction.label is not None:
        names.insert(0, str(request.prediction.label))
    return list(dict.fromkeys(names))


def task_data(request: LabelRequest, text_features: Sequence[str]) -> dict[str, Any]:
    """The ``data`` of the task for ``request`` (see the module docstring)."""
    data: dict[str, Any] = {
        "streamal_id": request.id,
        "streamal_score": round(request.score, 6),
        "streamal_model_version": request.model_version,
        "streamal_strategy": request.strategy,
        "streamal_requested_at": request.requested_at.isoformat().replace("+00:00", "Z"),
    }
    texts = set(text_features)
    for i, name in enumerate(text_features):
        value = request.features.get(name, "")
        data[text_key(i)] = cut(value if isinstance(value, str) else _shown(value), MAX_TEXT_CHARS)[0]
    table: dict[str, Any] = {}
    for name, value in request.features.items():
        if name in texts:
            continue
        if len(table) == MAX_FEATURES:
            table["…"] = f"{len(request.features) - len(texts) - MAX_FEATURES} more features not shown"
            break
        table[cut(name, MAX_VALUE_CHARS)[0]] = cut(value, MAX_VALUE_CHARS)[0] if isinstance(value, str) else value
    data[FEATURES_KEY] = table
    return data


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def prediction(request: LabelRequest, config: LabelingConfig) -> dict[str, Any] | None:
    """The pre-annotation for ``request`` in ``config``, or ``None`` (no class known, or not one of its choices).

    >>> from streamal.apps.label_studio.config import build_config
    >>> from streamal.service.messages import parse_label_request
    >>> raw = (b'{"id":"t1","features":{"body":"card declined"},"score":0.9,"strategy":"margin","threshold":0.5,'
    ...        b'"prediction":{"label":"billing","proba":{"billing":0.7,"login":0.3}},"model_version":12,'
    ...        b'"mode":"stream","requested_at":"2026-01-01T00:00:00Z"}')
    >>> cfg = LabelingConfig.parse(build_config(["body"], ["billing", "login"], "classification"))
    >>> guess = prediction(parse_label_request(raw, 10_000), cfg)
    >>> guess["result"][0]["value"], guess["score"], guess["model_version"]
    ({'choices': ['billing']}, 0.7, 'streamal')
    """
    predicted = request.prediction.label
    if predicted is None or config.to_name is None:
        return None
    if config.number_name is not None and config.choices_name is None:
        if isinstance(predicted, str):
            return None
        result = {"from_name": config.number_name, "to_name": config.to_name, "type": "number",
                  "value": {"number": predicted}}
        return {"model_version": MODEL_VERSION, "result": [result]}
    name = str(predicted)
    if config.choices_name is None or name not in config.choices:
        return None
    result = {"from_name": config.choices_name, "to_name": config.to_name, "type": "choices",
              "value": {"choices": [name]}}
    out: dict[str, Any] = {"model_version": MODEL_VERSION, "result": [result]}
    score = request.prediction.proba.get(name)
    if score is not None:
        out["score"] = round(score, 6)
    return out


def make_task(request: LabelRequest, text_features: Sequence[str], config: LabelingConfig, *,
              with_prediction: bool = True) -> dict[str, Any]:
    """The task JSON Label Studio's import takes for ``request``."""
    task: dict[str, Any] = {
        "data": task_data(request, text_features),
        "meta": {"streamal_id": request.id},
    }
    guess = prediction(request, config) if with_prediction else None
    if guess is not None:
        task["predictions"] = [guess]
    return task


def task_key(task: Mapping[str, Any]) -> str | None:
    """The instance id of a Label Studio task (its ``meta``, else its data), ``None`` if it is not the bridge's."""
    for where in ("meta", "data"):
        part = task.get(where)
        if isinstance(part, Mapping) and isinstance(part.get("streamal_id"), str) and part["streamal_id"]:
            return str(part["streamal_id"])
    return None


def classes_of(requests: Iterable[LabelRequest]) -> list[str]:
    """Every class name the requests show, in order of appearance."""
    return list(dict.fromkeys(c for r in requests for c in request_classes(r)))
