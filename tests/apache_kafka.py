"""Apache Kafka itself (KRaft) as the integration tests' broker, from the jars ``.ci/fetch-kafka`` fetched.

Why: Tansu (the demo's embedded broker) keeps everything in memory and
differs from Apache Kafka in places (group joins, reported end offsets), and
no container engine runs here (DESIGN section 6). So the tests start the real
broker from Maven Central's jars with ``java``: formatted by
``kafka.tools.StorageTool format``, run by ``kafka.Kafka server.properties``,
on 127.0.0.1 and free ports, its data and logs in a temporary folder, a small
heap, stopped by its pid::

    with ApacheKafka() as kafka:          # one combined broker+controller node
        settings = load_settings(bootstrap_servers=kafka.bootstrap)
    with ApacheKafkaCluster(3) as cluster:  # replication factor 3, min.insync.replicas=2
        cluster.nodes[cluster.leader("topic", 0)].kill()
    with ApacheKafka(listeners=["SASL_SSL"], scram={"alice": "secret"}, config=tls) as kafka:
        kafka.bootstrap_for("SASL_SSL")  # beside the PLAINTEXT listener the tooling uses

Every process is also killed, and its folder removed, when the object is
garbage-collected or the interpreter exits, and (Linux) when the process that
started it dies. ``python tests/apache_kafka.py`` prints the start-up times.
"""

from __future__ import annotations

import base64
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from kafka import KafkaAdminClient

__all__ = ["ApacheKafka", "ApacheKafkaCluster", "KafkaNode", "KafkaStartError", "kafka_classpath", "kafka_version"]

ROOT: Final = Path(__file__).resolve().parents[1]
POM: Final = ROOT / ".ci" / "kafka" / "pom.xml"
LIBS_ENV: Final = "STREAMAL_KAFKA_LIBS"
FETCH_HINT: Final = "run .ci/fetch-kafka (needs mvn and java)"

#: Measured on the 2-core machine: one node answers ~4 s after start (storage format
#: ~1.5 s, then the server), three ~8 s; up to 15 s and 25 s while other test runs
#: load the machine. The margin covers a slower moment still.
START_TIMEOUT_S: Final = 90.0
#: SIGTERM makes a node shut down cleanly (controlled shutdown, logs flushed): a
#: second or two for one node; after this grace, SIGKILL.
STOP_GRACE_S: Final = 15.0
#: Extra listeners a node may have beside PLAINTEXT (the tooling's) and CONTROLLER; each is
#: named after its security protocol.
EXTRA_LISTENERS: Final = ("SSL", "SASL_SSL", "SASL_PLAINTEXT")
#: The SASL mechanisms a SASL listener enables, each with credentials for every ``scram`` user.
SCRAM_MECHANISMS: Final = ("SCRAM-SHA-256", "SCRAM-SHA-512")
#: How long one readiness probe (TCP connect, then a metadata request) may take.
_PROBE_TIMEOUT_S: Final = 2.0
_PORT_ATTEMPTS: Final = 3

#: The JVM: a small heap is plenty for test traffic (the whole suite passes with it);
#: the serial collector, and C1 only (no C2 compiler threads): a node answered after
#: 4.3 s instead of 7.8 s with the default tiered compilation, and leaves the cores
#: to the tests.
JVM_OPTIONS: Final = (
    "-Xms64m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
)

_LOG4J2: Final = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {path}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.state.name = state.change.logger
logger.state.level = WARN
"""


class KafkaStartError(RuntimeError):
    """Apache Kafka cannot be started: no jars, no java, or a node that does not come up."""


class _ExitedEarly(KafkaStartError):
    """A node exited while starting (most likely: one of its ports was taken meanwhile)."""


# ---------------------------------------------------------------------- the fetched jars


def kafka_version() -> str:
    """The Apache Kafka version that ``.ci/fetch-kafka`` fetches (``.ci/kafka/pom.xml``)."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if found is None:
        raise KafkaStartError(f"no <kafka.version> in {POM}")
    return found.group(1).strip()


