"""``streamal label-studio`` without servers: the labeling config, a request as a task, an annotation as a label."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streamal.apps.annotate.classes import ClassBook
from streamal.apps.label_studio.annotations import annotator_name, created_by_text, read_annotation
from streamal.apps.label_studio.bridge import webhook_task_ids
from streamal.apps.label_studio.config import (
    CLASS_CONTROL,
    OTHER_CONTROL,
    TARGET_CONTROL,
    LabelingConfig,
    build_config,
)
from streamal.apps.label_studio.tasks import (
    MAX_FEATURES,
    MAX_TEXT_CHARS,
    MODEL_VERSION,
    classes_of,
    make_task,
    task_key,
)
from streamal.service.messages import LabelRequest, parse_label_request


def request(ident: str = "t1", *, features: dict[str, Any] | None = None, label: Any = "billing",
            proba: dict[str, float] | None = None, score: float = 0.8) -> LabelRequest:
    raw = orjson.dumps({
        "id": ident, "features": features if features is not None else {"body": "card declined", "plan": "pro"},
        "score": score, "strategy": "margin", "threshold": 0.4,
        "prediction": {"label": label, "proba": proba if proba is not None else {"billing": 0.7, "login": 0.3}},
        "model_version": 12, "mode": "stream", "requested_at": "2026-01-01T00:00:00Z",
    })
    return parse_label_request(raw, 1 << 20)


def config(classes: list[str] | None = None, text: tuple[str, ...] = ("body",), **kwargs: Any) -> LabelingConfig:
    return LabelingConfig.parse(build_config(list(text), classes or [], "classification", **kwargs))


# ---------------------------------------------------------------------- the labeling config


def test_the_bridges_config_shows_text_and_features_and_asks_for_a_class() -> None:
    cfg = config(["billing", "login"], ("body", "subject"))
    assert (cfg.choices_name, cfg.choices, cfg.other_name, cfg.to_name) == \
        (CLASS_CONTROL, ("billing", "login"), OTHER_CONTROL, "text_0")
    assert cfg.managed and '$text_1' in cfg.xml and '$features' in cfg.xml


def test_without_classes_there_is_no_choices_control_until_one_is_known() -> None:
    cold = config([])
    assert cold.choices_name is None and cold.other_name == OTHER_CONTROL and "Choices" not in cold.xml
    warm = cold.with_classes(["login", "billing"])
    assert warm.choices_name == CLASS_CONTROL and warm.choices == ("login", "billing")
    assert warm.xml.index("<Choices") < warm.xml.index("<TextArea"), "the choices come before the free text"
    assert warm.with_classes(["billing"]) is warm, "nothing new: the same config"


def test_configured_classes_are_the_only_choices_and_there_is_no_free_text() -> None:
    cfg = config(["a", "b"], free_text=False)
    assert cfg.choices == ("a", "b") and cfg.other_name is None


def test_regression_asks_for_a_number() -> None:
    cfg = LabelingConfig.parse(build_config([], [], "regression"))
    assert cfg.number_name == TARGET_CONTROL and cfg.choices_name is None and cfg.to_name == "features"


def test_an_existing_projects_config_is_read_not_owned() -> None:
    xml = ('<View><Text name="review" value="$text_0"/><Choices name="sentiment" toName="review">'
           '<Choice value="pos"/><Choice value="neg"/></Choices></View>')
    cfg = LabelingConfig.parse(xml)
    assert (cfg.choices_name, cfg.choices, cfg.to_name, cfg.other_name, cfg.managed) == \
        ("sentiment", ("pos", "neg"), "review", None, False)
    with pytest.raises(ValueError, match="not XML"):
        LabelingConfig.parse("<View>")


def test_feature_names_are_escaped_in_the_xml() -> None:
    cfg = config(["a<b", 'say "hi"'], ("body & more",))
    assert cfg.choices == ("a<b", 'say "hi"')


# ---------------------------------------------------------------------- a request as a task


def test_a_request_becomes_a_task_with_its_key_score_text_features_and_prediction() -> None:
    task = make_task(request(), ["body"], config(["billing", "login"]))
    data = task["data"]
    assert data["streamal_id"] == "t1" and task["meta"] == {"streamal_id": "t1"} and task_key(task) == "t1"
    assert data["streamal_score"] == 0.8 and data["streamal_model_version"] == 12
    assert data["text_0"] == "card declined" and data["features"] == {"plan": "pro"}
    [guess] = task["predictions"]
    assert guess["model_version"] == MODEL_VERSION and guess["score"] == 0.7
    assert guess["result"] == [{"from_name": CLASS_CONTROL, "to_name": "text_0", "type": "choices",
                                "value": {"choices": ["billing"]}}]


def test_no_prediction_before_the_model_knows_a_class_or_for_a_class_the_choices_lack() -> None:
    assert "predictions" not in make_task(request(label=None, proba={}), ["body"], config([]))
    assert "predictions" not in make_task(request(), ["body"], config(["login"]))
    assert "predictions" not in make_task(request(), ["body"], config(["billing"]), with_prediction=False)


def test_a_missing_or_non_text_text_feature_shows_as_text_and_big_requests_are_bounded() -> None:
    features: dict[str, Any] = {"body": "x" * (MAX_TEXT_CHARS + 10), "n": 3}
    features.update({f"f{i}": i for i in range(MAX_FEATURES + 5)})
    data = make_task(request(features=features), ["body", "subject", "n"], config(["billing"]))["data"]
    assert len(data["text_0"]) == MAX_TEXT_CHARS and data["text_0"].endswith("…")
    assert data["text_1"] == "" and data["text_2"] == "3"
    assert len(data["features"]) == MAX_FEATURES + 1 and "…" in data["features"]


def test_classes_of_requests_in_order_and_task_keys_of_foreign_tasks() -> None:
    assert classes_of([request(), request(label="spam", proba={"spam": 1.0})]) == ["billing", "login", "spam"]
    assert task_key({"data": {"text": "not ours"}, "meta": {}}) is None
    assert task_key({"data": {"streamal_id": "x"}, "meta": {}}) == "x"


# ---------------------------------------------------------------------- an annotation as a label


def choices(*names: str, control: str = CLASS_CONTROL) -> dict[str, Any]:
    return {"type": "choices", "from_name": control, "to_name": "text_0", "value": {"choices": list(names)}}


def typed(text: str) -> dict[str, Any]:
    return {"type": "textarea", "from_name": OTHER_CONTROL, "to_name": "text_0", "value": {"text": [text]}}


@pytest.mark.parametrize(("result", "status", "label"), [
    ([choices("billing")], "label", "billing"),
    ([choices("billing"), typed("refund")], "label", "refund"),  # typed wins over the pre-selected choice
    ([typed("  ")], "empty", None),
    ([], "empty", None),
    ([choices("billing", "login")], "refused", None),
    ([choices("billing", control="someone_elses")], "empty", None),
])
def test_what_an_annotation_says(result: list[dict[str, Any]], status: str, label: Any) -> None:
    answer = read_annotation({"result": result}, config(["billing", "login"]), ClassBook())
    assert (answer.status, answer.label) == (status, label)


def test_a_skipped_annotation_is_no_label() -> None:
    assert read_annotation({"result": [choices("a")], "was_cancelled": True}, config(["a"]), ClassBook()).status == \
        "skipped"


def test_a_class_outside_streamal_classes_is_refused_and_numbers_keep_their_type() -> None:
    refused = read_annotation({"result": [typed("eggs")]}, config(["a"]), ClassBook(["a", "b"]))
    assert refused.status == "refused" and "STREAMAL_CLASSES" in (refused.reason or "")
    numbers = ClassBook()
    numbers.note_value(0)
    numbers.note_value(1)
    assert read_annotation({"result": [choices("1")]}, config(["0", "1"]), numbers).label == 1


def test_regression_reads_the_number() -> None:
    cfg = LabelingConfig.parse(build_config([], [], "regression"))
    number = {"type": "number", "from_name": TARGET_CONTROL, "value": {"number": 4.25}}
    assert read_annotation({"result": [number]}, cfg, ClassBook(task="regression")).label == 4.25
    assert read_annotation({"result": []}, cfg, ClassBook(task="regression")).status == "empty"


def test_the_annotator_is_the_users_email() -> None:
    assert annotator_name({"email": "ann@example.com", "username": "ann"}, 1) == "ann@example.com"
    assert annotator_name({"email": "", "username": "ann"}, 1) == "ann"
    assert annotator_name(None, 7) == "label-studio-user-7"
    assert created_by_text({"created_username": "Ann Lee ann@example.com, 7"}) == "ann@example.com"
    assert created_by_text({"created_username": ""}) is None


def test_the_tasks_a_webhook_names() -> None:
    assert webhook_task_ids({"task": {"id": 3}, "annotation": {"id": 9, "task": 3}}) == [3]
    assert webhook_task_ids({"annotation": [{"task": 1}, {"task": {"id": 2}}, {"task": True}]}) == [1, 2]
    assert webhook_task_ids({"project": {"id": 1}}) == []
