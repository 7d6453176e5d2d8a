"""The active learner: a model, a query strategy and a budget manager."""

from __future__ import annotations

import copy
import inspect
import math
import numbers
import random
from collections import deque
from dataclasses import dataclass
from functools import partial
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

from river import compose, drift

from streamal.core import batch
from streamal.core.budget import BudgetManager, budget_managers
from streamal.core.errors import ParameterError
from streamal.core.features import Featurizer
from streamal.core.models import Task, build_model, text_norm
from streamal.core.pool import diverse_top_k
from streamal.core.pseudo import PseudoLabels
from streamal.core.registry import Registry
from streamal.core.strategies import Strategy, strategies
from streamal.core.strategies.base import batch_scorer

#: Defaults chosen by ``benchmarks/label_efficiency.py`` (see the README).
DEFAULT_MODEL = "logistic_regression"
DEFAULT_STRATEGY = "margin"
#: Per task: margin needs class probabilities; a regressor is scored by its
#: distance to the labeled set in input space (greedy sampling, ``gsx``):
#: ``python -m benchmarks.regression`` put committee disagreement
#: (``variance_reduction``) 12-14 % behind random sampling on River's
#: regression datasets, gsx with the budget below 1-3 % ahead.
DEFAULT_STRATEGIES: dict[str, str] = {"classification": DEFAULT_STRATEGY, "regression": "gsx"}
DEFAULT_BUDGET_MANAGER = "quantile"
#: Per task, the budget manager and its parameters. Regression: half the
#: budget to random picks, which spread labels over time as a time series
#: needs, the other half to the top scores of recent instances (``quantile``:
#: ``variable_uncertainty`` lags behind scores that fall as the labeled set
#: fills), and the cold-start advance allowed but not sought
#: (``eager_start=False``: spent at once, it put chick_weights, 578
#: instances, 40 % over a 5 % budget, and the mean ratio over 1.0 at 10 and
#: 20 %). Mean MAE ÷ random sampling's 0.990 / 0.970 / 0.992 at 5 / 10 /
#: 20 %, no dataset worse than 1.03 (``benchmarks/regression.py``).
DEFAULT_BUDGET_MANAGERS: dict[str, tuple[str, dict[str, Any]]] = {
    "classification": (DEFAULT_BUDGET_MANAGER, {}),
    "regression": ("split", {"random_share": 0.5, "inner": "quantile", "eager_start": False}),
}


def default_budget_manager(task: str) -> str:
    """The budget manager used for ``task`` when none is named, with its parameters.

    >>> default_budget_manager("classification"), default_budget_manager("regression")
    ('quantile', 'split(random_share=0.5, inner=quantile, eager_start=False)')
    """
    try:
        name, extra = DEFAULT_BUDGET_MANAGERS[task]
    except KeyError:
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}") from None
    return f"{name}({', '.join(f'{k}={v}' for k, v in extra.items())})" if extra else name


