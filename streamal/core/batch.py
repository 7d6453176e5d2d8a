"""Scoring one poll of instances at once (DESIGN 5.2).

Between two reads of the training topic the model does not change, so the
instances of one poll can be predicted and scored together with numpy; only
the label-free statistics and the budget manager walk them in order. The
result is the decisions one-by-one asking gives (up to floating-point
rounding of the probabilities, ~1e-16).

Vectorised: one-vs-rest logistic regression (the default model) and the
uncertainty strategies; any other model or strategy is asked one by one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from river import linear_model, multiclass, optim, utils


def is_ovr_logistic(model: Any) -> bool:
    """Whether ``model`` is River's one-vs-rest logistic regression (the default model)."""
    return isinstance(model, multiclass.OneVsRestClassifier) and isinstance(
        model.classifier, linear_model.LogisticRegression
    )


def ovr_logistic_predict_one(model: Any, z: Mapping[str, float]) -> tuple[Hashable | None, dict[Hashable, float]]:
    """``model.predict_proba_one(z)`` for a one-vs-rest logistic regression, computed directly.

    The same operations in the same order as River (``weights.dot(z) +
    intercept``, its clamped sigmoid, normalisation by the sum), so the same
    floats, without the two dictionaries per class River's wrappers build.
    Returns the predicted class too (the first most probable, as ``max`` picks).
    """
    proba: dict[Hashable, float] = {}
    total = 0.0
    best, best_p = None, -1.0
    for c, clf in model.classifiers.items():
        logit = clf._weights.dot(z) + clf.intercept
        p = 0.0 if logit < -30 else 1.0 if logit > 30 else 1.0 / (1.0 + math.exp(-logit))
        proba[c] = p
        total += p
        if p > best_p:
            best, best_p = c, p
    if total:
        for c in proba:  # normalised in place: one dict per instance
            proba[c] /= total
        return best, proba
    return best, {c: 1.0 / len(proba) for c in proba}


def has_sgd_logistic_learner(model: Any) -> bool:
    """Whether ``model`` is a one-vs-rest logistic regression that :func:`ovr_logistic_learn_one` can train:
    plain SGD, no L1 or L2 penalty (streamal's ``logistic_regression``)."""
    if not is_ovr_logistic(model):
        return False
    clf = model.classifier  # the template every class's classifier starts as: untrained
    return (
        type(clf.optimizer) is optim.SGD and clf.l1 == 0.0 and clf.l2 == 0.0
        and clf.optimizer.n_iterations == 0 and not clf._weights and clf.intercept == clf.intercept_init
    )


def ovr_logistic_learn_one(model: Any, z: Mapping[str, float], y: Hashable) -> None:
    """``model.learn_one(z, y)`` for a one-vs-rest SGD logistic regression, done directly.

    River's steps for each class, in its order and with its own vector
    operations (``dot``, ``from_scaled``, ``isub_scaled``), so the weights and
    intercepts come out the same to the bit, without the learn-mode context,
    the optimizer's type dispatch and the calls around them (a 10-class
    label: 27 µs instead of 41). Only for models
    :func:`has_sgd_logistic_learner` accepts.
    """
    classifiers = model.classifiers
    if y not in classifiers:  # a new class: a copy of the untrained template (River clones it: 6× slower)
        classifiers[y] = copy.deepcopy(model.classifier)
    from_scaled = utils.VectorDict.from_scaled
    for label, clf in classifiers.items():
        weights, optimizer, clip = clf._weights, clf.optimizer, clf.clip_gradient
        gradient = clf.loss.gradient(y_true=y == label, y_pred=weights.dot(z) + clf.intercept)
        gradient = float(-clip if gradient < -clip else clip if gradient > clip else gradient)
        clf.intercept -= clf.intercept_lr.get(optimizer.n_iterations) * gradient
        weights.isub_scaled(from_scaled(z, gradient), optimizer.learning_rate)
        optimizer.n_iterations += 1


def ovr_logistic_proba(
    model: Any, names: Sequence[str], x: np.ndarray
) -> tuple[list[Hashable], np.ndarray] | None:
    """Class probabilities of every row of ``x`` (columns ``names``), as River's one-vs-rest logistic regression gives them.

    Each class's sigmoid (0 below −30 and 1 above 30, as River clamps),
    normalised to sum to one (uniform when all are 0). A feature the model
    has no weight for contributes nothing; one the rows lack is 0. Before
    any label: no classes and an empty matrix.
    """
    if not is_ovr_logistic(model):
        return None
    classes = list(model.classifiers)
    if not classes:
        return classes, np.zeros((len(x), 0))
    weights = np.array([[clf._weights.get(n, 0.0) for clf in model.classifiers.values()] for n in names])
    intercepts = np.array([clf.intercept for clf in model.classifiers.values()], dtype=float)
    logits = x @ weights.reshape(len(names), len(classes)) + intercepts
    with np.errstate(over="ignore"):
        p = 1.0 / (1.0 + np.exp(-logits))
    p[logits < -30.0] = 0.0
    p[logits > 30.0] = 1.0
    total = p.sum(axis=1, keepdims=True)
    empty = total[:, 0] == 0.0
    p[~empty] /= total[~empty]
    p[empty] = 1.0 / len(classes)
    return classes, p


def as_matrix(zs: Sequence[Mapping[str, float]]) -> tuple[list[str], np.ndarray]:
    """Feature dicts as one matrix: the names they use, and a row each (0 where a name is absent)."""
    names = list(dict.fromkeys(k for z in zs for k in z))
    return names, np.array([[z.get(n, 0.0) for n in names] for z in zs], dtype=float).reshape(len(zs), len(names))
