"""``streamal simulate``: the whole loop in one process, with a simulated annotator.

Runs the same stream three times with the same model — active learning,
random sampling at the same budget, and full supervision — and reports how
many labels active learning used and what it reached.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamal.apps.datasets import Dataset
from streamal.core.evaluate import Result, prequential
from streamal.core.learner import ActiveLearner


@dataclass
class SimulationConfig:
    model: str = "logistic_regression"
    strategy: str = "margin"
    budget_manager: str = "quantile"
    budget: float = 0.05
    mode: str = "stream"
    pool_size: int = 1000
    seed: int = 0
    text_features: tuple[str, ...] = ()


@dataclass
class Simulation:
    dataset: str
    task: str
    config: SimulationConfig
    active: Result
    random: Result
    full: Result

    def report(self) -> dict[str, Any]:
        """The JSON report (``--report-json``)."""
        metric = "mae" if self.task == "regression" else "accuracy"
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "task": self.task,
            "n": self.active.n,
            "labels": self.active.labels,
            "label_rate": self.active.label_rate,
            "budget": self.config.budget,
            "accuracy": self.active.accuracy,
            "random_accuracy": self.random.accuracy,
            "random_labels": self.random.labels,
            "full_accuracy": self.full.accuracy,
            "model": self.config.model,
            "strategy": self.config.strategy,
            "budget_manager": self.config.budget_manager,
            "mode": self.config.mode,
            "seed": self.config.seed,
        }
        if metric == "mae":
            out |= {"mae": self.active.mae, "random_mae": self.random.mae, "full_mae": self.full.mae}
        else:  # the mean per-class recall: what counts when classes are imbalanced
            out |= {"balanced_accuracy": self.active.balanced_accuracy,
                    "random_balanced_accuracy": self.random.balanced_accuracy,
                    "full_balanced_accuracy": self.full.balanced_accuracy}
        out["trace"] = {
            name: [{"n": n, metric: m, "label_rate": r} for n, m, r in res.trace]
            for name, res in (("active", self.active), ("random", self.random), ("full", self.full))
        }
        return out


def simulate(
    dataset: Dataset,
    config: SimulationConfig,
    progress: Callable[[int], None] | None = None,
) -> Simulation:
    """Active learning, random sampling and full supervision on one stream."""

    def learner(strategy: str, budget: float) -> ActiveLearner:
        return ActiveLearner(
            model=config.model,
            strategy=strategy,
            budget_manager=config.budget_manager,
            budget=budget,
            task=dataset.task,  # type: ignore[arg-type]
            text_features=config.text_features,
            seed=config.seed,
        )

    common = {"mode": config.mode, "pool_size": config.pool_size, "expected": len(dataset), "progress": progress}
    active = prequential(learner(config.strategy, config.budget), dataset, **common)
    random_ = prequential(learner("random", config.budget), dataset, **common)
    full = prequential(learner("random", 1.0), dataset, full=True, **common)
    return Simulation(dataset.name, dataset.task, config, active, random_, full)


def write_json(sim: Simulation, path: Path) -> None:
    path.write_text(json.dumps(sim.report(), indent=2) + "\n")


def plot(sim: Simulation, path: Path) -> None:
    """Accuracy (or MAE) and label rate over the stream, the three runs on one figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = "MAE" if sim.task == "regression" else "accuracy"
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=[3, 2])
    runs = (
        (f"streamal ({sim.config.strategy} + {sim.config.budget_manager})", sim.active, "C0"),
        ("random sampling", sim.random, "C1"),
        ("full supervision", sim.full, "C2"),
    )
    for label, res, color in runs:
        ns = [n for n, _, _ in res.trace]
        top.plot(ns, [m for _, m, _ in res.trace], label=label, color=color)
        if res is not sim.full:
            bottom.plot(ns, [100 * r for _, _, r in res.trace], label=label, color=color)
    bottom.axhline(100 * sim.config.budget, color="grey", linestyle="--", linewidth=1, label="budget")
    top.set_ylabel(f"prequential {metric}")
    top.set_title(f"{sim.dataset}: {sim.active.labels} labels ({100 * sim.active.label_rate:.1f} %) "
                  f"of {sim.active.n} instances")
    top.legend(loc="lower right" if metric == "accuracy" else "upper right")
    top.grid(alpha=0.3)
    bottom.set_ylabel("label rate (%)")
    bottom.set_xlabel("instances")
    bottom.set_ylim(0, max(100 * sim.config.budget * 2.0, 1.0))
    bottom.legend(loc="upper right")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
