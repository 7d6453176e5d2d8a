"""``streamal simulate --pseudo-labels``: pseudo-labels reported apart from the real labels.

(About the apps, not the core: it lives here because tests/apps/ belongs to
other changes in flight; it can move there as it is.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from streamal import ActiveLearner
from streamal.apps.cli import main
from streamal.apps.datasets import load
from streamal.apps.simulate import SimulationConfig, prepare, simulate, write_labels
from streamal.core.errors import ParameterError
from streamal.core.pseudo import PseudoLabels

LOOSE = {"pseudo_min_proba": 0.8, "pseudo_per_label": 5.0}  # the benchmark's p80k5: fires on phishing


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, ["simulate", *args, "--quiet"])


def by_hand(dataset, budget: float, seed: int, rule: PseudoLabels) -> tuple[int, int, int]:
    """Real labels, pseudo-labels and wrong pseudo-labels of the active run, without simulate."""
    learner = ActiveLearner(budget=budget, seed=seed, pseudo_labels=rule)
    wrong = 0
    for x, y in dataset.examples:
        d = learner.ask(x)
        if d.query:
            learner.learn(x, y)
        elif (y_hat := learner.pseudo_label(x, d)) is not None:
            learner.learn(x, y_hat, pseudo=True)
            wrong += y_hat != y
    return learner.n_real, learner.n_pseudo, wrong


def test_the_report_counts_pseudo_labels_apart_with_the_wrong_ones(tmp_path: Path):
    report = tmp_path / "r.json"
    result = cli("phishing", "--seed", "42", "--pseudo-labels", "--pseudo-min-proba", "0.8",
                 "--pseudo-per-label", "5", "--report-json", str(report))
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    real, pseudo, wrong = by_hand(load("phishing"), 0.05, 42, PseudoLabels(0.8, 20, 5.0))
    assert (data["labels"], data["pseudo_labels"]["labels"], data["pseudo_labels"]["wrong"]) == (real, pseudo, wrong)
    assert pseudo > real > 0 and 0 < wrong < pseudo
    assert data["label_rate"] == real / 1250  # the real labels only
    assert data["pseudo_labels"] == {"labels": pseudo, "wrong": wrong, "per_real_label": pseudo / real,
                                    "min_proba": 0.8, "warmup": 20, "per_label": 5.0}
    text = " ".join(result.output.split())
    assert f"also learned {pseudo:,} unasked instances" in text and f"{wrong:,} wrong" in text
    assert "not in its labels or label rate" in text


def test_off_by_default_the_report_has_no_pseudo_labels(tmp_path: Path):
    report = tmp_path / "r.json"
    result = cli("phishing", "--seed", "42", "--report-json", str(report))
    assert result.exit_code == 0, result.output
    assert "pseudo_labels" not in json.loads(report.read_text()) and "Pseudo-labels" not in result.output
    sim = simulate(load("phishing"), SimulationConfig(seed=42))
    assert sim.pseudo is None and sim.active.labels == sim.report()["labels"]


def test_only_the_active_run_gets_pseudo_labels_and_the_labeled_set_holds_real_labels(tmp_path: Path):
    dataset = load("phishing")
    sim = prepare(dataset, SimulationConfig(seed=42, pseudo_labels=True, **LOOSE))
    assert sim.active.pseudo_labels == PseudoLabels(0.8, 20, 5.0)
    assert sim.random.pseudo_labels is None and sim.full.pseudo_labels is None
    out = sim.run(record=True)
    assert out.pseudo and sim.random.n_pseudo == 0 and sim.full.n_pseudo == 0
    assert sim.active.n_pseudo == out.pseudo and sim.active.n_real == out.active.labels
    rows = tmp_path / "labels.jsonl"
    assert write_labels(out, dataset, rows) == out.active.labels  # bought labels: pseudo-labels are not bought


def test_on_a_clock_too():
    sim = simulate(load("phishing"), SimulationConfig(seed=42, labels_per_hour=200, rate=2.0, pseudo_labels=True,
                                                      **LOOSE))
    assert sim.pseudo is not None and sim.pseudo > 0
    assert sim.report()["labels"] == sim.active.labels == len(sim.active.timeline.requests)


@pytest.mark.parametrize("config, parameter", [
    ({"mode": "pool", "pool_size": 500}, "pseudo_labels"),
    ({"pseudo_min_proba": 1.5}, "pseudo_min_proba"),
    ({"pseudo_warmup": -1}, "pseudo_warmup"),
    ({"pseudo_per_label": 0.0}, "pseudo_per_label"),
])
def test_bad_configurations_fail_before_the_run_naming_the_parameter(config, parameter):
    with pytest.raises(ParameterError) as info:
        prepare(load("phishing"), SimulationConfig(pseudo_labels=True, **config))
    assert info.value.parameter == parameter


def test_regression_is_refused():
    with pytest.raises(ParameterError, match="pseudo_labels: are for classification only") as info:
        prepare(load("chick_weights"), SimulationConfig(pseudo_labels=True))
    assert info.value.parameter == "pseudo_labels"
    result = cli("chick_weights", "--pseudo-labels")
    assert result.exit_code == 1 and "--pseudo-labels: are for classification only" in result.output


def test_the_cli_refuses_a_rule_without_the_flag_and_pool_mode():
    result = cli("phishing", "--pseudo-min-proba", "0.9")
    assert result.exit_code == 1 and "--pseudo-min-proba sets the rule of --pseudo-labels" in result.output
    result = cli("phishing", "--pseudo-labels", "--mode", "pool", "--pool-size", "500")
    assert result.exit_code == 1 and "--pseudo-labels: work in stream mode only" in result.output
    result = cli("phishing", "--pseudo-labels", "--pseudo-min-proba", "1.5")
    assert result.exit_code == 2 and "--pseudo-min-proba" in result.output
    help_text = " ".join(CliRunner().invoke(main, ["simulate", "--help"]).output.split())
    assert "--pseudo-labels" in help_text and "[default: 0.99; 0<x<=1]" in help_text
