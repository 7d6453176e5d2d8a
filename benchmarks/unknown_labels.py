"""Serve throughput with a trickle of labels for unknown ids, against none, on Apache Kafka.

A label whose id has no pending request makes the step read the log
(training and label-requests topics) to its end before calling it orphaned:
the request may be there but not read yet (``Service._catch_up`` →
``Changelog.catch_up``, at most once a step). This measures what a steady
trickle of such labels costs:

- one instances topic is pre-filled with ``--n`` instances (River's
  Hyperplane, as ``benchmarks/serve_throughput.py`` does, whose helpers this
  reuses);
- ``none``: a Service (``streamal.apps.serve.build``) in a group of its own
  drains it (``serve_throughput.drain``: timed from its first non-empty poll to
  its last commit);
- ``trickle``: the same, while a thread sends one label for an id never asked
  about to the labels topic for every ``--every`` instances the service has
  decided (``{"id", "label"}``, no features: the outcome is ``orphaned``);
- runs alternate (none, trickle, none, …) ``--repeats`` times, each with its
  own group and its own label-requests/training topics; the ratio is of the
  medians. The time the service spent in its catch-ups is measured by
  wrapping ``Changelog.catch_up`` from outside.

``--proposed`` replaces ``Changelog.catch_up`` in this process by the change
proposed in the report (read up to the end offsets the broker gives now,
instead of until a 0.5 s poll comes back empty) and adds its runs.

    python -m benchmarks.unknown_labels [--n 30000] [--every 100] [--repeats 3] [--proposed]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402
from kafka import KafkaProducer  # noqa: E402

from benchmarks.serve_throughput import drain, fill, instance_messages, settings_for, total  # noqa: E402
from streamal.apps import serve  # noqa: E402
from streamal.service import kafka  # noqa: E402
from streamal.service.changelog import Changelog  # noqa: E402
from streamal.service.metrics import Metrics  # noqa: E402
from streamal.service.settings import Settings  # noqa: E402


class Trickle(threading.Thread):
    """One label for an unknown id per ``every`` instances the service has decided."""

    def __init__(self, service: Any, settings: Settings, every: int) -> None:
        super().__init__(name="trickle", daemon=True)
        self.service, self.settings, self.every = service, settings, every
        self.stopped = threading.Event()
        self.sent = 0

    def run(self) -> None:
        producer = KafkaProducer(**kafka.producer_config(self.settings))
        try:
            while not self.stopped.is_set():
                due = self.service.instances_decided // self.every + 1  # the first one before any instance
                while self.sent < due:
                    ident = f"unknown-{uuid.uuid4().hex}"
                    producer.send(self.settings.topic_labels, key=ident.encode(),
                                  value=orjson.dumps({"id": ident, "label": "1", "annotator": "trickle"}))
                    self.sent += 1
                producer.flush()
                time.sleep(0.002)
        finally:
            producer.close(timeout=10)


def proposed_catch_up(self: Changelog, wait_s: float = 0.05, max_s: float = 10.0) -> None:
    """The proposed ``Changelog.catch_up``: read up to the log's end offsets as the broker gives them now."""
    deadline = time.monotonic() + max_s
    ends = self.source.end_offsets(self.source.assignment())
    while time.monotonic() < deadline:
        if all(self.source.position(t, p) >= end for (t, p), end in ends.items()):
            return
        self.read(wait_s)