def default_strategy(task: str) -> str:
    """The query strategy used for ``task`` when none is named.

    >>> default_strategy("classification"), default_strategy("regression")
    ('margin', 'gsx')
    """
    try:
        return DEFAULT_STRATEGIES[task]
    except KeyError:
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}") from None
#: Warm-up of the one-vs-rest logistic regression: until it has learned
#: ``WARMUP_LABELS`` labels, every new label refits it from scratch on all the
#: labels so far, standardised with the current feature statistics (the first
#: labels were learned when those statistics rested on a handful of
#: instances), in ``WARMUP_EPOCHS`` passes in arrival order. With 12 labels
#: that is 3 · (1 + … + 12) = 234 ``learn_one`` calls per model (20 labels:
#: 630) and as accurate: over the nine anchor streams and 72 re-seeded or
#: shuffled look-alikes, within 0.13 points of 20 labels at every budget of
#: the label-efficiency benchmark. Cheaper variants (11 labels, refits at
#: only some label counts, 2 passes, 1 pass with a larger step) lost 0.2–1
#: point at 1 or 5 %.
WARMUP_LABELS = 12
WARMUP_EPOCHS = 3
#: Rehearsal on text (the default model, with text features, classification):
#: each label learned also re-learns ``REHEARSAL_LABELS`` labels drawn at
#: random from the last ``REHEARSAL_MEMORY`` (their features as learned). A
#: word's weight moves only when a labeled document holds it, so with scarce
#: labels one pass leaves most words under-learned. Chosen on the held-out
#: Debian sections of ``benchmarks/text_heldout.py`` (two orders) and the three
#: generated ticket streams, never on the anchor stream: accuracy gain in
#: points at 1 / 5 / 10 / 20 %: held-out +8.0 / +1.5 / +0.8 / +0.5 and
#: +3.1 / +1.9 / +1.8 / +1.1, tickets +1.1 / +1.4 / +2.4 / +0.7, +12.5 / +2.5 /
#: +1.1 / +1.1, +12.2 / +0.5 / +2.8 / +1.0 (Debian, checked after: +1.8 /
#: +0.8 / +1.4 / +1.2). On numeric streams re-learning 1 or 3 past labels was
#: neutral to harmful (−1.3 to +0.0 points on the mean of the nine anchor
#: streams: dense standardised features converge in one pass, and a drifting
#: stream's old labels mislead), so it stays off there. Cost: on the Debian
#: stream (11 classes) a label costs 820 µs instead of 356 (learn with its
#: features), +5 % per instance at a 5 % budget and +18 % at 20 %.
REHEARSAL_LABELS = 3
REHEARSAL_MEMORY = 500


_UNKNOWN = object()


def _check_instance(x: Any) -> None:
    """TypeError unless ``x`` is a mapping of feature names to values."""
    if not isinstance(x, Mapping):
        raise TypeError(f"an instance must be a mapping of feature names to values (a dict), got {type(x).__name__}")


def _check_label(y: Any, classification: bool) -> None:
    """A label is a class (not ``None``) or, for regression, a finite number."""
    if y is None:
        raise ValueError("the label is None: learn needs a class (or, for regression, a number)")
    if not classification and (isinstance(y, bool) or not isinstance(y, numbers.Real) or not math.isfinite(y)):
        raise ValueError(f"a regression label must be a finite number, got {y!r}")


@dataclass(frozen=True)
class Tentative:
    """Decisions made on a copy of the budget manager (see :meth:`ActiveLearner.decide_many`)."""

    decisions: list[Decision]
    manager: Any
    base: Any
    base_n: int


class Decision:
    """The label decision for one instance: ``query``, ``score``, ``threshold``, ``prediction``, ``proba``.

    A plain slotted class rather than a frozen dataclass: one is made per
    instance, and a frozen dataclass's ``__init__`` costs three times more.
    ``proba`` may be given as the classes and a row of probabilities, made
    into a dict only when read (a poll's decisions are mostly not asked).
    """

    __slots__ = ("query", "score", "threshold", "prediction", "_proba", "_classes")

    def __init__(
        self,
        query: bool,
        score: float,
        threshold: float,
        prediction: Any,
        proba: Mapping[Hashable, float] | Sequence[float] | None = None,
        classes: Sequence[Hashable] | None = None,
    ) -> None:
        self.query = query
        self.score = score
        self.threshold = threshold
        self.prediction = prediction
        self._proba = proba if proba is not None else {}
        self._classes = classes

    @property
    def proba(self) -> Mapping[Hashable, float]:
        if self._classes is not None:
            self._proba, self._classes = dict(zip(self._classes, self._proba)), None
        return self._proba  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (
            f"Decision(query={self.query}, score={self.score:.4g}, threshold={self.threshold:.4g}, "
            f"prediction={self.prediction!r})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Decision) and all(
            getattr(self, k) == getattr(other, k) for k in ("query", "score", "threshold", "prediction", "proba")
        )


def _create(registry: Registry[Any], spec: Any, parameter: str, **params: Any) -> Any:
    """A component by name (passing only the parameters it accepts) or as given."""
    if not isinstance(spec, str):
        return spec
    try:
        factory = registry.factory(spec)
    except ValueError as exc:
        raise ParameterError(parameter, str(exc)) from None
    accepted = inspect.signature(factory).parameters
    return factory(**{k: v for k, v in params.items() if k in accepted})


