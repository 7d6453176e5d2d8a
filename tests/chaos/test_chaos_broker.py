"""2. The single Apache Kafka node SIGKILLed and restarted on its own data while the service runs.

The broker crashes (SIGKILL: no controlled shutdown) under load, stays down a
seeded while, and comes back with its logs (``ApacheKafka.restart(kill=True)``).
streamal is not restarted: it must carry on by itself. Nothing acknowledged may
be lost: every label request the annotator had read before the crash is still
on the topic afterwards, and every label the broker acknowledged reaches the
training topic. Time to recover is measured from the broker answering again
to the first label request for an instance never asked about before, and to
the replica's decisions moving again.
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
from invariants import check_rates, ids, read_to_end, settle

from streamal.apps.datasets import load
from streamal.service.settings import Settings

CHAOS = "broker"
PARTITIONS = 4
SEED = 11


@pytest.mark.chaos
@pytest.mark.integration
def test_service_recovers_by_itself_from_a_broker_sigkill(node: ApacheKafka, chaos_settings: Callable[..., Settings],
                                                          scale, figures, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(SEED)
    settings = chaos_settings(node.bootstrap, partitions=PARTITIONS)
    dataset = load("sea", limit=200_000)
    replica = Replica("a", settings, tmp_path / "a")
    producer: Feeder | None = None
    rounds: list[dict[str, float]] = []
    try:
        replica.start().wait_ready()
        with Scraper([replica]), Annotator(settings, dataset, withhold=scale.withheld) as annotator:
            producer = Feeder(settings, dataset, scale.broker_rate).start()
            for _ in range(scale.broker_kills):
                before_load = replica.now.get("instances", 0.0)
                wait_until(lambda before_load=before_load: replica.now.get("instances", 0.0) - before_load
                           >= scale.broker_load_s * scale.broker_rate * 0.5, scale.broker_load_s * 6,
                           "instances to flow before the crash", interval_s=0.2,
                           failed=lambda: replica.process.failed() or annotator.failed())
                # What the broker acknowledged before the crash: every request the annotator read
                # (it was fetched, so it was stored), and the request records on the topic now.
                seen_before = annotator.seen()
                on_topic_before = ids(read_to_end(settings, settings.topic_label_requests))
                down_s = rng.uniform(*scale.broker_down_s)
                node.kill()
                killed = time.monotonic()
                decided_at_kill = replica.scrape().get("instances", 0.0)
                time.sleep(down_s)
                node.restart(kill=True)  # the same data, ports and logs
                back = time.monotonic()
                decided_at_back = replica.scrape().get("instances", 0.0)
                first_new = wait_until(lambda back=back: annotator.first_new_after(back), 120,
                                       "a label request for a new instance after the broker came back",
                                       interval_s=0.1, failed=lambda: replica.process.failed() or annotator.failed())
                wait_until(lambda at=decided_at_back: replica.scrape().get("instances", 0.0) > at, 120,
                           "the replica to decide again", interval_s=0.1, failed=replica.process.failed)
                moving = time.monotonic()
                ready = replica.wait_ready(120)
                after = ids(read_to_end(settings, settings.topic_label_requests))
                missing = (seen_before | set(on_topic_before)) - set(after)
                assert not missing, f"{len(missing)} label requests stored before the crash are gone: " \
                                    f"{sorted(missing)[:10]}"
                rounds.append({"down_s": round(back - killed, 1), "restart_s": round(back - killed - down_s, 1),
                               "to_first_new_request_s": round(first_new - back, 2),
                               "to_decisions_s": round(moving - back, 2), "to_ready_s": round(ready, 2),
                               "decided_while_down": decided_at_back - decided_at_kill,
                               "requests_before": len(seen_before | set(on_topic_before))})
            # Enough decisions after the last crash for the realised rate to mean something.
            target = replica.total("instances") + scale.rate_min_instances / 2
            wait_until(lambda: replica.scrape() and replica.total("instances") >= max(target, scale.rate_min_instances),
                       120, "more decisions after the crash", interval_s=0.5, failed=replica.process.failed)
            sent = producer.stop()
            verdict = settle(settings, PARTITIONS, annotator, [replica], failed=lambda: replica.process.failed()
                             or annotator.failed())
            assert replica.process.runs == 1 and replica.running, "streamal was restarted or died"
            code = replica.terminate()
        check_rates([replica], scale.budget, scale.rate_tolerance, scale.rate_min_instances, verdict)
    finally:
        if producer is not None:
            producer.halt()
        replica.close()
    figures.update(broker_kills_survived=len(rounds), sent=sent, **verdict.figures, rounds=rounds,
                   annotator_errors=len(annotator.errors), sigterm_exit_code=code)
    assert code == 0, replica.process.log_tail()
    assert verdict.figures["trained"] > 0, "no label flowed at all"
    assert not verdict.problems, "\n".join(verdict.problems)
