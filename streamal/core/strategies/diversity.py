"""Greedy sampling: ask where the labeled set is far away, in inputs (and outputs).

A stream form of the greedy sampling of Wu, Lin and Huang (2019): the pool
method picks, one after the other, the instance farthest from the labeled
set; here every instance is scored by that distance and the budget manager
asks for the farthest ones. The labeled set is a window of the last
``memory`` labeled points, so memory and cost stay bounded and old regions of
a drifting stream may be asked about again.

References: H. Yu and S. Kim, *Passive sampling for regression*, ICDM 2010
(GSx); D. Wu, C.-T. Lin and J. Huang, *Active learning for regression using
greedy sampling*, Information Sciences 474, 90–105, 2019 (GSy, iGS).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from streamal.core.errors import ParameterError
from streamal.core.strategies.base import Features, Proba, Strategy, clip01, strategies


class LabeledWindow:
    """The last ``size`` labeled points as rows of a matrix (columns: feature names, a missing feature is 0).

    Distances are taken in standardised input space: each feature's
    difference is divided by its running standard deviation over every
    instance of the stream (``observe``, label-free), so a feature in
    thousands does not drown one in units. Inputs the learner already
    standardises (linear models) have deviations near 1.

    >>> w = LabeledWindow(2)
    >>> for x, y in [({'a': 0.0}, 1.0), ({'a': 1.0}, 2.0), ({'a': 5.0}, 3.0)]:
    ...     w.observe(x)
    ...     w.add(x, y)
    >>> w.n, w.targets().tolist()
    (2, [3.0, 2.0])

    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._columns: dict[str, int] = {}
        self._x = np.zeros((size, 4))
        self._y = np.zeros(size)
        self.n = 0
        self._next = 0
        # Running mean and M2 (Welford) per column, over every observed instance.
        self._count = np.zeros(4)
        self._mean = np.zeros(4)
        self._m2 = np.zeros(4)
        self._inverse_scale: np.ndarray | None = None

    def _column(self, name: str) -> int:
        j = self._columns.get(name)
        if j is None:
            j = self._columns[name] = len(self._columns)
            if j >= self._x.shape[1]:
                grow = self._x.shape[1]
                self._x = np.hstack([self._x, np.zeros((self.size, grow))])
                for attr in ("_count", "_mean", "_m2"):
                    setattr(self, attr, np.concatenate([getattr(self, attr), np.zeros(grow)]))
                self._inverse_scale = None
        return j

    def _row(self, x: Features) -> tuple[np.ndarray, float]:
        """``x`` over the known columns, and the squared norm of its features no column knows yet."""
        row = np.zeros(self._x.shape[1])
        extra = 0.0
        for k, v in x.items():
            j = self._columns.get(k)
            if j is None:
                extra += v * v
            else:
                row[j] = v
        return row, extra

    def observe(self, x: Features) -> None:
        """Update the per-feature deviations with one instance (label-free).

        A feature absent from ``x`` counts as 0 (the learner's convention), so
        every column counts every instance since it first appeared.
        """
        for k in x:
            if k not in self._columns:
                self._column(k)
        row, _ = self._row(x)
        d = len(self._columns)
        count, mean = self._count[:d], self._mean[:d]
        count += 1.0
        delta = row[:d] - mean
        mean += delta / count
        self._m2[:d] += delta * (row[:d] - mean)
        self._inverse_scale = None

    def _scale(self) -> np.ndarray:
        """1 / the running standard deviation per column (1 where it is 0 or unknown)."""
        if self._inverse_scale is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                var = self._m2 / self._count
                self._inverse_scale = np.where((self._count > 1.0) & (var > 1e-12), 1.0 / np.sqrt(var), 1.0)
        return self._inverse_scale

    def add(self, x: Features, y: float) -> None:
        for k in x:
            if k not in self._columns:
                self._column(k)
        row, _ = self._row(x)
        self._x[self._next] = row
        self._y[self._next] = y
        self._next = (self._next + 1) % self.size
        self.n = min(self.n + 1, self.size)

    def squared_distances(self, x: Features) -> np.ndarray:
        """Standardised squared Euclidean distances from ``x`` to every stored point (in storage order)."""
        row, extra = self._row(x)
        diff = (self._x[: self.n] - row) * self._scale()
        d2 = np.einsum("ij,ij->i", diff, diff)
        if extra:
            d2 += extra
        return d2

    def targets(self) -> np.ndarray:
        return self._y[: self.n]

    @property
    def dimension(self) -> int:
        return len(self._columns)


def _check_memory(memory: Any) -> None:
    if not (isinstance(memory, numbers.Integral) and not isinstance(memory, bool) and memory >= 1):
        raise ParameterError("memory", f"must be an integer ≥ 1, got {memory!r}")


