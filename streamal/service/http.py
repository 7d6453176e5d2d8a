"""The metrics port: ``/metrics``, ``/healthz`` and ``/readyz``.

prometheus-client's own WSGI app serves ``/metrics``; a few lines route the
two probes, and the standard library's threading WSGI server runs it all on a
daemon thread, so no web framework is needed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 — probes every few seconds
        pass


class Heartbeat:
    """The loop beats once per step; ``/healthz`` is live while the last beat is recent."""

    def __init__(self, max_silence_s: float = 60.0) -> None:
        self.max_silence_s = max_silence_s
        self._last = time.monotonic()

    def beat(self) -> None:
        self._last = time.monotonic()

    @property
    def alive(self) -> bool:
        return time.monotonic() - self._last <= self.max_silence_s


def app(registry: CollectorRegistry, heartbeat: Heartbeat, ready: Callable[[], bool]) -> Callable[..., Iterable[bytes]]:
    metrics_app = make_wsgi_app(registry)

    def route(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            ok = heartbeat.alive if path == "/healthz" else heartbeat.alive and ready()
            status = "200 OK" if ok else "503 Service Unavailable"
            body = (b"ok\n" if ok else b"not ready\n" if path == "/readyz" else b"stalled\n")
            start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        if path in ("/metrics", "/"):
            return metrics_app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics, /healthz or /readyz\n"]

    return route


def serve_http(port: int, registry: CollectorRegistry, heartbeat: Heartbeat, ready: Callable[[], bool],
               host: str = "0.0.0.0") -> WSGIServer:
    """Start the metrics server on a daemon thread; ``port=0`` picks a free one (see ``server_port``)."""
    server = make_server(host, port, app(registry, heartbeat, ready), server_class=_Server,
                         handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="streamal-metrics", daemon=True).start()
    return server
