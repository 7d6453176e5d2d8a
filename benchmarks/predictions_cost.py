"""What the optional predictions topic costs `serve`: instances per second with it off and on.

One instances topic is filled once; each run drains all of it with a fresh
consumer group, state directory and output topics, the predictions topic
(``STREAMAL_TOPIC_PREDICTIONS``) off or on. Runs alternate off/on so a
machine that slows down or speeds up during the benchmark tilts both alike;
the figure is the ratio of the medians (target ≥ 0.8: one extra small
record per instance, produced in the same flush as the label requests).

    python -m benchmarks.predictions_cost              # a local Tansu broker
    python -m benchmarks.predictions_cost --apache     # Apache Kafka (jars fetched by .ci/fetch-kafka)
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from benchmarks.serve_throughput import drain, fill, instance_messages, settings_for
from streamal.apps import serve
from streamal.service import kafka
from streamal.service.metrics import Metrics


def run_once(bootstrap: str, instances_topic: str, n: int, budget: float, predictions: bool, state: Path) -> float:
    """Drain the whole instances topic once; instances per second."""
    run = f"bench-{uuid.uuid4().hex[:8]}"
    overrides: dict[str, Any] = {"topic_instances": instances_topic, "budget": budget}
    if predictions:
        overrides["topic_predictions"] = f"{run}.predictions"
    settings = settings_for(bootstrap, run, state / run, **overrides)
    kafka.ensure_topics(settings)
    metrics = Metrics()
    service = serve.build(settings, metrics)
    try:
        elapsed = drain(service, metrics, n, f"serve, predictions {'on' if predictions else 'off'}")
        published = sum(s.value for m in metrics.registry.collect() for s in m.samples
                        if s.name == "streamal_predictions_total")
        if predictions and published < n:
            raise SystemExit(f"only {published:.0f} of {n} predictions were published")
    finally:
        service.close()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=30_000, help="instances drained by each run")
    parser.add_argument("--repeats", type=int, default=3, help="runs with the topic off, and as many on")
    parser.add_argument("--budget", type=float, default=0.05)
    parser.add_argument("--stream", default="hyperplane")
    parser.add_argument("--apache", action="store_true", help="start Apache Kafka instead of Tansu")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    if args.apache:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from apache_kafka import ApacheKafka

        broker: Any = ApacheKafka().start()
        name = "Apache Kafka"
    else:
        from streamal.service.broker import LocalBroker

        broker = LocalBroker().start()
        name = "Tansu"
    try:
        with tempfile.TemporaryDirectory(prefix="streamal-bench-") as tmp:
            state = Path(tmp)
            topic = f"bench-{uuid.uuid4().hex[:8]}.instances"
            fill_settings = settings_for(broker.bootstrap, topic.removesuffix(".instances"), state / "fill")
            kafka.ensure_topics(fill_settings)
            records, _ = instance_messages(args.stream, args.n)
            fill(fill_settings, topic, records, "pre-fill")
            rates: dict[bool, list[float]] = {False: [], True: []}
            for i in range(args.repeats):
                for on in ((False, True) if i % 2 == 0 else (True, False)):
                    rates[on].append(run_once(broker.bootstrap, topic, args.n, args.budget, on, state))
    finally:
        broker.stop() if hasattr(broker, "stop") else broker.close()
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    print()
    print(f"broker {name}, stream {args.stream}, {args.n:,} instances, budget {args.budget:g}, "
          f"{args.repeats} runs each")
    print(f"{'predictions off':24} {off:>10,.0f} inst/s   runs: {', '.join(f'{r:,.0f}' for r in rates[False])}")
    print(f"{'predictions on':24} {on:>10,.0f} inst/s   runs: {', '.join(f'{r:,.0f}' for r in rates[True])}")
    print(f"{'ratio on / off':24} {on / off:>10.2f}          target ≥ 0.8")


if __name__ == "__main__":
    main()
