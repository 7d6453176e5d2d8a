"""Instance features → the numeric dict a River model learns from.

Features are free (only labels cost), so every statistic here is learned from
*every* instance, labeled or not: the standardisation of numbers and the
document frequencies of free text.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from river import base, feature_extraction

from streamal.core.errors import ParameterError


def _other_number(v: Any) -> float | None:
    """A number of a type other than ``float``/``int``/``bool`` as a float; ``None`` if it is no number.

    >>> _other_number(np.float32(0.5)), _other_number(np.bool_(True)), _other_number([1])
    (0.5, 1.0, None)
    """
    if isinstance(v, (numbers.Real, np.bool_)):
        return float(v)
    return None


class Featurizer(base.Transformer):
    """Numbers, categories and free text, as one numeric dict.

    - numbers (and booleans, as 0/1) are kept, standardised with a running
      mean and variance over all instances when ``scale`` is true;
    - other strings are categories, one-hot encoded online as ``name=value``
      (a category first seen mid-stream simply becomes a new feature);
    - features named in ``text_features`` are free text, turned into
      TF-IDF weights (River's ``feature_extraction.TFIDF``) of
      ``name:token``, with document frequencies learned from every instance;
      each field's vector has L2 norm ``text_norm`` (River's is 1). For a
      linear model trained by plain SGD, scaling a block by ``s`` is the same
      as a step ``s²`` times larger on that block alone: the default model
      asks for a larger step on text than on numbers and categories (see
      :func:`streamal.core.models.text_norm`), so neither kind drowns the
      other.

    A River transformer: ``featurizer | model`` is a River pipeline (what
    ``streamal export`` writes).

    Non-finite numbers and ``None`` are dropped (a missing value). Numbers of
    other types (numpy scalars, ``Fraction``) count as the float they convert
    to, one by one as in a batch.

    The running mean and variance use shifted sums: with ``K`` the feature's
    first value and ``d = x − K``, ``n``, ``S = Σd`` and ``Q = Σd²`` give
    ``mean = K + S/n`` and ``var = Q/n − (S/n)²`` (the shifted-data
    algorithm; Chan, Golub & LeVeque 1983). Shifting by a value of the data
    keeps the subtraction well conditioned, and plain running sums, unlike
    Welford's update, are cumulative sums over a batch:
    :meth:`learn_transform_many` gives the same floats with numpy.

    >>> f = Featurizer(text_features=["body"])
    >>> for x in ({"amount": 10.0, "country": "fr", "body": "refund please"},
    ...           {"amount": 30.0, "country": "de", "body": "login broken"}):
    ...     z = f.learn_transform(x)
    >>> {k: round(v, 2) for k, v in sorted(z.items())}
    {'amount': 1.0, 'body:broken': 0.71, 'body:login': 0.71, 'country=de': 1.0}

    """

    #: A featurizer pickled before ``text_norm`` existed (an old checkpoint)
    #: keeps the unit norm its model was trained with.
    text_norm = 1.0

    def __init__(self, text_features: Iterable[str] = (), scale: bool = True, text_norm: float = 1.0) -> None:
        if isinstance(text_norm, bool) or not (isinstance(text_norm, (int, float)) and 0.0 < text_norm < math.inf):
            raise ParameterError("text_norm", f"must be a finite number > 0, got {text_norm!r}")
        self.text_features = tuple(text_features)
        self.scale = scale
        self.text_norm = text_norm
        self._text = {
            name: feature_extraction.TFIDF(on=name) for name in self.text_features
        }
        # name → [n, K, S, Q] (see the class docstring)
        self._stats: dict[str, list[float]] = {}

    def learn_one(self, x: Mapping[str, Any]) -> None:
        """Update the label-free statistics with one instance (number statistics only when standardising)."""
        if self._text:
            for k, v in x.items():
                if k in self._text and isinstance(v, str):
                    self._text[k].learn_one(x)
        if self.scale:
            self._learn_numbers(x)  # the standardised values it returns are not needed here

    def transform_one(self, x: Mapping[str, Any]) -> dict[str, float]:
        """The numeric features of one instance under the current statistics."""
        out: dict[str, float] = {}
        stats = self._stats if self.scale else None
        for k, v in x.items():
            if k in self._text:
                if isinstance(v, str):
                    norm = self.text_norm
                    for token, w in self._text[k].transform_one(x).items():
                        out[f"{k}:{token}"] = w * norm
                continue
            cls = v.__class__
            if cls is not float and cls is not int and cls is not bool and cls is not str:
                v = _other_number(v)  # numpy scalars and the like; None: dropped
                if v is None:
                    continue
                cls = float
            if cls is float or cls is int or cls is bool:
                if v - v != 0.0:
                    continue
                v = float(v)
                if stats is not None:
                    s = stats.get(k)
                    if s is None:
                        out[k] = v  # never seen: no statistics to standardise with
                        continue
                    n = s[0]
                    mean = s[2] / n
                    var = s[3] / n - mean * mean
                    v = (v - s[1] - mean) / math.sqrt(var) if var > 0.0 else 0.0
                out[k] = v
            elif cls is str:
                out[f"{k}={v}"] = 1.0
        return out

    def learn_transform(self, x: Mapping[str, Any]) -> dict[str, float]:
        """``learn_one`` then ``transform_one``, fused: this runs once per instance."""
        if self._text or not self.scale:
            self.learn_one(x)
            return self.transform_one(x)
        return self._learn_numbers(x)

    def _learn_numbers(self, x: Mapping[str, Any]) -> dict[str, float]:
        """Learn the numbers of ``x``; its numbers standardised and its categories one-hot."""
        out: dict[str, float] = {}
        stats = self._stats
        sqrt = math.sqrt
        for k, v in x.items():
            cls = v.__class__
            if cls is not float and cls is not int and cls is not bool and cls is not str:
                v = _other_number(v)  # numpy scalars and the like; None: dropped
                if v is None:
                    continue
                cls = float
            if cls is float or cls is int or cls is bool:
                if v - v != 0.0:  # inf or NaN: a missing value
                    continue
                if cls is not float:
                    v = float(v)
                try:
                    s = stats[k]
                except KeyError:
                    stats[k] = [1.0, v, 0.0, 0.0]
                    out[k] = 0.0
                    continue
                d = v - s[1]
                s[0] = n = s[0] + 1.0
                s[2] = total = s[2] + d
                s[3] = squares = s[3] + d * d
                mean = total / n
                var = squares / n - mean * mean
                out[k] = (d - mean) / sqrt(var) if var > 0.0 else 0.0
            elif cls is str:
                out[f"{k}={v}"] = 1.0
        return out

    def learn_transform_many(self, xs: Sequence[Mapping[str, Any]]) -> tuple[list[str], np.ndarray] | None:
        """``learn_transform`` of every instance, as one matrix (rows = ``xs``, columns = names).

        The same floats as one by one (cumulative sums in numpy add in the
        same order). Only for the common case of a batch of standardised,
        finite numbers under the same names in the same order; anything else
        returns ``None`` without learning, for the caller to go one by one.
        """
        if self._text or not self.scale or not xs:
            return None
        names = tuple(xs[0])
        for x in xs:
            if tuple(x) != names:
                return None
        if not names:
            return [], np.zeros((len(xs), 0))
        x = np.array([list(x.values()) for x in xs])
        if x.dtype.kind not in "biuf" or x.ndim != 2:  # strings, None, ints beyond 64 bits
            return None
        x = x.astype(float, copy=False)
        if not np.isfinite(x).all():
            return None
        stats = self._stats
        for j, k in enumerate(names):
            if k not in stats:
                stats[k] = [0.0, float(x[0, j]), 0.0, 0.0]
        state = np.array([stats[k] for k in names]).T  # rows n, K, S, Q
        n = state[0] + np.arange(1.0, len(xs) + 1.0)[:, None]
        d = x - state[1]
        total = np.cumsum(np.vstack([state[2], d]), axis=0)[1:]
        squares = np.cumsum(np.vstack([state[3], d * d]), axis=0)[1:]
        mean = total / n
        var = squares / n - mean * mean
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (d - mean) / np.sqrt(var)
        z[~(var > 0.0)] = 0.0
        for j, k in enumerate(names):
            s = stats[k]
            s[0], s[2], s[3] = float(n[-1, j]), float(total[-1, j]), float(squares[-1, j])
        return list(names), z
