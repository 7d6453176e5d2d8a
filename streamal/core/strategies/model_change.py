"""Expected model change for regression: how far a label would move the model.

Reference: W. Cai, Y. Zhang and J. Zhou, *Maximizing expected model change
for active learning in regression*, ICDM 2013.
"""

from __future__ import annotations

import math
from typing import Any

from streamal.core.strategies.base import Features, Proba, clip01, strategies
from streamal.core.strategies.committee import _Committee


@strategies.register("emcm")
class EMCM(_Committee):
    """Expected model change maximisation (EMCM) for a regressor, on a [0, 1] scale.

    Under squared loss a label y moves a linear model by the gradient
    ``(f(x) − y) · x̃`` with ``x̃ = (1, x)``; the unknown y is replaced by the
    predictions f_k(x) of K bootstrap models (a committee of ``size`` copies
    of the learner's model, trained with online-bagging weights k ~
    Poisson(1)), which gives Cai, Zhang & Zhou's

        EMCM(x) = (1/K) Σ_k |f(x) − f_k(x)| · ‖x̃‖,

    with f the learner's own model (Cai, Zhang & Zhou 2013). On a [0, 1] scale,
    ``score = EMCM / (EMCM + σ_y · m)`` with σ_y the running standard
    deviation of the labels and m the running mean of ‖x̃‖ over the stream
    (label-free). For models without gradients (trees) ‖x̃‖ is a documented
    approximation: the change a linear model with the same disagreement
    would undergo. Cai, Zhang and Zhou, *Maximizing expected model change
    for active learning in regression*, ICDM 2013. Cost: K + 1 predictions
    per instance, K·Poisson(1) updates per label.

    >>> from river import linear_model
    >>> model = linear_model.LinearRegression()
    >>> emcm = EMCM(size=3, seed=1)
    >>> emcm.setup(model)
    >>> for i in range(40):
    ...     x = {'a': (i % 10) / 10}
    ...     emcm.observe_one(x)
    ...     model.learn_one(x, 2.0 * x['a'])
    ...     emcm.learn_one(x, 2.0 * x['a'])
    >>> round(emcm.score_one({'a': 0.5}, {}), 3), round(emcm.score_one({'a': 6.0}, {}), 3)
    (0.101, 0.717)

    """

    tasks = ("regression",)

    def __init__(self, size: int = 4, seed: int = 0) -> None:
        super().__init__(size=size, seed=seed)
        self._model: Any = None
        self._seen = 0
        self._mean_norm = 0.0

    def setup(self, model: Any) -> None:
        super().setup(model)
        self._model = model
        self._regression = True

    @staticmethod
    def _norm(x: Features) -> float:
        return math.sqrt(1.0 + sum(v * v for v in x.values()))

    def score_one(self, x: Features, proba: Proba) -> float:
        if self._model is None or not self._members:
            return 1.0
        try:
            f = float(self._model.predict_one(x) or 0.0)
            preds = [float(m.predict_one(x) or 0.0) for m in self._members]
        except (TypeError, ValueError):
            return 1.0
        change = sum(abs(f - p) for p in preds) / len(preds) * self._norm(x)
        sigma = math.sqrt(self._m2 / self._n) if self._n > 1 else 0.0
        scale = sigma * (self._mean_norm if self._seen else 1.0)
        if change == 0.0:
            return 0.0 if scale > 0.0 else 1.0
        if math.isnan(change):  # inf − inf
            return 1.0
        return clip01(change / (change + scale)) if change < math.inf else 1.0

    def observe_one(self, x: Features) -> None:
        self._seen += 1
        self._mean_norm += (self._norm(x) - self._mean_norm) / self._seen
