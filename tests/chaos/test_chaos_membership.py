"""4. Three replicas joining and leaving under load, then the broker frozen longer than the session timeout.

Dynamic membership (no ``STREAMAL_GROUP_INSTANCE_ID``): every change is a
rebalance. One replica starts, two join, one leaves cleanly (SIGTERM: it
leaves the group), another crashes (SIGKILL: the group notices after the
session timeout), both come back on their state directories; the long run
repeats that with seeded victims. Then the broker is frozen with SIGSTOP for
longer than the consumers' session timeout (6 s here, Apache Kafka's minimum;
streamal's default is 10 s), so every member has expired when it resumes: the
replicas must rejoin by themselves.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from apache_kafka import ApacheKafka
from harness import Annotator, Feeder, Replica, Scraper
from helpers import wait_until
from invariants import check_rates, settle

from streamal.apps.datasets import load
from streamal.service.settings import Settings

CHAOS = "membership"
PARTITIONS = 6
SEED = 4


@pytest.mark.chaos
@pytest.mark.integration
def test_replicas_join_and_leave_and_survive_a_frozen_broker(node: ApacheKafka,
                                                             chaos_settings: Callable[..., Settings], scale, figures,
                                                             tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(SEED)
    settings = chaos_settings(node.bootstrap, partitions=PARTITIONS)
    assert scale.pause_s * 1000 > settings.session_timeout_ms, "the freeze must outlast the sessions"
    dataset = load("sea", limit=200_000)
    replicas = [Replica(name, settings, tmp_path / name) for name in ("a", "b", "c")]
    a, b, c = replicas
    producer: Feeder | None = None
    changes: list[dict[str, object]] = []
    codes: list[int] = []
    try:
        a.start().wait_ready()
        with Scraper(replicas), Annotator(settings, dataset, withhold=scale.withheld) as annotator:
            producer = Feeder(settings, dataset, scale.membership_rate).start()

            def failed() -> str | None:
                return next((r.process.failed() for r in replicas if r.running and r.process.failed()), None) \
                    or annotator.failed() or (f"the producer failed: {producer.error!r}" if producer.error else None)

            def change(what: str, act: Callable[[], object]) -> None:
                time.sleep(scale.membership_gap_s * rng.uniform(0.5, 1.0))
                assert failed() is None, failed()
                started = time.monotonic()
                act()
                live = [r for r in replicas if r.running]
                for replica in live:
                    replica.wait_ready(120)
                changes.append({"change": what, "live": "".join(r.name for r in live),
                                "to_all_ready_s": round(time.monotonic() - started, 1)})

            change("add b, c", lambda: (b.start(), c.start()))
            for _ in range(scale.membership_rounds):
                live = [r for r in replicas if r.running]
                leaving = rng.choice(live)
                change(f"SIGTERM {leaving.name}", lambda r=leaving: codes.append(r.terminate()))
                crashing = rng.choice([r for r in replicas if r.running])
                change(f"SIGKILL {crashing.name}", crashing.kill)
                down = [r for r in replicas if not r.running]
                change(f"start {''.join(r.name for r in down)}", lambda rs=down: [r.start() for r in rs])

            # The broker frozen past every member's session.
            time.sleep(scale.membership_gap_s * rng.uniform(0.5, 1.0))
            node.pause()
            try:
                time.sleep(scale.pause_s)
            finally:
                node.resume()
            resumed = time.monotonic()
            first_new = wait_until(lambda: annotator.first_new_after(resumed), 120,
                                   "a label request for a new instance after the broker resumed", interval_s=0.1,
                                   failed=failed)
            for replica in replicas:
                replica.wait_ready(120)
            pause = {"paused_s": scale.pause_s, "to_first_new_request_s": round(first_new - resumed, 2),
                     "to_all_ready_s": round(time.monotonic() - resumed, 2)}

            wait_until(lambda: a.total("instances") >= scale.rate_min_instances, 120,
                       "replica a to decide enough instances", interval_s=0.5, failed=failed)
            sent = producer.stop()
            verdict = settle(settings, PARTITIONS, annotator, replicas, failed=failed)
            codes += [replica.terminate() for replica in replicas]
        check_rates(replicas, scale.budget, scale.rate_tolerance, scale.rate_min_instances, verdict)
    finally:
        if producer is not None:
            producer.halt()
        for replica in replicas:
            replica.close()
    figures.update(membership_changes_survived=len(changes), sent=sent, **verdict.figures, changes=changes,
                   frozen_broker=pause, replica_runs={r.name: r.process.runs for r in replicas},
                   sigterm_exit_codes=codes)
    assert all(code == 0 for code in codes), f"a replica did not stop cleanly: {codes}"
    assert verdict.figures["trained"] > 0, "no label flowed at all"
    assert not verdict.problems, "\n".join(verdict.problems)
