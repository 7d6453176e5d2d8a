"""River models by name, for settings and the CLI."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from river import linear_model, multiclass, naive_bayes, optim, tree
from river import base as river_base

from streamal.core.errors import ParameterError
from streamal.core.registry import Registry

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model for a task, whether it wants standardised inputs, and the norm of its text.

    ``text_norm`` maps a task to the L2 norm each text field's TF-IDF vector
    is scaled to (see :func:`text_norm`); a task it does not name gets 1, the
    unit norm River's ``TFIDF`` gives.
    """

    build: Callable[[Task], Any]
    scaled: bool
    text_norm: Mapping[str, float] = field(default_factory=dict)


models: Registry[ModelSpec] = Registry("model")


def _per_task(classifier: Callable[[], Any], regressor: Callable[[], Any] | None) -> Callable[[Task], Any]:
    def build(task: Task) -> Any:
        if task == "classification":
            return classifier()
        if regressor is None:
            raise ValueError("does classification only, and the task is regression")
        return regressor()

    return build


#: SGD step of the linear models. River's default is 0.01; with the few labels
#: active learning gets, 0.03 learns faster and is better at every budget of
#: the label-efficiency benchmark (mean over the nine anchor streams, margin +
#: variable_uncertainty: +0.3, +0.9, +1.2, +0.7 points at 1, 5, 10, 20 %),
#: while 0.1 overshoots at 10 and 20 %.
LEARNING_RATE = 0.03

#: Effective SGD step on a text field of the logistic regression: its TF-IDF
#: vector is scaled to the norm ``sqrt(TEXT_STEP / LEARNING_RATE)`` (≈ 18.3),
#: which for plain SGD is the same as a step of ``TEXT_STEP`` on the unit
#: vector, while numbers and categories keep ``LEARNING_RATE``. A text field's
#: words are many and each is rare, so each word's weight is updated seldom
#: and needs a large step; a dense feature is updated on every label and
#: needs a small one. At 0.03 the model barely learns from text (34 % with
#: every label on ``tickets_routing``). Chosen on the generated ticket
#: streams of ``benchmarks/streams.py`` (never on the Debian stream of
#: ``benchmarks/text.py``), first 4,000 instances, margin +
#: variable_uncertainty, seed 42 — accuracy % on tickets_routing /
#: tickets_noise_columns for steps 0.03, 1, 3, 10, 30: full supervision
#: 33.8/21.4, 80.7/76.3, 83.0/79.6, 81.0/78.2, 76.5/73.7; 5 % budget
#: 15.8/11.3, 33.4/29.6, 43.7/30.4, 53.9/42.1, 53.2/39.2; on all 8,000
#: instances, steps 3, 10, 30 at 1 %: 32.3/18.0, 32.5/27.3, 29.9/26.4, and at
#: 20 %: 76.5/70.8, 76.9/72.8, 73.8/68.9. Scaling the category or the
#: number up as well (text + product + account age, 5 %, same runs): ×1
#: 49.2/44.0, category ×4 55.4/38.1, category ×18 29.5/11.7, number ×4
#: 51.7/37.3 — no scale helps both, so they keep the unit scale.
#: Checked again once text got sublinear term frequency and cluster features
#: (:mod:`streamal.core.features`), on the held-out Debian sections of
#: ``benchmarks/text_heldout.py`` (two orders) and the three ticket streams
#: (seed 42), accuracy % at 1 / 5 / 10 / 20 % for steps 5, 10, 20: held-out
#: 41.5/64.7/71.2/77.3, 44.7/66.4/72.4/76.6, 46.6/65.6/70.9/75.1; tickets
#: 37.7/69.0/74.9/80.1, 44.9/69.4/74.8/79.4, 48.4/68.8/74.0/78.0 — 10 stays.
TEXT_STEP = 10.0
_TEXT_NORM = math.sqrt(TEXT_STEP / LEARNING_RATE)


def _logistic_regression() -> Any:
    # One-vs-rest handles any number of classes and classes that first appear mid-stream.
    return multiclass.OneVsRestClassifier(
        linear_model.LogisticRegression(optimizer=optim.SGD(LEARNING_RATE), intercept_lr=LEARNING_RATE)
    )


