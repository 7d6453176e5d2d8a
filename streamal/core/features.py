"""Instance features → the numeric dict a River model learns from.

Features are free (only labels cost), so every statistic here is learned from
*every* instance, labeled or not: the standardisation of numbers and the
document frequencies of free text.
"""

from __future__ import annotations

import collections
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
from river import base, feature_extraction

from streamal.core.errors import ParameterError


#: Clusters of the online spherical k-means each text field keeps (see
#: :class:`_Clusters`). Chosen on data other than the Debian stream of
#: ``benchmarks/text.py``: the held-out Debian sections of
#: ``benchmarks/text_heldout.py`` (three shuffles) and the three generated
#: ticket streams, default learner, accuracy % at 1 / 5 / 10 / 20 %, sublinear
#: TF-IDF alone → with 64 clusters → with 128: held-out 37.6 / 62.3 / 71.4 /
#: 76.9 → 43.1 / 65.9 / 72.6 / 76.3 → 44.7 / 65.7 / 72.7 / 76.9; tickets
#: (mean of three) 31.0 / 60.7 / 71.1 / 77.3 → 43.5 / 69.5 / 75.6 / 79.2 →
#: 45.1 / 70.0 / 74.5 / 79.4. 16 clusters: 41.2 / 62.7 / 69.1 / 74.6 on the
#: first held-out order (64: 46.8 / 64.3 / 71.3 / 75.3; 256: 45.0 / 63.8 /
#: 70.3 / 75.6).
TEXT_CLUSTERS = 128
#: An instance is described by its ``TEXT_CLUSTER_TOP`` most similar clusters,
#: weighted by cosine similarity (held-out, first order: top 1 46.8 / 64.3 /
#: 71.3 / 75.3, top 3 47.1 / 64.7 / 72.4 / 76.3; three orders, top 3 vs top
#: 5: 43.1 / 65.9 / 72.6 / 76.3 vs 41.9 / 65.2 / 72.2 / 76.4).
TEXT_CLUSTER_TOP = 3
#: Norm of a text field's cluster block relative to its TF-IDF block:
#: ``sqrt(1/10)``, i.e. for the default model a step of 1 on the clusters
#: (which are few and updated on most labels) beside 10 on the words (see
#: :data:`streamal.core.models.TEXT_STEP`). Held-out, first order, steps 0.3 /
#: 1 / 3 with top 1: 39.8 / 60.6 / 71.0 / 76.7, 46.8 / 64.3 / 71.3 / 75.3,
#: 47.5 / 59.5 / 67.2 / 71.8; three orders with top 3, step 2: 47.5 / 65.6 /
#: 70.9 / 75.8 (step 1: 43.1 / 65.9 / 72.6 / 76.3).
TEXT_CLUSTER_SCALE = math.sqrt(0.1)
#: The clusters know at most this many distinct words per text field (the
#: first seen; later new words still count in TF-IDF, not in the clusters), so
#: their memory is bounded: 4 · ``TEXT_CLUSTERS`` bytes a word, 16 MB in all.
TEXT_CLUSTER_WORDS = 32_768


