"""``streamal serve`` and ``streamal check``: the service wired to Kafka from the settings."""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import replace
from typing import Any

from streamal.core.errors import ParameterError
from streamal.core.learner import ActiveLearner
from streamal.service import kafka
from streamal.service.errors import SettingsError
from streamal.service.http import Heartbeat, serve_http
from streamal.service.loop import LoopConfig, Service
from streamal.service.metrics import Metrics
from streamal.service.settings import Settings, env_name

log = logging.getLogger("streamal.serve")


def learner_factory(settings: Settings):  # type: ignore[no-untyped-def]
    """A function making the learner the settings describe; checked once now, naming the setting."""

    def make() -> ActiveLearner:
        return ActiveLearner(
            model=settings.model, strategy=settings.strategy, budget_manager=settings.budget_manager,
            budget=settings.budget, task=settings.task, text_features=settings.text_features,
            drift_boost=settings.drift_boost, seed=settings.seed,
        )

    try:
        make()
    except ParameterError as exc:  # the core names its parameter: the setting of the same name
        raise SettingsError(f"{env_name(exc.parameter)}: {exc.detail}") from None
    return make


def check(settings: Settings) -> dict[str, int]:
    """Validate the settings and the topic layout without serving; the partition counts."""
    learner_factory(settings)
    if not kafka.broker_answers(settings.bootstrap_servers, **settings.kafka_security_kwargs()):
        raise SettingsError(f"STREAMAL_BOOTSTRAP_SERVERS: no Kafka broker answers at {settings.bootstrap_servers}")
    layout = kafka.partition_counts(settings)
    kafka.check_copartitioning(settings, layout)
    return {k: v for k, v in layout.items() if v is not None}


class Phases:
    """Seconds spent in each start-up phase, in order, for the log line that says when a replica got ready."""

    def __init__(self) -> None:
        self.started = self._mark = time.monotonic()
        self.seconds: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._mark
        self._mark = now

    def __str__(self) -> str:
        return ", ".join(f"{name} {s:.2f} s" for name, s in self.seconds.items())


def build(settings: Settings, metrics: Metrics | None = None, phases: Phases | None = None) -> Service:
    """Topics checked (and created), clients connected, checkpoint loaded: a service ready to step."""
    phases = phases or Phases()
    make = learner_factory(settings)
    phases.lap("learner")
    # ensure_topics has read the layout already: no second admin client for it (19 ms instead of 43 ms)
    layout = kafka.ensure_topics(settings) if settings.create_topics else None
    partitions = kafka.check_copartitioning(settings, layout)
    phases.lap("topics")
    holder: dict[str, Service] = {}

    def on_revoke(partitions: set[Any]) -> None:  # decide a buffered window before it moves away
        if "service" in holder and settings.mode == "pool":
            holder["service"].flush_pool()

    static = {"group_instance_id": settings.group_instance_id} if settings.group_instance_id else {}
    group = kafka.group_consumer(settings, [settings.topic_instances, settings.topic_labels], on_revoke=on_revoke,
                                 **static)
    log_source = kafka.reader(settings, [settings.topic_training, settings.topic_label_requests])
    config = replace(LoopConfig.from_settings(settings), instance_partitions=partitions)
    service = Service(config, make, group, log_source, kafka.producer(settings), metrics=metrics or Metrics())
    holder["service"] = service
    phases.lap("clients")
    service.start()
    phases.lap("checkpoint")
    return service


def serve(settings: Settings, *, max_instances: int | None = None, timeout_s: float | None = None,
          stop: threading.Event | None = None, metrics: Metrics | None = None) -> Service:
    """Run the service until SIGTERM/SIGINT, ``stop``, ``max_instances`` or ``timeout_s``."""
    metrics = metrics or Metrics()
    heartbeat = Heartbeat()
    holder: dict[str, Service] = {}
    server = serve_http(settings.metrics_port, metrics.registry, heartbeat,
                        lambda: "service" in holder and holder["service"].ready)
    log.info("metrics on http://localhost:%d/metrics", server.server_port)
    log.info("settings: %s", settings.masked())
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    phases = Phases()
    try:
        service = build(settings, metrics, phases)
        holder["service"] = service

        def on_step() -> None:
            heartbeat.beat()
            if service.on_step is on_step and service.ready:  # once: say what getting ready cost
                phases.lap("replay and group join")
                log.info("ready %.2f s after start: %s", time.monotonic() - phases.started, phases)
                service.on_step = heartbeat.beat

        service.on_step = on_step
        try:
            service.run(stop=stop.is_set, max_instances=max_instances, timeout_s=timeout_s)
        finally:
            closing = time.monotonic()
            service.close()
            log.info("closed in %.2f s (buffered work decided, checkpoint written, clients closed)",
                     time.monotonic() - closing)
    finally:
        server.shutdown()
        server.server_close()  # shutdown() only stops the thread: release the port too
    return service
