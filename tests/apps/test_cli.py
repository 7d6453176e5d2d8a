"""The streamal CLI: help, version, simulate, and one-line errors on bad files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from streamal.apps.cli import main
from streamal.apps.datasets import tickets


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_version_and_help():
    proc = subprocess.run([sys.executable, "-m", "streamal.apps.cli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("streamal, version ")
    result = run("--help")
    assert result.exit_code == 0 and "simulate" in result.output
    result = run("simulate", "--help")
    assert result.exit_code == 0 and "--budget-manager" in result.output


def test_simulate_reports_json_and_plot(tmp_path):
    report, plot = tmp_path / "r.json", tmp_path / "p.png"
    result = run("simulate", "phishing", "--budget", "0.1", "--quiet",
                 "--report-json", str(report), "--plot", str(plot))
    assert result.exit_code == 0, result.output
    assert "random sampling" in result.output and "full supervision" in result.output
    data = json.loads(report.read_text())
    for key in ("accuracy", "label_rate", "labels", "n", "random_accuracy", "full_accuracy",
                "balanced_accuracy", "random_balanced_accuracy", "full_balanced_accuracy"):
        assert key in data
    assert data["n"] == 1250 and abs(data["label_rate"] - 0.1) < 0.005
    assert data["full_accuracy"] > data["accuracy"] > 0.7
    assert 0.7 < data["balanced_accuracy"] < 1.0 and "balanced acc." in result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_simulate_pool_mode():
    result = run("simulate", "bananas", "--mode", "pool", "--pool-size", "500", "--quiet")
    assert result.exit_code == 0, result.output
    assert "pool mode" in result.output


def test_simulate_user_csv_with_text(tmp_path):
    path = tmp_path / "tickets.csv"
    rows = ["body,plan,account_age_days,topic"]
    rows += [f'"{x["body"]}",{x["plan"]},{x["account_age_days"]},{y}' for x, y in tickets(n=1500, seed=4)]
    path.write_text("\n".join(rows) + "\n")
    result = run("simulate", str(path), "--target", "topic", "--text-features", "body",
                 "--budget", "0.2", "--quiet", "--report-json", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["n"] == 1500 and data["accuracy"] > data["random_accuracy"] - 0.05


def test_simulate_user_jsonl_regression(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"id": f"i{i}", "a": i % 10, "b": "x" if i % 2 else "y", "y": 2.5 * (i % 10) + 0.1})
                            + "\n" for i in range(600)))
    result = run("simulate", str(path), "--target", "y", "--model", "linear_regression",
                 "--strategy", "variance_reduction", "--quiet")
    assert result.exit_code == 0, result.output
    assert "MAE" in result.output


BAD = [
    ("missing_target.csv", "a,b\n1,2\n", ["--target", "y"], "unknown column 'y' for --target"),
    ("junk.csv", "a,y\n1,0\n2,1\nabc,1\n", ["--target", "y"], "row 4, column 'a': 'abc' is not a number"),
    ("nan.csv", "a,y\n1,0\nnan,1\n", ["--target", "y"], "row 3, column 'a': nan is not a finite number"),
    ("empty.csv", "", ["--target", "y"], "empty file"),
    ("header_only.csv", "a,y\n", ["--target", "y"], "no data rows"),
    ("no_label.csv", "a,y\n1,0\n2,\n", ["--target", "y"], "row 3: the target column 'y' is empty"),
    ("ragged.csv", "a,y\n1,0\n2\n", ["--target", "y"], "row 3 has 1 values, the header has 2"),
    ("text.csv", "a,y\n1,0\n", ["--target", "y", "--text-features", "body"], "unknown text feature column 'body'"),
    ("bad.jsonl", '{"a": 1, "y": 0}\n{"a": 2, "y": 1\n', ["--target", "y"], "line 2: not valid JSON"),
    ("list.jsonl", '{"a": 1, "y": 0}\n[1, 2]\n', ["--target", "y"], "line 2: expected a JSON object"),
    ("nolabel.jsonl", '{"a": 1, "y": 0}\n{"a": 2}\n', ["--target", "y"], "line 2: no value for the target 'y'"),
    ("nanjson.jsonl", '{"a": NaN, "y": 0}\n', ["--target", "y"], "line 1: not valid JSON"),
    ("empty.jsonl", "\n", ["--target", "y"], "empty file"),
]


@pytest.mark.parametrize(("name", "content", "args", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_files_give_one_clear_line(tmp_path, name, content, args, message):
    path = tmp_path / name
    path.write_text(content)
    result = run("simulate", str(path), *args, "--quiet")
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_target_option_and_unknown_dataset(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("a,y\n1,0\n")
    assert "--target COL is required" in run("simulate", str(path), "--quiet").output
    result = run("simulate", "no_such_dataset", "--quiet")
    assert result.exit_code == 1 and "unknown dataset 'no_such_dataset'" in result.output


def test_invalid_options_fail_naming_the_option():
    result = run("simulate", "--budget", "1.5")
    assert result.exit_code == 2 and "--budget" in result.output
    result = run("simulate", "--strategy", "psychic")
    assert result.exit_code == 2 and "--strategy" in result.output
    result = run("simulate", "--model", "svm", "--quiet")
    assert result.exit_code == 1 and "unknown model 'svm'" in result.output