@strategies.register("gsx")
class GSx(Strategy):
    """Input-space greedy sampling: distance of x to the nearest labeled point.

    With L the last ``memory`` labeled points and distances in standardised
    input space (see :class:`LabeledWindow`), D the number of features,

        d(x) = min_{x_i ∈ L} ‖x − x_i‖,    score = d / (d + √D),

    so an instance far from every labeled one (a new region, or a time that
    has moved on) scores near 1 and a near-duplicate near 0. This is GSx of
    Yu & Kim, *Passive sampling for regression*, ICDM 2010, as used by Wu,
    Lin and Huang, *Active learning for regression using greedy sampling*,
    Information Sciences 2019, scored instance by instance. It needs no model
    and no labels' values, so it serves classification too.
    Cost: O(memory · D) per instance (numpy), O(D) per label; memory
    O(memory · D).

    >>> gsx = GSx(memory=50)
    >>> for i in range(20):
    ...     x = {'a': i % 5 / 4, 'b': (i % 3) / 2}
    ...     gsx.observe_one(x)
    ...     gsx.learn_one(x, 0.0)
    >>> round(gsx.score_one({'a': 0.5, 'b': 0.5}, {}), 3), round(gsx.score_one({'a': 3.0, 'b': 0.0}, {}), 3)
    (0.0, 0.8)

    """

    tasks = ("classification", "regression")

    def __init__(self, memory: int = 500) -> None:
        _check_memory(memory)
        self.memory = memory
        self._window = LabeledWindow(memory)

    def score_one(self, x: Features, proba: Proba) -> float:
        window = self._window
        if window.n == 0:
            return 1.0
        with np.errstate(over="ignore", invalid="ignore"):
            d2 = float(window.squared_distances(x).min())
        if not d2 < math.inf:  # inf, or NaN from inf − inf
            return 1.0
        d = math.sqrt(d2)
        return clip01(d / (d + math.sqrt(max(window.dimension, len(x), 1))))

    def observe_one(self, x: Features) -> None:
        self._window.observe(x)

    def learn_one(self, x: Features, y: Any) -> None:
        self._window.add(x, 0.0)


@strategies.register("igs")
class IGS(Strategy):
    """Improved greedy sampling: far from the labeled set in inputs *and* outputs.

    With L the last ``memory`` labeled points (x_i, y_i), f(x) the learner's
    prediction, σ_y the running standard deviation of the labels and D the
    number of features,

        g(x) = min_{(x_i, y_i) ∈ L} (‖x − x_i‖ / √D) · (|f(x) − y_i| / σ_y),
        score = g / (1 + g),

    the product of input and output distances of iGS (Wu, Lin & Huang,
    *Active learning for regression using greedy sampling*, Information
    Sciences 474, 2019), scored instance by instance. An instance near a
    labeled one whose label the model already predicts scores near 0.
    Cost: one prediction and O(memory · D) per instance; O(D) per label.

    >>> from river import linear_model
    >>> model = linear_model.LinearRegression()
    >>> igs = IGS(memory=50)
    >>> igs.setup(model)
    >>> for i in range(30):
    ...     x = {'a': (i % 10) / 10}
    ...     model.learn_one(x, 2.0 * x['a'])
    ...     igs.observe_one(x)
    ...     igs.learn_one(x, 2.0 * x['a'])
    >>> round(igs.score_one({'a': 0.45}, {}), 3), round(igs.score_one({'a': 4.0}, {}), 3)
    (0.073, 0.49)

    """

    tasks = ("regression",)

    def __init__(self, memory: int = 500) -> None:
        _check_memory(memory)
        self.memory = memory
        self._window = LabeledWindow(memory)
        self._model: Any = None
        self._n = 0
        self._mean = 0.0
        self._m2 = 0.0

    def setup(self, model: Any) -> None:
        self._model = model

    def score_one(self, x: Features, proba: Proba) -> float:
        window = self._window
        if window.n == 0 or self._model is None:
            return 1.0
        prediction = self._model.predict_one(x)
        try:
            f = float(prediction)
        except (TypeError, ValueError):
            return 1.0
        if not math.isfinite(f):
            return 1.0
        sigma = math.sqrt(self._m2 / self._n) if self._n > 1 else 0.0
        with np.errstate(invalid="ignore", over="ignore"):
            dx = np.sqrt(window.squared_distances(x) / max(window.dimension, len(x), 1))
            dy = np.abs(f - window.targets()) / (sigma if sigma > 0.0 else 1.0)
            g = float(np.min(dx * dy))
        if math.isnan(g):  # 0 · inf
            return 1.0
        return clip01(g / (1.0 + g)) if g < math.inf else 1.0

    def observe_one(self, x: Features) -> None:
        self._window.observe(x)

    def learn_one(self, x: Features, y: Any) -> None:
        y = float(y)
        self._window.add(x, y)
        self._n += 1
        delta = y - self._mean
        self._mean += delta / self._n
        self._m2 += delta * (y - self._mean)

