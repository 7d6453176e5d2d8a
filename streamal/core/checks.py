"""The conformance suite every query strategy and budget manager goes through (STYLE habit 8).

In the spirit of River's ``river.utils.estimator_checks``: every registered
component is run through it by ``tests/core/test_checks.py``, and so can
yours, given as a class, any factory (``functools.partial``, a function) or
an instance (rebuilt from its parameters, read back from the attributes of
the same names)::

    from streamal.core.checks import check_budget_manager, check_strategy
    check_strategy(MyStrategy)
    check_budget_manager(MyManager(budget=0.1))

Each raises AssertionError naming the component, the check and what went
wrong, at the first check that fails. :func:`yield_strategy_checks` and
:func:`yield_budget_manager_checks` yield ``(name, check)`` pairs, so a test
runner can run each check as a test of its own.

The invalid-parameter check knows streamal's parameter names
(:data:`DOMAINS`); any other numeric parameter whose default is not negative
is taken to be non-negative, and a ``Literal[...]`` parameter must refuse
anything else. Pass ``domains={"name": Domain(...)}`` (``None`` to skip one)
for your own. A component must pickle (the service checkpoints learners with
pickle), so define it at module level.

Pure Python, numpy and River, like the rest of the core: no pytest, no
hypothesis.
"""

from __future__ import annotations

import copy
import doctest
import functools
import inspect
import itertools
import math
import pickle
import random
import re
import typing
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from river import datasets
from river.datasets import synth

from streamal.core.learner import ActiveLearner, Decision
from streamal.core.strategies.base import Strategy, batch_scorer

Check = Callable[[], None]

# -- parameters --------------------------------------------------------------


@dataclass(frozen=True)
class Domain:
    """Where a numeric parameter must lie: ``[low, high]`` (``(low, …`` if ``low_open``), finite, maybe integer."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    integer: bool = False
    finite: bool = True

    def bad_values(self) -> list[float]:
        """Values outside the domain: NaN, inf, just below ``low``, above ``high``, a non-integer.

        >>> Domain(low=2, integer=True).bad_values()
        [nan, inf, 1, 2.5]
        >>> Domain(low=0, high=1, low_open=True).bad_values()
        [nan, inf, 0, -0.1, 1.5]
        """
        out: list[float] = [math.nan]
        if self.finite:
            out.append(math.inf)
        if self.low is not None:
            if self.low_open:
                out.append(self.low)
            out.append(self.low - 1 if self.integer else self.low - 0.1)
        if self.high is not None:
            out.append(self.high + 0.5)
        if self.integer:
            out.append((self.low or 0) + 0.5)
        return out


FRACTION = Domain(low=0.0, high=1.0)
#: streamal's numeric parameters by name; anything else is inferred from its default.
DOMAINS: dict[str, Domain | None] = {
    "budget": Domain(low=0.0, high=1.0, low_open=True),
    "threshold": FRACTION,
    "random_share": FRACTION,
    "min_proba": FRACTION,
    "window": Domain(low=1, integer=True),
    "history": Domain(low=1, integer=True),
    "n_centroids": Domain(low=1, integer=True),
    "reference_size": Domain(low=1, integer=True),
    "size": Domain(low=2, integer=True),
    "step": Domain(low=0.0, low_open=True),
    "tolerance": Domain(low=0.0),
    "randomize": Domain(low=0.0),
    "beta": Domain(low=0.0),
    "seed": Domain(integer=True),  # a NaN seed hashes differently every time: no two runs alike
}

_NOT_A_CHOICE = "no-such-choice"


def _bad_values(parameter: inspect.Parameter, hint: Any, domains: Mapping[str, Domain | None]) -> list[Any]:
    if typing.get_origin(hint) is typing.Literal:
        return [_NOT_A_CHOICE]
    if parameter.name in domains:
        domain = domains[parameter.name]
        return domain.bad_values() if domain is not None else []
    default = parameter.default
    if isinstance(default, bool) or not isinstance(default, (int, float)) or default < 0:
        return []
    return [math.nan, -1]  # a count, rate or scale: not negative, and a number


def _names(exc: BaseException, name: str, value: Any) -> bool:
    """Whether ``exc`` names the parameter first (``name: …`` or ``name must …``) and the value."""
    text = str(exc)
    first = getattr(exc, "parameter", None) == name or re.match(rf"{re.escape(name)}\b", text) is not None
    return first and (repr(value) in text or str(value) in text)


# -- making components ---------------------------------------------------------


def _is_factory(component: Any) -> bool:
    return isinstance(component, type) or not (hasattr(component, "score_one") or hasattr(component, "decide"))


def _constructor(component: Any) -> Callable[..., Any]:
    return component if _is_factory(component) else type(component)


def _parameters(constructor: Callable[..., Any]) -> list[inspect.Parameter]:
    try:
        signature = inspect.signature(constructor)
    except (TypeError, ValueError):
        return []
    return [p for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _accepts(component: Any, name: str) -> bool:
    return any(p.name == name for p in _parameters(_constructor(component)))


def _build(component: Any, **overrides: Any) -> Any:
    """A fresh component: the factory called, or an instance rebuilt from its parameters (as River clones)."""
    if _is_factory(component):
        return component(**overrides)
    params = {}
    for p in _parameters(type(component)):
        if p.name in overrides:
            continue
        if not hasattr(component, p.name):
            raise AssertionError(
                f"{_label(component)}: parameter {p.name!r} is not stored as an attribute of the same name, "
                "so the component cannot be rebuilt from its parameters (STYLE habit 3)"
            )
        params[p.name] = copy.deepcopy(getattr(component, p.name))
    return type(component)(**params, **overrides)


def _label(component: Any) -> str:
    """The registered name (or class name) of a component, with a partial's keywords."""
    if _is_factory(component) and not isinstance(component, type):
        func = getattr(component, "func", None)  # functools.partial
        name = _label(func) if func is not None else getattr(component, "__name__", repr(component))
        return name + _partial_args(component)
    cls = component if isinstance(component, type) else type(component)
    return vars(cls).get("name") or cls.__name__