def kafka_libs() -> Path:
    """The folder of the fetched jars: ``$STREAMAL_KAFKA_LIBS``, else ``.cache/kafka-<version>/libs``."""
    override = os.environ.get(LIBS_ENV)
    return Path(override) if override else ROOT / ".cache" / f"kafka-{kafka_version()}" / "libs"


def kafka_classpath() -> str:
    """The Java classpath of the fetched Apache Kafka; :class:`KafkaStartError` naming the fix if absent."""
    libs = kafka_libs()
    jars = sorted(libs.glob("*.jar")) if libs.is_dir() else []
    if not any(jar.name.startswith("kafka_2.13-") for jar in jars):
        raise KafkaStartError(f"Apache Kafka's jars are not in {libs}: {FETCH_HINT}, or set {LIBS_ENV}")
    return os.pathsep.join(map(str, jars))


def java_binary() -> str:
    """``$JAVA_HOME/bin/java``, else ``java`` on the PATH."""
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home, "bin", "java") if home else None
    found = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if found is None:
        raise KafkaStartError("Apache Kafka needs java (17 or newer) on the PATH or in JAVA_HOME")
    return found


# ---------------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _death_signal() -> Callable[[], None] | None:
    """Linux: a ``preexec_fn`` that has the kernel SIGKILL the child when the thread that
    started it dies, so even a killed test run leaves no JVM behind. (The fixtures start
    brokers on the main thread, which lives as long as the run.) Looked up here, in the
    parent: between fork and exec the child only makes the call."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig, sigkill = 1, int(signal.SIGKILL)
    return lambda: prctl(pr_set_pdeathsig, sigkill)


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL and reap; safe if it is gone already."""
    if process.poll() is None:
        process.kill()
    process.wait()


