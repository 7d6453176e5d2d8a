"""A day of traffic against a fixed labeling capacity: labels per hour follow capacity, not traffic.

The event rate swings 10× over a simulated day, a sinusoid between
``--low`` and ``--high`` instances per second (lowest at midnight, highest at
noon; Poisson arrivals), on a drifting generated stream (River's Hyperplane,
as ``streamal simulate hyperplane`` generates it, endless here). Annotators
answer ``--labels-per-hour`` L labels per hour, each answer ``--answer-delay``
seconds after its request; the model learns a label when its answer
arrives, and predicts every instance at arrival (prequential). Three runs on
the same stream and clock, with the default model, strategy and budget
manager:

- **capacity**: the budget follows :class:`streamal.core.budget.capacity.Capacity`
  as ``serve`` does with ``STREAMAL_LABELS_PER_HOUR`` (ceiling ``--budget``);
- **fixed fraction**: a constant budget that spends the same total labels
  (the capacity run's labels / instances), with the same annotators, so its
  requests follow the traffic and queue up at the busy hours;
- **random**: random sampling with as many labels as the capacity run in
  every minute (``streamal simulate``'s baseline on a clock);
- **fixed, unlimited annotators**: the fixed fraction again, answered
  ``--answer-delay`` after each request however many come (what it would
  reach with annotators that keep up at the busy hours), to tell the cost of
  late labels from the cost of where the labels go.

It prints each hour's requests against the capacity (the target: within
±10 % in every hour after the first), the backlog's maximum, and the
accuracies. Figures only, no assertions; about half a minute per run on a
2-core machine (``--hours`` shortens the day for a quick look).

    python benchmarks/capacity_day.py [--labels-per-hour 180] [--hours 24] [--seed 0]
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamal import ActiveLearner  # noqa: E402
from streamal.apps.datasets import SYNTHETIC  # noqa: E402
from streamal.apps.simulate import AskAt, same_labels_per_slot  # noqa: E402
from streamal.core.budget.capacity import Capacity  # noqa: E402
from streamal.core.evaluate import Annotator, Result, timed_prequential  # noqa: E402

DAY_S = 86_400.0
SLOT_S = 60.0
TOLERANCE = 0.10


def rate_at(t: float, low: float, high: float) -> float:
    """Instances per second at ``t`` seconds: ``low`` at midnight, ``high`` at noon."""
    return low + (high - low) * (1.0 - math.cos(2.0 * math.pi * t / DAY_S)) / 2.0


def arrivals(hours: float, low: float, high: float, seed: int) -> list[float]:
    """Poisson arrivals with the day's rate (drawn at each arrival: the rate moves slowly)."""
    rng = random.Random(seed)
    out: list[float] = []
    t, end = 0.0, hours * 3600.0
    while True:
        t += rng.expovariate(rate_at(t, low, high))
        if t > end:
            return out
        out.append(t)


class Progress:
    """One line on stderr, rewritten: which run, and how far into the day."""

    def __init__(self, name: str, total: int, times: list[float]) -> None:
        self.name, self.total, self.times, self.done = name, total, times, 0
        self.started = self.last = time.monotonic()

    def __call__(self, k: int) -> None:
        self.done += k
        now = time.monotonic()
        if now - self.last >= 0.5 or self.done >= self.total:
            self.last = now
            hour = self.times[min(self.done, self.total) - 1] / 3600.0 if self.done else 0.0
            print(f"\r  {self.name}: hour {hour:5.1f} of the clock, {self.done:,}/{self.total:,} instances, "
                  f"{now - self.started:4.0f} s", end="", file=sys.stderr, flush=True)

    def end(self) -> None:
        print(file=sys.stderr)