def _partial_args(component: Any) -> str:
    keywords = getattr(component, "keywords", None)
    return f"({', '.join(f'{k}={v!r}' for k, v in keywords.items())})" if keywords else ""


def _hints(constructor: Callable[..., Any]) -> dict[str, Any]:
    target = getattr(constructor, "func", constructor)
    try:
        return typing.get_type_hints(target.__init__ if isinstance(target, type) else target)
    except Exception:  # unresolvable annotations: no Literal choices to try
        return {}


def check_invalid_parameters(component: Any, domains: Mapping[str, Domain | None] | None = None) -> None:
    """Bad values of numeric (and ``Literal``) constructor parameters are refused at construction.

    The ValueError names the parameter first and the value (STYLE habit 6):
    ``size: must be an integer ≥ 2, got 1``.
    """
    known = {**DOMAINS, **(domains or {})}
    constructor = _constructor(component)
    hints = _hints(constructor)
    for parameter in _parameters(constructor):
        for bad in _bad_values(parameter, hints.get(parameter.name), known):
            call = f"{_label(component)}({parameter.name}={bad!r})"
            try:
                _build(component, **{parameter.name: bad})
            except ValueError as exc:
                assert _names(exc, parameter.name, bad), (
                    f"{call} was refused, but the message does not start with the parameter's name and "
                    f"mention the value: {exc}"
                )
            except Exception as exc:
                raise AssertionError(
                    f"{call} raised {type(exc).__name__}: {exc}; refuse it with a ValueError naming {parameter.name!r}"
                ) from exc
            else:
                raise AssertionError(
                    f"{call} was accepted: refuse it at construction with a ValueError naming {parameter.name!r}"
                )


# -- docstrings ----------------------------------------------------------------

_MATH = re.compile(r"\s=\s|[·Σ∑≥≤−×‖√∈≈∝^]")
_YEAR = r"(?:19|20)\d\d"
_CITATION = re.compile(rf"\([^()]*\b{_YEAR}\b[^()]*\)|\*[^*\n]+\*|et al\.")


