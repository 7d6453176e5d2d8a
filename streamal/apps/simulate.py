"""``streamal simulate``: the whole loop in one process, with a simulated annotator.

Runs the same stream three times with the same model — active learning,
random sampling at the same budget, and full supervision — and reports how
many labels active learning used and what it reached. With a labeling
capacity (``labels_per_hour``) the stream runs on a clock: instances arrive
at ``rate`` per second, a simulated annotator answers after a delay at a
limited speed, and the budget follows :class:`~streamal.core.budget.capacity.Capacity`
as in the service. What a team takes away: the labeled set (:func:`write_labels`),
every decision (:func:`write_trace`), a held-out figure (``holdout``) and the
labels active learning saved (:meth:`Simulation.labels_to_target`). With
``pseudo_labels`` the active run also learns confident unasked instances with
their predictions (:class:`~streamal.core.pseudo.PseudoLabels`, off by
default), counted apart from the real labels (:class:`PseudoLabeling`).
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from streamal.apps.datasets import Dataset
from streamal.core.budget.capacity import Capacity
from streamal.core.errors import ParameterError
from streamal.core.evaluate import Annotator, Hour, Result, holdout, prequential, timed_prequential
from streamal.core.learner import DEFAULT_MODEL, ActiveLearner, default_budget_manager, default_strategy
from streamal.core.pseudo import PseudoLabels

#: A run keeps its budget when its realised label rate is within this share
#: of the budget; past it, active and random sampling are not compared "at
#: the same budget" (the budget guard holds long streams within 5 %).
BUDGET_TOLERANCE = 0.05
#: Requests per hour count as following the capacity within this share of it.
CAPACITY_TOLERANCE = 0.10
#: The clock's slots, seconds: random sampling gets the labels active learning asked in each.
SLOT_S = 60.0
#: "Reaching full supervision" is reaching this share of its accuracy (see :meth:`Simulation.labels_to_target`).
TARGET_SHARE = 0.95
#: ... by the metric over this share of the stream before each trace point (10 of its 100 points).
RECENT_SHARE = 0.10


@dataclass
class SimulationConfig:
    """What to simulate; ``strategy=None`` is the task's default (:func:`~streamal.core.learner.default_strategy`).

    ``labels_per_hour`` puts the stream on a clock (stream mode): instances
    arrive at ``rate`` per second, the annotator answers each request after
    ``answer_delay_s`` at most ``annotator_speed`` labels per hour (None:
    ``labels_per_hour``), and the budget follows the capacity with
    ``budget`` as its ceiling. ``holdout`` is the share of the stream, at
    its end, held out: never asked, never learned, scored by the final
    models. ``pseudo_labels`` (stream mode, classification) lets the active
    run learn confident unasked instances with their predictions, by the
    rule ``PseudoLabels(pseudo_min_proba, pseudo_warmup, pseudo_per_label)``;
    random sampling and full supervision run without.
    """

    model: str = DEFAULT_MODEL
    strategy: str | None = None
    #: None: the task's (:func:`~streamal.core.learner.default_budget_manager`).
    budget_manager: str | None = None
    budget: float = 0.05
    mode: str = "stream"
    pool_size: int = 1000
    seed: int = 0
    text_features: tuple[str, ...] = ()
    labels_per_hour: float | None = None
    rate: float = 10.0
    answer_delay_s: float = 60.0
    annotator_speed: float | None = None
    holdout: float | None = None
    pseudo_labels: bool = False
    pseudo_min_proba: float = 0.99
    pseudo_warmup: int = 20
    pseudo_per_label: float = 1.0

    @property
    def timed(self) -> bool:
        return self.labels_per_hour is not None

    @property
    def annotator(self) -> Annotator:
        return Annotator(self.answer_delay_s, self.annotator_speed or self.labels_per_hour)


def budget_kept(result: Result, budget: float) -> bool:
    """Whether ``result``'s realised label rate is within :data:`BUDGET_TOLERANCE` of ``budget``.

    >>> budget_kept(Result(n=1000, labels=104), 0.1), budget_kept(Result(n=1000, labels=350), 0.1)
    (True, False)
    """
    return abs(result.label_rate - budget) <= BUDGET_TOLERANCE * budget


def recent_metric(result: Result, span: int) -> Iterator[tuple[int, int, float]]:
    """``(n, labels, metric over the last ≥ span instances)`` at each trace point once ``span`` instances are in.

    Built from the trace's window metrics (each over the instances since
    the previous point), the fewest windows that cover ``span``.

    >>> from streamal.core.evaluate import TracePoint
    >>> r = Result(n=40, labels=4, trace=[TracePoint(10 * k, 0.0, 0.1, k / 4) for k in range(1, 5)])
    >>> list(recent_metric(r, 20))
    [(20, 2, 0.375), (30, 3, 0.625), (40, 4, 0.875)]
    """
    windows: deque[tuple[int, float]] = deque()
    covered, total, before = 0, 0.0, 0
    for p in result.trace:
        size = p.n - before
        before = p.n
        windows.append((size, p.window_metric * size))
        covered += size
        total += p.window_metric * size
        while covered - windows[0][0] >= span:
            size0, total0 = windows.popleft()
            covered -= size0
            total -= total0
        if covered >= span:
            yield p.n, round(p.label_rate * p.n), total / covered


class Target(NamedTuple):
    """When each run first reached ``target``; see :meth:`Simulation.labels_to_target`."""

    target: float
    #: Per run (``"active"``, ``"random"``, ``"full"``): ``(labels, instances)`` asked and seen by then, or None.
    reached: dict[str, tuple[int, int] | None]
    #: The instances seen at the first check (a run reaching the target there may have needed fewer labels).
    first_check: int
    #: Whether active and random sampling ran at equal budgets, so their label counts compare.
    comparable: bool

    def labels(self, run: str) -> int | None:
        hit = self.reached[run]
        return hit[0] if hit else None

    @property
    def saved(self) -> int | None:
        """Labels active learning saved, when both reached the target at equal budgets."""
        active, random_ = self.labels("active"), self.labels("random")
        if not self.comparable or active is None or random_ is None:
            return None
        return random_ - active


@dataclass
class Simulation:
    """The three runs on one stream; ``config.strategy`` is the strategy that ran.

    With a holdout, ``holdout`` maps ``"active"``, ``"random"`` and
    ``"full"`` to their final models' figures on it. ``decisions`` (when
    recorded) holds per instance of the active run ``[score, threshold,
    asked, prediction, asked_at]`` (``asked_at``: instances seen when it was
    asked); ``arrivals`` the clock's arrival times.
    """

    dataset: str
    task: str
    config: SimulationConfig
    active: Result
    random: Result
    full: Result
    holdout: dict[str, Result] | None = None
    decisions: list[list[Any]] | None = None
    arrivals: Sequence[float] | None = None
    #: Pseudo-labels the active run learned, and how many were not the truth (None: the option is off).
    pseudo: int | None = None
    pseudo_wrong: int | None = None

    @property
    def budget_kept(self) -> bool:
        """Whether active learning and random sampling ran at equal budgets.

        At a fixed budget: both within :data:`BUDGET_TOLERANCE` of it (see
        :func:`budget_kept`). On a clock: random sampling asks as many labels
        as active learning in every minute, so they spent the same.
        """
        if self.config.timed:
            return self.active.labels == self.random.labels
        return budget_kept(self.active, self.config.budget) and budget_kept(self.random, self.config.budget)

    def labels_to_target(self) -> Target:
        """The labels each run spent before reaching :data:`TARGET_SHARE` of full supervision's accuracy.

        The target is 95 % of full supervision's prequential accuracy over
        the whole stream (for regression: an MAE at most full supervision's
        / 0.95). A run reaches it at the first trace point (one every 1 % of
        the stream) where its accuracy over the last tenth of the stream
        (:data:`RECENT_SHARE`, :func:`recent_metric`) is at least the target;
        its labels are those asked by then. None: it never did.
        """
        regression = self.task == "regression"
        full = self.full.mae if regression else self.full.accuracy
        target = full / TARGET_SHARE if regression else TARGET_SHARE * full
        span = max(1, math.ceil(RECENT_SHARE * self.active.n))

        def reached(res: Result) -> tuple[int, int] | None:
            for n, labels, metric in recent_metric(res, span):
                if (metric <= target) if regression else (metric >= target):
                    return labels, n
            return None

        first = next(recent_metric(self.active, span), (0,))[0]
        runs = {"active": self.active, "random": self.random, "full": self.full}
        return Target(target, {name: reached(res) for name, res in runs.items()}, first, self.budget_kept)

    def hours(self) -> list[Hour]:
        """The active run's requests, backlog and budget per hour of the clock (empty without one)."""
        return self.active.timeline.hours() if self.active.timeline else []

    def capacity_kept(self) -> bool | None:
        """Whether every full hour after the first asked within :data:`CAPACITY_TOLERANCE` of the capacity.

        None without a clock or with fewer than two full hours.
        """
        warm = [h for h in self.hours()[1:] if h.seconds >= 3600.0 - 1e-6]
        if not self.config.timed or not warm:
            return None
        return all(abs(h.requests / self.config.labels_per_hour - 1) <= CAPACITY_TOLERANCE for h in warm)

    def ceiling_share(self) -> float:
        """The share of the capacity updates whose budget was the ceiling (``budget``)."""
        tl = self.active.timeline
        return tl.at_ceiling / tl.updates if tl and tl.updates else 0.0

    def report(self) -> dict[str, Any]:
        """The JSON report (``--report-json``)."""
        metric = "mae" if self.task == "regression" else "accuracy"
        c = self.config
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "task": self.task,
            "n": self.active.n,
            "labels": self.active.labels,
            "label_rate": self.active.label_rate,
            "budget": c.budget,
            "budget_kept": self.budget_kept,
            "accuracy": self.active.accuracy,
            "random_accuracy": self.random.accuracy,
            "random_labels": self.random.labels,
            "random_label_rate": self.random.label_rate,
            "random_baseline": ("the same number of labels as active learning in every minute of the clock"
                                if c.timed else "random scores under the same budget manager and budget"),
            "full_accuracy": self.full.accuracy,
            "model": c.model,
            "strategy": c.strategy,
            "budget_manager": c.budget_manager or default_budget_manager(self.task),
            "mode": c.mode,
            "seed": c.seed,
        }
        if metric == "mae":
            out |= {"mae": self.active.mae, "random_mae": self.random.mae, "full_mae": self.full.mae}
        else:  # the mean per-class recall: what counts when classes are imbalanced
            out |= {"balanced_accuracy": self.active.balanced_accuracy,
                    "random_balanced_accuracy": self.random.balanced_accuracy,
                    "full_balanced_accuracy": self.full.balanced_accuracy}
        if self.pseudo is not None:  # never in "labels" or "label_rate": those are the real labels
            out["pseudo_labels"] = {
                "labels": self.pseudo, "wrong": self.pseudo_wrong,
                "per_real_label": self.pseudo / self.active.labels if self.active.labels else 0.0,
                "min_proba": c.pseudo_min_proba, "warmup": c.pseudo_warmup, "per_label": c.pseudo_per_label,
            }
        if self.holdout is not None:
            out["holdout_n"] = self.holdout["active"].n
            for name, prefix in (("active", ""), ("random", "random_"), ("full", "full_")):
                res = self.holdout[name]
                if metric == "mae":
                    out[f"{prefix}holdout_mae"] = res.mae
                else:
                    out[f"{prefix}holdout_accuracy"] = res.accuracy
                    out[f"{prefix}holdout_balanced_accuracy"] = res.balanced_accuracy
        t = self.labels_to_target()
        out["labels_to_target"] = {
            "definition": f"labels asked before the {metric} over the last {RECENT_SHARE:.0%} of the stream first "
                          f"reached {TARGET_SHARE:.0%} of full supervision's prequential {metric}"
                          + (" (an MAE at most full supervision's / 0.95)" if metric == "mae" else ""),
            "target": t.target, "first_check_n": t.first_check,
            **{run: t.labels(run) for run in t.reached},
            "reached_at_n": {run: hit[1] if hit else None for run, hit in t.reached.items()},
            "comparable": t.comparable, "saved": t.saved,
        }
        if c.timed:
            tl = self.active.timeline
            out["clock"] = {
                "labels_per_hour": c.labels_per_hour, "rate": c.rate, "answer_delay_s": c.answer_delay_s,
                "annotator_speed": c.annotator.labels_per_hour, "ceiling": c.budget, "seconds": tl.seconds,
                "backlog_max": tl.backlog_max, "random_backlog_max": self.random.timeline.backlog_max,
                "answered_after_end": tl.answered_after_end, "capacity_kept": self.capacity_kept(),
                "ceiling_share": self.ceiling_share(),
            }
            out["hours"] = [
                {"hour": h.hour, "seconds": h.seconds, "instances": h.instances, "requests": h.requests,
                 "requests_per_hour": h.requests_per_hour, "capacity": c.labels_per_hour,
                 "answers": h.answers, "backlog_max": h.backlog_max, "backlog": h.backlog, "budget": h.budget}
                for h in self.hours()
            ]
        out["trace"] = {
            name: [{"n": p.n, metric: p.metric, "label_rate": p.label_rate} for p in res.trace]
            for name, res in (("active", self.active), ("random", self.random), ("full", self.full))
        }
        return out