class _Clusters:
    """Online spherical k-means over one text field's TF-IDF vectors, learned from every instance.

    Labels are scarce and text is free: documents that share words cluster
    together long before any of them is labeled, so a label on one document
    of a cluster says something about every other one, including documents
    that share no word with it. The first ``k`` documents open the ``k``
    clusters; each later one joins the cluster whose centroid is nearest in
    cosine and is added to its sum (Dhillon & Modha 2001, "Concept
    decompositions for large sparse text data using clustering", online).
    A centroid is kept as the sum ``S_c`` of its unit document vectors, a
    row per word (``words × k``), with ``|S_c|²`` updated as
    ``|S_c + d|² = |S_c|² + 2 S_c·d + 1``: learning and scoring a document
    touch only its own words' rows. Cost per instance: one ``(words × k)``
    gather and product (~30 µs at 128 clusters); memory: ``4 k`` bytes per
    distinct word, for at most ``max_words`` words (the first seen).
    """

    def __init__(self, k: int, max_words: int = TEXT_CLUSTER_WORDS) -> None:
        self.k = k
        self.max_words = max_words
        self._rows: dict[str, int] = {}
        self._sums = np.zeros((256, k), dtype=np.float32)
        self._norms2 = np.zeros(k)
        self._used = 0

    def _vector(self, weights: Mapping[str, float], learn: bool) -> tuple[list[int], np.ndarray]:
        """The rows of ``weights``' words (new words get one when learning) and their unit weights."""
        rows, values = [], []
        index = self._rows
        for token, w in weights.items():
            i = index.get(token)
            if i is None:
                if not learn or len(index) >= self.max_words:
                    continue
                i = index[token] = len(index)
                if i >= len(self._sums):
                    self._sums = np.vstack([self._sums, np.zeros_like(self._sums)])
            rows.append(i)
            values.append(w)
        v = np.array(values)
        norm = math.sqrt(float(v @ v)) if rows else 0.0
        return rows, (v / norm if norm else v)

    def _similarities(self, rows: list[int], v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``S_c · v`` and the cosine of ``v`` with each opened centroid."""
        raw = v @ self._sums[rows][:, : self._used]
        return raw, raw / np.sqrt(self._norms2[: self._used])

    def learn_transform(self, weights: Mapping[str, float], top: int) -> list[tuple[int, float]]:
        """Add the document to its cluster (or open one), then :meth:`transform` it, sharing the work."""
        rows, v = self._vector(weights, learn=True)
        if not rows or not v.any():
            return []
        if self._used < self.k:
            c = self._used
            self._used += 1
            self._sums[rows, c] += v
            self._norms2[c] += 1.0
            return self._top(self._similarities(rows, v)[1], top)
        dots, cosines = self._similarities(rows, v)
        c = int(np.argmax(cosines))
        self._sums[rows, c] += v
        self._norms2[c] += 2.0 * float(dots[c]) + 1.0
        dots[c] += 1.0  # v · (S_c + v), v of unit norm
        return self._top(dots / np.sqrt(self._norms2[: self._used]), top)

    def transform(self, weights: Mapping[str, float], top: int) -> list[tuple[int, float]]:
        """The ``top`` most similar clusters with positive cosine, as ``(cluster, weight)`` of unit norm."""
        rows, v = self._vector(weights, learn=False)
        if not rows or not self._used:
            return []
        return self._top(self._similarities(rows, v)[1], top)

    @staticmethod
    def _top(cosines: np.ndarray, top: int) -> list[tuple[int, float]]:
        best = np.argsort(-cosines, kind="stable")[:top]
        pairs = [(int(c), float(cosines[c])) for c in best if cosines[c] > 0.0]
        norm = math.sqrt(sum(w * w for _, w in pairs))
        return [(c, w / norm) for c, w in pairs]


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
      TF-IDF weights of ``name:token`` (River's ``feature_extraction.TFIDF``
      tokens and document frequencies, learned from every instance) with
      sublinear term frequency ``1 + log(count)``; each field's vector has L2
      norm ``text_norm`` (River's is 1). For a linear model trained by plain
      SGD, scaling a block by ``s`` is the same as a step ``s²`` times larger
      on that block alone: the default model asks for a larger step on text
      than on numbers and categories (see
      :func:`streamal.core.models.text_norm`), so neither kind drowns the
      other;
    - each text field also gets ``name#c`` features: its ``text_clusters``
      clusters of an online k-means over every instance's text (see
      :class:`_Clusters`); the ``TEXT_CLUSTER_TOP`` nearest, weighted by
      cosine, in a block of norm ``TEXT_CLUSTER_SCALE · text_norm``. Labels
      spread over a cluster's documents through it, which matters most with
      few labels (:data:`TEXT_CLUSTERS`); ``text_clusters=0`` leaves them out.

    Sublinear term frequency instead of River's ``count / length``: chosen on
    the held-out Debian sections of ``benchmarks/text_heldout.py`` (four
    orders, default learner, accuracy % at 1 / 5 / 10 / 20 %): 35.9 / 61.3 /
    69.8 / 75.7 → 36.2 / 62.6 / 71.5 / 76.7; word bigrams on top of it lost
    0.5–2 points, letters-only tokens, IDF powers 0.7 / 1.5 / 2 and binary
    counts did not help.

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
    {'amount': 1.0, 'body#1': 0.32, 'body:broken': 0.71, 'body:login': 0.71, 'country=de': 1.0}

    """

    #: A featurizer pickled before these existed (an old checkpoint) keeps
    #: what its model was trained with: unit norm, River's term frequency,
    #: no clusters.
    text_norm = 1.0
    text_clusters = 0
    _clusters: Mapping[str, _Clusters] = MappingProxyType({})
    sublinear_tf = False

    def __init__(
        self, text_features: Iterable[str] = (), scale: bool = True, text_norm: float = 1.0,
        text_clusters: int = TEXT_CLUSTERS,
    ) -> None:
        if isinstance(text_norm, bool) or not (isinstance(text_norm, (int, float)) and 0.0 < text_norm < math.inf):
            raise ParameterError("text_norm", f"must be a finite number > 0, got {text_norm!r}")
        if isinstance(text_clusters, bool) or not isinstance(text_clusters, int) or text_clusters < 0:
            raise ParameterError("text_clusters", f"must be an integer >= 0, got {text_clusters!r}")
        self.text_features = tuple(text_features)
        self.scale = scale
        self.text_norm = text_norm
        self.text_clusters = text_clusters
        self.sublinear_tf = True
        self._text = {
            name: feature_extraction.TFIDF(on=name) for name in self.text_features
        }
        self._clusters = {name: _Clusters(text_clusters) for name in self.text_features} if text_clusters else {}
        # name → [n, K, S, Q] (see the class docstring)
        self._stats: dict[str, list[float]] = {}

    def _tfidf(self, name: str, terms: list[str]) -> dict[str, float]:
        """The unit TF-IDF vector of a field's tokens (River's weights, or sublinear term frequency)."""
        tfidf = self._text[name]
        if not self.sublinear_tf:
            return tfidf.transform_one({name: " ".join(terms)}) if terms else {}
        counts = collections.Counter(terms)
        dfs, log, top = tfidf.dfs, math.log, 1.0 + tfidf.n
        weights = {t: (1.0 + log(c)) * (log(top / (1.0 + dfs[t])) + 1.0) for t, c in counts.items()}
        norm = math.sqrt(sum(w * w for w in weights.values()))
        return {t: w / norm for t, w in weights.items()} if norm else weights

    def _learn_text(self, name: str, x: Mapping[str, Any]) -> tuple[dict[str, float], list[tuple[int, float]]]:
        """Learn a text field's document frequencies and clusters from ``x``; its TF-IDF vector and clusters after."""
        tfidf = self._text[name]
        terms = list(tfidf.process_text(x))
        tfidf.dfs.update(set(terms))  # what TFIDF.learn_one does, without tokenising twice
        tfidf.n += 1
        weights = self._tfidf(name, terms)
        clusters = self._clusters.get(name)
        return weights, (clusters.learn_transform(weights, TEXT_CLUSTER_TOP) if clusters is not None else [])

    def _text_features(self, name: str, weights: dict[str, float], near: list[tuple[int, float]],
                       out: dict[str, float]) -> None:
        """Write a text field's TF-IDF and cluster features into ``out``."""
        norm = self.text_norm
        for token, w in weights.items():
            out[f"{name}:{token}"] = w * norm
        norm *= TEXT_CLUSTER_SCALE
        for c, w in near:
            out[f"{name}#{c}"] = w * norm

    def learn_one(self, x: Mapping[str, Any]) -> None:
        """Update the label-free statistics with one instance (number statistics only when standardising)."""
        if self._text:
            for k, v in x.items():
                if k in self._text and isinstance(v, str):
                    self._learn_text(k, x)
        if self.scale:
            self._learn_numbers(x)  # the standardised values it returns are not needed here

    def transform_one(
        self, x: Mapping[str, Any], _text: Mapping[str, tuple[dict[str, float], list[tuple[int, float]]]] | None = None
    ) -> dict[str, float]:
        """The numeric features of one instance under the current statistics (``_text``: its text, done already)."""
        out: dict[str, float] = {}
        stats = self._stats if self.scale else None
        for k, v in x.items():
            if k in self._text:
                if isinstance(v, str):
                    if _text is not None:
                        weights, near = _text[k]
                    else:
                        weights = self._tfidf(k, list(self._text[k].process_text(x)))
                        clusters = self._clusters.get(k)
                        near = clusters.transform(weights, TEXT_CLUSTER_TOP) if clusters is not None else []
                    self._text_features(k, weights, near, out)
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
        if self._text:
            text = {k: self._learn_text(k, x) for k, v in x.items() if k in self._text and isinstance(v, str)}
            if self.scale:
                self._learn_numbers(x)
            return self.transform_one(x, text)
        if not self.scale:
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
