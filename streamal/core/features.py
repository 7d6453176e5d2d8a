"""Instance features → the numeric dict a River model learns from.

Features are free (only labels cost), so every statistic here is learned from
*every* instance, labeled or not: the standardisation of numbers and the
document frequencies of free text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from river import feature_extraction


class Featurizer:
    """Numbers, categories and free text, as one numeric dict.

    - numbers (and booleans, as 0/1) are kept, standardised with a running
      mean and variance over all instances when ``scale`` is true;
    - other strings are categories, one-hot encoded online as ``name=value``
      (a category first seen mid-stream simply becomes a new feature);
    - features named in ``text_features`` are free text, turned into
      TF-IDF weights (River's ``feature_extraction.TFIDF``) of
      ``name:token``, with document frequencies learned from every instance.

    Non-finite numbers and ``None`` are dropped (a missing value).

    >>> f = Featurizer(text_features=["body"])
    >>> for x in ({"amount": 10.0, "country": "fr", "body": "refund please"},
    ...           {"amount": 30.0, "country": "de", "body": "login broken"}):
    ...     z = f.learn_transform(x)
    >>> {k: round(v, 2) for k, v in sorted(z.items())}
    {'amount': 1.0, 'body:broken': 0.71, 'body:login': 0.71, 'country=de': 1.0}

    """

    def __init__(self, text_features: Iterable[str] = (), scale: bool = True) -> None:
        self.text_features = tuple(text_features)
        self.scale = scale
        self._text = {
            name: feature_extraction.TFIDF(on=name) for name in self.text_features
        }
        # name → [count, mean, M2] (Welford)
        self._stats: dict[str, list[float]] = {}

    def learn_one(self, x: Mapping[str, Any]) -> None:
        """Update the label-free statistics with one instance."""
        stats = self._stats
        for k, v in x.items():
            if k in self._text:
                if isinstance(v, str):
                    self._text[k].learn_one(x)
                continue
            if v.__class__ is float or v.__class__ is int or v.__class__ is bool:
                v = float(v)
                if v - v != 0.0:  # inf or NaN
                    continue
                s = stats.get(k)
                if s is None:
                    stats[k] = [1.0, v, 0.0]
                    continue
                s[0] += 1.0
                d = v - s[1]
                s[1] += d / s[0]
                s[2] += d * (v - s[1])

    def transform_one(self, x: Mapping[str, Any]) -> dict[str, float]:
        """The numeric features of one instance under the current statistics."""
        out: dict[str, float] = {}
        stats = self._stats if self.scale else None
        for k, v in x.items():
            if k in self._text:
                if isinstance(v, str):
                    for token, w in self._text[k].transform_one(x).items():
                        out[f"{k}:{token}"] = w
                continue
            cls = v.__class__
            if cls is float or cls is int or cls is bool:
                v = float(v)
                if v - v != 0.0:
                    continue
                if stats is not None:
                    s = stats.get(k)
                    if s is not None and s[0] > 1.0 and s[2] > 0.0:
                        v = (v - s[1]) / math.sqrt(s[2] / s[0])
                    else:
                        v = 0.0 if s is not None else v
                out[k] = v
            elif cls is str:
                out[f"{k}={v}"] = 1.0
        return out

    def learn_transform(self, x: Mapping[str, Any]) -> dict[str, float]:
        """``learn_one`` then ``transform_one``, fused: this runs once per instance."""
        if self._text:
            self.learn_one(x)
            return self.transform_one(x)
        out: dict[str, float] = {}
        stats = self._stats
        scale = self.scale
        for k, v in x.items():
            cls = v.__class__
            if cls is float or cls is int or cls is bool:
                if v - v != 0.0:  # inf or NaN: a missing value
                    continue
                if cls is not float:
                    v = float(v)
                s = stats.get(k)
                if s is None:
                    stats[k] = [1.0, v, 0.0]
                    out[k] = 0.0 if scale else v
                    continue
                old = s[1]
                n = s[0] + 1.0
                mean = old + (v - old) / n
                m2 = s[2] + (v - old) * (v - mean)
                s[0] = n
                s[1] = mean
                s[2] = m2
                if scale:
                    out[k] = (v - mean) * (n / m2) ** 0.5 if m2 > 0.0 else 0.0
                else:
                    out[k] = v
            elif cls is str:
                out[f"{k}={v}"] = 1.0
        return out
