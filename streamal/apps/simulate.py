"""``streamal simulate``: the whole loop in one process, with a simulated annotator.

Runs the same stream three times with the same model — active learning,
random sampling at the same budget, and full supervision — and reports how
many labels active learning used and what it reached.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from streamal.apps.datasets import Dataset
from streamal.core.errors import ParameterError
from streamal.core.evaluate import Result, prequential
from streamal.core.learner import DEFAULT_BUDGET_MANAGER, DEFAULT_MODEL, ActiveLearner, default_strategy

#: A run keeps its budget when its realised label rate is within this share
#: of the budget; past it, active and random sampling are not compared "at
#: the same budget" (the budget guard holds long streams within 5 %).
BUDGET_TOLERANCE = 0.05


@dataclass
class SimulationConfig:
    """What to simulate; ``strategy=None`` is the task's default (:func:`~streamal.core.learner.default_strategy`)."""

    model: str = DEFAULT_MODEL
    strategy: str | None = None
    budget_manager: str = DEFAULT_BUDGET_MANAGER
    budget: float = 0.05
    mode: str = "stream"
    pool_size: int = 1000
    seed: int = 0
    text_features: tuple[str, ...] = ()


def budget_kept(result: Result, budget: float) -> bool:
    """Whether ``result``'s realised label rate is within :data:`BUDGET_TOLERANCE` of ``budget``.

    >>> budget_kept(Result(n=1000, labels=104), 0.1), budget_kept(Result(n=1000, labels=350), 0.1)
    (True, False)
    """
    return abs(result.label_rate - budget) <= BUDGET_TOLERANCE * budget


@dataclass
class Simulation:
    """The three runs on one stream; ``config.strategy`` is the strategy that ran."""

    dataset: str
    task: str
    config: SimulationConfig
    active: Result
    random: Result
    full: Result

    @property
    def budget_kept(self) -> bool:
        """Whether active learning and random sampling both spent the budget (see :func:`budget_kept`)."""
        return budget_kept(self.active, self.config.budget) and budget_kept(self.random, self.config.budget)

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
            "budget_kept": self.budget_kept,
            "accuracy": self.active.accuracy,
            "random_accuracy": self.random.accuracy,
            "random_labels": self.random.labels,
            "random_label_rate": self.random.label_rate,
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
            name: [{"n": p.n, metric: p.metric, "label_rate": p.label_rate} for p in res.trace]
            for name, res in (("active", self.active), ("random", self.random), ("full", self.full))
        }
        return out


@dataclass
class Simulator:
    """A simulation ready to run: its configuration resolved and checked, its three learners built."""

    dataset: Dataset
    config: SimulationConfig
    active: ActiveLearner
    random: ActiveLearner
    full: ActiveLearner

    def run(self, progress: Callable[[int], None] | None = None) -> Simulation:
        """Active learning, random sampling and full supervision, one after the other."""
        c = self.config
        common = {"mode": c.mode, "pool_size": c.pool_size, "expected": len(self.dataset), "progress": progress}
        active = prequential(self.active, self.dataset, **common)
        random_ = prequential(self.random, self.dataset, **common)
        full = prequential(self.full, self.dataset, full=True, **common)
        return Simulation(self.dataset.name, self.dataset.task, c, active, random_, full)


def prepare(dataset: Dataset, config: SimulationConfig) -> Simulator:
    """Check ``config`` against ``dataset`` and build the learners, before anything runs.

    The strategy defaults to the task's. A bad model, strategy or budget
    manager, and a pool window that would not close before the stream ends,
    raise :class:`~streamal.core.errors.ParameterError` (a ``ValueError``)
    naming the parameter.
    """
    config = replace(config, strategy=config.strategy or default_strategy(dataset.task))
    if config.mode == "pool" and config.pool_size >= len(dataset):
        raise ParameterError(
            "pool_size",
            f"{config.pool_size:,} is not smaller than the stream ({len(dataset):,} instances): no window would "
            f"close before the end, so every prediction would come before the first label; give less than {len(dataset):,}",
        )

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

    return Simulator(dataset, config, learner(config.strategy, config.budget),
                     learner("random", config.budget), learner("random", 1.0))


def simulate(
    dataset: Dataset,
    config: SimulationConfig,
    progress: Callable[[int], None] | None = None,
) -> Simulation:
    """Active learning, random sampling and full supervision on one stream (:func:`prepare`, then run)."""
    return prepare(dataset, config).run(progress)


def write_json(sim: Simulation, path: Path) -> None:
    path.write_text(json.dumps(sim.report(), indent=2) + "\n")


def plot_formats() -> set[str]:
    """File name suffixes :func:`plot` can write (``.png``, ``.pdf``, ``.svg``, …)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return {f".{ext}" for ext in FigureCanvasBase.get_supported_filetypes()}


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
        ns = [p.n for p in res.trace]
        top.plot(ns, [p.metric for p in res.trace], label=label, color=color)
        if res is not sim.full:
            bottom.plot(ns, [100 * p.label_rate for p in res.trace], label=label, color=color)
    bottom.axhline(100 * sim.config.budget, color="grey", linestyle="--", linewidth=1, label="budget")
    top.set_ylabel(f"prequential {metric}")
    top.set_title(f"{sim.dataset}: {sim.active.labels} labels ({100 * sim.active.label_rate:.1f} %) "
                  f"of {sim.active.n} instances")
    top.legend(loc="lower right" if metric == "accuracy" else "upper right")
    top.grid(alpha=0.3)
    bottom.set_ylabel("label rate (%)")
    bottom.set_xlabel("instances")
    highest = max((p.label_rate for res in (sim.active, sim.random) for p in res.trace), default=0.0)
    bottom.set_ylim(0, max(200 * sim.config.budget, 110 * highest, 1.0))  # an overspend shows, never clipped
    bottom.legend(loc="upper right")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
