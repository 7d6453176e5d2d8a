"""Pool-based batch selection: the best k of a window, without near-duplicates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def to_matrix(zs: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Dense (n, d) matrix of numeric feature dicts; a missing feature is 0."""
    index: dict[str, int] = {}
    for z in zs:
        for key in z:
            index.setdefault(key, len(index))
    out = np.zeros((len(zs), max(len(index), 1)))
    for i, z in enumerate(zs):
        for key, value in z.items():
            out[i, index[key]] = value
    return out


def diverse_top_k(
    zs: Sequence[Mapping[str, float]],
    scores: Sequence[float],
    k: int,
    *,
    radius: float = 0.3,
    seed: int = 0,
) -> list[int]:
    """Greedy ranked-batch selection: informative first, near-duplicates last.

    Picks one index at a time, maximising ``score_i · (1 − max_{j picked}
    sim(i, j))`` with ``sim(i, j) = exp(−‖z_i − z_j‖² / (2 h²))`` and
    ``h = radius · median pairwise distance`` of the window. An exact duplicate
    of a picked instance has similarity 1 and drops to the end of the ranking;
    an instance a typical distance away keeps ``1 − exp(−1/(2·radius²))`` ≈ 100 %
    (radius 0.3) of its score. This is the product form of ranked batch-mode
    sampling (T. Cardoso, R. Silva, S. Canuto, M. Moro and M. Gonçalves,
    *Ranked batch-mode active learning*, Information Sciences 379, 2017),
    chosen over k-means++ or core-set selection because it keeps the
    informativeness order when the window has no near-duplicates and costs
    only O(k · n · d). The returned indices are in pick order (rank 0 first).

    >>> zs = [{'a': 0.0}, {'a': 0.0}, {'a': 5.0}, {'a': 9.0}]
    >>> diverse_top_k(zs, [0.9, 0.9, 0.5, 0.1], k=2)
    [0, 2]

    """
    n = len(zs)
    k = min(k, n)
    if k <= 0:
        return []
    x = to_matrix(zs)
    s = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
    rng = np.random.default_rng(seed)
    sample = x if n <= 256 else x[rng.choice(n, 256, replace=False)]
    sq = ((sample[:, None, :] - sample[None, :, :]) ** 2).sum(-1)
    off_diagonal = sq[~np.eye(len(sample), dtype=bool)]
    typical = float(np.median(off_diagonal)) if off_diagonal.size else 0.0
    h2 = (radius**2) * typical if typical > 0.0 else 1.0
    max_sim = np.zeros(n)
    picked: list[int] = []
    available = np.ones(n, dtype=bool)
    for _ in range(k):
        gain = np.where(available, s * (1.0 - max_sim), -np.inf)
        # Among equal gains prefer the higher raw score, then the earlier index.
        best = int(np.lexsort((np.arange(n), -s, -gain))[0])
        picked.append(best)
        available[best] = False
        d2 = ((x - x[best]) ** 2).sum(axis=1)
        max_sim = np.maximum(max_sim, np.exp(-d2 / (2.0 * h2)))
    return picked


def window_quota(budget: float, size: int, carry: float = 0.0) -> tuple[int, float]:
    """Labels to ask for in a window of ``size`` instances at ``budget``, and the fraction carried on.

    ``budget · size + carry`` rounded down; the remainder carries over to the
    next window, so windows of any size spend the budget exactly over time.

    >>> window_quota(0.05, 30)        # 1.5 labels: 1 now, half a label carried
    (1, 0.5)
    >>> window_quota(0.05, 30, 0.5)
    (2, 0.0)

    """
    wanted = budget * size + carry
    k = int(wanted)
    return k, wanted - k
