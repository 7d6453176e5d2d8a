"""``streamal demo``: the whole loop on one machine, with no external service.

Starts a local Kafka-protocol broker (Tansu), the service, a producer that
replays a dataset and a simulated annotator, shows live progress, stops by
itself after ``limit`` instances with a report, and stops everything it
started.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from streamal.apps.datasets import Dataset
from streamal.apps.replay import Oracle, instances, produce
from streamal.apps.serve import serve
from streamal.service.broker import LocalBroker
from streamal.service.metrics import Metrics
from streamal.service.settings import load_settings


@dataclass
class DemoReport:
    instances: int
    label_requests: int
    labels_learned: int
    label_rate: float
    labeled_accuracy: float | None
    final_accuracy: float
    seconds: float
    metrics_url: str


def _free_port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels or None) or 0.0


def _requests(metrics: Metrics) -> float:
    """Label requests sent so far, over strategies and modes."""
    return sum(
        sample.value
        for family in metrics.registry.collect()
        if family.name == "streamal_label_requests"
        for sample in family.samples
        if sample.name == "streamal_label_requests_total"
    )


def run_demo(dataset: Dataset, *, budget: float = 0.05, rate: float = 500.0, delay_s: float = 0.5,
             error_rate: float = 0.0, metrics_port: int = 9400, seed: int = 0,
             console: Console | None = None, quiet: bool = False, state_dir: Path | None = None,
             **overrides: Any) -> DemoReport:
    console = console or Console()
    limit = len(dataset)
    started = time.monotonic()
    with LocalBroker() as broker, tempfile.TemporaryDirectory(prefix="streamal-demo-") as tmp:
        port = _free_port(metrics_port)
        settings = load_settings(
            bootstrap_servers=broker.bootstrap, group_id=f"streamal-demo-{uuid.uuid4().hex[:8]}",
            state_dir=state_dir or Path(tmp) / "state", metrics_port=port, budget=budget, seed=seed,
            session_timeout_ms=6000, **overrides,
        )
        metrics = Metrics()
        stop = threading.Event()
        errors: list[BaseException] = []

        def guarded(target: Any, *args: Any, **kwargs: Any) -> threading.Thread:
            def body() -> None:
                try:
                    target(*args, **kwargs)
                except BaseException as exc:  # surface in the main thread, stop the rest
                    errors.append(exc)
                    stop.set()

            thread = threading.Thread(target=body, daemon=True)
            thread.start()
            return thread

        url = f"http://localhost:{port}/metrics"
        console.print(f"broker {broker.bootstrap} (Tansu, pid {broker.pid}) · metrics {url}")
        service = guarded(serve, settings, stop=stop, metrics=metrics)
        while not metrics.ready._value.get() and not stop.is_set():  # topics exist once the service is up
            time.sleep(0.1)
        oracle = Oracle(settings, dataset, delay_s=delay_s, error_rate=error_rate, seed=seed)
        threads = [
            guarded(oracle.run, stop.is_set),
            guarded(produce, settings, dataset, rate=rate, stop=stop.is_set),
        ]

        def table() -> Table:
            seen = _value(metrics, "streamal_instances_total")
            asked = _requests(metrics)
            t = Table(title=f"streamal demo — {dataset.name}, budget {budget:.0%}", show_header=False)
            t.add_row("instances decided", f"{seen:,.0f} / {limit:,}")
            t.add_row("label requests", f"{asked:,.0f} ({asked / seen:.2%} of instances)" if seen else "0")
            t.add_row("labels answered by the oracle", f"{oracle.answered:,}")
            t.add_row("examples learned (model version)", f"{_value(metrics, 'streamal_model_version'):,.0f}")
            acc = _value(metrics, "streamal_prequential_accuracy_ratio")
            t.add_row("accuracy on labeled data (predicted before learning)", f"{acc:.2%}")
            t.add_row("pending requests", f"{_value(metrics, 'streamal_pending_requests'):,.0f}")
            return t

        with Live(table(), console=console, refresh_per_second=4, transient=False, auto_refresh=not quiet) as live:
            while not stop.is_set():
                time.sleep(0.25)
                live.update(table())
                seen = _value(metrics, "streamal_instances_total")
                learned = _value(metrics, "streamal_model_version")
                asked = _requests(metrics)
                if seen >= limit and learned >= asked and oracle.answered >= asked:
                    break
                if time.monotonic() - started > 600 + limit / max(rate, 1.0) * 3:
                    errors.append(TimeoutError("the demo did not finish in time"))
                    break
            stop.set()
            live.update(table())
        service.join(timeout=30)
        for t in threads:
            t.join(timeout=10)
        if errors:
            raise errors[0]
        # The final model (the service checkpoints it at shutdown) on every instance of the stream.
        from streamal.service.checkpoint import load_latest

        final = load_latest(settings.state_dir)
        learner = final.learner if final else None
        correct = sum(
            learner is not None and str(learner.predict_one(x)) == str(y) for _, x, y in instances(dataset)
        )
        seen = _value(metrics, "streamal_instances_total")
        asked = _requests(metrics)
        labeled = _value(metrics, "streamal_labeled_predictions_total")
        return DemoReport(
            instances=int(seen), label_requests=int(asked),
            labels_learned=int(_value(metrics, "streamal_model_version")),
            label_rate=asked / seen if seen else 0.0,
            labeled_accuracy=_value(metrics, "streamal_labeled_predictions_correct_total") / labeled if labeled else None,
            final_accuracy=correct / limit, seconds=time.monotonic() - started, metrics_url=url,
        )
