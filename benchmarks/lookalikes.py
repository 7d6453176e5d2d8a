"""Look-alikes of the nine anchor streams: do the defaults hold beyond the streams they were chosen on?

A default chosen on the nine anchor streams could fit their quirks (at 1 %
a run rests on 13 to 200 labels, and one stream moves by several points with
a small change). This benchmark builds ``--k`` look-alikes of each: the four
real streams (phishing, bananas, image_segments, shuttle) shuffled with seeds
1..k, the five generated ones rebuilt with every generator seed moved by
100·k (:func:`benchmarks.streams.reseeded`); then it runs the given strategy
with each budget manager at 1, 5, 10 and 20 % under the label-efficiency
protocol and prints the mean accuracy per manager and budget, per stream
family, and the worst realised rate against the budget.

    python -m benchmarks.lookalikes                                   # variable_uncertainty vs quantile, k = 3
    python -m benchmarks.lookalikes --managers variable_uncertainty --strategies margin,entropy

Measured 2026-11-30 (k = 3, margin, 27 streams; ~4 min on 2 cores), with
the budget guard's eager start: variable_uncertainty 67.30 / 75.37 / 77.98 /
78.88 %, quantile (the default) 66.94 / 75.49 / 77.89 / 79.07 % at 1 / 5 /
10 / 20 %; every run within 4 % of its budget. Before the eager start:
66.29 / 74.50 / 77.02 / 78.24 % and 66.93 / 74.91 / 77.06 / 78.16 %.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import streams as S  # noqa: E402
from benchmarks.label_efficiency import BUDGETS, mean, run_all  # noqa: E402

REAL = ("phishing", "bananas", "image_segments", "shuttle")
GENERATED = ("sea_abrupt", "hyperplane_inc", "agrawal_gradual", "rbf_drift", "led_drift")


def register(k: int) -> list[str]:
    """Register ``k`` look-alikes of each anchor stream in :data:`benchmarks.streams.STREAMS`; their names."""
    names = []
    for i in range(1, k + 1):
        for name in REAL:
            base = S.load(name)
            rows = list(base.raw())
            random.Random(i).shuffle(rows)
            stream = S.Stream(f"{name}~{i}", base.kind, base.n, base.classes, f"{name} shuffled, seed {i}",
                              lambda rows=rows: iter(rows))
            S.STREAMS[stream.name] = stream
            names.append(stream.name)
        for name in GENERATED:
            base = S.load(name)
            stream = S.Stream(f"{name}~{i}", base.kind, base.n, base.classes, f"{name}, seeds + {100 * i}",
                              lambda name=name, i=i: S.reseeded(name, 100 * i))
            S.STREAMS[stream.name] = stream
            names.append(stream.name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=3, help="look-alikes per anchor stream")
    parser.add_argument("--strategies", default="margin")
    parser.add_argument("--managers", default="variable_uncertainty,quantile")
    parser.add_argument("--model", default="logistic_regression")
    parser.add_argument("--budgets", default=",".join(str(b) for b in BUDGETS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    names = register(args.k)  # before the workers fork: they inherit the registrations
    budgets = [float(b) for b in args.budgets.split(",")]
    configs = [(st, m) for st in args.strategies.split(",") for m in args.managers.split(",")]
    jobs = [(s, args.model, st, m, b, args.seed, None) for s in names for st, m in configs for b in budgets]
    print(f"{len(jobs)} runs on {len(names)} look-alike streams, {args.jobs} workers", file=sys.stderr)
    started = time.perf_counter()
    results = run_all(jobs, args.jobs)
    print(f"done in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    def cell(rs: list[dict[str, Any]]) -> str:
        return f"{100 * mean(r['accuracy'] for r in rs):.2f}"

    print(f"# Look-alikes of the anchor streams (k = {args.k}, model {args.model}): mean accuracy %\n")
    print("| strategy | manager | " + " | ".join(f"{b:.0%}" for b in budgets) + " | worst rate/budget − 1 |")
    print("|---|---|" + "---:|" * (len(budgets) + 1))
    for st, m in configs:
        rs = [r for r in results if (r["strategy"], r["manager"]) == (st, m)]
        worst = max(abs(r["label_rate"] / r["budget"] - 1) for r in rs)
        print(f"| {st} | {m} | " + " | ".join(cell([r for r in rs if r["budget"] == b]) for b in budgets)
              + f" | {100 * worst:.1f} % |")
    print("\n## Per anchor stream (mean over its look-alikes)\n")
    print("| stream | strategy | manager | " + " | ".join(f"{b:.0%}" for b in budgets) + " |")
    print("|---|---|---|" + "---:|" * len(budgets))
    for base in REAL + GENERATED:
        for st, m in configs:
            rs = [r for r in results if r["stream"].split("~")[0] == base and (r["strategy"], r["manager"]) == (st, m)]
            print(f"| {base} | {st} | {m} | " + " | ".join(cell([r for r in rs if r["budget"] == b]) for b in budgets)
                  + " |")


if __name__ == "__main__":
    main()
