"""Throughput of the label decision loop: streamal vs River's EntropySampler.

Instances per second of ``ActiveLearner.ask`` plus ``learn`` on the requested
labels, against ``river.active.EntropySampler`` wrapping the same model
(River's ``StandardScaler() | OneVsRestClassifier(LogisticRegression())``,
the model streamal's ``logistic_regression`` is), on the same stream, in the
same run. EntropySampler's ``discount_factor`` is calibrated first (not timed)
so it asks for about the same share of labels, and it asks while it has seen
fewer than two classes (without that it never asks for a first label).
Streams are materialised in memory first so generation is not timed. The
best of ``--repeat`` runs is kept for each side (this machine is shared).

It also prints how much faster ``ask_many`` (a poll at once) decides than ``ask``.

    python benchmarks/throughput.py [--budget 0.05] [--repeat 3]
"""

from __future__ import annotations

import argparse
import itertools
import time

from river import active, datasets, linear_model, multiclass, preprocessing
from river.datasets import synth

from streamal import ActiveLearner
from streamal.core.learner import DEFAULT_BUDGET_MANAGER, DEFAULT_MODEL, DEFAULT_STRATEGY

STREAMS = {
    "phishing": lambda: list(datasets.Phishing()),
    "hyperplane (10 features)": lambda: list(itertools.islice(synth.Hyperplane(seed=42, n_features=10), 20_000)),
    "sea (3 features)": lambda: list(itertools.islice(synth.SEA(seed=42), 20_000)),
    "led (7+17 features, 10 classes)": lambda: list(
        itertools.islice(synth.LED(seed=42, noise_percentage=0.1, irrelevant_features=True), 20_000)
    ),
}


def river_model():
    return preprocessing.StandardScaler() | multiclass.OneVsRestClassifier(linear_model.LogisticRegression())


def entropy_sampler_run(stream, discount_factor: float) -> tuple[float, int]:
    sampler = active.EntropySampler(river_model(), discount_factor=discount_factor, seed=42)
    seen: set = set()
    asked = 0
    start = time.perf_counter()
    for x, y in stream:
        _, ask = sampler.predict_one(x)
        if ask or len(seen) < 2:
            sampler.learn_one(x, y)
            seen.add(y)
            asked += 1
    return time.perf_counter() - start, asked


def calibrate(stream, budget: float) -> float:
    """Bisection on log(discount factor) for a realised rate near the budget (as the anchors search)."""
    lo, hi = 1e-6, 1e10
    best, best_gap = 1.0, float("inf")
    for _ in range(30):
        mid = (lo * hi) ** 0.5
        rate = entropy_sampler_run(stream, mid)[1] / len(stream)
        if abs(rate - budget) < best_gap:
            best, best_gap = mid, abs(rate - budget)
        if abs(rate - budget) <= 0.05 * budget:
            break
        lo, hi = (mid, hi) if rate > budget else (lo, mid)
    return best


def streamal_run(stream, budget: float) -> tuple[float, int]:
    learner = ActiveLearner(budget=budget, seed=42)
    asked = 0
    start = time.perf_counter()
    for x, y in stream:
        if learner.ask(x).query:
            learner.learn(x, y)
            asked += 1
    return time.perf_counter() - start, asked


def asking(stream, budget: float, poll: int) -> float:
    """Seconds to decide every instance of ``stream`` in polls of ``poll`` (after 300 labels, not timed)."""
    learner = ActiveLearner(budget=budget, seed=42)
    for x, y in stream[:300]:
        learner.learn(x, y)
    xs = [x for x, _ in stream]
    start = time.perf_counter()
    if poll == 1:
        for x in xs:
            learner.ask(x)
    else:
        for i in range(0, len(xs), poll):
            learner.ask_many(xs[i:i + poll])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"streamal defaults: model={DEFAULT_MODEL} strategy={DEFAULT_STRATEGY} "
          f"budget_manager={DEFAULT_BUDGET_MANAGER}; budget {args.budget:.0%}; best of {args.repeat}")
    print(f"{'stream':34} {'EntropySampler/s':>16} {'rate':>6} {'streamal/s':>11} {'rate':>6} {'ratio':>6}")
    total_es = total_al = 0.0
    total_n = 0
    for name, build in STREAMS.items():
        stream = build()
        df = calibrate(stream, args.budget)
        es = min((entropy_sampler_run(stream, df) for _ in range(args.repeat)), key=lambda r: r[0])
        al = min((streamal_run(stream, args.budget) for _ in range(args.repeat)), key=lambda r: r[0])
        n = len(stream)
        total_es += es[0]
        total_al += al[0]
        total_n += n
        print(f"{name:34} {n / es[0]:16,.0f} {es[1] / n:6.2%} {n / al[0]:11,.0f} {al[1] / n:6.2%} {es[0] / al[0]:6.2f}")
    print(f"{'all streams':34} {total_n / total_es:16,.0f} {'':6} {total_n / total_al:11,.0f} {'':6} "
          f"{total_es / total_al:6.2f}")
    print("ratio = streamal instances/s ÷ EntropySampler instances/s (target ≥ 1.0)")
    print("\nask_many (one poll of 2,000 at once, what serve does) against ask, no labels in between:")
    for name, build in STREAMS.items():
        stream = build()
        one = min(asking(stream, args.budget, poll=1) for _ in range(args.repeat))
        many = min(asking(stream, args.budget, poll=2000) for _ in range(args.repeat))
        print(f"{name:34} ask {len(stream) / one:11,.0f}/s  ask_many {len(stream) / many:11,.0f}/s  "
              f"{one / many:5.2f}×")


if __name__ == "__main__":
    main()
