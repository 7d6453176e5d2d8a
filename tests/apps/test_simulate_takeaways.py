"""What a team takes away from ``streamal simulate``: the labeled set, the decision trace, a held-out
figure, and how many labels active learning saved.

Each test drives the real CLI (click's CliRunner) on bundled data and reads the files it wrote.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
from click.testing import Result

from cli_run import one_line_error, run

from streamal.apps.datasets import load


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def text(result: Result) -> str:
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def phishing() -> list:
    return load("phishing").examples


# -- the labeled set and the trace -------------------------------------------------------

def test_the_export_is_exactly_the_labels_bought_and_the_trace_every_decision(tmp_path: Path, phishing: list):
    labels, trace, report = tmp_path / "labels.jsonl", tmp_path / "trace.jsonl", tmp_path / "r.json"
    result = run("simulate", "phishing", "--export-labels", str(labels), "--trace", str(trace),
                 "--report-json", str(report))
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    bought, decisions = jsonl(labels), jsonl(trace)
    assert f"{data['labels']} labeled instances written to {labels}" in text(result)

    assert len(bought) == data["labels"] == 64
    assert len(decisions) == data["n"] == 1250
    assert sum(d["asked"] for d in decisions) == data["labels"]
    assert [d["id"] for d in decisions] == list(range(1250))
    asked = {d["id"] for d in decisions if d["asked"]}
    assert {row["id"] for row in bought} == asked and len(asked) == len(bought)
    for row in bought:  # the instance's own features and true label, asked when it arrived
        x, y = phishing[row["id"]]
        assert row["features"] == x and row["label"] == y
        assert row["asked_at_instance"] == row["id"] + 1
    for d in decisions:
        assert set(d) == {"id", "score", "threshold", "asked", "prediction", "truth"}
        assert 0.0 <= d["score"] <= 1.0 and d["truth"] == phishing[d["id"]][1]
    # The trace's predictions are the prequential ones: their accuracy is the report's.
    assert sum(d["prediction"] == d["truth"] for d in decisions) / 1250 == pytest.approx(data["accuracy"])


def test_csv_when_the_path_ends_with_csv(tmp_path: Path, phishing: list):
    labels, trace = tmp_path / "labels.csv", tmp_path / "trace.csv"
    result = run("simulate", "phishing", "--budget", "0.1", "--export-labels", str(labels), "--trace", str(trace))
    assert result.exit_code == 0, result.output
    with labels.open(newline="") as fh:
        bought = list(csv.DictReader(fh))
    with trace.open(newline="") as fh:
        decisions = list(csv.DictReader(fh))
    assert len(decisions) == 1250 and sum(d["asked"] == "True" for d in decisions) == len(bought)
    assert abs(len(bought) - 125) <= 2
    assert list(bought[0])[:3] == ["id", "asked_at_instance", "label"]
    assert set(list(bought[0])[3:]) == set(phishing[0][0])  # one column per feature
    for row in bought:
        x, y = phishing[int(row["id"])]
        assert row["label"] == str(y)
        assert all(float(row[k]) == v for k, v in x.items())


def test_a_files_own_ids_name_the_instances(tmp_path: Path):
    data = tmp_path / "events.jsonl"
    data.write_text("".join(json.dumps({"id": f"evt-{i}", "a": i % 7, "b": (i * 3) % 5, "y": "x" if i % 7 < 3 else "z"})
                            + "\n" for i in range(400)))
    labels, trace = tmp_path / "labels.jsonl", tmp_path / "trace.jsonl"
    result = run("simulate", str(data), "--target", "y", "--budget", "0.1",
                 "--export-labels", str(labels), "--trace", str(trace))
    assert result.exit_code == 0, result.output
    assert [d["id"] for d in jsonl(trace)] == [f"evt-{i}" for i in range(400)]
    assert all(row["id"].startswith("evt-") and "id" not in row["features"] for row in jsonl(labels))


def test_pool_mode_exports_the_picks_asked_at_the_end_of_their_window(tmp_path: Path):
    labels, trace, report = tmp_path / "labels.jsonl", tmp_path / "trace.jsonl", tmp_path / "r.json"
    result = run("simulate", "phishing", "--mode", "pool", "--pool-size", "250", "--export-labels", str(labels),
                 "--trace", str(trace), "--report-json", str(report))
    assert result.exit_code == 0, result.output
    bought, decisions = jsonl(labels), jsonl(trace)
    assert len(bought) == json.loads(report.read_text())["labels"] == sum(d["asked"] for d in decisions)
    assert all(row["asked_at_instance"] % 250 == 0 and row["id"] < row["asked_at_instance"] for row in bought)
    assert all(d["score"] is None and d["threshold"] is None for d in decisions)  # a window's best, no threshold


# -- the holdout ---------------------------------------------------------------------------

def test_the_holdout_is_never_asked_and_scored_for_every_run(tmp_path: Path):
    labels, trace, report = tmp_path / "labels.jsonl", tmp_path / "trace.csv", tmp_path / "r.json"
    result = run("simulate", "phishing", "--holdout", "0.2", "--export-labels", str(labels), "--trace", str(trace),
                 "--report-json", str(report))
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["n"] == 1000 and data["holdout_n"] == 250
    for key in ("holdout_accuracy", "random_holdout_accuracy", "full_holdout_accuracy",
                "holdout_balanced_accuracy", "random_holdout_balanced_accuracy", "full_holdout_balanced_accuracy"):
        assert isinstance(data[key], float) and 0.0 <= data[key] <= 1.0, key
    assert data["full_holdout_accuracy"] > 0.8 and data["holdout_accuracy"] > 0.8
    assert all(row["id"] < 1000 for row in jsonl(labels))  # the last 250 were never asked ...
    with trace.open(newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 1000  # ... nor even decided
    assert "holdout" in result.output and "the last 250 instances (20 %)" in text(result)


def test_a_regression_holdout_is_scored_by_mae(tmp_path: Path):
    report = tmp_path / "r.json"
    result = run("simulate", "chick_weights", "--budget", "0.2", "--holdout", "0.25", "--report-json", str(report))
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["holdout_n"] == round(0.25 * 578)
    assert all(data[k] > 0 for k in ("holdout_mae", "random_holdout_mae", "full_holdout_mae"))
    assert "holdout_accuracy" not in data and data["labels_to_target"]["target"] == pytest.approx(data["full_mae"] / 0.95)


@pytest.mark.parametrize("value", ["0", "1", "1.5"])
def test_a_holdout_outside_zero_one_is_refused(value: str):
    result = run("simulate", "phishing", "--holdout", value)
    assert result.exit_code == 2 and "--holdout" in result.output


def test_a_holdout_that_leaves_nothing_on_one_side_is_refused():
    one_line_error(run("simulate", "phishing", "--limit", "3", "--holdout", "0.1"),
                   "--holdout", "holds out 0", "at least one instance on each side")


# -- how many labels it saved ------------------------------------------------------------

def test_the_labels_to_reach_full_supervision_are_reported(tmp_path: Path):
    report = tmp_path / "r.json"
    result = run("simulate", "phishing", "--report-json", str(report))
    data = json.loads(report.read_text())
    t = data["labels_to_target"]
    assert t["target"] == pytest.approx(0.95 * data["full_accuracy"])
    assert t["comparable"] and 0 < t["active"] < t["random"] <= data["random_labels"]
    assert t["saved"] == t["random"] - t["active"]
    assert t["first_check_n"] == 125 and t["reached_at_n"]["active"] >= 125
    assert "over the last 10% of the stream" in t["definition"]
    assert (f"active learning {t['active']} labels, random sampling {t['random']} labels — {t['saved']} fewer"
            in text(result))


def test_a_target_never_reached_is_said_so_never_a_quiet_zero(tmp_path: Path):
    """Answers that come after the stream ends: no model ever learns, so neither run reaches the target."""
    report = tmp_path / "r.json"
    result = run("simulate", "phishing", "--labels-per-hour", "360", "--answer-delay", "1000",
                 "--report-json", str(report))
    assert result.exit_code == 0, result.output
    t = json.loads(report.read_text())["labels_to_target"]
    assert t["active"] is None and t["random"] is None and t["saved"] is None
    labels = json.loads(report.read_text())["labels"]
    assert (f"active learning not reached with its {labels} labels, random sampling not reached with its "
            f"{labels} labels." in text(result))


def test_no_saving_is_printed_at_unequal_budgets(tmp_path: Path):
    report = tmp_path / "r.json"
    result = run("simulate", "phishing", "--budget-manager", "fixed", "--budget", "0.1", "--limit", "200",
                 "--report-json", str(report))
    data = json.loads(report.read_text())
    assert data["budget_kept"] is False
    assert data["labels_to_target"]["comparable"] is False and data["labels_to_target"]["saved"] is None
    assert "not compared, as the runs did not keep the same budget" in text(result)
    assert "fewer (" not in text(result)


# -- output paths are checked before the run ------------------------------------------------

@pytest.mark.parametrize("option", ["--export-labels", "--trace"])
def test_bad_output_paths_fail_at_once(tmp_path: Path, option: str):
    for path, message in [(tmp_path / "missing" / "out.jsonl", "does not exist"), (tmp_path, "is a directory")]:
        started = time.monotonic()
        one_line_error(run("simulate", "shuttle", option, str(path)), option, message)
        assert time.monotonic() - started < 5  # before the run: shuttle's three runs take far longer


def test_two_outputs_to_one_file_are_refused(tmp_path: Path):
    path = tmp_path / "out.jsonl"
    one_line_error(run("simulate", "phishing", "--export-labels", str(path), "--trace", str(path)),
                   "--trace", "--export-labels writes the same file")
    assert not path.exists()
