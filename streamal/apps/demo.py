"""``streamal demo``: the whole loop on one machine, with no external service.

Starts a local Kafka-protocol broker (Tansu), the service, a producer that
replays a dataset and a simulated annotator, shows live progress, stops by
itself after ``limit`` instances (or at Ctrl-C) with a report, and stops
everything it started.
"""

from __future__ import annotations

import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from streamal.apps.datasets import Dataset
from streamal.apps.replay import Oracle, instances, produce
from streamal.apps.serve import serve
from streamal.service import kafka
from streamal.service.broker import LocalBroker
from streamal.service.errors import StreamalError
from streamal.service.metrics import Metrics
from streamal.service.settings import load_settings

#: How long the service may take to close after the stop (decide what is
#: buffered, checkpoint, close its clients), and the producer and the
#: annotator (one poll or one send); all of them finish before the broker stops.
SERVICE_CLOSE_S = 30.0
CLIENT_CLOSE_S = 10.0
#: How long the service and the annotator may take to start reading (each joins a consumer group:
#: about 3 s on Tansu with the demo's 6 s session timeout).
START_S = 60.0


@dataclass
class DemoReport:
    instances: int
    label_requests: int
    labels_learned: int
    label_rate: float
    labeled_accuracy: float | None
    #: The final model on every instance of the dataset; None if it learned nothing.
    final_accuracy: float | None
    seconds: float
    metrics_url: str
    #: Stopped by Ctrl-C before the end of the stream.
    stopped: bool = False


def _free_port(preferred: int) -> int:
    """``preferred`` if it is free, else any free port (0: any)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
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


@contextmanager
def _ctrl_c_stops(stop: threading.Event, interrupted: threading.Event) -> Iterator[None]:
    """While inside, Ctrl-C sets ``interrupted`` and ``stop`` (a second one raises KeyboardInterrupt).

    So the threads stop and close their Kafka clients while the broker still
    runs: an interrupt that unwound through the broker first would leave
    producers for the interpreter's exit, which cannot reach the broker then.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_ctrl_c(signum: int, frame: Any) -> None:
        interrupted.set()
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _wait(condition: Callable[[], bool], stop: threading.Event, what: str, timeout_s: float) -> None:
    """Until ``condition()`` or ``stop``; a :class:`StreamalError` naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition() and not stop.is_set():
        if time.monotonic() > deadline:
            raise StreamalError(f"{what} did not start within {timeout_s:g} s")
        time.sleep(0.05)


def run_demo(dataset: Dataset, *, budget: float = 0.05, rate: float = 500.0, delay_s: float = 0.5,
             error_rate: float = 0.0, metrics_port: int = 9400, seed: int = 0,
             console: Console | None = None, quiet: bool = False, state_dir: Path | None = None,
             **overrides: Any) -> DemoReport:
    console = console or Console()
    limit = len(dataset)
    started = time.monotonic()
    stop, interrupted = threading.Event(), threading.Event()
    with _ctrl_c_stops(stop, interrupted), LocalBroker() as broker, \
            tempfile.TemporaryDirectory(prefix="streamal-demo-") as tmp:
        port = _free_port(metrics_port)
        settings = load_settings(
            bootstrap_servers=broker.bootstrap, group_id=f"streamal-demo-{uuid.uuid4().hex[:8]}",
            state_dir=state_dir or Path(tmp) / "state", metrics_port=port, budget=budget, seed=seed,
            session_timeout_ms=6000, **overrides,
        )
        metrics = Metrics()
        errors: list[BaseException] = []
        threads: list[threading.Thread] = []

        def guarded(target: Any, *args: Any, **kwargs: Any) -> None:
            def body() -> None:
                try:
                    target(*args, **kwargs)
                except BaseException as exc:  # surface in the main thread, stop the rest
                    errors.append(exc)
                    stop.set()

            thread = threading.Thread(target=body, daemon=True)
            thread.start()
            threads.append(thread)

        url = f"http://localhost:{port}/metrics"
        console.print(f"broker {broker.bootstrap} (Tansu, pid {broker.pid}) · metrics {url}")
        try:
            # The service and the annotator join their consumer groups at the same time, and the stream
            # starts once both read: started after the service, the annotator got its partitions about
            # when a 3 s stream ended, and every label was learned after the stream.
            kafka.ensure_topics(settings)
            guarded(serve, settings, stop=stop, metrics=metrics)
            oracle = Oracle(settings, dataset, delay_s=delay_s, error_rate=error_rate, seed=seed)
            guarded(oracle.run, stop.is_set)
            _wait(lambda: bool(_value(metrics, "streamal_ready") and oracle.source.assignment()), stop,
                  "the service or the annotator", START_S)
            if not stop.is_set():
                guarded(produce, settings, dataset, rate=rate, stop=stop.is_set)
            _show(console, quiet, dataset, budget, metrics, oracle, stop, errors,
                  deadline=started + 600 + limit / max(rate, 1.0) * 3)
        finally:
            stop.set()
            for i, thread in enumerate(threads):  # the service first: it decides and checkpoints what it holds
                thread.join(timeout=SERVICE_CLOSE_S if i == 0 else CLIENT_CLOSE_S)
        if errors:
            raise errors[0]
        # The final model (the service checkpoints it at shutdown) on every instance of the stream.
        from streamal.service.checkpoint import load_latest

        final = load_latest(settings.state_dir)
        final_accuracy = None if final is None or not final.learner.n_learned else sum(
            str(final.learner.predict_one(x)) == str(y) for _, x, y in instances(dataset)
        ) / limit
        seen = _value(metrics, "streamal_instances_total")
        asked = _requests(metrics)
        labeled = _value(metrics, "streamal_labeled_predictions_total")
        return DemoReport(
            instances=int(seen), label_requests=int(asked),
            labels_learned=int(_value(metrics, "streamal_model_version")),
            label_rate=asked / seen if seen else 0.0,
            labeled_accuracy=_value(metrics, "streamal_labeled_predictions_correct_total") / labeled if labeled else None,
            final_accuracy=final_accuracy, seconds=time.monotonic() - started, metrics_url=url,
            stopped=interrupted.is_set(),
        )


def _show(console: Console, quiet: bool, dataset: Dataset, budget: float, metrics: Metrics, oracle: Oracle,
          stop: threading.Event, errors: list[BaseException], deadline: float) -> None:
    """The live table, until the stream is decided and every request answered and learned (or ``stop``)."""
    limit = len(dataset)

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
            if time.monotonic() > deadline:
                errors.append(StreamalError("the demo did not finish in time"))
                break
        live.update(table())
