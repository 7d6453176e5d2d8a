"""1. Replicas SIGKILLed and restarted at seeded random points while instances and labels flow.

Two replicas of ``streamal serve`` share one consumer group with static
membership (``STREAMAL_GROUP_INSTANCE_ID``, as a StatefulSet's pod names
would give): a restarted replica takes its partitions back at once instead of
after the session timeout, so many cycles fit in a short run. Each cycle picks a
replica and a point, seeded: "steady" (a moment after it is ready, while it
keeps up with the flow) or "startup" (a moment after its process started,
whatever it is doing then: loading a checkpoint, replaying the log, joining).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from apache_kafka import ApacheKafka
from harness import Annotator, Feeder, Replica, Scraper
from invariants import check_rates, settle

from streamal.apps.datasets import load
from streamal.service.settings import Settings

CHAOS = "replicas"
PARTITIONS = 4
SEED = 20261130


@pytest.mark.chaos
@pytest.mark.integration
def test_replicas_survive_sigkill_restart_cycles(node: ApacheKafka, chaos_settings: Callable[..., Settings],
                                                 scale, figures, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(SEED)
    settings = chaos_settings(node.bootstrap, partitions=PARTITIONS)
    dataset = load("sea", limit=200_000)
    replicas = [
        Replica(name, settings.model_copy(update={"group_instance_id": f"chaos-{name}"}), tmp_path / name)
        for name in ("a", "b")
    ]
    producer: Feeder | None = None
    cycles: list[str] = []
    recover: list[float] = []
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_ready()
        with Scraper(replicas), Annotator(settings, dataset, withhold=scale.withheld) as annotator:
            producer = Feeder(settings, dataset, scale.kill_rate).start()
            started = time.monotonic()
            for cycle in range(scale.kill_cycles):
                replica = rng.choice(replicas)
                where = rng.choice(("steady", "startup"))
                if where == "steady":
                    replica.wait_ready()
                    time.sleep(rng.uniform(*scale.kill_gap_s))
                else:
                    time.sleep(max(0.0, replica.process.started_at + rng.uniform(*scale.kill_startup_s)
                                   - time.monotonic()))
                assert replica.process.failed() is None, replica.process.failed()
                assert producer.error is None, producer.error
                assert annotator.failed() is None, annotator.failed()
                decided = replica.now.get("instances", 0.0)
                replica.kill()
                cycles.append(f"{replica.name}:{where}@{time.monotonic() - started:.1f}s/{decided:.0f}")
                replica.start()
                if cycle % 2 == 1:  # every other cycle, measure the time back to ready
                    recover.append(replica.wait_ready())
            for replica in replicas:
                recover.append(replica.wait_ready())
            sent = producer.stop()
            verdict = settle(settings, PARTITIONS, annotator, replicas,
                             failed=lambda: next((r.process.failed() for r in replicas if r.process.failed()), None)
                             or annotator.failed())
            codes = [replica.terminate() for replica in replicas]
        check_rates(replicas, scale.budget, scale.rate_tolerance, scale.rate_min_instances, verdict)
    finally:
        if producer is not None:
            producer.halt()
        for replica in replicas:
            replica.close()
    figures.update(cycles_survived=len(cycles), sent=sent, **verdict.figures,
                   restart_to_ready_s={"median": round(statistics.median(recover), 2), "max": round(max(recover), 2)},
                   sigterm_exit_codes=codes, kills=" ".join(cycles))
    assert codes == [0, 0], f"a replica did not stop cleanly: {codes}"
    assert len(cycles) == scale.kill_cycles
    assert verdict.figures["trained"] > 0, "no label flowed at all"
    assert not verdict.problems, "\n".join(verdict.problems)
