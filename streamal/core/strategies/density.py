"""Density weighting: informative *and* representative instances.

Reference: B. Settles and M. Craven, *An analysis of active learning strategies
for sequence labeling tasks*, EMNLP 2008 (information density).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from streamal.core.errors import ParameterError
from streamal.core.strategies.base import Features, Proba, Strategy, clip01, strategies


@strategies.register("density_weighted")
class DensityWeighted(Strategy):
    """``base(x) · density(x)^β``, so outliers are not over-asked.

    ``density(x) = exp(−‖x − c*‖² / (2 h²))`` where c* is the nearest of
    ``n_centroids`` centroids kept by sequential k-means over every instance
    of the stream (labels are not needed: features are free), and h² is the
    running mean of the squared distance to the nearest centroid. An instance
    near where the stream's mass is gets a density near 1; a far outlier gets
    a density near 0. This is the information density of Settles & Craven
    (2008), with a streaming density estimate in place of the pool's mean
    similarity. Cost: O(n_centroids · d) per instance on top of the base
    strategy.

    >>> dw = DensityWeighted(base="margin", n_centroids=2)
    >>> for i in range(200):
    ...     dw.observe_one({'a': (i % 2) * 10.0 + (i % 7) / 7})
    >>> typical = dw.score_one({'a': 10.3}, {'x': 0.5, 'y': 0.5})
    >>> outlier = dw.score_one({'a': 40.0}, {'x': 0.5, 'y': 0.5})
    >>> round(typical, 2), round(outlier, 2)
    (0.91, 0.0)

    """

    # Regression too when the base strategy does (e.g. base="variance_reduction").
    tasks = ("classification",)

    def __init__(
        self, base: str | Strategy = "margin", beta: float = 1.0, n_centroids: int = 16
    ) -> None:
        if not 0.0 <= beta < math.inf:
            raise ParameterError("beta", f"must be a finite number ≥ 0, got {beta!r}")
        if not (isinstance(n_centroids, numbers.Integral) and n_centroids >= 1):
            raise ParameterError("n_centroids", f"must be an integer ≥ 1, got {n_centroids!r}")
        self.base = base
        self.beta = beta
        self.n_centroids = n_centroids
        if isinstance(base, str):
            try:
                factory = strategies.factory(base)
            except ValueError as exc:
                raise ParameterError("base", str(exc)) from None
            self._base = factory()
        else:
            self._base = base
        self.tasks = self._base.tasks
        self._centroids: list[dict[str, float]] = []
        self._counts: list[int] = []
        self._n = 0
        self._h2 = 0.0

    def setup(self, model: Any) -> None:
        self._base.setup(model)

    def learn_one(self, x: Features, y: Any) -> None:
        self._base.learn_one(x, y)

    @staticmethod
    def _sqdist(x: Features, c: dict[str, float]) -> float:
        d = sum((v - c.get(k, 0.0)) * (v - c.get(k, 0.0)) for k, v in x.items())  # x * x: inf, where x ** 2 raises
        return d + sum(w * w for k, w in c.items() if k not in x)

    def _nearest(self, x: Features) -> tuple[int, float]:
        best, best_d = -1, math.inf
        for i, c in enumerate(self._centroids):
            d = self._sqdist(x, c)
            if d < best_d:
                best, best_d = i, d
        return best, best_d

    def density(self, x: Features) -> float:
        if not self._centroids or self._h2 <= 0.0:
            return 1.0
        return math.exp(-self._nearest(x)[1] / (2.0 * self._h2))

    def score_one(self, x: Features, proba: Proba) -> float:
        base = self._base.score_one(x, proba)
        return clip01(base * self.density(x) ** self.beta)

    def observe_one(self, x: Features) -> None:
        self._base.observe_one(x)
        self._n += 1
        if len(self._centroids) < self.n_centroids:
            self._centroids.append(dict(x))
            self._counts.append(1)
            return
        i, d = self._nearest(x)
        self._h2 += (d - self._h2) / self._n
        self._counts[i] += 1
        c, rate = self._centroids[i], 1.0 / self._counts[i]
        for k in c.keys() | x.keys():
            c[k] = c.get(k, 0.0) + rate * (x.get(k, 0.0) - c.get(k, 0.0))
