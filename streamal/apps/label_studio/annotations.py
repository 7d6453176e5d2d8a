"""A Label Studio annotation as a label (or why it is none), and who made it.

- A skipped annotation (``was_cancelled``) is no label: the task stays open.
- A class typed into the free-text control wins over the chosen one (the
  choice may be the pre-selected prediction the annotator did not clear).
- The text becomes a label as the annotate page's does
  (:class:`~streamal.apps.annotate.classes.ClassBook`): a number when the
  model's classes are numbers, refused when ``STREAMAL_CLASSES`` does not list
  it (the service would dead-letter it), a number for regression.
- An annotation with nothing chosen, several classes chosen, or a refused
  class is counted and logged; its task stays open, so the annotation fixed
  in Label Studio (ANNOTATION_UPDATED, or the next poll) is taken then.
- The annotator is the Label Studio user's email (unique and stable), else
  its username, else ``label-studio-user-<id>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from streamal.apps.annotate.classes import ClassBook, LabelValue
from streamal.apps.label_studio.config import LabelingConfig

AnswerStatus = Literal["label", "skipped", "empty", "refused"]


@dataclass(frozen=True, slots=True)
class Answer:
    """What one annotation says: a ``label``, or ``skipped``/``empty``/``refused`` (with a reason)."""

    status: AnswerStatus
    label: LabelValue | None = None
    reason: str | None = None


def _values(result: Sequence[Any], kind: str, control: str | None, key: str) -> list[Any]:
    out: list[Any] = []
    for region in result:
        if not isinstance(region, Mapping) or region.get("type") != kind:
            continue
        if control is not None and region.get("from_name") != control:
            continue
        value = region.get("value")
        got = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(got, list):
            out += got
        elif got is not None:
            out.append(got)
    return out


def read_annotation(annotation: Mapping[str, Any], config: LabelingConfig, classes: ClassBook) -> Answer:
    """The label ``annotation`` gives in a project of ``config``.

    >>> from streamal.apps.label_studio.config import build_config
    >>> cfg = LabelingConfig.parse(build_config(["body"], ["ham", "spam"], "classification"))
    >>> chose = {"result": [{"type": "choices", "from_name": "streamal_class", "value": {"choices": ["spam"]}}]}
    >>> other = {"type": "textarea", "from_name": "streamal_other", "value": {"text": [" eggs "]}}
    >>> typed = {"result": [*chose["result"], other]}
    >>> read_annotation(chose, cfg, ClassBook()).label, read_annotation(typed, cfg, ClassBook()).label
    ('spam', 'eggs')
    >>> read_annotation({"result": [], "was_cancelled": True}, cfg, ClassBook()).status
    'skipped'
    """
    if annotation.get("was_cancelled"):
        return Answer("skipped")
    result = annotation.get("result")
    if not isinstance(result, list):
        return Answer("empty", reason="the annotation has no result")
    if classes.task == "regression":
        numbers = _values(result, "number", config.number_name, "number")
        typed_numbers = [t for t in _values(result, "textarea", config.other_name, "text") if str(t).strip()]
        given = numbers or typed_numbers
        if not given:
            return Answer("empty", reason="no target value given")
        return _parse(str(given[0]), classes)
    typed = [str(t).strip() for t in _values(result, "textarea", config.other_name, "text") if str(t).strip()]
    if typed:
        if len(set(typed)) > 1:
            return Answer("refused", reason=f"several classes typed: {', '.join(sorted(set(typed)))}")
        return _parse(typed[0], classes)
    chosen = [str(c) for c in _values(result, "choices", config.choices_name, "choices")]
    if not chosen:
        return Answer("empty", reason="no class chosen or typed")
    if len(set(chosen)) > 1:
        return Answer("refused", reason=f"several classes chosen: {', '.join(sorted(set(chosen)))}")
    return _parse(chosen[0], classes)


def _parse(text: str, classes: ClassBook) -> Answer:
    try:
        return Answer("label", classes.parse(text))
    except ValueError as exc:
        return Answer("refused", reason=str(exc))


def annotator_name(user: Mapping[str, Any] | None, user_id: object) -> str:
    """The annotator of a label, from a Label Studio user (``GET /api/users/<id>/``).

    >>> annotator_name({"email": "ann@example.com", "username": "ann"}, 3), annotator_name(None, 3)
    ('ann@example.com', 'label-studio-user-3')
    """
    if user:
        for key in ("email", "username"):
            value = user.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return f"label-studio-user-{user_id}"


def created_by_text(annotation: Mapping[str, Any]) -> str | None:
    """The email in an annotation's ``created_username`` (``"First Last email, id"``), when the user cannot be read."""
    text = annotation.get("created_username")
    if not isinstance(text, str) or "," not in text:
        return None
    words = text.rsplit(",", 1)[0].split()
    return words[-1] if words else None