class Recorder:
    """A learner passed through, every decision kept (``decisions``, see :class:`Simulation`).

    Stream mode records ``ask``; pool mode a prediction per instance
    (``predict_one``) and the picks of each window (``select``), asked at the
    window's end, with no score or threshold.
    """

    def __init__(self, learner: ActiveLearner) -> None:
        self.learner = learner
        self.decisions: list[list[Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.learner, name)

    def ask(self, x: Mapping[str, Any]) -> Any:
        d = self.learner.ask(x)
        n = len(self.decisions) + 1
        self.decisions.append([d.score, d.threshold, d.query, d.prediction, n if d.query else None])
        return d

    def predict_one(self, x: Mapping[str, Any]) -> Any:
        prediction = self.learner.predict_one(x)
        self.decisions.append([None, None, False, prediction, None])
        return prediction

    def select(self, xs: Sequence[Mapping[str, Any]], k: int) -> list[int]:
        picked = self.learner.select(xs, k)
        n = len(self.decisions)
        for i in picked:
            row = self.decisions[n - len(xs) + i]
            row[2], row[4] = True, n
        return picked


class PseudoLabeling:
    """A learner (or a :class:`Recorder`) passed through, pseudo-labels added after each decision.

    ``ask`` decides, then a confident unasked instance is learned with its
    prediction (``pseudo_label``, then ``learn(x, y, pseudo=True)``): the
    learner's ``n_pseudo`` counts them, apart from the real labels that
    prequential counts. ``wrong`` counts those that were not the truth,
    which :meth:`telling` shows it just before each instance is asked
    (the learner never sees it).
    """

    def __init__(self, learner: ActiveLearner | Recorder) -> None:
        self.learner = learner
        self.wrong = 0
        self.truth: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.learner, name)

    @property
    def pseudo(self) -> int:
        """Pseudo-labels learned."""
        return self.learner.n_pseudo

    def telling(self, stream: Iterable[tuple[Mapping[str, Any], Any]]) -> Iterator[tuple[Mapping[str, Any], Any]]:
        """``stream``, setting ``truth`` to each instance's label just before it is yielded."""
        for x, y in stream:
            self.truth = y
            yield x, y

    def ask(self, x: Mapping[str, Any]) -> Any:
        d = self.learner.ask(x)
        y = self.learner.pseudo_label(x, d)
        if y is not None:
            self.learner.learn(x, y, pseudo=True)
            self.wrong += y != self.truth
        return d