def one_run(bootstrap: str, base: Settings, state: Path, n: int, every: int | None, tag: str) -> dict[str, Any]:
    run = f"{base.topic_instances.rsplit('.', 1)[0]}-{tag}-{uuid.uuid4().hex[:4]}"
    settings = settings_for(bootstrap, run, state / run, topic_instances=base.topic_instances,
                            partitions=base.partitions, budget=base.budget)
    metrics = Metrics()
    service = serve.build(settings, metrics)
    spent = {"catch_ups": 0, "seconds": 0.0}
    inner = service.changelog.catch_up

    def timed(*args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            inner(*args, **kwargs)
        finally:
            spent["catch_ups"] += 1
            spent["seconds"] += time.perf_counter() - started

    service.changelog.catch_up = timed  # type: ignore[method-assign]
    trickle = Trickle(service, settings, every) if every else None
    if trickle is not None:
        trickle.start()
    try:
        elapsed = drain(service, metrics, n, tag)
    finally:
        if trickle is not None:
            trickle.stopped.set()
            trickle.join(15)
        service.close()
    orphaned = sum(s.value for m in metrics.registry.collect() for s in m.samples
                   if s.name == "streamal_labels_total" and s.labels.get("outcome") == "orphaned")
    return {"rate": n / elapsed, "elapsed": elapsed, "labels_sent": trickle.sent if trickle else 0,
            "orphaned": orphaned, "requests": total(metrics, "streamal_label_requests_total"), **spent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=30_000, help="instances pre-filled and drained by each run")
    parser.add_argument("--every", type=int, default=100, help="one unknown-id label per this many instances")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=0.05)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--proposed", action="store_true",
                        help="also run with the proposed Changelog.catch_up (patched in this process only)")
    parser.add_argument("--bootstrap", help="use this broker instead of starting Apache Kafka")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    logging.getLogger("streamal").setLevel(logging.WARNING)  # an orphaned label is logged at INFO
    broker = None
    if args.bootstrap:
        bootstrap = args.bootstrap
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from apache_kafka import ApacheKafka

        broker = ApacheKafka().start()
        bootstrap = broker.bootstrap
    original = Changelog.catch_up
    kinds = [("none", None, original), ("trickle", args.every, original)]
    if args.proposed:
        kinds.append(("trickle-proposed", args.every, proposed_catch_up))
    results: dict[str, list[dict[str, Any]]] = {kind: [] for kind, _, _ in kinds}
    try:
        with tempfile.TemporaryDirectory(prefix="streamal-unknown-") as state:
            run = f"unknown-{uuid.uuid4().hex[:6]}"
            base = settings_for(bootstrap, run, Path(state), partitions=args.partitions, budget=args.budget)
            kafka.ensure_topics(base)
            records, _ = instance_messages("hyperplane", args.n)
            fill(base, base.topic_instances, records, "pre-fill")
            del records
            for _ in range(args.repeats):
                for kind, every, catch_up in kinds:
                    Changelog.catch_up = catch_up  # type: ignore[method-assign]
                    try:
                        results[kind].append(one_run(bootstrap, base, Path(state), args.n, every, kind))
                    finally:
                        Changelog.catch_up = original  # type: ignore[method-assign]
    finally:
        if broker is not None:
            broker.close()
    load = os.getloadavg()
    print(f"\nApache Kafka {bootstrap}, {args.n:,} instances per run, {args.partitions} partition(s), "
          f"budget {args.budget:g}, one unknown-id label per {args.every} instances; {args.repeats} runs each, "
          f"alternating; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    base_rate = statistics.median(r["rate"] for r in results["none"])
    print(f"{'run':18} {'median inst/s':>13} {'ratio':>6} {'paired':>6} {'runs inst/s':>26} {'labels':>7} {'orphaned':>8} "
          f"{'catch-ups':>9} {'s in them':>9} {'share':>6}")
    for kind, runs in results.items():
        rate = statistics.median(r["rate"] for r in runs)
        each = " ".join(f"{r['rate']:,.0f}" for r in runs)
        last = runs[-1]
        paired = statistics.median(r["rate"] / b["rate"] for r, b in zip(runs, results["none"]))
        print(f"{kind:18} {rate:13,.0f} {rate / base_rate:6.2f} {paired:6.2f} {each:>26} {last['labels_sent']:7,} "
              f"{int(last['orphaned']):8,} {last['catch_ups']:9,} {last['seconds']:9.2f} "
              f"{statistics.median(r['seconds'] / r['elapsed'] for r in runs):6.1%}")
    print("(ratio: of the medians; paired: median of each repeat's ratio to the 'none' run just before it, "
          "steadier while the machine's load drifts; labels, orphaned, catch-ups and seconds in them: of the last "
          "run of each kind; share: median share of a run's time spent in catch-ups; target: trickle / none ≥ 0.90)")


if __name__ == "__main__":
    main()
