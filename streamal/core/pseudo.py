"""Pseudo-labels for confident instances: when an unasked instance is learned with the model's own prediction.

Cost-Effective Active Learning (CEAL) [1] lets people label the instances the
model is least sure of and learns the ones it is very sure of with its own
prediction, a *pseudo-label*. :class:`PseudoLabels` is that rule for a
stream; :meth:`streamal.ActiveLearner.pseudo_label` applies it after a label
decision, and ``ActiveLearner.learn(x, y, pseudo=True)`` learns the result
through the one learn path (the service writes it to the training topic
first, as a record with ``"source": "pseudo"``).

Off by default everywhere: ``python -m benchmarks.pseudo_labels`` measured
that CEAL's thresholds barely move accuracy and that looser rules lose
(figures in that module's docstring and in ``docs/pseudo_labels.md``).

[1] K. Wang, D. Zhang, Y. Li, R. Zhang, L. Lin. Cost-Effective Active
Learning for Deep Image Classification. IEEE TCSVT 27(12), 2017.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping

from streamal.core.errors import ParameterError

__all__ = ["PseudoLabels"]


class PseudoLabels:
    """Learn an unasked instance with its predicted class when the model is confident enough (CEAL [1]).

    After the label decision, an instance that was **not** asked for, whose
    prediction is ŷ = argmax_y p(y | x), becomes the pseudo-label (x, ŷ) when

    - the model is confident: max_y p(y | x) ≥ δ (``min_proba``);
    - the warm-up is over: n_real ≥ w real labels learned (``warmup``);
    - the cap holds: n_pseudo < k · n_real (``per_label``), so pseudo-labels
      never swamp the real ones; in the service, the pseudo-labels decided
      but not yet read back from the training topic count as learned.

    Classification only (a regressor has no class probabilities);
    :class:`~streamal.ActiveLearner` refuses it for regression. Cost: one
    ``max`` over the class probabilities of each unasked instance, and one
    ``learn`` per pseudo-label. The rule keeps no state; the counts are the
    learner's (``n_real``, ``n_pseudo``).

    Measured with the default learner on nine anchor streams at 1 % and 5 %
    (``benchmarks/pseudo_labels.py``): δ = 0.95 or 0.99 with k = 1 or 5 almost
    never fires (≤ 1.5 pseudo-labels per real label at 5 %, ~0.01 at 1 %) and
    moves mean accuracy by −0.00 to +0.02 points; δ = 0.80 fires at the cap,
    17–34 % of its pseudo-labels are wrong, and it loses 0.9–4.6 points on
    average. Hence off by default, and δ = 0.99 when on.

    Parameters
    ----------
    min_proba
        δ, the lowest top-class probability that makes a pseudo-label, in (0, 1].
    warmup
        w, the real labels to learn before the first pseudo-label (≥ 0).
    per_label
        k, the most pseudo-labels per real label (> 0).

    >>> rule = PseudoLabels()
    >>> rule.allows({"spam": 0.995, "ham": 0.005}, real=30, pseudo=4)
    True
    >>> rule.allows({"spam": 0.9, "ham": 0.1}, real=30, pseudo=4)  # not confident enough
    False
    >>> rule.allows({"spam": 0.995, "ham": 0.005}, real=10, pseudo=0)  # warming up
    False
    >>> rule.allows({"spam": 0.995, "ham": 0.005}, real=30, pseudo=30)  # one per real label at most
    False

    On a stream, with a looser δ = 0.8 and k = 5 (the benchmark's ``p80k5``):

    >>> from river import datasets
    >>> from streamal import ActiveLearner
    >>> al = ActiveLearner(budget=0.05, seed=42, pseudo_labels=PseudoLabels(min_proba=0.8, per_label=5))
    >>> for x, y in datasets.Phishing():
    ...     d = al.ask(x)
    ...     if d.query:
    ...         al.learn(x, y)
    ...     elif (y_hat := al.pseudo_label(x, d)) is not None:
    ...         al.learn(x, y_hat, pseudo=True)
    >>> al.n_real, al.n_pseudo
    (63, 315)

    """

    def __init__(self, min_proba: float = 0.99, warmup: int = 20, per_label: float = 1.0) -> None:
        if isinstance(min_proba, bool) or not (isinstance(min_proba, (int, float)) and 0.0 < min_proba <= 1.0):
            raise ParameterError("min_proba", f"must be a probability in (0, 1], got {min_proba!r}")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ParameterError("warmup", f"must be a whole number of real labels >= 0, got {warmup!r}")
        if (isinstance(per_label, bool) or not isinstance(per_label, (int, float)) or not math.isfinite(per_label)
                or per_label <= 0):
            raise ParameterError("per_label", f"must be a finite number of pseudo-labels per real label > 0, "
                                              f"got {per_label!r}")
        self.min_proba = min_proba
        self.warmup = warmup
        self.per_label = per_label

    def confident(self, proba: Mapping[Hashable, float], real: int) -> bool:
        """Whether the model is sure enough of its prediction: max_y p(y | x) ≥ δ.

        ``real`` (real labels learned) is unused here; a variant may tighten
        with it (CEAL's decaying entropy threshold, in ``benchmarks/pseudo_labels.py``).
        """
        return max(proba.values()) >= self.min_proba

    def allows(self, proba: Mapping[Hashable, float], real: int, pseudo: int) -> bool:
        """Whether an unasked instance with class probabilities ``proba`` becomes a pseudo-label.

        ``real`` and ``pseudo`` are the real labels and the pseudo-labels
        learned so far (in the service, pseudo-labels decided but not yet
        learned included). The warm-up is checked first, then confidence,
        then the cap.
        """
        return (real >= self.warmup and bool(proba) and self.confident(proba, real)
                and pseudo < self.per_label * real)

    def __repr__(self) -> str:
        return f"PseudoLabels(min_proba={self.min_proba!r}, warmup={self.warmup!r}, per_label={self.per_label!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)
