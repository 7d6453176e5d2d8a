"""Cost of a label decision per budget manager, against variable_uncertainty's O(1).

Time per instance of ``BudgetManager.ask`` on a stream of scores
(``random() ** 3``, the shape of margins that fall as a model learns), after
the manager's history is full, at budgets down to what
``STREAMAL_LABELS_PER_HOUR`` gives a busy stream. ``quantile (plain list)``
is the same rank rule on a sorted ``list`` with ``bisect.insort`` (an O(W)
memmove per instance), the reference ``quantile``'s ``SortedList`` replaced;
it is checked to ask for exactly the same instances. Ratios are against
``variable_uncertainty`` measured in the same run; the best of ``--repeat``
runs is kept (this machine is shared).

    python -m benchmarks.budget_cost [--instances 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import bisect
import random
import time

from streamal.core.budget import budget_managers
from streamal.core.budget.quantile import Quantile


class PlainQuantile(Quantile):
    """``Quantile`` on a plain sorted list: the reference, O(W) per instance."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._sorted = []

    def _forget_oldest(self) -> None:
        old = self._recent.popleft()
        del self._sorted[bisect.bisect_left(self._sorted, old)]

    def wants(self, score: float) -> bool:
        s = score + self._jitter
        n = len(self._sorted)
        return n - bisect.bisect_right(self._sorted, s) <= self.guard.effective_budget * n

    def _learn(self, score: float, wanted: bool, asked: bool) -> None:
        s = score + self._jitter
        self._recent.append(s)
        bisect.insort(self._sorted, s)
        if len(self._recent) > self._size:
            self._forget_oldest()


MANAGERS = {
    "variable_uncertainty": budget_managers.factory("variable_uncertainty"),
    "quantile": Quantile,
    "quantile (plain list)": PlainQuantile,
}


def timed(factory, budget: float, scores: list[float], warm: int) -> tuple[float, list[int]]:
    """Seconds per instance over ``scores[warm:]`` (the first ``warm`` fill the history), and where it asked."""
    manager = factory(budget=budget)
    ask = manager.ask
    for s in scores[:warm]:
        ask(s)
    asked = []
    start = time.perf_counter()
    for i, s in enumerate(scores[warm:]):
        if ask(s):
            asked.append(i)
    return (time.perf_counter() - start) / (len(scores) - warm), asked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=200_000, help="timed instances per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--budgets", default="0.2,0.01,0.001,0.0002,0.00002")
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    print("µs per instance (ratio to variable_uncertainty in the same run); W = quantile's history\n")
    print("| budget | W | " + " | ".join(MANAGERS) + " |")
    print("|---:|---:|" + "---:|" * len(MANAGERS))
    for budget in budgets:
        size = Quantile(budget=budget).history_size
        rng = random.Random(42)
        scores = [rng.random() ** 3 for _ in range(size + args.instances)]
        best: dict[str, float] = {}
        asked: dict[str, list[int]] = {}
        for _ in range(args.repeat):
            for name, factory in MANAGERS.items():
                seconds, asked[name] = timed(factory, budget, scores, size)
                best[name] = min(best.get(name, float("inf")), seconds)
        if asked["quantile"] != asked["quantile (plain list)"]:
            raise SystemExit(f"budget {budget}: quantile and its plain-list reference asked differently")
        base = best["variable_uncertainty"]
        cells = " | ".join(f"{1e6 * best[n]:.2f} ({best[n] / base:.1f}×)" for n in MANAGERS)
        print(f"| {budget:g} | {size:,} | {cells} |")


if __name__ == "__main__":
    main()
