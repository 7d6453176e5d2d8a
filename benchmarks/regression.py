"""Regression: which query strategy beats random sampling, with the same model and budget.

For five River regression streams, at budgets of 5, 10 and 20 %, every
candidate (a strategy and a budget manager) runs the prequential protocol of
:func:`streamal.core.evaluate.prequential` (predict every instance, learn
only the asked ones; MAE over all instances) with the learner's regression
default model (``logistic_regression``, i.e. a linear regression on
standardised inputs). Its baseline is random sampling (``strategy="random"``)
under the same model, budget *and* budget manager, so that both spend the
budget the same way (``split``, for one, asks a little more than
``variable_uncertainty`` on a 578-row stream). Each runs with the same seeds
(``--seeds``, 10 by default, on the short streams, where one random run's
MAE varies by ±30 %; ``--long-seeds``, 3, on the synthetic ones), and

    ratio = mean MAE of the candidate over the seeds / mean MAE of random over the seeds,

below 1 when the candidate is better. The realised label rates of both are
printed. Where a candidate's mean realised rate is more than 2 % away from
its random baseline's (streams shorter than the budget guard's 1,000-instance
window), random runs again aiming at the candidate's realised rate and that
is the baseline (marked ``°``); a ratio still more than 5 % apart in rate is
marked ``!`` (a comparison at unequal budgets is not one).

Streams: TrumpApproval (1,001 rows), ChickWeights (578) and WaterFlow
(1,268) as River 0.26 ships them (bundled files, no download; WaterFlow's
one feature is a datetime, which the learner drops, so there every
strategy sees no features), and Friedman and FriedmanDrift (synthetic, seed
42), cut at 5,000 instances (the 2-core machine this was chosen on), with
FriedmanDrift's drift points moved to 1,250, 2,500 and 3,750 so that they
fall inside the stream.

    python -m benchmarks.regression --jobs 2               # the default candidates
    python -m benchmarks.regression --candidates gsx+split50q,igs --seeds 10 --long-seeds 3

The target (issue 13): a mean ratio below 1.0 at each budget, and no stream
above 1.05.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from river import datasets
from river.datasets import synth

from streamal import ActiveLearner
from streamal.core.budget import budget_managers
from streamal.core.evaluate import prequential
from streamal.core.learner import DEFAULT_BUDGET_MANAGER, DEFAULT_MODEL

BUDGETS = (0.05, 0.10, 0.20)
#: name → (factory, instances). The synthetic streams are cut at 5,000.
STREAMS: dict[str, tuple[Any, int | None]] = {
    "trump_approval": (datasets.TrumpApproval, None),
    "chick_weights": (datasets.ChickWeights, None),
    "water_flow": (datasets.WaterFlow, None),
    "friedman": (lambda: synth.Friedman(seed=42), 5_000),
    "friedman_drift": (lambda: synth.FriedmanDrift(drift_type="lea", position=(1_250, 2_500, 3_750), seed=42), 5_000),
}
#: label → (strategy, budget manager, the manager's parameters).
CANDIDATES: dict[str, tuple[str, str, dict[str, Any]]] = {
    # today's default, and the other committee-based scores
    "variance_reduction": ("variance_reduction", DEFAULT_BUDGET_MANAGER, {}),
    "emcm": ("emcm", DEFAULT_BUDGET_MANAGER, {}),
    # greedy sampling (input space; input × output space)
    "gsx": ("gsx", DEFAULT_BUDGET_MANAGER, {}),
    "igs": ("igs", DEFAULT_BUDGET_MANAGER, {}),
    "gsx+quantile": ("gsx", "quantile", {}),
    # a random share of the budget as the safety net, the rest to the top scores of the recent ones
    "igs+split50q": ("igs", "split", {"random_share": 0.5, "inner": "quantile"}),
    "gsx+split50q": ("gsx", "split", {"random_share": 0.5, "inner": "quantile", "eager_start": False}),  # the default
    "gsx+split50q eager": ("gsx", "split", {"random_share": 0.5, "inner": "quantile"}),
    "gsx+split30q": ("gsx", "split", {"random_share": 0.3, "inner": "quantile"}),
    # measured in earlier runs, left out of the default set (see the README)
    "igs+quantile": ("igs", "quantile", {}),
    "density(igs)": ("density_weighted(igs)", DEFAULT_BUDGET_MANAGER, {}),
    "variance_reduction+split50": ("variance_reduction", "split", {"random_share": 0.5}),
    "igs+split50": ("igs", "split", {"random_share": 0.5}),
    "gsx+split70q": ("gsx", "split", {"random_share": 0.7, "inner": "quantile"}),
}
#: What ``python -m benchmarks.regression`` runs without ``--candidates``.
DEFAULT_CANDIDATES = (
    "variance_reduction", "emcm", "gsx", "igs", "gsx+quantile", "igs+split50q", "gsx+split50q", "gsx+split30q",
)
RANDOM = "random"
RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str) -> list[tuple[dict[str, Any], float]]:
    make, n = STREAMS[name]
    return list(itertools.islice(make(), n))


def _strategy(spec: str) -> Any:
    """``"name"`` or ``"density_weighted(base)"``."""
    if spec.startswith("density_weighted(") and spec.endswith(")"):
        from streamal.core.strategies import DensityWeighted

        return DensityWeighted(base=spec[len("density_weighted("):-1])
    return spec


def _manager_key(label: str) -> str:
    """The budget manager (and its parameters) of a candidate, as the label of its random baseline."""
    _, manager, params = CANDIDATES[label]
    return RANDOM + "|" + manager + "".join(f",{k}={v}" for k, v in sorted(params.items()))


Job = tuple[str, float, str, int, float]  # stream, budget, candidate, seed, the budget the learner aims at


def run_one(job: Job) -> dict[str, Any]:
    stream, budget, label, seed, aim = job
    if label.startswith(RANDOM + "|"):  # random sampling under a candidate's budget manager
        key = label.split("~")[0]  # "~candidate": matched to that candidate's realised rate
        baseline = next(c for c in CANDIDATES if _manager_key(c) == key)
        strategy, (_, manager, params) = RANDOM, CANDIDATES[baseline]
    else:
        strategy, manager, params = CANDIDATES[label]
    if params or manager != DEFAULT_BUDGET_MANAGER:
        manager = budget_managers.create(manager, budget=aim, seed=seed, **params)
    data = load(stream)
    start = time.perf_counter()
    learner = ActiveLearner(
        model=DEFAULT_MODEL, strategy=_strategy(strategy), budget_manager=manager,
        budget=None if not isinstance(manager, str) else aim, task="regression", seed=seed,
    )
    result = prequential(learner, data, trace_points=0)
    return {
        "stream": stream, "budget": budget, "aim": aim, "candidate": label, "seed": seed, "n": result.n,
        "labels": result.labels, "label_rate": result.label_rate, "mae": result.mae,
        "seconds": time.perf_counter() - start,
    }


def run_all(jobs: list[Job], workers: int) -> list[dict[str, Any]]:
    out = []
    done = 0

    def report(r: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        print(
            f"[{done}/{len(jobs)}] {r['stream']} b={r['budget']:.2f} {r['candidate']} seed={r['seed']}: "
            f"MAE {r['mae']:.4f}, rate {r['label_rate']:.4f} ({r['labels']}/{r['n']}), {r['seconds']:.1f} s",
            file=sys.stderr, flush=True,
        )
        out.append(r)

    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for r in pool.map(run_one, jobs, chunksize=1):
                report(r)
    else:
        for job in jobs:
            report(run_one(job))
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _cells(runs: list[dict[str, Any]]) -> dict[tuple[str, float, str], dict[str, float]]:
    groups: dict[tuple[str, float, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["stream"], r["budget"], r["candidate"]), []).append(r)
    return {
        key: {"mae": _mean([r["mae"] for r in rs]), "rate": _mean([r["label_rate"] for r in rs]), "seeds": len(rs)}
        for key, rs in groups.items()
    }


def matching_jobs(runs: list[dict[str, Any]], candidates: list[str], tolerance: float = 0.02) -> list[Job]:
    """Random runs at the realised rate of each candidate whose rate is more than ``tolerance`` off its random's.

    On a stream shorter than the budget guard's window (1,000) the guard
    only bounds the rate loosely, and a manager may spend more, or less, on
    a candidate's scores than on random ones: random then runs again,
    aiming at ``budget × candidate's rate / random's rate``.
    """
    cell = _cells(runs)
    jobs = []
    for (stream, budget, label), c in cell.items():
        if label not in candidates:
            continue
        r = cell[(stream, budget, _manager_key(label))]
        if abs(c["rate"] / r["rate"] - 1.0) > tolerance:
            aim = min(1.0, budget * c["rate"] / r["rate"])
            seeds = sorted({x["seed"] for x in runs if (x["stream"], x["budget"], x["candidate"]) == (stream, budget, label)})
            jobs += [(stream, budget, f"{_manager_key(label)}~{label}", seed, aim) for seed in seeds]
    return jobs


def summarise(runs: list[dict[str, Any]], streams: list[str], candidates: list[str]) -> dict[str, Any]:
    """Per stream, budget and candidate: mean MAE and mean realised rate over the seeds, and the ratio to random.

    The baseline is random under the candidate's budget manager, matched to
    the candidate's realised rate when :func:`matching_jobs` ran it.
    """
    cell = _cells(runs)
    table: dict[str, Any] = {}
    for budget in BUDGETS:
        for label in candidates:
            ratios = {}
            for stream in streams:
                c = cell[(stream, budget, label)]
                matched = (stream, budget, f"{_manager_key(label)}~{label}")
                r = cell.get(matched) or cell[(stream, budget, _manager_key(label))]
                ratios[stream] = {
                    "matched": matched in cell,
                    "ratio": c["mae"] / r["mae"], "rate": c["rate"], "random_rate": r["rate"],
                    "mae": c["mae"], "random_mae": r["mae"],
                    "equal_budget": abs(c["rate"] / r["rate"] - 1.0) <= 0.05,
                }
            worst = max(ratios, key=lambda s: ratios[s]["ratio"])
            table[f"{label}@{budget}"] = {
                "candidate": label, "budget": budget, "streams": ratios,
                "mean": _mean([v["ratio"] for v in ratios.values()]), "worst": worst,
                "worst_ratio": ratios[worst]["ratio"],
            }
    return {"cells": {f"{s}|{b}|{c}": v for (s, b, c), v in cell.items()}, "table": table}


def print_report(
    summary: dict[str, Any], streams: list[str], candidates: list[str], seeds: int, long_seeds: int
) -> None:
    table = summary["table"]
    short = {s: s[:14] for s in streams}
    print(f"\nMAE ÷ MAE of random sampling under the same model, budget and budget manager "
          f"(mean over the same {seeds} seeds, {long_seeds} on the synthetic streams)")
    for budget in BUDGETS:
        print(f"\n## budget {budget:.0%}")
        print("| candidate | " + " | ".join(short[s] for s in streams) + " | mean | worst |")
        print("|---|" + "---:|" * (len(streams) + 2))
        for label in candidates:
            row = table[f"{label}@{budget}"]
            cells = [
                f"{row['streams'][s]['ratio']:.3f}{'°' if row['streams'][s]['matched'] else ''}"
                f"{'' if row['streams'][s]['equal_budget'] else '!'}" for s in streams
            ]
            ok = row["mean"] < 1.0 and row["worst_ratio"] <= 1.05
            print(f"| {label} | " + " | ".join(cells) + f" | {row['mean']:.3f} | {row['worst_ratio']:.3f} "
                  f"({row['worst']}){' ✓' if ok else ''} |")
        row = table[f"{candidates[0]}@{budget}"]["streams"]
        print(f"| *random MAE ({_manager_key(candidates[0])})* | " + " | ".join(
            f"{row[s]['random_mae']:.3f}" for s in streams) + " | | |")
    print("\n° random re-run at the candidate's realised rate (it was more than 2 % off under the same budget);"
          " ! realised rates more than 5 % apart")
    print("\nrealised label rates (candidate / random, mean over seeds)")
    for budget in BUDGETS:
        for label in candidates:
            row = table[f"{label}@{budget}"]
            print(f"  {budget:.0%} {label}: " + ", ".join(
                f"{s} {row['streams'][s]['rate']:.4f}/{row['streams'][s]['random_rate']:.4f}" for s in streams))
    passing = [c for c in candidates if all(
        table[f"{c}@{b}"]["mean"] < 1.0 and table[f"{c}@{b}"]["worst_ratio"] <= 1.05 for b in BUDGETS)]
    print("\nmeeting the target at every budget (mean < 1.0, no stream > 1.05):", ", ".join(passing) or "none")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", default=",".join(DEFAULT_CANDIDATES), help="comma-separated labels of CANDIDATES")
    parser.add_argument("--streams", default=",".join(STREAMS))
    parser.add_argument("--seeds", type=int, default=10, help="seeds per candidate and random, short streams")
    parser.add_argument("--long-seeds", type=int, default=3, help="seeds on the 10,000-instance streams")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write every run and the table as JSON")
    args = parser.parse_args(argv)
    candidates = [c for c in args.candidates.split(",") if c and c != RANDOM]
    streams = [s for s in args.streams.split(",") if s]
    for c in candidates:
        if c not in CANDIDATES:
            parser.error(f"unknown candidate {c!r}; choose among: {', '.join(CANDIDATES)}")
    for s in streams:
        if s not in STREAMS:
            parser.error(f"unknown stream {s!r}; choose among: {', '.join(STREAMS)}")
    baselines = sorted({_manager_key(c) for c in candidates})
    def seeds(stream: str) -> range:
        return range(args.long_seeds if STREAMS[stream][1] else args.seeds)

    jobs = [(s, b, c, seed, b) for s in streams for b in BUDGETS for c in [*candidates, *baselines] for seed in seeds(s)]
    jobs.sort(key=lambda j: -(STREAMS[j[0]][1] or 0))  # the long streams first, for the pool
    start = time.perf_counter()
    runs = run_all(jobs, args.jobs)
    runs += run_all(matching_jobs(runs, candidates), args.jobs)
    summary = summarise(runs, streams, candidates)
    print_report(summary, streams, candidates, args.seeds, args.long_seeds)
    print(f"\n{len(runs)} runs in {time.perf_counter() - start:.0f} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"runs": runs, **summary}, indent=1, default=str))


if __name__ == "__main__":
    main()
