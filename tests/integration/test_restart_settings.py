"""A restart with changed settings, against a real broker: what the operator set is what is in force.

The checkpoint records what shaped the learner: a changed budget applies to
the restored model at once, and ``streamal_budget_ratio`` shows it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from helpers import OracleThread, ServiceThread, read_topic, wait_until

from streamal.apps.datasets import Dataset, load
from streamal.apps.replay import produce

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


def run(settings: Any, dataset: Dataset, already: int) -> tuple[ServiceThread, int]:
    """Serve ``dataset`` with an annotator until every instance is decided and every label learned."""
    with ServiceThread(settings) as service, OracleThread(settings, dataset) as oracle:
        service.wait_ready()
        learned_at_start = service.value("streamal_model_version")
        assert produce(settings, dataset) == len(dataset)

        def finished() -> bool:
            return service.instances >= len(dataset) and service.value("streamal_model_version") >= (
                already + service.requests) and oracle.answered >= service.requests

        wait_until(finished, 120, "every instance decided and every label learned",
                   failed=lambda: service.failed() or oracle.failed())
    return service, int(learned_at_start)


def test_a_restart_with_a_new_budget_applies_it_and_the_metric_says_so(
    settings_for: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = settings_for(budget=0.05, state_dir=tmp_path / "state", metrics_port=0)
    before, _ = run(first, load("sea", limit=4000, seed=1), already=0)
    asked_before = len(read_topic(first, first.topic_label_requests, at_least=int(before.requests)))
    assert asked_before == pytest.approx(0.05 * 4000, rel=0.05)
    assert before.value("streamal_budget_ratio") == 0.05

    # The operator sets STREAMAL_BUDGET=0.02 and restarts: same topics, group and state directory.
    second = first.model_copy(update={"budget": 0.02})
    later = dataclasses.replace(load("sea", limit=10_000, seed=2), name="later")  # new instance ids
    with caplog.at_level("INFO", logger="streamal.service"):
        after, learned_at_start = run(second, later, already=asked_before)
    assert "restored checkpoint" in caplog.text and "rebuilding" not in caplog.text  # same shape: loaded
    assert learned_at_start == asked_before
    assert after.value("streamal_budget_ratio") == 0.02
    asked_after = len(read_topic(second, second.topic_label_requests, at_least=asked_before + int(after.requests)))
    rate = (asked_after - asked_before) / len(later)
    assert rate == pytest.approx(0.02, rel=0.05), f"{rate:.2%} asked after the restart at a 2 % budget"
    # The realised rate of the replica's (restored) budget manager, over both runs.
    assert after.value("streamal_label_rate_ratio") == pytest.approx(asked_after / (4000 + len(later)), rel=0.05)