class _Decided(NamedTuple):
    query: bool
    prediction: Any


class AskAt:
    """Asks for exactly the labels of the instances ``picks`` (0-based), predicting with ``learner``.

    ``learner.ask`` still sees every instance (its feature statistics learn
    from all of them, as the active run's do); its own decision is ignored.
    """

    def __init__(self, learner: ActiveLearner, picks: set[int]) -> None:
        self.learner = learner
        self.picks = picks
        self.task = learner.task
        self._i = -1

    def ask(self, x: Mapping[str, Any]) -> _Decided:
        self._i += 1
        return _Decided(self._i in self.picks, self.learner.ask(x).prediction)

    def learn(self, x: Mapping[str, Any], y: Any) -> None:
        self.learner.learn(x, y)

    def predict_one(self, x: Mapping[str, Any]) -> Any:
        return self.learner.predict_one(x)


def same_labels_per_slot(requested: Sequence[int], arrivals: Sequence[float], slot_s: float, seed: int) -> set[int]:
    """Instances drawn at random with as many in every ``slot_s`` of the clock as ``requested`` has there.

    >>> sorted(same_labels_per_slot([0, 1, 5], [0.5 * i for i in range(8)], slot_s=2.0, seed=0))
    [1, 3, 4]
    """
    per_slot = Counter(int(arrivals[i] // slot_s) for i in requested)
    candidates: dict[int, list[int]] = {}
    for i, t in enumerate(arrivals):
        candidates.setdefault(int(t // slot_s), []).append(i)
    rng = random.Random(seed)
    return {i for slot, k in sorted(per_slot.items()) for i in rng.sample(candidates[slot], k)}


@dataclass
class Simulator:
    """A simulation ready to run: its configuration resolved and checked, its three learners built."""

    dataset: Dataset
    config: SimulationConfig
    active: ActiveLearner
    random: ActiveLearner
    full: ActiveLearner

    @property
    def split(self) -> int:
        """The instances the runs learn from; the rest (``config.holdout``) is held out."""
        n = len(self.dataset)
        return n - round(self.config.holdout * n) if self.config.holdout else n

    def run(self, progress: Callable[[int], None] | None = None, record: bool = False) -> Simulation:
        """Active learning, random sampling and full supervision, one after the other.

        ``record=True`` keeps every decision of the active run (for
        :func:`write_trace` and :func:`write_labels`).
        """
        c = self.config
        train = self.dataset.examples[: self.split]
        held = self.dataset.examples[self.split:]
        active_learner: ActiveLearner | Recorder | PseudoLabeling = Recorder(self.active) if record else self.active
        recorder = active_learner
        active_train: Iterable[tuple[Mapping[str, Any], Any]] = train
        pseudo = None
        if self.active.pseudo_labels is not None:
            active_learner = pseudo = PseudoLabeling(active_learner)
            active_train = pseudo.telling(train)
        common: dict[str, Any] = {"expected": len(train), "progress": progress}
        arrivals: list[float] | None = None
        if c.timed:
            arrivals = [i / c.rate for i in range(len(train))]
            clock = {"annotator": c.annotator, "slot_s": SLOT_S, "end_s": len(train) / c.rate, **common}
            capacity = Capacity(c.labels_per_hour, ceiling=c.budget)  # type: ignore[arg-type]
            active = timed_prequential(active_learner, active_train, arrivals, capacity=capacity, **clock)
            picks = same_labels_per_slot([i for i, _, _ in active.timeline.requests], arrivals, SLOT_S, c.seed)
            random_ = timed_prequential(AskAt(self.random, picks), train, arrivals, **clock)
        else:
            active = prequential(active_learner, active_train, mode=c.mode, pool_size=c.pool_size, **common)
            random_ = prequential(self.random, train, mode=c.mode, pool_size=c.pool_size, **common)
        full = prequential(self.full, train, full=True, **common)
        scores = None
        if held:
            scores = {name: holdout(learner, held)
                      for name, learner in (("active", self.active), ("random", self.random), ("full", self.full))}
        decisions = recorder.decisions if isinstance(recorder, Recorder) else None
        return Simulation(self.dataset.name, self.dataset.task, c, active, random_, full, scores, decisions, arrivals,
                          pseudo.pseudo if pseudo else None, pseudo.wrong if pseudo else None)


def prepare(dataset: Dataset, config: SimulationConfig) -> Simulator:
    """Check ``config`` against ``dataset`` and build the learners, before anything runs.

    The strategy defaults to the task's. A bad model, strategy or budget
    manager, a pool window that would not close before the stream ends, a
    clock in pool mode, a holdout that leaves no instance on either
    side, and pseudo-labels in pool mode, for regression or with a bad
    ``pseudo_*`` parameter, raise :class:`~streamal.core.errors.ParameterError`
    (a ``ValueError``) naming the parameter.
    """
    config = replace(config, strategy=config.strategy or default_strategy(dataset.task))
    n = len(dataset)
    if config.holdout is not None:
        held = round(config.holdout * n)
        if not 0.0 < config.holdout < 1.0 or held < 1 or held >= n:
            raise ParameterError("holdout", f"{config.holdout:g} of {n:,} instances holds out {held:,}: "
                                            "leave at least one instance on each side")
        n -= held
    if config.timed:
        if config.mode == "pool":
            raise ParameterError("labels_per_hour", "the clock runs stream mode only: leave out --mode pool")
        Capacity(config.labels_per_hour, ceiling=config.budget)  # type: ignore[arg-type]  # checks it
        try:
            config.annotator  # noqa: B018  # checks the delay and the speed
        except ParameterError as exc:
            raise ParameterError("answer_delay_s" if exc.parameter == "delay_s" else "annotator_speed", exc.detail) from None
        if not 0.0 < config.rate < math.inf:
            raise ParameterError("rate", f"must be a finite number of instances per second > 0, got {config.rate!r}")
    if config.mode == "pool" and config.pool_size >= n:
        raise ParameterError(
            "pool_size",
            f"{config.pool_size:,} is not smaller than the stream ({n:,} instances"
            + (" before the holdout" if config.holdout else "") + "): no window would "
            f"close before the end, so every prediction would come before the first label; give less than {n:,}",
        )

    pseudo = None
    if config.pseudo_labels:
        if config.mode == "pool":
            raise ParameterError("pseudo_labels", "work in stream mode only (measured there): leave out --mode pool")
        if dataset.task != "classification":
            raise ParameterError("pseudo_labels", f"are for classification only, and {dataset.name} is {dataset.task}")
        try:
            pseudo = PseudoLabels(config.pseudo_min_proba, config.pseudo_warmup, config.pseudo_per_label)
        except ParameterError as exc:
            raise ParameterError(f"pseudo_{exc.parameter}", exc.detail) from None

    def learner(strategy: str, budget: float, pseudo_labels: PseudoLabels | None = None) -> ActiveLearner:
        return ActiveLearner(
            model=config.model,
            strategy=strategy,
            budget_manager=config.budget_manager,
            budget=budget,
            task=dataset.task,  # type: ignore[arg-type]
            text_features=config.text_features,
            pseudo_labels=pseudo_labels,
            seed=config.seed,
        )

    return Simulator(dataset, config, learner(config.strategy, config.budget, pseudo),
                     learner("random", config.budget), learner("random", 1.0))


def simulate(
    dataset: Dataset,
    config: SimulationConfig,
    progress: Callable[[int], None] | None = None,
    record: bool = False,
) -> Simulation:
    """Active learning, random sampling and full supervision on one stream (:func:`prepare`, then run)."""
    return prepare(dataset, config).run(progress, record)


def write_json(sim: Simulation, path: Path) -> None:
    path.write_text(json.dumps(sim.report(), indent=2) + "\n")


def _ids(dataset: Dataset) -> Callable[[int], Any]:
    """An instance's id: the dataset's own (a JSONL file's ``id``), else its 0-based position in the stream."""
    ids = dataset.ids
    return (lambda i: ids[i]) if ids is not None else (lambda i: i)


def labeled_set(sim: Simulation, dataset: Dataset) -> Iterator[dict[str, Any]]:
    """The labels the active run bought, in the order asked: id, when it was asked, label, features.

    ``asked_at_instance`` is the number of instances seen when it was asked
    (in pool mode, at the end of its window); on a clock also
    ``asked_at_s`` and ``answered_at_s``, seconds from the start.
    """
    if sim.decisions is None:
        raise ValueError("the decisions were not recorded: run with record=True")
    id_of = _ids(dataset)
    clock = {i: (asked, answered) for i, asked, answered in sim.active.timeline.requests} if sim.active.timeline else None
    asked = sorted((row[4], i) for i, row in enumerate(sim.decisions) if row[2])
    for at, i in asked:
        x, y = dataset.examples[i]
        row: dict[str, Any] = {"id": id_of(i), "asked_at_instance": at}
        if clock is not None:
            row["asked_at_s"], row["answered_at_s"] = clock[i]
        row |= {"label": y, "features": x}
        yield row


def decision_trace(sim: Simulation, dataset: Dataset) -> Iterator[dict[str, Any]]:
    """Every decision of the active run, in stream order: id, score, threshold, asked, prediction, truth.

    On a clock also ``time_s``, the arrival. In pool mode ``score`` and
    ``threshold`` are None (a window's best are picked by ``select``) and
    ``asked`` is the pick at the window's end.
    """
    if sim.decisions is None:
        raise ValueError("the decisions were not recorded: run with record=True")
    id_of = _ids(dataset)
    for i, (score, threshold, asked, prediction, _) in enumerate(sim.decisions):
        row: dict[str, Any] = {"id": id_of(i)}
        if sim.arrivals is not None:
            row["time_s"] = sim.arrivals[i]
        row |= {"score": score, "threshold": threshold, "asked": asked, "prediction": prediction,
                "truth": dataset.examples[i][1]}
        yield row


def _write_rows(rows: Iterator[dict[str, Any]], path: Path) -> int:
    """JSON Lines, or CSV when ``path`` ends with ``.csv`` (a ``features`` dict becomes one column per feature)."""
    if path.suffix.lower() != ".csv":
        count = 0
        with path.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, default=str) + "\n")
                count += 1
        return count
    table = list(rows)
    fixed = [k for k in (table[0] if table else {}) if k != "features"]
    names: dict[str, None] = {}
    for row in table:
        names.update(dict.fromkeys(row.get("features", ())))
    columns = {name: f"feature_{name}" if name in fixed else name for name in names}  # never two columns "label"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*fixed, *columns.values()])
        for row in table:
            x = row.get("features", {})
            writer.writerow([*("" if row[k] is None else row[k] for k in fixed),
                             *("" if x.get(name) is None else x[name] for name in columns)])
    return len(table)


def write_labels(sim: Simulation, dataset: Dataset, path: Path) -> int:
    """Write :func:`labeled_set` to ``path`` (CSV if it ends with ``.csv``, else JSON Lines); returns the rows."""
    return _write_rows(labeled_set(sim, dataset), path)


def write_trace(sim: Simulation, dataset: Dataset, path: Path) -> int:
    """Write :func:`decision_trace` to ``path`` (CSV if it ends with ``.csv``, else JSON Lines); returns the rows."""
    return _write_rows(decision_trace(sim, dataset), path)


def plot_formats() -> set[str]:
    """File name suffixes :func:`plot` can write (``.png``, ``.pdf``, ``.svg``, …)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return {f".{ext}" for ext in FigureCanvasBase.get_supported_filetypes()}


def plot(sim: Simulation, path: Path) -> None:
    """Accuracy (or MAE) and label rate over the stream, the three runs on one figure.

    On a clock, a third panel: requests per hour against the capacity, and
    the backlog of outstanding requests, over time.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = "MAE" if sim.task == "regression" else "accuracy"
    timed = sim.active.timeline is not None
    fig = plt.figure(figsize=(8, 9 if timed else 6))
    grid = fig.add_gridspec(3 if timed else 2, 1, height_ratios=[3, 2, 2.5] if timed else [3, 2])
    top = fig.add_subplot(grid[0])
    bottom = fig.add_subplot(grid[1], sharex=top)
    top.tick_params(labelbottom=False)
    runs = (
        (f"streamal ({sim.config.strategy} + {sim.config.budget_manager or default_budget_manager(sim.task)})", sim.active, "C0"),
        ("random sampling", sim.random, "C1"),
        ("full supervision", sim.full, "C2"),
    )
    for label, res, color in runs:
        ns = [p.n for p in res.trace]
        top.plot(ns, [p.metric for p in res.trace], label=label, color=color)
        if res is not sim.full:
            bottom.plot(ns, [100 * p.label_rate for p in res.trace], label=label, color=color)
    bottom.axhline(100 * sim.config.budget, color="grey", linestyle="--", linewidth=1,
                   label="budget ceiling" if timed else "budget")
    top.set_ylabel(f"prequential {metric}")
    top.set_title(f"{sim.dataset}: {sim.active.labels} labels ({100 * sim.active.label_rate:.1f} %) "
                  f"of {sim.active.n} instances")
    top.legend(loc="lower right" if metric == "accuracy" else "upper right")
    top.grid(alpha=0.3)
    bottom.set_ylabel("label rate (%)")
    bottom.set_xlabel("instances")
    highest = max((p.label_rate for res in (sim.active, sim.random) for p in res.trace), default=0.0)
    bottom.set_ylim(0, max(200 * sim.config.budget, 110 * highest, 1.0))  # an overspend shows, never clipped
    bottom.legend(loc="upper right")
    bottom.grid(alpha=0.3)
    if timed:
        _plot_clock(sim, fig.add_subplot(grid[2]))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_clock(sim: Simulation, ax: Any) -> None:
    """Requests per hour (the active run's, about 100 bins of whole slots) against the capacity; the backlog."""
    slots = sim.active.timeline.slots
    hours = sim.active.timeline.seconds > 2 * 3600.0
    unit, scale = ("hours", 3600.0) if hours else ("minutes", 60.0)
    per_bin = max(1, math.ceil(len(slots) / 100))
    xs, rates = [], []
    for k in range(0, len(slots), per_bin):
        chunk = slots[k:k + per_bin]
        seconds = sum(s.seconds for s in chunk)
        if seconds > 0:
            xs.append((chunk[0].start_s + seconds / 2) / scale)
            rates.append(sum(s.requests for s in chunk) * 3600.0 / seconds)
    ax.step(xs, rates, where="mid", color="C0", label="label requests per hour")
    ax.axhline(sim.config.labels_per_hour, color="grey", linestyle="--", linewidth=1, label="capacity")
    ax.set_ylabel("requests per hour")
    ax.set_xlabel(f"clock ({unit})")
    ax.set_ylim(0, 1.5 * max([sim.config.labels_per_hour, *rates]))
    ax.grid(alpha=0.3)
    backlog = ax.twinx()
    backlog.plot([(s.start_s + s.seconds) / scale for s in slots], [s.backlog for s in slots],
                 color="C3", linewidth=1, label="backlog (outstanding requests)")
    backlog.set_ylabel("backlog")
    backlog.set_ylim(0, max(1, 1.2 * max((s.backlog_max for s in slots), default=1)))
    lines = ax.get_legend_handles_labels(), backlog.get_legend_handles_labels()
    ax.legend(lines[0][0] + lines[1][0], lines[0][1] + lines[1][1], loc="upper right", fontsize="small")
