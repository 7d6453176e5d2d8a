"""Benchmark streams: the nine anchor streams and a second, untuned set.

The nine ``ANCHOR_STREAMS`` are built exactly as
``shared/anchors/label_efficiency.md`` defines them; ``EXTRA_STREAMS`` use
other River generators and seeds and were not tuned to any result.

Every stream is a :class:`Stream`: re-iterable (each ``iter()`` rebuilds the
generator from its seeds, so two passes are identical), of known length, and
yielding ``(x, y)`` with ``x`` a feature dict and ``y`` an ``int`` in
``0..K-1``. Labels are mapped through ``Stream.classes`` (the raw labels in
*sorted* order, so ``False -> 0, True -> 1`` and ImageSegments' categories
alphabetically). Nothing is written to disk; the real-world streams are the
data files shipped inside the River wheel.

>>> s = load("sea_abrupt")
>>> len(s), s.n_classes
(20000, 2)
>>> sum(1 for _ in s) == len(s)
True
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from river import datasets
from river.datasets import synth

__all__ = [
    "ANCHOR_STREAMS",
    "EXTRA_STREAMS",
    "STREAMS",
    "TEXT_STREAMS",
    "Stream",
    "load",
]

RawStream = Iterable[tuple[dict[Any, Any], Hashable]]


@dataclass(frozen=True)
class Stream:
    """A named, finite, re-iterable classification stream.

    Attributes:
        name: registry name (``load(name)``).
        kind: ``"real"``, ``"abrupt"``, ``"gradual"``, ``"incremental"``,
            ``"new_class"``, ``"imbalanced"`` or ``"stationary"``.
        n: number of instances yielded per pass.
        classes: raw labels; ``classes[i]`` is yielded as ``i``.
        description: one line saying how the stream is built.
        factory: builds a fresh raw ``(x, raw_y)`` iterable (at least ``n`` long).
        text_features: the features that are free text (give them to the
            learner as ``text_features``).
    """

    name: str
    kind: str
    n: int
    classes: tuple[Hashable, ...]
    description: str
    factory: Callable[[], RawStream] = field(repr=False, compare=False)
    text_features: tuple[str, ...] = ()

    @property
    def n_classes(self) -> int:
        """Number of classes K (labels are ``0..K-1``)."""
        return len(self.classes)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[dict[Any, Any], int]]:
        index = {c: i for i, c in enumerate(self.classes)}
        for x, y in itertools.islice(self.factory(), self.n):
            yield x, index[y]

    def raw(self) -> Iterator[tuple[dict[Any, Any], Hashable]]:
        """The first ``n`` instances with their original (unmapped) labels."""
        return itertools.islice(self.factory(), self.n)


# --------------------------------------------------------------------------
# helpers


def _chain_drifts(
    streams: list[Any], *, position: int, width: int, seeds: list[int]
) -> synth.ConceptDriftStream:
    """Nest ``ConceptDriftStream``s: ``streams[0] -> streams[1] -> ...``.

    ``seeds`` go from the outermost wrapper to the innermost. Each inner
    wrapper counts only the instances drawn from it, so with equal
    ``position`` the drifts land at ``position``, ``2*position``, ...
    """
    assert len(seeds) == len(streams) - 1
    inner = streams[-1]
    for stream, seed in zip(reversed(streams[:-1]), reversed(seeds)):
        inner = synth.ConceptDriftStream(
            stream=stream, drift_stream=inner, position=position, width=width, seed=seed
        )
    return inner


def _withhold_class(
    source: RawStream, label: Hashable, until: int
) -> Iterator[tuple[dict[Any, Any], Hashable]]:
    """Drop instances of ``label`` until ``until`` instances have been yielded."""
    emitted = 0
    for x, y in source:
        if y == label and emitted < until:
            continue
        emitted += 1
        yield x, y


def _imbalance(
    source: RawStream, minority: Hashable, rate: float, seed: int
) -> Iterator[tuple[dict[Any, Any], Hashable]]:
    """Subsample ``source`` so that about ``rate`` of the output is ``minority``.

    For every output slot a seeded RNG picks minority (prob. ``rate``) or
    majority; the next source instance of that group is yielded and the
    skipped ones are dropped, so instances stay i.i.d. within each group.
    """
    rng = random.Random(seed)
    it = iter(source)
    while True:
        want_minority = rng.random() < rate
        for x, y in it:
            if (y == minority) == want_minority:
                yield x, y
                break
        else:
            return


# --------------------------------------------------------------------------
# the nine anchor streams (label_efficiency.md, "Streams")


def _sea_abrupt(o: int = 0) -> RawStream:
    return _chain_drifts(
        [synth.SEA(variant=v, noise=0.1, seed=42 + v + o) for v in range(4)],
        position=5000,
        width=50,
        seeds=[52 + o, 53 + o, 54 + o],
    )


def _hyperplane_inc(o: int = 0) -> RawStream:
    return synth.Hyperplane(
        seed=42 + o,
        n_features=10,
        n_drift_features=5,
        mag_change=0.001,
        noise_percentage=0.05,
        sigma=0.1,
    )


def _agrawal_gradual(o: int = 0) -> RawStream:
    return _chain_drifts(
        [
            synth.Agrawal(classification_function=f, seed=s + o, perturbation=0.05)
            for f, s in [(0, 42), (2, 43), (5, 44)]
        ],
        position=7000,
        width=1000,
        seeds=[52 + o, 53 + o],
    )


def _rbf_drift(o: int = 0) -> RawStream:
    return synth.RandomRBFDrift(
        seed_model=42 + o,
        seed_sample=42 + o,
        n_classes=4,
        n_features=10,
        n_centroids=50,
        change_speed=0.0001,
        n_drift_centroids=50,
    )


def _led_drift(o: int = 0) -> RawStream:
    return synth.ConceptDriftStream(
        stream=synth.LED(seed=42 + o, noise_percentage=0.1, irrelevant_features=True),
        drift_stream=synth.LEDDrift(
            seed=43 + o, noise_percentage=0.1, irrelevant_features=True, n_drift_features=7
        ),
        position=10000,
        width=1000,
        seed=52 + o,
    )


_GENERATORS: dict[str, Callable[[int], RawStream]] = {
    "sea_abrupt": _sea_abrupt, "hyperplane_inc": _hyperplane_inc, "agrawal_gradual": _agrawal_gradual,
    "rbf_drift": _rbf_drift, "led_drift": _led_drift,
}


def reseeded(name: str, offset: int) -> RawStream:
    """The generated anchor stream ``name`` with every generator seed moved by ``offset`` (0: the anchor's).

    >>> a, b = next(iter(reseeded("hyperplane_inc", 0))), next(iter(_hyperplane_inc()))
    >>> a == b, next(iter(reseeded("hyperplane_inc", 100))) == b
    (True, False)
    """
    return _GENERATORS[name](offset)


_IMAGE_SEGMENTS = ("brickface", "cement", "foliage", "grass", "path", "sky", "window")

_ANCHORS: list[Stream] = [
    Stream("phishing", "real", 1250, (False, True),
           "river.datasets.Phishing()", datasets.Phishing),
    Stream("bananas", "real", 5300, (False, True),
           "river.datasets.Bananas()", datasets.Bananas),
    Stream("image_segments", "real", 2310, _IMAGE_SEGMENTS,
           "river.datasets.ImageSegments()", datasets.ImageSegments),
    Stream("shuttle", "real", 10000, (0, 1),
           "river.datasets.Shuttle(), first 10,000", datasets.Shuttle),
    Stream("sea_abrupt", "abrupt", 20000, (False, True),
           "SEA variants 0->1->2->3 (noise 0.1), abrupt drifts at 5k/10k/15k", _sea_abrupt),
    Stream("hyperplane_inc", "incremental", 20000, (0, 1),
           "Hyperplane(10 features, 5 drifting, mag_change 0.001)", _hyperplane_inc),
    Stream("agrawal_gradual", "gradual", 20000, (0, 1),
           "Agrawal f0->f2->f5, gradual drifts (width 1000) at 7k/14k", _agrawal_gradual),
    Stream("rbf_drift", "incremental", 20000, (0, 1, 2, 3),
           "RandomRBFDrift(4 classes, 50 centroids all drifting, speed 1e-4)", _rbf_drift),
    Stream("led_drift", "gradual", 20000, tuple(range(10)),
           "LED -> LEDDrift(7 drifting features), gradual drift at 10k", _led_drift),
]


# --------------------------------------------------------------------------
# extra streams: other generators and seeds, not tuned to anything


def _sine_abrupt() -> RawStream:
    # Sine functions 0 -> 2 -> 1 -> 3 (1 and 3 are 0 and 2 with labels reversed),
    # two irrelevant noise features; abrupt drifts at 4k, 8k, 12k.
    return _chain_drifts(
        [synth.Sine(classification_function=f, seed=s, has_noise=True)
         for f, s in [(0, 101), (2, 102), (1, 103), (3, 104)]],
        position=4000,
        width=50,  # narrower overflows math.exp inside ConceptDriftStream
        seeds=[111, 112, 113],
    )


def _tree_gradual() -> RawStream:
    # Two different random trees over the same feature space; gradual drift
    # centred at 7.5k over ~2k instances.
    def tree(seed_tree: int, seed_sample: int) -> synth.RandomTree:
        return synth.RandomTree(seed_tree=seed_tree, seed_sample=seed_sample, n_classes=2,
                                n_num_features=5, n_cat_features=3)
    return synth.ConceptDriftStream(stream=tree(201, 202), drift_stream=tree(203, 204),
                                    position=7500, width=2000, seed=211)


def _rbf_incremental() -> RawStream:
    return synth.RandomRBFDrift(seed_model=301, seed_sample=302, n_classes=3, n_features=8,
                                n_centroids=30, change_speed=0.001, n_drift_centroids=15)


def _rbf_new_class() -> Iterator[tuple[dict[Any, Any], Hashable]]:
    # Stationary 4-class RBF; class 3 is withheld for the first 40 % (6,000 of 15,000).
    return _withhold_class(
        synth.RandomRBF(seed_model=401, seed_sample=402, n_classes=4, n_features=8,
                        n_centroids=30),
        label=3,
        until=6000,
    )


def _rbf_imbalanced() -> Iterator[tuple[dict[Any, Any], Hashable]]:
    # Binary RBF subsampled to ~95 % class 0 / ~5 % class 1. (A RandomTree was
    # tried first and dropped: full supervision never predicted its minority.)
    return _imbalance(
        synth.RandomRBF(seed_model=501, seed_sample=502, n_classes=2, n_features=8,
                        n_centroids=20),
        minority=1,
        rate=0.05,
        seed=503,
    )


def _waveform() -> RawStream:
    return synth.Waveform(seed=601, has_noise=True)


_EXTRAS: list[Stream] = [
    Stream("sine_abrupt", "abrupt", 16000, (False, True),
           "Sine f0->f2->f1->f3 + 2 noise features, abrupt drifts at 4k/8k/12k", _sine_abrupt),
    Stream("tree_gradual", "gradual", 15000, (0, 1),
           "RandomTree A -> RandomTree B, gradual drift at 7.5k (width 2000)", _tree_gradual),
    Stream("rbf_incremental", "incremental", 15000, (0, 1, 2),
           "RandomRBFDrift(3 classes, 15/30 centroids drifting, speed 1e-3)", _rbf_incremental),
    Stream("rbf_new_class", "new_class", 15000, (0, 1, 2, 3),
           "RandomRBF(4 classes); class 3 first appears at 40 % (instance 6,000)", _rbf_new_class),
    Stream("rbf_imbalanced", "imbalanced", 15000, (0, 1),
           "RandomRBF(2 classes) subsampled to ~95/5 with a seeded RNG", _rbf_imbalanced),
    Stream("waveform", "stationary", 12000, (0, 1, 2),
           "Waveform(has_noise=True): 3 classes, 40 features, no drift", _waveform),
]

# --------------------------------------------------------------------------
# ticket-like text streams: free text beside a categorical and a numeric column


def _pseudo_words(rng: random.Random, k: int, taken: set[str]) -> list[str]:
    """``k`` distinct made-up words of 2–4 syllables, none in ``taken`` (which grows)."""
    syllables = [c + v for c in "bdfghklmnprstvz" for v in "aeiou"]
    out: list[str] = []
    while len(out) < k:
        w = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if w not in taken:
            taken.add(w)
            out.append(w)
    return out


def _tickets(*, seed: int, topics: int, informative_columns: bool, new_topic_at: int | None = None,
             p_topic: float = 0.12, label_noise: float = 0.03) -> Iterator[tuple[dict[str, Any], int]]:
    """Ticket-like instances: ``body`` (free text), ``product`` (a category), ``account_age_days`` (a number).

    Bodies are bags of made-up words with a Zipf-like law (4,000 background
    words shared by all topics; per topic 60 own words and 20 borrowed from
    the next topic, so neighbouring topics are confusable); a word is a topic
    word with probability ``p_topic``; lengths are log-normal (median 30
    words, 4–200). Topic frequencies are uneven. With
    ``informative_columns`` the product is one of the topic's 3 favourites
    half the time (else any of 15) and the account age is log-normal with a
    topic-dependent median (heavy-tailed, 10–1,000 days); without, both are
    noise. A share ``label_noise`` of labels is replaced by a random topic;
    topic ``topics − 1`` is held back until instance ``new_topic_at``.
    """
    rng = random.Random(seed)
    taken: set[str] = set()
    background = _pseudo_words(rng, 4000, taken)
    bg_weights = list(itertools.accumulate(1.0 / (r + 1) ** 1.1 for r in range(len(background))))
    own = [_pseudo_words(rng, 60, taken) for _ in range(topics)]
    vocab = [own[t] + rng.sample(own[(t + 1) % topics], 20) for t in range(topics)]
    topic_weights = [list(itertools.accumulate(1.0 / (r + 1) ** 0.8 for r in range(80))) for _ in range(topics)]
    prior = list(itertools.accumulate(rng.uniform(0.5, 2.0) for _ in range(topics)))
    products = [f"p{i:02d}" for i in range(15)]
    favourites = [rng.sample(products, 3) for _ in range(topics)]
    age_median = [math.exp(rng.uniform(math.log(10), math.log(1000))) for _ in range(topics)]
    i = 0
    while True:
        t = rng.choices(range(topics), cum_weights=prior)[0]
        if new_topic_at is not None and t == topics - 1 and i < new_topic_at:
            continue
        length = min(200, max(4, round(rng.lognormvariate(math.log(30), 0.6))))
        words = [rng.choices(vocab[t], cum_weights=topic_weights[t])[0] if rng.random() < p_topic
                 else rng.choices(background, cum_weights=bg_weights)[0] for _ in range(length)]
        if informative_columns:
            product = rng.choice(favourites[t]) if rng.random() < 0.5 else rng.choice(products)
            age = rng.lognormvariate(math.log(age_median[t]), 1.0)
        else:
            product = rng.choice(products)
            age = rng.lognormvariate(math.log(100), 1.0)
        y = rng.randrange(topics) if rng.random() < label_noise else t
        i += 1
        yield {"body": " ".join(words), "product": product, "account_age_days": round(age, 1)}, y


_TEXTS: list[Stream] = [
    Stream("tickets_routing", "text", 8000, tuple(range(8)),
           "8 ticket topics; product and account age informative", 
           lambda: _tickets(seed=701, topics=8, informative_columns=True), ("body",)),
    Stream("tickets_noise_columns", "text", 8000, tuple(range(12)),
           "12 ticket topics; product and account age are noise",
           lambda: _tickets(seed=702, topics=12, informative_columns=False), ("body",)),
    Stream("tickets_new_topic", "text", 8000, tuple(range(10)),
           "10 ticket topics, the last first appears at 40 % (instance 3,200); columns informative",
           lambda: _tickets(seed=703, topics=10, informative_columns=True, new_topic_at=3200), ("body",)),
]

ANCHOR_STREAMS: list[str] = [s.name for s in _ANCHORS]
EXTRA_STREAMS: list[str] = [s.name for s in _EXTRAS]
#: Generated ticket-like text streams (``benchmarks/text.py --extra``); not in
#: ``EXTRA_STREAMS``, whose runs give the learner no ``text_features``.
TEXT_STREAMS: list[str] = [s.name for s in _TEXTS]
STREAMS: dict[str, Stream] = {s.name: s for s in _ANCHORS + _EXTRAS + _TEXTS}


def load(name: str) -> Stream:
    """Return the stream registered as ``name`` (anchor or extra).

    >>> load("phishing").n
    1250
    """
    try:
        return STREAMS[name]
    except KeyError:
        raise KeyError(f"unknown stream {name!r}; known: {sorted(STREAMS)}") from None
