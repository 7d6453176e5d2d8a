"""``streamal simulate --labels-per-hour``: a clock, a simulated annotator, a budget that follows capacity.

Each test drives the real CLI (click's CliRunner) and reads the report it wrote.
"""

from __future__ import annotations

import itertools
import json
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from streamal.apps.cli import main

# SEA at 2 instances/s: 20,000 instances are 10,000 s of the clock, two full hours and a partial third.
SEA = ("simulate", "sea", "--limit", "20000", "--rate", "2")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--quiet"])


def text(result: Result) -> str:
    return " ".join(result.output.split())


def report(tmp_path: Path, *args: str) -> tuple[Result, dict]:
    path = tmp_path / "r.json"
    result = run(*args, "--report-json", str(path))
    assert result.exit_code == 0, result.output
    return result, json.loads(path.read_text())


def test_requests_per_hour_follow_the_capacity_once_warmed_up(tmp_path: Path):
    result, data = report(tmp_path, *SEA, "--labels-per-hour", "180")
    hours, clock = data["hours"], data["clock"]
    assert clock == clock | {"labels_per_hour": 180.0, "rate": 2.0, "answer_delay_s": 60.0, "annotator_speed": 180.0,
                             "ceiling": 0.05, "seconds": 10_000.0, "capacity_kept": True}
    assert [h["seconds"] for h in hours] == [3600.0, 3600.0, 2800.0]
    assert sum(h["instances"] for h in hours) == data["n"] == 20_000
    assert sum(h["requests"] for h in hours) == data["labels"]
    for h in hours[1:]:  # after the first hour (the cold start): within ±10 % of L
        assert abs(h["requests_per_hour"] / 180 - 1) <= 0.10, h
        assert h["budget"] == pytest.approx(180 / 3600 / 2, rel=0.1)  # 0.05 labels/s of 2 instances/s: 2.5 %
    # Backlog bounded: the cold start's first requests drain away (the annotator answers 180/h, one every
    # 20 s), down to about what it clears in the answer delay (180/h × 60 s = 3).
    assert clock["backlog_max"] == hours[0]["backlog_max"] < 60
    assert [h["backlog_max"] for h in hours] == sorted((h["backlog_max"] for h in hours), reverse=True)
    assert hours[-1]["backlog_max"] <= 6
    # Random sampling: the same labels, so the same labels per hour.
    assert data["random_labels"] == data["labels"] and data["budget_kept"] is True
    out = text(result)
    assert "budget following 180 labels/h (ceiling 5 %)" in out
    assert "Requests within ±10 % of the capacity (180/h) in 1 of the 1 full hours after the first" in out
    assert "the comparison is at equal labels per hour" in out


def test_a_slower_annotator_builds_a_backlog_and_the_budget_falls(tmp_path: Path):
    _, fast = report(tmp_path, *SEA, "--labels-per-hour", "180")
    result, slow = report(tmp_path, *SEA, "--labels-per-hour", "180", "--annotator-speed", "60")
    assert slow["clock"]["annotator_speed"] == 60.0
    backlogs = [h["backlog"] for h in slow["hours"]]
    budgets = [h["budget"] for h in slow["hours"]]
    assert backlogs == sorted(backlogs) and backlogs[-1] > 60  # requests queue up ...
    assert budgets == sorted(budgets, reverse=True)  # ... and the budget falls as they do
    assert budgets[-1] < 0.7 * fast["hours"][-1]["budget"]
    assert slow["labels"] < 0.8 * fast["labels"]
    # Capacity's rule: b = L/λ · (1 − backlog / L) with the backlog at the hour's end.
    last = slow["hours"][-1]
    assert last["budget"] == pytest.approx(180 / 3600 / 2 * (1 - last["backlog"] / 180), rel=0.1)
    assert slow["clock"]["capacity_kept"] is False and "Backlog: at most" in text(result)


def test_labels_are_learned_only_when_their_answers_arrive(tmp_path: Path):
    """The longer the answers take, the later the model learns: the prequential accuracy falls."""
    _, quick = report(tmp_path, *SEA, "--labels-per-hour", "180", "--answer-delay", "0")
    _, late = report(tmp_path, *SEA, "--labels-per-hour", "180", "--answer-delay", "3600")
    assert late["accuracy"] < quick["accuracy"] - 0.01
    assert late["clock"]["answered_after_end"] > 10 * max(1, quick["clock"]["answered_after_end"])


def test_the_export_and_trace_carry_the_clock(tmp_path: Path):
    labels, trace = tmp_path / "labels.jsonl", tmp_path / "trace.jsonl"
    _, data = report(tmp_path, "simulate", "phishing", "--labels-per-hour", "360", "--rate", "1",
                     "--budget", "0.2", "--export-labels", str(labels), "--trace", str(trace))
    bought = [json.loads(line) for line in labels.read_text().splitlines()]
    decisions = [json.loads(line) for line in trace.read_text().splitlines()]
    assert len(bought) == data["labels"] == sum(d["asked"] for d in decisions) and len(decisions) == 1250
    assert [d["time_s"] for d in decisions] == [float(i) for i in range(1250)]
    gaps = []
    for row in bought:
        assert row["asked_at_s"] == row["id"] and row["answered_at_s"] >= row["asked_at_s"] + 60
        gaps.append(row["answered_at_s"])
    assert all(b - a >= 10 - 1e-9 for a, b in itertools.pairwise(gaps))  # at most 360 per hour: one per 10 s


def test_the_plot_gets_a_capacity_panel(tmp_path: Path):
    plain, clocked = tmp_path / "plain.png", tmp_path / "clock.png"
    assert run("simulate", "phishing", "--plot", str(plain)).exit_code == 0
    result = run(*SEA, "--labels-per-hour", "180", "--plot", str(clocked))
    assert result.exit_code == 0, result.output

    def height(path: Path) -> int:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        return struct.unpack(">I", data[20:24])[0]

    assert height(clocked) > 1.3 * height(plain)


def test_the_ceiling_is_said_when_it_holds_the_budget(tmp_path: Path):
    result, data = report(tmp_path, *SEA, "--limit", "3000", "--labels-per-hour", "720", "--budget", "0.05")
    assert data["clock"]["ceiling_share"] > 0.9  # 720/h at 2/s would be 10 %
    assert "The ceiling --budget 5 % held the budget" in text(result)


@pytest.mark.parametrize(("flag", "value"), [("--rate", "5"), ("--answer-delay", "10"), ("--annotator-speed", "60")])
def test_clock_flags_need_labels_per_hour(flag: str, value: str):
    result = run("simulate", "phishing", flag, value)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{flag} sets the clock of --labels-per-hour" in result.output


def test_the_clock_runs_stream_mode_only():
    result = run("simulate", "phishing", "--labels-per-hour", "100", "--mode", "pool", "--pool-size", "200")
    assert result.exit_code == 1 and "--labels-per-hour: the clock runs stream mode only" in result.output


@pytest.mark.parametrize(("flag", "value"), [("--labels-per-hour", "0"), ("--rate", "-1"), ("--answer-delay", "-5"),
                                             ("--annotator-speed", "0")])
def test_bad_clock_values_name_the_flag(flag: str, value: str):
    args = ["simulate", "phishing", flag, value] + ([] if flag == "--labels-per-hour" else ["--labels-per-hour", "60"])
    result = run(*args)
    assert result.exit_code == 2 and flag in result.output


def test_an_infinite_answer_delay_is_one_line_naming_the_flag():
    result = run("simulate", "phishing", "--labels-per-hour", "60", "--answer-delay", "inf")
    assert result.exit_code == 1 and "--answer-delay: must be a finite number" in result.output
