"""The anchor parser on the real file and on edge cases."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from benchmarks.anchors import (
    ANCHORS_ENV,
    anchor_base,
    default_path,
    is_full,
    load_anchors,
    parse_anchors,
)
from benchmarks.streams import ANCHOR_STREAMS

BUDGETS = [0.01, 0.05, 0.1, 0.2]


@pytest.fixture(scope="module")
def anchors():
    if not default_path().exists():
        pytest.skip(f"anchor file not found at {default_path()}")
    return load_anchors()


def test_streams_and_budgets(anchors) -> None:
    assert anchors.streams == ANCHOR_STREAMS
    assert anchors.budgets == BUDGETS
    assert anchors.instances["phishing"] == 1250
    assert anchors.instances["led_drift"] == 20000


def test_every_stream_has_the_same_twelve_anchors(anchors) -> None:
    names = anchors.anchors()
    assert len(names) == 12
    assert names[:3] == ["river full [LR]", "river full [HT]", "skal full [GNB]"]
    for stream in anchors.streams:
        assert anchors.anchors(stream) == names
        for anchor in names:
            assert sorted(anchors.per_stream[stream][anchor]) == BUDGETS


def test_known_cells(anchors) -> None:
    ps = anchors.per_stream
    assert ps["phishing"]["river full [LR]"][0.01] == (89.28, 100.0)
    assert ps["bananas"]["river EntropySampler [HT]"][0.2] == (55.15, 0.09)
    assert ps["led_drift"]["skal StreamProbabilisticAL [GNB]"][0.2] == (50.40, 20.00)
    assert anchors.flags["bananas"]["river EntropySampler [HT]"][0.2] == "‡"
    assert anchors.flags["phishing"]["skal Split [GNB]"][0.05] == "*"
    assert 0.2 not in anchors.flags["phishing"]["skal Split [GNB]"]


def test_full_rows_are_budget_independent(anchors) -> None:
    for stream in anchors.streams:
        for anchor, cells in anchors.per_stream[stream].items():
            if is_full(anchor):
                assert len(set(cells.values())) == 1
                assert next(iter(cells.values()))[1] == 100.0


def test_summary_is_the_mean_of_the_stream_tables(anchors) -> None:
    assert set(anchors.summary) == set(anchors.anchors())
    assert anchors.summary["river full [LR]"][0.1] == (77.71, None)
    assert anchors.summary["skal Split [GNB]"][0.01] == (65.43, 1)
    for anchor, cells in anchors.summary.items():
        for budget, (mean, _wins) in cells.items():
            ours = statistics.mean(anchors.per_stream[s][anchor][budget][0] for s in anchors.streams)
            assert abs(ours - mean) < 0.01  # the file averages unrounded figures
    for budget in BUDGETS:
        wins = [w for c in anchors.summary.values() if (w := c[budget][1]) is not None]
        assert sum(wins) >= len(anchors.streams)  # ties can credit several anchors


def test_other_tables(anchors) -> None:
    assert anchors.best_full["bananas"] == 64.30
    assert anchors.gap_at_10["river random [LR]"]["mean"] == -6.29
    assert anchors.gap_at_10["skal StreamRandomSampling [GNB]"]["shuttle"] == 0.04
    assert anchors.adherence["river EntropySampler [HT]"][0.1] == (0.52, 100.0)
    assert anchors.throughput["river full [LR]"]["aggregate"] == 33111.0
    assert anchors.throughput["river full [LR]"][0.1] is None
    assert anchors.throughput["river random [HT]"][0.05] == 26021.0


def test_helpers() -> None:
    assert anchor_base("river EntropySampler [LR]") == "LR"
    assert anchor_base("skal Split [GNB]") == "GNB"
    assert is_full("river full [HT]") and not is_full("river random [HT]")


def test_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "a.md"
    f.write_text(
        "### s1 (1,000 instances)\n\n"
        "| anchor | budget 1% | budget 10% |\n|---|---:|---:|\n"
        "| **x full [LR]** (all labels) | 90.00 / 100 | 90.00 / 100 |\n"
        "| y [LR] | 50.5 / 1.5* | 80 / 9.0‡ |\n",
        encoding="utf-8",
    )
    monkeypatch.setenv(ANCHORS_ENV, str(f))
    assert default_path() == f
    a = load_anchors()
    assert a.per_stream == {
        "s1": {"x full [LR]": {0.01: (90.0, 100.0), 0.1: (90.0, 100.0)},
               "y [LR]": {0.01: (50.5, 1.5), 0.1: (80.0, 9.0)}}
    }
    assert a.flags == {"s1": {"y [LR]": {0.01: "*", 0.1: "‡"}}}


def test_garbage_is_rejected() -> None:
    with pytest.raises(ValueError):
        parse_anchors("# nothing here\n")
    with pytest.raises(ValueError):
        parse_anchors("### s (10 instances)\n\n| anchor | budget 1% |\n|---|---|\n| a | n/a |\n")
