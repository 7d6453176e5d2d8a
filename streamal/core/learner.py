"""The active learner: a model, a query strategy and a budget manager."""

from __future__ import annotations

import inspect
from functools import partial
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

from river import drift

from streamal.core import batch
from streamal.core.budget import BudgetManager, budget_managers
from streamal.core.features import Featurizer
from streamal.core.models import Task, build_model
from streamal.core.pool import diverse_top_k
from streamal.core.registry import Registry
from streamal.core.strategies import Strategy, strategies

#: Defaults chosen by ``benchmarks/label_efficiency.py`` (see the README).
DEFAULT_MODEL = "logistic_regression"
DEFAULT_STRATEGY = "margin"
#: Per task: margin needs class probabilities; a regressor is scored by the
#: disagreement of a committee (variance reduction).
DEFAULT_STRATEGIES: dict[str, str] = {"classification": DEFAULT_STRATEGY, "regression": "variance_reduction"}
DEFAULT_BUDGET_MANAGER = "variable_uncertainty"


def default_strategy(task: str) -> str:
    """The query strategy used for ``task`` when none is named.

    >>> default_strategy("classification"), default_strategy("regression")
    ('margin', 'variance_reduction')
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


_UNKNOWN = object()


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


def _create(registry: Registry[Any], spec: Any, **params: Any) -> Any:
    """A component by name (passing only the parameters it accepts) or as given."""
    if not isinstance(spec, str):
        return spec
    if spec not in registry:
        registry.create(spec)  # raises the "unknown …; choose one of" error
    factory = registry._factories[spec]
    accepted = inspect.signature(factory).parameters
    return registry.create(spec, **{k: v for k, v in params.items() if k in accepted})


class ActiveLearner:
    """Stream-based active learning around one online River model.

    ``ask(x)`` predicts, scores the instance with the query strategy and lets
    the budget manager decide whether its label is worth asking for; it
    updates the budget manager and label-free statistics (feature scaling,
    density), never the model. ``learn(x, y)`` is the only thing that changes
    the model. ``select(xs, k)`` is the pool-based variant: the k most
    informative, mutually diverse instances of a window.

    Cold start: while a classifier has seen fewer than two classes (a
    regressor fewer than two labels) every instance scores 1 and is asked
    whenever the budget guard allows, so labels keep coming (within the
    budget) until the model can tell classes apart; the budget manager's own
    threshold does not learn from these placeholder scores.

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
    (125, 0.889)

    """

    def __init__(
        self,
        model: str | Any = DEFAULT_MODEL,
        strategy: str | Strategy = DEFAULT_STRATEGY,
        budget_manager: str | BudgetManager = DEFAULT_BUDGET_MANAGER,
        budget: float = 0.05,
        *,
        task: Task = "classification",
        text_features: Iterable[str] = (),
        drift_boost: float = 0.0,
        seed: int = 0,
    ) -> None:
        if not (isinstance(budget, (int, float)) and 0.0 < budget <= 1.0):
            raise ValueError(f"budget must be in (0, 1], got {budget!r}")
        if task not in ("classification", "regression"):
            raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
        self.model = model
        self.strategy = strategy
        self.budget_manager = budget_manager
        self.budget = budget
        self.task = task
        self.text_features = tuple(text_features)
        self.drift_boost = drift_boost
        self.seed = seed

        self._model, scaled = build_model(model, task)
        self._features = Featurizer(self.text_features, scale=scaled)
        self._strategy: Strategy = _create(strategies, strategy, seed=seed)
        if task not in self._strategy.tasks:
            raise ValueError(
                f"strategy {getattr(self._strategy, 'name', strategy)!r} does not support {task}; "
                f"use one of: {', '.join(n for n in strategies.names() if task in strategies._factories[n].tasks)}"
            )
        self._strategy.setup(self._model)
        # Most strategies keep no label-free state: skip the no-op call per instance.
        self._observes = type(self._strategy).observe_one is not Strategy.observe_one
        self._budget: BudgetManager = _create(budget_managers, budget_manager, budget=budget, seed=seed)
        self._classifier = task == "classification"
        self._ovr_logistic = batch.is_ovr_logistic(self._model)
        self._learn_one = (
            partial(batch.ovr_logistic_learn_one, self._model) if batch.has_sgd_logistic_learner(self._model)
            else self._model.learn_one
        )
        # Raw labeled examples kept for the warm-up refits (None: no warm-up).
        self._warmup: list[tuple[Mapping[str, Any], Any]] | None = [] if self._ovr_logistic and scaled else None
        self._classes: set[Hashable] = set()
        #: The last instance ``ask`` decided on and its prediction, for ``learn``.
        self._asked: tuple[Mapping[str, Any], Any] | None = None
        self.n_learned = 0
        # ADWIN on the prequential 0/1 error of labeled examples (predicted
        # before they are learned): a detection is counted (``drifts``), and
        # with ``drift_boost = f`` the guard grants f · budget · window extra
        # labels to spend soon. Off by default: on the benchmark streams it
        # moved mean accuracy by ≤ 0.13 points while raising the label rate
        # (f = 0.5 at 10 %: 77.66 vs 77.53 %, up to 6 % over budget).
        self._drift = drift.ADWIN()
        self.drifts = 0

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
        z = self._features.learn_transform(x)
        decision = self._decide(z)
        self._asked = (x, decision.prediction)
        return decision

    def learn(self, x: Mapping[str, Any], y: Any) -> None:
        """Learn one labeled example (the only thing that changes the model).

        The example also updates the label-free feature statistics: an
        unsolicited label, or a model rebuilt from the training topic, has
        features the learner never saw in ``ask`` (an asked instance counts
        twice, as in the service, where the example comes back from the
        training topic: a negligible tilt at any budget). Right after ``ask``
        of the same instance (the same object) its prediction is reused.
        """
        asked, self._asked = self._asked, None
        prediction = asked[1] if asked is not None and asked[0] is x else _UNKNOWN
        z = self._features.learn_transform(x)
        if self._classifier and not self.cold:
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
        self._strategy.learn_one(z, y)
        if self._classifier:
            self._classes.add(y)
        self.n_learned += 1

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
        :mod:`streamal.core.batch`); feature statistics and the budget manager
        still walk the instances in order, so the decisions are those of
        one-by-one asking.
        """
        scorer = batch.SCORERS.get(getattr(self._strategy, "name", ""))
        if not xs or not self._classifier or scorer is None or self._observes or not self._ovr_logistic:
            return [self.ask(x) for x in xs]
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
        budget = self._budget
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

    def _decide(self, z: dict[str, float]) -> Decision:
        if self._ovr_logistic:  # the default model, without two calls per instance
            prediction, proba = batch.ovr_logistic_predict_one(self._model, z)
        else:
            prediction, proba = self._predict(z)
        budget = self._budget
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
        return (
            f"ActiveLearner(model={self.model!r}, strategy={self.strategy!r}, "
            f"budget_manager={self.budget_manager!r}, budget={self.budget!r}, task={self.task!r}, seed={self.seed!r})"
        )