def run(name: str, learner, times: list[float], end_s: float, stream_seed: int, annotator: Annotator,
        capacity: Capacity | None = None) -> Result:
    stream = itertools.islice(SYNTHETIC["hyperplane"](stream_seed), len(times))
    progress = Progress(name, len(times), times)
    result = timed_prequential(learner, stream, times, annotator=annotator, capacity=capacity, slot_s=SLOT_S,
                               end_s=end_s, expected=len(times), progress=progress)
    progress.end()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels-per-hour", type=float, default=180.0, help="annotator capacity L")
    parser.add_argument("--low", type=float, default=2.0, help="instances per second at midnight")
    parser.add_argument("--high", type=float, default=20.0, help="instances per second at noon")
    parser.add_argument("--hours", type=float, default=24.0, help="length of the simulated day")
    parser.add_argument("--answer-delay", type=float, default=60.0, help="seconds from a request to its answer")
    parser.add_argument("--budget", type=float, default=0.05, help="the ceiling of the capacity run's budget")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    L = args.labels_per_hour

    times = arrivals(args.hours, args.low, args.high, args.seed)
    end = args.hours * 3600.0
    n = len(times)
    annotator = Annotator(delay_s=args.answer_delay, labels_per_hour=L)
    print(f"capacity_day: {n:,} instances over {args.hours:g} h of the clock, {args.low:g} → {args.high:g} → "
          f"{args.low:g} instances/s (Poisson), hyperplane (seed {args.seed}); L = {L:g} labels/h, answers after "
          f"{args.answer_delay:g} s at most L per hour; budget ceiling {100 * args.budget:g} %", flush=True)
    started = time.monotonic()
    learner = ActiveLearner(budget=args.budget, seed=args.seed)
    capped = run("capacity", learner, times, end, args.seed, annotator, Capacity(L, ceiling=args.budget))
    fraction = capped.labels / n
    fixed = run(f"fixed fraction {100 * fraction:.3g} %", ActiveLearner(budget=fraction, seed=args.seed),
                times, end, args.seed, annotator)
    picks = same_labels_per_slot([i for i, _, _ in capped.timeline.requests], times, SLOT_S, args.seed)
    random_ = run("random", AskAt(ActiveLearner(strategy="random", budget=fraction, seed=args.seed), picks),
                  times, end, args.seed, annotator)
    unlimited = run("fixed fraction, unlimited annotators", ActiveLearner(budget=fraction, seed=args.seed),
                    times, end, args.seed, Annotator(delay_s=args.answer_delay))

    print(f"\n{'hour':>4} {'inst/s':>6} {'instances':>9} {'requests':>8} {'of L':>6} {'backlog max':>11} "
          f"{'budget':>8} │ {'fixed: requests':>15} {'backlog max':>11}")
    fixed_hours = {h.hour: h for h in fixed.timeline.hours()}
    within, warm = 0, 0
    worst = 0.0
    for h in capped.timeline.hours():
        full = h.seconds >= 3600.0 - 1e-6
        share = h.requests / L if full else (h.requests_per_hour or 0.0) / L
        mark = ""
        if h.hour >= 1 and full:
            warm += 1
            ok = abs(share - 1.0) <= TOLERANCE
            within += ok
            worst = max(worst, abs(share - 1.0))
            mark = "" if ok else "  ✗ outside ±10 %"
        elif not full:
            mark = f"  (partial: {h.seconds / 60:.0f} min)"
        f = fixed_hours.get(h.hour)
        print(f"{h.hour + 1:>4} {h.instances / h.seconds:>6.1f} {h.instances:>9,} {h.requests:>8,} {100 * share:>5.0f}% "
              f"{h.backlog_max:>11,} {100 * (h.budget or 0):>7.3f}% │ {f.requests if f else 0:>15,} "
              f"{f.backlog_max if f else 0:>11,}{mark}")

    def acc(r: Result) -> str:
        return f"{100 * r.accuracy:.2f} % (balanced {100 * r.balanced_accuracy:.2f} %)"

    fixed_rates = [h.requests for h in fixed.timeline.hours() if h.seconds >= 3600.0 - 1e-6]
    print("\nsummary")
    print(f"  requests within ±{100 * TOLERANCE:g} % of L = {L:g}/h: {within} of {warm} full hours after the first "
          f"(largest deviation {100 * worst:.1f} %)")
    print(f"  backlog max: capacity {capped.timeline.backlog_max:,} requests "
          f"({capped.timeline.backlog_max / L * 60:.0f} min of annotator work), "
          f"fixed fraction {fixed.timeline.backlog_max:,} ({fixed.timeline.backlog_max / L * 60:.0f} min)")
    if fixed_rates:
        print(f"  fixed fraction's requests per full hour: {min(fixed_rates):,} to {max(fixed_rates):,} (L = {L:g})")
    print(f"  labels: capacity {capped.labels:,}, fixed fraction {fixed.labels:,} ({100 * fraction:.3f} % of "
          f"{n:,}), random {random_.labels:,} (as many as capacity in every minute)")
    print(f"  prequential accuracy: capacity {acc(capped)}")
    print(f"                        fixed    {acc(fixed)}")
    print(f"                        random   {acc(random_)}")
    print(f"                        fixed, unlimited annotators {acc(unlimited)} "
          f"({unlimited.labels:,} labels, backlog max {unlimited.timeline.backlog_max:,})")
    print(f"  capacity − fixed fraction: {100 * (capped.accuracy - fixed.accuracy):+.2f} points "
          f"({100 * (capped.accuracy - unlimited.accuracy):+.2f} against unlimited annotators); "
          f"capacity − random: {100 * (capped.accuracy - random_.accuracy):+.2f} points")
    print(f"  ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