def check_docstring(component: Any) -> None:
    """The class's own docstring has a formula, a reference, its cost and a doctest (STYLE habit 7)."""
    cls = type(_build(component)) if _is_factory(component) else type(component)
    doc = vars(cls).get("__doc__") or ""
    prose = "".join(p for p in doctest.DocTestParser().parse(doc) if isinstance(p, str))
    missing = []
    if not _MATH.search(prose):
        missing.append("a formula (e.g. ``1 − max_y p(y|x)``)")
    if not (re.search(rf"\b{_YEAR}\b", prose) and _CITATION.search(prose)):
        missing.append("a reference (authors and year, or a paper's *title* and year)")
    if not re.search(r"\bcost", prose, re.IGNORECASE):
        missing.append("its cost (e.g. 'Cost: O(K) per instance')")
    if ">>>" not in doc:
        missing.append("a doctest (>>>)")
    assert not missing, f"{_label(component)}: the docstring of {cls.__qualname__} lacks {'; '.join(missing)}"


# -- streams and learners ------------------------------------------------------

#: The seeded streams learners walk, and how many instances of each: enough
#: for tens of labels at the budgets below (past the cold start and the
#: warm-up), few enough that the costliest strategy (expected error
#: reduction: K model copies and K·|R| predictions per instance) takes
#: seconds, not minutes.
_DATASETS: dict[str, tuple[Callable[[], Any], int]] = {
    "phishing": (datasets.Phishing, 400),
    "waveform": (lambda: synth.Waveform(seed=1), 300),  # 3 classes
    "trump_approval": (datasets.TrumpApproval, 400),
}
#: Streams per task: binary and multi-class; a regression.
STREAMS = {"classification": ("phishing", "waveform"), "regression": ("trump_approval",)}
#: Chunk sizes of ``ask_many`` and ``decide_many``, cycled: one instance, odd
#: sizes, a large poll (an odd count, so that both see small and large chunks).
CHUNKS = (1, 37, 3, 250, 11)


@functools.cache
def _stream(name: str) -> tuple[tuple[dict[str, Any], Any], ...]:
    make, n = _DATASETS[name]
    return tuple(itertools.islice(make(), n))


def _tasks(strategy: Any) -> list[str]:
    tasks = getattr(_build(strategy), "tasks", ("classification",))
    return [t for t in ("classification", "regression") if t in tasks]


def _learner(strategy: Any = None, manager: Any = "variable_uncertainty", task: str = "classification",
             budget: float | None = 0.2, seed: int = 0) -> ActiveLearner:
    model = "logistic_regression" if task == "classification" else "linear_regression"
    if not isinstance(manager, str):
        budget = None  # the manager's own
    return ActiveLearner(model=model, strategy=strategy, budget_manager=manager, budget=budget, task=task, seed=seed)


def _walk(learner: ActiveLearner, data: Sequence[tuple[dict[str, Any], Any]]) -> list[Decision]:
    """Ask about every instance, learning the labels asked for (a prequential run)."""
    out = []
    for x, y in data:
        d = learner.ask(x)
        out.append(d)
        if d.query:
            learner.learn(x, y)
    return out


def _close(a: Any, b: Any, tol: float) -> bool:
    return bool(a == b or (isinstance(a, float) and isinstance(b, float) and abs(a - b) <= tol))


def _difference(got: Sequence[Decision], want: Sequence[Decision], tol: float = 0.0, offset: int = 0) -> str | None:
    """Where two runs' decisions first differ, if they do.

    Queries and predictions must be equal; scores, thresholds and probabilities within ``tol``.
    """
    if len(got) != len(want):
        return f"{len(got)} decisions instead of {len(want)}"
    for i, (a, b) in enumerate(zip(got, want), offset):
        same = (
            a.query == b.query and _close(a.prediction, b.prediction, 0.0)
            and _close(a.score, b.score, tol) and _close(a.threshold, b.threshold, tol)
            and a.proba.keys() == b.proba.keys() and all(_close(a.proba[c], b.proba[c], tol) for c in a.proba)
        )
        if not same:
            return f"instance {i}: {a!r} instead of {b!r}"
    return None


# -- strategies ----------------------------------------------------------------

_NAN, _INF = math.nan, math.inf
#: Probability dicts a strategy must survive: empty, one class, NaN, inf,
#: negative, unnormalised, tiny, huge, many classes.
ADVERSARIAL_PROBAS: tuple[dict[Any, float], ...] = (
    {}, {True: 1.0}, {True: 0.0}, {True: 0.0, False: 0.0}, {True: _NAN, False: 0.5}, {True: _NAN, False: _NAN},
    {True: _INF, False: 0.5}, {True: _INF, False: _INF}, {True: -_INF, False: 1.0}, {True: -0.5, False: 1.5},
    {True: 3.0, False: 5.0}, {True: 1e-300, False: 1e-300}, {True: 1e300, False: 1e300},
    {True: 0.5, False: 0.5}, {c: 0.1 for c in range(10)}, {c: float(c) for c in range(10)},
)