def _linear_regression() -> Any:
    return linear_model.LinearRegression(optimizer=optim.SGD(LEARNING_RATE), intercept_lr=LEARNING_RATE)


models.register("logistic_regression")(
    # For regression the same name is a linear model.
    # Text is scaled for classification only: a step of 10 on the squared loss diverges.
    lambda: ModelSpec(build=_per_task(_logistic_regression, _linear_regression), scaled=True,
                      text_norm={"classification": _TEXT_NORM})
)
models.register("softmax_regression")(
    lambda: ModelSpec(build=_per_task(linear_model.SoftmaxRegression, None), scaled=True)
)
models.register("linear_regression")(
    lambda: ModelSpec(build=_per_task(lambda: None, _linear_regression), scaled=True)
)
models.register("hoeffding_tree")(
    lambda: ModelSpec(
        build=_per_task(tree.HoeffdingTreeClassifier, tree.HoeffdingTreeRegressor), scaled=False
    )
)
models.register("naive_bayes")(
    lambda: ModelSpec(build=_per_task(naive_bayes.GaussianNB, None), scaled=False)
)

def _check_river(model: Any, task: Task, what: str) -> Any:
    """``model`` if it has what the learner calls for ``task``; otherwise a ParameterError naming what is missing."""
    needed = ("learn_one", "predict_proba_one") if task == "classification" else ("learn_one", "predict_one")
    missing = [m for m in needed if not callable(getattr(model, m, None))]
    if not missing and task == "regression" and isinstance(model, river_base.Classifier):
        raise ParameterError("model", f"{what} is a classifier, and the task is regression")
    if missing:
        raise ParameterError(
            "model", f"{what} is not a River {'classifier' if task == 'classification' else 'regressor'}: "
            f"it has no {' or '.join(missing)} (any River estimator works, e.g. river.tree.HoeffdingTreeClassifier())"
        )
    return model


def text_norm(model: str | Any, task: Task) -> float:
    """The L2 norm of each text field's TF-IDF vector for ``model`` on ``task``.

    The registered ``logistic_regression`` classifier wants its text at
    ``sqrt(TEXT_STEP / LEARNING_RATE)`` (its step on text, see
    :data:`TEXT_STEP`); every other model, factory or instance gets River's
    unit norm.

    >>> round(text_norm("logistic_regression", "classification"), 2), text_norm("logistic_regression", "regression")
    (18.26, 1.0)
    >>> text_norm("hoeffding_tree", "classification")
    1.0
    """
    if not isinstance(model, str) or ":" in model or model not in models.names():
        return 1.0
    return models.create(model).text_norm.get(task, 1.0)


def build_model(model: str | Any, task: Task) -> tuple[Any, bool]:
    """The model for ``task`` and whether the learner should standardise its inputs.

    ``model`` is a registered name, ``"module:factory"`` (a callable returning a
    River estimator; its inputs are not standardised) or a River estimator
    instance, used as given. Anything else raises :class:`ParameterError`.

    >>> m, scaled = build_model("hoeffding_tree", "classification")
    >>> type(m).__name__, scaled
    ('HoeffdingTreeClassifier', False)
    >>> build_model(object(), "classification")
    Traceback (most recent call last):
    ...
    streamal.core.errors.ParameterError: model: object is not a River classifier: it has no learn_one or predict_proba_one (any River estimator works, e.g. river.tree.HoeffdingTreeClassifier())

    """
    if not isinstance(model, str):
        return _check_river(model, task, type(model).__name__), False
    if ":" in model:
        module_name, _, attr = model.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ParameterError("model", f"cannot import model factory {model!r}: {exc}") from None
        if not callable(factory):
            raise ParameterError("model", f"{model!r} is not callable: name a function or class that returns a River model")
        try:
            built = factory()
        except Exception as exc:  # the user's factory: say it failed, in one line
            raise ParameterError("model", f"{model!r}() failed: {type(exc).__name__}: {exc}") from None
        return _check_river(built, task, f"{model!r}() returned {type(built).__name__}, which"), False
    try:
        spec = models.create(model)
        built = spec.build(task)
    except ValueError as exc:
        raise ParameterError("model", f"{model!r} {exc}" if not str(exc).startswith("unknown") else str(exc)) from None
    if built is None:
        raise ParameterError("model", f"{model!r} does regression only, and the task is classification")
    return built, spec.scaled