def _budget_of(manager: Any, budget: float | None) -> float:
    """The budget to use: ``budget``, or a given manager's own; both given must agree."""
    own = getattr(manager, "budget", None) if not isinstance(manager, str) else None
    if budget is None:
        return own if own is not None else DEFAULT_BUDGET
    if own is not None and abs(own - budget) > 1e-12:
        raise ParameterError(
            "budget_manager",
            f"the given {type(manager).__name__} aims at budget {own!r} but budget={budget!r}: "
            "leave budget out to use the manager's, or make them equal",
        )
    return budget


def _check_pseudo_labels(pseudo_labels: Any, task: str) -> None:
    """ParameterError unless ``pseudo_labels`` is None or a :class:`PseudoLabels` for a classifier."""
    if pseudo_labels is None:
        return
    if not isinstance(pseudo_labels, PseudoLabels):
        raise ParameterError("pseudo_labels", f"must be None or a PseudoLabels rule, got {pseudo_labels!r}")
    if task != "classification":
        raise ParameterError("pseudo_labels", f"are for classification only (a prediction's class probabilities "
                                              f"say how sure it is), not {task}: leave them off")


#: The budget when neither ``budget`` nor a budget-manager instance gives one.
DEFAULT_BUDGET = 0.05


class ActiveLearner:
    """Stream-based active learning around one online River model.

    ``ask(x)`` predicts, scores the instance with the query strategy and lets
    the budget manager decide whether its label is worth asking for; it
    updates the budget manager and label-free statistics (feature scaling,
    density), never the model. ``learn(x, y)`` is the only thing that changes
    the model. ``select(xs, k)`` is the pool-based variant: the k most
    informative, mutually diverse instances of a window.

    The strategy and the budget manager default to the task's
    (:func:`default_strategy`, :func:`default_budget_manager`); the budget to 0.05, or to the budget of a budget-manager instance given in
    place of a name. Every parameter is checked here, and an invalid one
    raises :class:`ParameterError` naming it.

    Cold start: while a classifier has seen fewer than two classes (a
    regressor fewer than two labels) every instance scores 1 and is asked
    whenever the budget guard allows, so labels keep coming (within the
    budget) until the model can tell classes apart; the budget manager's own
    threshold does not learn from these placeholder scores.

    Pseudo-labels (off by default; see :mod:`streamal.core.pseudo`): with
    ``pseudo_labels=PseudoLabels(...)``, :meth:`pseudo_label` says after a
    decision whether an unasked instance is learned with its prediction, and
    ``learn(x, y, pseudo=True)`` learns it; ``n_real`` and ``n_pseudo``
    count the two apart (``n_learned`` is their sum, the model's version).

    >>> from river import datasets
    >>> al = ActiveLearner(budget=0.1, seed=1)
    >>> correct = asked = 0
    >>> for x, y in datasets.Phishing():
    ...     d = al.ask(x)
    ...     correct += d.prediction == y
    ...     if d.query:
    ...         asked += 1
    ...         al.learn(x, y)
    >>> asked, round(correct / 1250, 3)
    (126, 0.895)

    """

    def __init__(
        self,
        model: str | Any = DEFAULT_MODEL,
        strategy: str | Strategy | None = None,
        budget_manager: str | BudgetManager | None = None,
        budget: float | None = None,
        *,
        task: Task = "classification",
        text_features: Iterable[str] = (),
        drift_boost: float = 0.0,
        pseudo_labels: PseudoLabels | None = None,
        seed: int = 0,
    ) -> None:
        if task not in ("classification", "regression"):
            raise ParameterError("task", f"must be 'classification' or 'regression', got {task!r}")
        budget = _budget_of(budget_manager, budget)
        if isinstance(budget, bool) or not (isinstance(budget, (int, float)) and 0.0 < budget <= 1.0):
            raise ParameterError("budget", f"must be a fraction in (0, 1], got {budget!r}")
        if not (isinstance(drift_boost, (int, float)) and 0.0 <= drift_boost <= 1.0):
            raise ParameterError("drift_boost", f"must be in [0, 1], got {drift_boost!r}")
        if isinstance(text_features, str):
            raise ParameterError("text_features", f"must be a list of feature names, got the string {text_features!r}")
        _check_pseudo_labels(pseudo_labels, task)
        self.model = model
        self.strategy = default_strategy(task) if strategy is None else strategy
        self.budget_manager = budget_manager
        self.budget = budget
        self.task = task
        self.text_features = tuple(text_features)
        self.drift_boost = drift_boost
        self.pseudo_labels = pseudo_labels
        self.seed = seed

        self._model, scaled = build_model(model, task)
        self._features = Featurizer(self.text_features, scale=scaled, text_norm=text_norm(model, task))
        self._strategy: Strategy = _create(strategies, self.strategy, "strategy", seed=seed)
        if task not in getattr(self._strategy, "tasks", ()):
            able = ", ".join(n for n in strategies.names() if task in strategies.factory(n).tasks)
            raise ParameterError(
                "strategy", f"{getattr(self._strategy, 'name', self.strategy)!r} does not support {task}; use one of: {able}"
            )
        self._strategy.setup(self._model)
        # Most strategies keep no label-free state: skip the no-op call per instance.
        self._observes = type(self._strategy).observe_one is not Strategy.observe_one
        self._score_many = batch_scorer(self._strategy)
        name, extra = (budget_manager, {}) if budget_manager is not None else DEFAULT_BUDGET_MANAGERS[task]
        self._budget: BudgetManager = _create(budget_managers, name, "budget_manager", budget=budget, seed=seed,
                                              **extra)
        self._classifier = task == "classification"
        self._ovr_logistic = batch.is_ovr_logistic(self._model)
        self._learn_one = (
            partial(batch.ovr_logistic_learn_one, self._model) if batch.has_sgd_logistic_learner(self._model)
            else self._model.learn_one
        )
        # Raw labeled examples kept for the warm-up refits (None: no warm-up).
        self._warmup: list[tuple[Mapping[str, Any], Any]] | None = [] if self._ovr_logistic and scaled else None
        # Recent labeled examples, as learned, for the rehearsal on text (None: no rehearsal).
        self._rehearsal: deque[tuple[dict[str, float], Any]] | None = (
            deque(maxlen=REHEARSAL_MEMORY) if self._warmup is not None and self.text_features and task == "classification"
            else None
        )
        self._rehearsal_rng = random.Random(seed)
        self._classes: set[Hashable] = set()
        #: The last instance ``ask`` decided on and its prediction, for ``learn``.
        self._asked: tuple[Mapping[str, Any], Any] | None = None
        self.n_learned = 0
        self.n_pseudo = 0
        # ADWIN on the prequential 0/1 error of labeled examples (predicted
        # before they are learned): a detection is counted (``drifts``), and
        # with ``drift_boost = f`` the guard grants f · budget · window extra
        # labels to spend soon. Off by default: on the benchmark streams it
        # moved mean accuracy by ≤ 0.13 points while raising the label rate
        # (f = 0.5 at 10 %: 77.66 vs 77.53 %, up to 6 % over budget).
        self._drift = drift.ADWIN()
        self.drifts = 0

    #: Defaults for a learner unpickled from a checkpoint written before pseudo-labels or the rehearsal existed.
    pseudo_labels: PseudoLabels | None = None
    n_pseudo = 0
    _rehearsal = None

    # -- what the service reads and sets ------------------------------------
    @property
    def budget_in_force(self) -> float:
        """The budget the manager aims at now (``budget``, unless :meth:`set_budget` changed it)."""
        return self._budget.budget

    def set_budget(self, budget: float) -> None:
        """Aim at ``budget`` from the next decision on (a restart with a new setting, annotator capacity)."""
        if isinstance(budget, bool) or not (isinstance(budget, (int, float)) and 0.0 < budget <= 1.0):
            raise ParameterError("budget", f"must be a fraction in (0, 1], got {budget!r}")
        if budget != self._budget.budget:
            self._budget.set_budget(budget)

    @property
    def eager_start(self) -> bool:
        """Whether the budget guard's cold-start advance is sought (see :class:`BudgetGuard`)."""
        return self._budget.eager_start

    def end_eager_start(self) -> None:
        """This model has learned before (restored, or rebuilt from a log): stop seeking the cold-start advance."""
        self._budget.end_eager_start()

    def set_pseudo_labels(self, pseudo_labels: PseudoLabels | None) -> None:
        """Use ``pseudo_labels`` (None: off) from the next decision on (a restart with a changed setting)."""
        _check_pseudo_labels(pseudo_labels, self.task)
        self.pseudo_labels = pseudo_labels

    @property
    def n_real(self) -> int:
        """Real labels learned (a person's, or a joined or unsolicited training record): not pseudo-labels."""
        return self.n_learned - self.n_pseudo

    @property
    def classes(self) -> frozenset[Hashable]:
        """The classes learned so far (classification)."""
        return frozenset(self._classes)

    def knows_class(self, y: Hashable) -> bool:
        """Whether ``y`` was learned as a class already."""
        return y in self._classes

    def pipeline(self) -> compose.Pipeline:
        """A copy of the feature step and the River model, as one River pipeline.

        Its ``predict_one`` and ``predict_proba_one`` on a raw instance give
        this learner's; it shares no state with the learner (what
        ``streamal export`` writes).
        """
        features, model = copy.deepcopy((self._features, self._model))
        return compose.Pipeline(features, model)

    # -- prediction ------------------------------------------------------
    def predict_proba_one(self, x: Mapping[str, Any]) -> dict[Hashable, float]:
        """Class probabilities for ``x`` (classification only)."""
        if not self._classifier:
            raise TypeError("predict_proba_one is for classification")
        return self._model.predict_proba_one(self._features.transform_one(x))

    def predict_one(self, x: Mapping[str, Any]) -> Any:
        """The predicted class (or value, for regression); ``None`` before any label."""
        return self._predict(self._features.transform_one(x))[0]

    def _predict(self, z: dict[str, float]) -> tuple[Any, dict[Hashable, float]]:
        if self._classifier:
            if self._ovr_logistic:
                return batch.ovr_logistic_predict_one(self._model, z)
            proba = self._model.predict_proba_one(z)
            return (max(proba, key=proba.__getitem__) if proba else None), proba
        return (self._model.predict_one(z) if self.n_learned else None), {}

    @property
    def cold(self) -> bool:
        """Whether the model cannot yet tell anything apart (see the class docs)."""
        return (len(self._classes) if self._classifier else self.n_learned) < 2

    # -- the label decision ------------------------------------------------
    def _strategy_score(self, z: dict[str, float], proba: Mapping[Hashable, float]) -> float:
        """The strategy's score, 1 when it is not a number in [0, 1]."""
        score = self._strategy.score_one(z, proba)
        return score if 0.0 <= score <= 1.0 else 1.0  # NaN fails both comparisons

    def ask(self, x: Mapping[str, Any]) -> Decision:
        """Decide whether to ask for the label of ``x``; updates the budget manager."""
        try:
            z = self._features.learn_transform(x)
        except AttributeError:
            _check_instance(x)
            raise
        decision = self._decide(z, self._budget)
        self._asked = (x, decision.prediction)
        return decision

    def learn(self, x: Mapping[str, Any], y: Any, *, pseudo: bool = False) -> None:
        """Learn one labeled example (the only thing that changes the model).

        ``pseudo=True``: ``y`` is a pseudo-label (:meth:`pseudo_label`), not a
        person's. It is learned the same way and counted in ``n_pseudo``
        instead of ``n_real``; it does not feed the drift detector (its error
        would be 0 by construction).

        The example also updates the label-free feature statistics: an
        unsolicited label, or a model rebuilt from the training topic, has
        features the learner never saw in ``ask`` (an asked instance counts
        twice, as in the service, where the example comes back from the
        training topic: a negligible tilt at any budget). Right after ``ask``
        of the same instance (the same object) its prediction is reused.
        """
        _check_label(y, self._classifier)
        asked, self._asked = self._asked, None
        prediction = asked[1] if asked is not None and asked[0] is x else _UNKNOWN
        try:
            z = self._features.learn_transform(x)
        except AttributeError:
            _check_instance(x)
            raise
        if self._classifier and not self.cold and not pseudo:
            if prediction is _UNKNOWN:
                prediction = self._predict(z)[0]
            self._drift.update(float(prediction != y))
            if self._drift.drift_detected:
                self.drifts += 1
                if self.drift_boost:
                    guard = self._budget.guard
                    guard.grant(self.drift_boost * guard.budget * guard.window)
        if self._warmup is not None:
            self._refit(x, y)
        else:
            self._learn_one(z, y)
        if self._rehearsal is not None:
            self._rehearse(z, y)
        self._strategy.learn_one(z, y)
        if self._classifier:
            self._classes.add(y)
        self.n_learned += 1
        if pseudo:
            self.n_pseudo += 1

    def pseudo_label(self, x: Mapping[str, Any], decision: Decision, in_flight: int = 0) -> Any:
        """The pseudo-label of ``x`` after its ``decision`` (its predicted class), or None; changes nothing.

        Decide, then update: this only decides, with the rule given as
        ``pseudo_labels`` (None, the default: always None); the caller learns
        the result with ``learn(x, label, pseudo=True)`` (the service: once it
        is read back from the training topic). Never for an asked instance,
        nor while the model knows fewer than two classes. ``in_flight``:
        pseudo-labels decided but not learned yet, counted against the cap.
        ``x`` is the instance decided on (the default rule reads only the
        decision's probabilities).
        """
        rule = self.pseudo_labels
        if rule is None or decision.query or decision.prediction is None or self.cold:
            return None
        return decision.prediction if rule.allows(decision.proba, self.n_real, self.n_pseudo + in_flight) else None

    def _rehearse(self, z: dict[str, float], y: Any) -> None:
        """Re-learn ``REHEARSAL_LABELS`` recent labels at random (after the warm-up), then remember this one."""
        memory = self._rehearsal
        if memory and self._warmup is None:
            draw, learn_one = self._rehearsal_rng.randrange, self._learn_one
            for _ in range(REHEARSAL_LABELS):
                zi, yi = memory[draw(len(memory))]
                learn_one(zi, yi)
        memory.append((z, y))

    def _refit(self, x: Mapping[str, Any], y: Any) -> None:
        """The warm-up: refit the model on every label so far (see ``WARMUP_LABELS``)."""
        warmup = self._warmup
        warmup.append((dict(x), y))
        examples = [(self._features.transform_one(xi), yi) for xi, yi in warmup]
        self._model.classifiers.clear()  # in place: strategies may hold the model
        for _ in range(WARMUP_EPOCHS):
            for zi, yi in examples:
                self._learn_one(zi, yi)
        if len(warmup) >= WARMUP_LABELS:
            self._warmup = None

    def ask_many(self, xs: Sequence[Mapping[str, Any]]) -> list[Decision]:
        """``ask`` for each of ``xs`` in order, as if no label arrived in between.

        Probabilities and uncertainty scores are computed for the whole batch
        with numpy when the model and strategy allow (see
        :mod:`streamal.core.batch` and :func:`batch_scorer`); feature
        statistics and the budget manager still walk the instances in order,
        so the decisions are those of one-by-one asking.
        """
        return self._walk(xs, self._budget)

    def decide_many(self, xs: Sequence[Mapping[str, Any]]) -> Tentative:
        """The decisions ``ask_many(xs)`` would make, leaving the budget manager as it is.

        Decide, then update: the budget manager walks ``xs`` on a copy, and
        :meth:`confirm` makes that copy the manager in force — in the service,
        once the broker acknowledged the label requests. Decisions never
        confirmed (a failed flush) leave no trace in the budget. Label-free
        statistics (feature scaling) learn from ``xs`` either way.

        >>> al = ActiveLearner(budget=0.5)
        >>> t = al.decide_many([{"x": 1.0}, {"x": 2.0}])
        >>> al.label_rate, [d.query for d in t.decisions]
        (0.0, [True, True])
        >>> al.confirm(t)
        >>> al.label_rate
        1.0

        """
        manager = copy.deepcopy(self._budget)
        return Tentative(self._walk(xs, manager), manager, self._budget, self._budget.guard.n)

    def confirm(self, tentative: Tentative) -> None:
        """Apply decisions from :meth:`decide_many`; refused if the budget moved since they were made."""
        if tentative.base is not self._budget or tentative.base_n != self._budget.guard.n:
            raise RuntimeError("these decisions were made on a budget state that has moved since: decide again")
        self._budget = tentative.manager

    def _walk(self, xs: Sequence[Mapping[str, Any]], budget: BudgetManager) -> list[Decision]:
        """Decide on ``xs`` in order, updating ``budget``: scores for the whole batch where vectorised."""
        for x in xs:
            if x.__class__ is not dict:
                _check_instance(x)
        scorer = self._score_many
        if not xs or not self._classifier or scorer is None or self._observes or not self._ovr_logistic:
            out = []
            for x in xs:
                decision = self._decide(self._features.learn_transform(x), budget)
                out.append(decision)
                self._asked = (x, decision.prediction)
            return out
        matrix = self._features.learn_transform_many(xs)
        if matrix is None:  # not all plain numbers under the same names
            matrix = batch.as_matrix([self._features.learn_transform(x) for x in xs])
        classes, p = batch.ovr_logistic_proba(self._model, *matrix)  # type: ignore[misc]
        n = len(xs)
        if classes:
            scores = scorer(p).tolist()
            predictions = [classes[i] for i in p.argmax(axis=1).tolist()]
            rows: list[Any] = p.tolist()
        else:  # no label yet
            scores, predictions, rows, classes = [1.0] * n, [None] * n, [None] * n, None
        self._asked = (xs[-1], predictions[-1])  # as ``ask`` leaves it
        out = []
        if self.cold:
            guard = budget.guard
            for i in range(n):
                threshold = budget.threshold
                out.append(Decision(guard.ask(), 1.0, threshold, predictions[i], rows[i], classes))
            return out
        for i, score in enumerate(scores):
            threshold = budget.threshold
            out.append(Decision(budget.ask(score), score, threshold, predictions[i], rows[i], classes))
        return out

    def _decide(self, z: dict[str, float], budget: BudgetManager) -> Decision:
        if self._ovr_logistic:  # the default model, without two calls per instance
            prediction, proba = batch.ovr_logistic_predict_one(self._model, z)
        else:
            prediction, proba = self._predict(z)
        threshold = budget.threshold
        if self.cold:
            score, query = 1.0, budget.guard.ask()
        else:
            score = self._strategy_score(z, proba)
            query = budget.ask(score)
        if self._observes:
            self._strategy.observe_one(z)
        return Decision(query, score, threshold, prediction, proba)

    # -- pool mode ---------------------------------------------------------
    def select(self, xs: Sequence[Mapping[str, Any]], k: int) -> list[int]:
        """Indices of the k most informative instances of ``xs``, avoiding near-duplicates.

        Every instance updates the label-free statistics, as ``ask`` would; the
        budget manager is not involved (k is the budget of the window).
        """
        if k <= 0 or not xs:
            for x in xs:
                self._strategy.observe_one(self._features.learn_transform(x))
            return []
        zs, scores = [], []
        for x in xs:
            z = self._features.learn_transform(x)
            scores.append(1.0 if self.cold else self._strategy_score(z, self._predict(z)[1]))
            self._strategy.observe_one(z)
            zs.append(z)
        return diverse_top_k(zs, scores, k)

    @property
    def threshold(self) -> float:
        return self._budget.threshold

    @property
    def label_rate(self) -> float:
        """Realised label rate of ``ask`` so far."""
        return self._budget.rate

    def __repr__(self) -> str:
        pseudo = f", pseudo_labels={self.pseudo_labels!r}" if self.pseudo_labels is not None else ""
        return (
            f"ActiveLearner(model={self.model!r}, strategy={self.strategy!r}, "
            f"budget_manager={self.budget_manager!r}, budget={self.budget!r}, task={self.task!r}{pseudo}, "
            f"seed={self.seed!r})"
        )