def _terminate(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGCONT (a paused JVM cannot handle SIGTERM), SIGTERM, then SIGKILL after ``grace_s``."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGCONT)
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _kill(process)


class _Reaper:
    """What must go at the end whatever happens: every started process, then the folder.

    Held by ``weakref.finalize`` (which also runs at interpreter exit), never the
    cluster itself, so the cluster can still be garbage-collected.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []

    def __call__(self) -> None:
        for process in self.processes:  # the data is thrown away: no clean shutdown needed
            _kill(process)
        self.processes.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


class KafkaNode:
    """One combined-mode (broker and controller) KRaft node: its config, data, log and process."""

    def __init__(self, node_id: int, folder: Path, reaper: _Reaper, listeners: Sequence[str] = ()) -> None:
        self.node_id = node_id
        self.folder = folder
        self.broker_port = _free_port()
        self.controller_port = _free_port()
        #: Port of each extra listener (``listeners``, named after their security protocol).
        self.listener_ports = {name: _free_port() for name in listeners}
        self.process: subprocess.Popen[bytes] | None = None
        self._reaper = reaper

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    def bootstrap_for(self, listener: str) -> str:
        """``host:port`` of the extra listener ``listener`` (``"SASL_SSL"``, ``"SSL"``, …)."""
        if listener == "PLAINTEXT":
            return self.bootstrap
        return f"127.0.0.1:{self.listener_ports[listener]}"

    @property
    def voter(self) -> str:
        """This node in ``controller.quorum.voters``."""
        return f"{self.node_id}@127.0.0.1:{self.controller_port}"

    @property
    def pid(self) -> int | None:
        """The JVM's process id while it runs (also while paused)."""
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the node's log and of its console output (JVM errors land there)."""
        parts = [p.read_text(errors="replace")[-chars:] for p in (self.log, self.folder / "console.log") if p.exists()]
        return "\n".join(part for part in parts if part.strip()) or "(no output)"

    def configure(self, settings: Mapping[str, str]) -> None:
        """Write ``server.properties`` (this node's listeners and folders plus ``settings``) and the log config."""
        self.folder.mkdir(parents=True, exist_ok=True)
        extra = "".join(f",{name}://{self.bootstrap_for(name)}" for name in self.listener_ports)
        own = {
            "node.id": str(self.node_id),
            "listeners": f"PLAINTEXT://{self.bootstrap},CONTROLLER://127.0.0.1:{self.controller_port}{extra}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap}{extra}",
            "log.dirs": str(self.folder / "data"),
        }
        lines = [f"{key}={value}" for key, value in {**settings, **own}.items()]
        (self.folder / "server.properties").write_text("\n".join(lines) + "\n")
        (self.folder / "log4j2.properties").write_text(_LOG4J2.format(path=self.log))

    def _java(self, classpath: str, main: str, *args: str) -> list[str]:
        return [java_binary(), *JVM_OPTIONS, f"-Dlog4j2.configurationFile={self.folder / 'log4j2.properties'}",
                "-cp", classpath, main, *args]

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        with open(self.folder / "console.log", "ab") as console:
            process = subprocess.Popen(
                command, cwd=self.folder, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                preexec_fn=_death_signal(),
            )
        self._reaper.processes.append(process)
        return process

    def format_storage(self, classpath: str, cluster_id: str, *options: str) -> subprocess.Popen[bytes]:
        """Start ``kafka.tools.StorageTool format`` on this node's data folder (the caller waits);
        ``options`` are passed on (``--add-scram …``)."""
        return self._spawn(self._java(classpath, "kafka.tools.StorageTool", "format", "--cluster-id", cluster_id,
                                      "--config", str(self.folder / "server.properties"), *options))

    def launch(self, classpath: str) -> None:
        """Start ``kafka.Kafka server.properties`` (it is ready later: see the cluster's wait)."""
        assert self.pid is None, f"node {self.node_id} is already running"
        self.process = self._spawn(self._java(classpath, "kafka.Kafka", str(self.folder / "server.properties")))

    def exited(self) -> str | None:
        """Why the node is not running when it should be, with its log; ``None`` while it runs."""
        if self.process is None or self.process.poll() is None:
            return None
        return f"node {self.node_id} exited with code {self.process.returncode}:\n{self.log_tail()}"

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """A clean stop by pid: SIGTERM, then SIGKILL after ``grace_s``. Data and ports stay for a restart."""
        if self.process is not None:
            _terminate(self.process, grace_s)

    def kill(self) -> None:
        """SIGKILL, as in a crash: no controlled shutdown, unflushed data is lost."""
        if self.process is not None:
            _kill(self.process)

    def pause(self) -> None:
        """SIGSTOP: the node freezes; connections stay open and nothing answers."""
        assert self.pid is not None, f"node {self.node_id} is not running"
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self.pid is not None, f"node {self.node_id} is not running"
        os.kill(self.pid, signal.SIGCONT)


# ---------------------------------------------------------------------- clusters


class ApacheKafkaCluster:
    """``n`` combined-mode KRaft nodes on 127.0.0.1, every topic replicated to all of them by default.

    ``nodes[i]`` has ``node.id`` ``i``. With ``n >= 3``: replication factor 3
    for new topics and internal topics, ``min.insync.replicas=2``, so one node
    may be down while ``acks=all`` writes go on. ``config`` adds or overrides
    broker settings.

    ``listeners`` adds listeners beside PLAINTEXT (which the tooling and the
    brokers among themselves keep using), each named after its security
    protocol (:data:`EXTRA_LISTENERS`), on a port of its own:
    :meth:`bootstrap_for` gives their addresses. TLS listeners need the
    keystore settings in ``config`` (``tests/integration/tls.py`` makes them).
    A SASL listener enables :data:`SCRAM_MECHANISMS`; ``scram`` maps user names
    to passwords, written as SCRAM credentials of every mechanism into the
    cluster metadata when the storage is formatted.
    """

    def __init__(self, n: int = 3, *, config: Mapping[str, str] | None = None,
                 start_timeout_s: float = START_TIMEOUT_S, listeners: Sequence[str] = (),
                 scram: Mapping[str, str] | None = None) -> None:
        if n < 1:
            raise ValueError("a cluster needs at least one node")
        unknown = [name for name in listeners if name not in EXTRA_LISTENERS]
        if unknown:
            raise ValueError(f"unknown listeners {unknown}: choose among {EXTRA_LISTENERS}")
        self.n = n
        self.listeners = tuple(dict.fromkeys(listeners))
        self.scram = dict(scram or {})
        self.config = dict(config or {})
        self.start_timeout_s = start_timeout_s
        self.cluster_id = _new_cluster_id()
        self.nodes: list[KafkaNode] = []
        self.folder: Path | None = None
        self.started_in_s: float | None = None
        self._classpath: str | None = None
        self._reaper: _Reaper | None = None
        self._finalizer: weakref.finalize | None = None

    # ---- settings

    def settings(self) -> dict[str, str]:
        """The broker settings every node shares (its own listeners and folders are added per node)."""
        replicas, min_isr = min(self.n, 3), min(self.n, 2)
        settings = {
            "process.roles": "broker,controller",
            "controller.quorum.voters": ",".join(node.voter for node in self.nodes),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            # streamal creates its topics co-partitioned and its clients never ask for
            # automatic creation; the broker refusing it too keeps that honest.
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "default.replication.factor": str(replicas),
            "min.insync.replicas": str(min_isr),
            "offsets.topic.replication.factor": str(replicas),
            "transaction.state.log.replication.factor": str(replicas),
            "transaction.state.log.min.isr": str(min_isr),
            "share.coordinator.state.topic.replication.factor": str(replicas),
            "share.coordinator.state.topic.min.isr": str(min_isr),
            # The offsets topic is created when the first group appears: 5 partitions
            # instead of 50 are fewer logs to create, load and replicate, and still
            # spread the tests' groups over a cluster's nodes.
            "offsets.topic.num.partitions": "5",
            # A new group's first rebalance at once, not after the default 3 s.
            "group.initial.rebalance.delay.ms": "0",
            # The log cleaner (for the compacted offsets topic) allocates its dedupe buffer
            # on the heap at start-up: 128 MiB by default, 16 MiB is ample here.
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
            # A killed node comes back (and a dead leader is replaced) only once the
            # controller has fenced it for missing heartbeats: 6 s instead of 9 s, still
            # six heartbeats of 1 s (default 2 s), so a busy moment fences nothing.
            "broker.session.timeout.ms": "6000",
            "broker.heartbeat.interval.ms": "1000",
            # group.min.session.timeout.ms stays at Kafka's 6 s (the tests' session timeout).
        }
        settings.update(self._listener_settings())
        settings.update(self.config)
        return settings

    def _listener_settings(self) -> dict[str, str]:
        """The extra listeners' protocols and, for SASL ones, SCRAM with the broker's JAAS login."""
        if not self.listeners:
            return {}
        extra = "".join(f",{name}:{name}" for name in self.listeners)
        settings = {"listener.security.protocol.map": f"PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT{extra}"}
        sasl = [name for name in self.listeners if name.startswith("SASL_")]
        if sasl:
            settings["sasl.enabled.mechanisms"] = ",".join(SCRAM_MECHANISMS)
            for name in sasl:  # the server side of SCRAM needs a login module, without credentials
                for mechanism in SCRAM_MECHANISMS:
                    settings[f"listener.name.{name.lower()}.{mechanism.lower()}.sasl.jaas.config"] = (
                        "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                    )
        return settings

    def _format_options(self) -> list[str]:
        """``--add-scram`` for every user and mechanism of ``scram``."""
        options = []
        for user, password in self.scram.items():
            for mechanism in SCRAM_MECHANISMS:
                options += ["--add-scram", f'{mechanism}=[name={user},password="{password}"]']
        return options

    # ---- start and stop

    def start(self) -> Self:
        """Start every node and wait until all of them are registered brokers; retries on port races."""
        if self.nodes:
            return self
        started = time.monotonic()
        self._classpath = kafka_classpath()
        java_binary()
        for attempt in range(_PORT_ATTEMPTS):
            self.folder = Path(tempfile.mkdtemp(prefix="streamal-kafka-"))
            self._reaper = _Reaper(self.folder)
            self._finalizer = weakref.finalize(self, self._reaper)
            self.nodes = [KafkaNode(i, self.folder / f"node-{i}", self._reaper, self.listeners)
                          for i in range(self.n)]
            try:
                self._format_and_launch()
                self.wait_ready(started + self.start_timeout_s)
                self.started_in_s = time.monotonic() - started
                return self
            except _ExitedEarly:
                self.close()
                if attempt == _PORT_ATTEMPTS - 1:
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")

    def _format_and_launch(self) -> None:
        assert self._classpath is not None
        settings = self.settings()
        for node in self.nodes:
            node.configure(settings)
        options = self._format_options()
        formats = [node.format_storage(self._classpath, self.cluster_id, *options)  # in parallel
                   for node in self.nodes]
        for node, process in zip(self.nodes, formats, strict=True):
            if process.wait(timeout=self.start_timeout_s) != 0:
                raise KafkaStartError(f"formatting node {node.node_id} failed:\n{node.log_tail()}")
        for node in self.nodes:
            node.launch(self._classpath)

    def wait_ready(self, deadline: float | None = None) -> None:
        """Wait until every running node answers on its own port as an unfenced broker of this
        cluster; :class:`KafkaStartError` (with the logs) if that takes past ``deadline``.

        Each node is asked itself: after a kill, the controller still lists the dead
        incarnation as unfenced until its session expires, the new process only answers
        once it has registered again and caught up.
        """
        deadline = deadline if deadline is not None else time.monotonic() + self.start_timeout_s
        running = [node for node in self.nodes if node.process is not None and node.process.poll() is None]
        waiting = {node.node_id: node for node in running}
        while waiting:
            for node in list(waiting.values()):
                if reason := node.exited():
                    raise _ExitedEarly(f"Apache Kafka {reason}")
                if self._answers(node):
                    del waiting[node.node_id]
            if not waiting:
                return
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- node {n.node_id}:\n{n.log_tail(1500)}" for n in waiting.values())
                raise KafkaStartError(f"Apache Kafka nodes {sorted(waiting)} did not answer on "
                                      f"{self.bootstrap} in time:\n{tails}")
            time.sleep(0.2)

    def _answers(self, node: KafkaNode) -> bool:
        """Whether ``node`` answers a metadata request itself, reporting itself an unfenced broker here."""
        try:  # a refused TCP connection is the cheap answer while the JVM starts
            for port in (node.broker_port, *node.listener_ports.values()):
                socket.create_connection(("127.0.0.1", port), timeout=_PROBE_TIMEOUT_S).close()
        except OSError:
            return False
        info = self._describe_cluster(node.bootstrap)
        return (info is not None and info.get("cluster_id") == self.cluster_id
                and any(int(b["broker_id"]) == node.node_id and not b.get("is_fenced") for b in info["brokers"]))

    @staticmethod
    def _describe_cluster(bootstrap: str) -> dict[str, Any] | None:
        ms = int(_PROBE_TIMEOUT_S * 1000)
        try:
            admin = KafkaAdminClient(bootstrap_servers=[bootstrap], request_timeout_ms=ms, bootstrap_timeout_ms=ms)
        except Exception:  # not answering yet
            return None
        try:
            return dict(admin.describe_cluster())
        except Exception:
            return None
        finally:
            admin.close()

    def close(self) -> None:
        """Kill every node and remove the folder (data and logs): the end of this cluster."""
        if self._finalizer is not None:
            self._finalizer()  # runs the reaper at most once
        self._finalizer = None
        self.nodes = []

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---- while it runs

    @property
    def bootstrap(self) -> str:
        """Every node's ``host:port``, comma-separated, for ``bootstrap_servers``."""
        if not self.nodes:
            raise KafkaStartError("Apache Kafka is not started")
        return ",".join(node.bootstrap for node in self.nodes)

    def bootstrap_for(self, listener: str) -> str:
        """Every node's ``host:port`` on the extra listener ``listener`` (``"SASL_SSL"``, …), comma-separated."""
        if not self.nodes:
            raise KafkaStartError("Apache Kafka is not started")
        if listener != "PLAINTEXT" and listener not in self.listeners:
            raise KeyError(f"no {listener} listener: this cluster has {('PLAINTEXT', *self.listeners)}")
        return ",".join(node.bootstrap_for(listener) for node in self.nodes)

    def restart(self, node_id: int, *, kill: bool = False) -> None:
        """Stop node ``node_id`` (SIGTERM, or SIGKILL with ``kill``) if it runs, start it again on
        the same ports, data and log, and wait until it is an unfenced broker again."""
        node = self.nodes[node_id]
        node.kill() if kill else node.stop()
        assert self._classpath is not None
        node.launch(self._classpath)
        self.wait_ready()

    def admin(self, **config: object) -> KafkaAdminClient:
        """A kafka-python admin client on this cluster (close it)."""
        return KafkaAdminClient(bootstrap_servers=self.bootstrap.split(","), **config)

    def partition_state(self, topic: str, partition: int) -> dict[str, Any]:
        """The cluster's metadata of ``topic``/``partition``: ``leader`` (-1: none), ``replicas``
        and ``isr`` (node ids), as kafka-python's ``describe_topics`` reads them."""
        admin = self.admin(request_timeout_ms=10_000)
        try:
            described = admin.describe_topics([topic])
        finally:
            admin.close()
        for found in described:
            for state in found.get("partitions") or []:
                if state["partition_index"] == partition:
                    return {"leader": state["leader_id"], "replicas": list(state["replica_nodes"]),
                            "isr": list(state["isr_nodes"])}
        raise KeyError(f"{topic}[{partition}] is not in the cluster's metadata")

    def leader(self, topic: str, partition: int = 0, *, timeout_s: float = 30.0,
               among: Callable[[int], bool] | None = None) -> int:
        """The node id leading ``topic``/``partition``, waiting (up to ``timeout_s``) for one that
        satisfies ``among`` (default: any) -- after a kill, pass ``among=lambda n: n != killed``."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                leader = int(self.partition_state(topic, partition)["leader"])
            except Exception:  # not created yet, or a node is down: ask again
                leader = -1
            if leader >= 0 and (among is None or among(leader)):
                return leader
            if time.monotonic() > deadline:
                raise AssertionError(f"no leader for {topic}[{partition}] within {timeout_s:g} s (last: {leader})")
            time.sleep(0.2)


class ApacheKafka(ApacheKafkaCluster):
    """One combined-mode KRaft node (replication factor 1): the tests' broker.

    ``stop``/``kill``/``restart``/``pause``/``resume`` act on its process; data,
    logs and ports survive a stop, so :meth:`restart` brings the same broker back.
    """

    def __init__(self, *, config: Mapping[str, str] | None = None, start_timeout_s: float = START_TIMEOUT_S,
                 listeners: Sequence[str] = (), scram: Mapping[str, str] | None = None) -> None:
        super().__init__(1, config=config, start_timeout_s=start_timeout_s, listeners=listeners, scram=scram)

    @property
    def node(self) -> KafkaNode:
        if not self.nodes:
            raise KafkaStartError("Apache Kafka is not started")
        return self.nodes[0]

    @property
    def pid(self) -> int | None:
        return self.node.pid

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM (a clean shutdown), SIGKILL after ``grace_s``; :meth:`restart` starts it again."""
        self.node.stop(grace_s)

    def kill(self) -> None:
        """SIGKILL, as in a crash."""
        self.node.kill()

    def restart(self, node_id: int = 0, *, kill: bool = False) -> None:
        super().restart(node_id, kill=kill)

    def pause(self) -> None:
        """SIGSTOP: the broker freezes."""
        self.node.pause()

    def resume(self) -> None:
        """SIGCONT."""
        self.node.resume()

    def __repr__(self) -> str:
        state = f"pid={self.pid} bootstrap={self.bootstrap}" if self.nodes else "stopped"
        return f"<ApacheKafka {state}>"


def _new_cluster_id() -> str:
    """A random KRaft cluster id: 16 bytes, URL-safe base64 without padding (as ``random-uuid`` prints),
    never starting with ``-`` (the storage tool would take it for an option)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _main() -> None:
    """Print the start-up time of one node and of three (``python tests/apache_kafka.py``)."""
    print(f"Apache Kafka {kafka_version()} from {kafka_libs()}")
    for make in (ApacheKafka, lambda: ApacheKafkaCluster(3)):
        with make() as kafka:
            print(f"{kafka.n} node(s) ready on {kafka.bootstrap} in {kafka.started_in_s:.1f} s")


if __name__ == "__main__":
    _main()