class _Recorder(Strategy):
    """Passes everything on to ``inner``, recording what ``score_one`` returned (the learner clips it)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.tasks = getattr(inner, "tasks", ("classification",))
        self.scores: list[Any] = []

    def setup(self, model: Any) -> None:
        getattr(self.inner, "setup", lambda m: None)(model)

    def score_one(self, x: Any, proba: Any) -> float:
        score = self.inner.score_one(x, proba)
        self.scores.append(score)
        return score  # type: ignore[no-any-return]

    def observe_one(self, x: Any) -> None:
        getattr(self.inner, "observe_one", lambda x: None)(x)

    def learn_one(self, x: Any, y: Any) -> None:
        getattr(self.inner, "learn_one", lambda x, y: None)(x, y)


def _is_score(value: Any) -> bool:
    return isinstance(value, float) and 0.0 <= value <= 1.0


def check_score_range(strategy: Any) -> None:
    """Every score is a float in [0, 1]: in a learner on a seeded stream, and on adversarial probabilities."""
    label = _label(strategy)
    for task in _tasks(strategy):
        inner = _build(strategy)
        recorder = _Recorder(inner)
        data = _stream(STREAMS[task][0])
        _walk(_learner(recorder, task=task), data)
        bad = next((s for s in recorder.scores if not _is_score(s)), None)
        assert bad is None, f"{label}: score_one returned {bad!r} in a {task} learner, not a float in [0, 1]"
        xs = [dict(x) for x, _ in data[:3]] + [{}, {k: 1e6 for k in data[0][0]}, {k: -1e6 for k in data[0][0]}]
        for x, proba in itertools.product(xs, ADVERSARIAL_PROBAS):
            score = inner.score_one(dict(x), dict(proba))
            assert _is_score(score), (
                f"{label}: score_one(x, {proba!r}) returned {score!r} after a {task} learner used it, "
                f"not a float in [0, 1] (x = {x!r})"
            )


def check_score_many(strategy: Any) -> None:
    """``score_many``, when the learner would use it (:func:`batch_scorer`), equals ``score_one`` row by row."""
    s = _build(strategy)
    scorer = batch_scorer(s)
    if scorer is None:
        return
    rng = np.random.default_rng(0)
    for k in (1, 2, 3, 7):
        rows = [rng.dirichlet(np.ones(k) * a) for a in (0.1, 1.0, 10.0) for _ in range(20)]
        rows += list(np.eye(k)) + [np.full(k, 1.0 / k)]
        if k > 1:
            rows.append(np.array([1 - 1e-16, 1e-16] + [0.0] * (k - 2)))
        p = np.array(rows)
        got = np.asarray(scorer(p))
        assert got.shape == (len(rows),), f"{_label(strategy)}: score_many of {p.shape} gave shape {got.shape}"
        for row, many in zip(rows, got.tolist()):
            one = s.score_one({}, dict(enumerate(row.tolist())))
            assert _is_score(many) and abs(many - one) <= 1e-12, (
                f"{_label(strategy)}: score_many gives {many!r} where score_one gives {one!r} for {row.tolist()}"
            )


def check_strategy_seed_determinism(strategy: Any) -> None:
    """Two learners built the same way, with the same seed, decide the same on the same stream."""
    for task in _tasks(strategy):
        data = _stream(STREAMS[task][0])
        first = _walk(_learner(_build(strategy), task=task, seed=3), data)
        second = _walk(_learner(_build(strategy), task=task, seed=3), data)
        where = _difference(second, first)
        assert where is None, f"{_label(strategy)}: the same seed gave other decisions on {STREAMS[task][0]}: {where}"


def check_strategy_clone_and_pickle(strategy: Any) -> None:
    """deepcopy, pickle and a rebuild from the parameters decide as the original, fresh and after use."""
    label = _label(strategy)
    task = _tasks(strategy)[0]
    data = _stream(STREAMS[task][0])
    used, then = data[:200], data[200:400]
    original = _build(strategy)
    copies = {
        "copy.deepcopy": copy.deepcopy(original),
        "pickle": pickle.loads(pickle.dumps(original)),
        "a rebuild from its parameters": _build(original),
    }
    learner = _learner(original, task=task, seed=3)
    want = _walk(learner, used)
    for how, twin in copies.items():
        where = _difference(_walk(_learner(twin, task=task, seed=3), used), want)
        assert where is None, f"{label}: a fresh component's {how} decides otherwise: {where}"
    twins = {"copy.deepcopy": copy.deepcopy(learner), "pickle": pickle.loads(pickle.dumps(learner))}
    want = _walk(learner, then)
    for how, twin in twins.items():
        where = _difference(_walk(twin, then), want, offset=len(used))
        assert where is None, f"{label}: {how} of a learner that used it for {len(used)} instances differs: {where}"


def _one_by_one_equals_batches(label: str, learner: ActiveLearner, stream: str) -> None:
    """A copy of ``learner`` decides ``stream`` in chunks, by ``ask_many`` and ``decide_many`` + ``confirm`` in
    turn, as ``learner`` does one by one with ``ask``; both learn the labels asked for between chunks."""
    data = _stream(stream)
    one, batched = learner, copy.deepcopy(learner)
    start = 0
    for i, size in enumerate(itertools.cycle(CHUNKS)):
        chunk = data[start:start + size]
        if not chunk:
            return
        xs = [x for x, _ in chunk]
        want = [one.ask(x) for x in xs]
        if i % 2 == 0:
            how, got = "ask_many", batched.ask_many(xs)
        else:
            how, decided = "decide_many + confirm", batched.decide_many(xs)
            batched.confirm(decided)
            got = decided.decisions
        where = _difference(got, want, 1e-12, start)
        assert where is None, f"{label}: {how} of a chunk of {len(xs)} on {stream} differs from ask: {where}"
        for (x, y), d in zip(chunk, want):  # labels arrive between polls: both learn the same
            if d.query:
                one.learn(x, y)
                batched.learn(x, y)
        start += len(chunk)


def check_strategy_ask_many(strategy: Any) -> None:
    """``ask`` one by one = ``ask_many`` in chunks = ``decide_many`` + ``confirm``, labels learned between chunks."""
    for task in _tasks(strategy):
        for stream in STREAMS[task]:
            learner = _learner(_build(strategy), task=task, budget=0.1, seed=2)
            _one_by_one_equals_batches(_label(strategy), learner, stream)


def yield_strategy_checks(
    strategy: Any, domains: Mapping[str, Domain | None] | None = None
) -> Iterator[tuple[str, Check]]:
    """``(name, check)`` for every check of a strategy (a class, a factory or an instance)."""
    yield "score_range", functools.partial(check_score_range, strategy)
    yield "score_many", functools.partial(check_score_many, strategy)
    yield "seed_determinism", functools.partial(check_strategy_seed_determinism, strategy)
    yield "clone_and_pickle", functools.partial(check_strategy_clone_and_pickle, strategy)
    yield "ask_many", functools.partial(check_strategy_ask_many, strategy)
    yield "invalid_parameters", functools.partial(check_invalid_parameters, strategy, domains)
    yield "docstring", functools.partial(check_docstring, strategy)


def check_strategy(strategy: Any, domains: Mapping[str, Domain | None] | None = None) -> None:
    """Run every strategy check; AssertionError naming the first that fails."""
    _run(_label(strategy), yield_strategy_checks(strategy, domains))


def _run(label: str, checks: Iterator[tuple[str, Check]]) -> None:
    for name, check in checks:
        try:
            check()
        except AssertionError as exc:
            raise AssertionError(f"{label} fails {name}: {exc}") from exc
        except Exception as exc:
            raise AssertionError(f"{label} fails {name}: {type(exc).__name__}: {exc}") from exc


# -- budget managers -------------------------------------------------------------

#: Decisions per score shape: long enough that 5 % of the labels is a few of them.
N_SCORES = 20_000
SHAPES = ("random", "constant", "rising", "falling")


@functools.cache
def _scores(shape: str, n: int = N_SCORES, seed: int = 0) -> tuple[float, ...]:
    rng = random.Random(seed)
    if shape == "random":
        return tuple(rng.random() for _ in range(n))
    if shape == "constant":
        return (0.5,) * n
    if shape == "rising":
        return tuple(i / n for i in range(n))
    if shape == "falling":
        return tuple(1.0 - i / n for i in range(n))
    raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")


def _manager(manager: Any, budget: float | None = None, seed: int | None = None) -> Any:
    """A fresh manager, at ``budget`` and ``seed`` when given (set_budget if it takes no budget)."""
    params = {k: v for k, v in (("budget", budget), ("seed", seed)) if v is not None and _accepts(manager, k)}
    m = _build(manager, **params)
    if budget is not None and "budget" not in params:
        m.set_budget(budget)
    return m


def _state(obj: Any, depth: int = 0) -> Any:
    """Everything ``obj`` holds, as plain values comparable with ``==`` (generators by their state)."""
    if depth > 20:
        return repr(obj)
    if isinstance(obj, float):
        return "nan" if math.isnan(obj) else obj
    if isinstance(obj, random.Random):
        return ("Random", obj.getstate())
    if isinstance(obj, np.random.Generator):
        return ("Generator", obj.bit_generator.state)
    if isinstance(obj, np.ndarray):
        return ("ndarray", obj.tolist())
    if isinstance(obj, Mapping):
        return {k: _state(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, deque)):
        return [_state(v, depth + 1) for v in obj]
    if inspect.ismethod(obj):  # bound to this very object: by identity
        return ("method", id(obj.__self__), obj.__func__)
    if isinstance(obj, functools.partial):
        return ("partial", obj.func, _state(obj.args, depth + 1), _state(obj.keywords, depth + 1))
    if hasattr(obj, "__dict__") and not isinstance(obj, type) and not callable(obj):
        return {"__class__": type(obj).__qualname__, **{k: _state(v, depth + 1) for k, v in vars(obj).items()}}
    return copy.deepcopy(obj)


def _changed(before: Any, after: Any, path: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        keys = before.keys() | after.keys()
        return [p for k in sorted(keys, key=str) for p in _changed(before.get(k), after.get(k), f"{path}.{k}")]
    return [] if before == after else [path or "state"]


def check_decide_changes_nothing(manager: Any) -> None:
    """``decide(score)`` (and reading ``threshold``) leaves the manager as it was; the same score, the same answer."""
    m = _manager(manager, budget=0.1)
    for i, score in enumerate(_scores("random", 1000) + _scores("rising", 500)):
        before = _state(m)
        _ = m.threshold  # reading it must change nothing either
        first = m.decide(score)
        second = m.decide(score)
        after = _state(m)
        assert first == second, f"{_label(manager)}: decide({score}) said {first}, then {second}, at decision {i}"
        changed = ", ".join(_changed(before, after))
        assert before == after, f"{_label(manager)}: decide({score}) changed {changed} at decision {i}"
        m.update(score, first)


def check_decide_then_update_equals_ask(manager: Any) -> None:
    """``decide`` then ``update`` makes the decisions ``ask`` makes."""
    asks = _manager(manager, budget=0.1)
    decides = copy.deepcopy(asks)
    for i, score in enumerate(_scores("random", 3000)):
        query = decides.decide(score)
        decides.update(score, query)
        assert asks.ask(score) == query, f"{_label(manager)}: ask and decide + update differ at decision {i}"


def _follows(manager: Any) -> bool:
    return bool(getattr(type(_build(manager)), "follows_budget", True))


def _rate_message(manager: Any, rate: float, budget: float, follows: bool, where: str) -> str | None:
    if follows and abs(rate / budget - 1.0) > 0.05:
        return f"{_label(manager)}: rate {rate:.4f} on {where}, more than 5 % away from the budget {budget}"
    if not follows and rate > 1.05 * budget:
        return f"{_label(manager)}: rate {rate:.4f} on {where}, more than 5 % above the budget {budget}"
    return None


def check_budget_held(manager: Any) -> None:
    """The realised rate is within 5 % of the budget on long random, constant, rising and falling score streams.

    A manager whose class sets ``follows_budget = False`` (a fixed threshold)
    must only never spend more than 5 % above it.
    """
    follows = _follows(manager)
    for budget, shape in itertools.product((0.02, 0.2), SHAPES):
        m = _manager(manager, budget=budget)
        scores = _scores(shape)
        rate = sum(map(m.ask, scores)) / len(scores)
        message = _rate_message(manager, rate, budget, follows, f"{len(scores)} {shape} scores")
        assert message is None, message


def check_set_budget(manager: Any) -> None:
    """After ``set_budget`` the rate follows the new budget (up and down); an invalid budget is refused, named."""
    follows = _follows(manager)
    m = _manager(manager, budget=0.05)
    scores = iter(_scores("random", 40_000, seed=1))
    for _ in range(5000):
        m.ask(next(scores))
    for budget, n, settle in ((0.2, 10_000, 2000), (0.02, 25_000, 5000)):
        m.set_budget(budget)
        asked = [m.ask(next(scores)) for _ in range(n)]
        rate = sum(asked[settle:]) / (n - settle)
        where = f"the {n - settle} scores after set_budget({budget}) settled"
        message = _rate_message(manager, rate, budget, follows, where)
        assert message is None, message
    for bad in (0.0, 1.5, math.nan):
        try:
            m.set_budget(bad)
        except ValueError as exc:
            assert "budget" in str(exc), f"{_label(manager)}: set_budget({bad}) was refused without naming budget: {exc}"
        else:
            raise AssertionError(f"{_label(manager)}: set_budget({bad}) was accepted")


def check_manager_seed_determinism(manager: Any) -> None:
    """Two managers built the same way, with the same seed, decide the same on the same scores."""
    scores = _scores("random", 3000) + _scores("constant", 1000) + _scores("falling", 2000)
    first, second = _manager(manager, budget=0.1, seed=7), _manager(manager, budget=0.1, seed=7)
    a, b = list(map(first.ask, scores)), list(map(second.ask, scores))
    i = next((i for i, (p, q) in enumerate(zip(a, b)) if p != q), None)
    assert i is None, f"{_label(manager)}: the same seed decided otherwise at decision {i}"


def check_manager_clone_and_pickle(manager: Any) -> None:
    """deepcopy, pickle and a rebuild from the parameters decide as the original, fresh and after use."""
    original = _manager(manager, budget=0.1)
    scores = _scores("random", 6000, seed=2)
    copies = {
        "copy.deepcopy": copy.deepcopy(original),
        "pickle": pickle.loads(pickle.dumps(original)),
        "a rebuild from its parameters": _build(original),
    }
    want = list(map(original.ask, scores[:3000]))
    for how, twin in copies.items():
        assert list(map(twin.ask, scores[:3000])) == want, f"{_label(manager)}: a fresh manager's {how} differs"
    twins = {"copy.deepcopy": copy.deepcopy(original), "pickle": pickle.loads(pickle.dumps(original))}
    want = list(map(original.ask, scores[3000:]))
    for how, twin in twins.items():
        assert list(map(twin.ask, scores[3000:])) == want, (
            f"{_label(manager)}: {how} of a manager used for 3000 decisions decides otherwise"
        )


def check_manager_ask_many(manager: Any) -> None:
    """In a learner, ``ask`` one by one = ``ask_many`` in chunks = ``decide_many`` + ``confirm``."""
    learner = _learner("margin", _manager(manager, budget=0.1), seed=2)
    _one_by_one_equals_batches(_label(manager), learner, "phishing")


def yield_budget_manager_checks(
    manager: Any, domains: Mapping[str, Domain | None] | None = None
) -> Iterator[tuple[str, Check]]:
    """``(name, check)`` for every check of a budget manager (a class, a factory or an instance)."""
    yield "decide_changes_nothing", functools.partial(check_decide_changes_nothing, manager)
    yield "decide_then_update", functools.partial(check_decide_then_update_equals_ask, manager)
    yield "budget_held", functools.partial(check_budget_held, manager)
    yield "set_budget", functools.partial(check_set_budget, manager)
    yield "seed_determinism", functools.partial(check_manager_seed_determinism, manager)
    yield "clone_and_pickle", functools.partial(check_manager_clone_and_pickle, manager)
    yield "ask_many", functools.partial(check_manager_ask_many, manager)
    yield "invalid_parameters", functools.partial(check_invalid_parameters, manager, domains)
    yield "docstring", functools.partial(check_docstring, manager)


def check_budget_manager(manager: Any, domains: Mapping[str, Domain | None] | None = None) -> None:
    """Run every budget-manager check; AssertionError naming the first that fails."""
    _run(_label(manager), yield_budget_manager_checks(manager, domains))
