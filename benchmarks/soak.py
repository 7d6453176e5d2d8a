"""Soak: ``streamal serve`` under a steady load for minutes, on a real broker.

One run, bounded by ``--minutes`` (default 5):

1. a broker this script starts: Apache Kafka 4.4 (``--broker kafka``, the
   default; ``tests/apache_kafka.py``, jars in ``.cache``) or Tansu
   (``--broker tansu``), or ``--bootstrap HOST:PORT``;
2. the rate: ``--rate`` instances per second, or by default ``--load`` (70 %)
   of the maximum measured first, in this run, on this broker, as
   ``benchmarks/serve_throughput.py`` measures it (a Service drains a
   pre-filled topic of ``--calibrate`` instances);
3. ``streamal serve`` itself, as a child process configured by ``STREAMAL_…``
   variables, with ``STREAMAL_PENDING_MAX`` small (``--pending-max``, 2,000),
   so the bound on outstanding label requests is reached within the run;
4. a producer at that fixed rate (instances of River's
   ``Hyperplane(seed=42, n_features=10)``, a pool cycled under new ids) and
   an annotator answering a share of the label requests from ground truth
   (``--answer-share``, 0.5: the other half stays pending until the bound
   evicts it; 1 answers all, 0 none), ``--answer-delay`` seconds after each
   request;
5. every ``--every`` seconds: the service's ``/metrics`` (instances decided,
   ``streamal_consumer_lag_records``, ``streamal_pending_requests``, the
   ``streamal_processing_seconds`` histogram), its resident memory
   (``/proc/<pid>/status``), and the decision latency of the label requests
   the annotator read in the interval: the label request's timestamp minus
   the moment its instance was handed to the producer.

It prints a summary (memory growth after the pending bound was reached, in
MB/min, which should be about flat; consumer lag; p99 decision latency) and
plots the samples to ``--plot`` (default ``docs/soak.png``).

    python -m benchmarks.soak [--minutes 5] [--broker kafka|tansu] [--rate R] [--plot docs/soak.png]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import orjson  # noqa: E402
from kafka import KafkaProducer  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from benchmarks import serve_throughput as st  # noqa: E402
from streamal.apps import serve  # noqa: E402
from streamal.service import kafka  # noqa: E402
from streamal.service.metrics import Metrics  # noqa: E402
from streamal.service.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
POOL = 20_000  # distinct examples, cycled under new ids
#: Producer ticks: records due by now are sent every 10 ms, so the rate is even at this scale.
TICK_S = 0.01
READY_TIMEOUT_S = 120.0


# ----------------------------------------------------------------------------- load


class Load:
    """The instances (a cycled pool of examples under ids ``soak-<i>``) and their ground truth."""

    def __init__(self, stream: str, seed: int = 42) -> None:
        pairs = list(itertools.islice(st.examples(stream, seed), POOL))
        self.features = [orjson.dumps(x) for x, _ in pairs]
        self.truth = [y for _, y in pairs]

    def message(self, i: int) -> tuple[bytes, bytes]:
        ident = f"soak-{i}".encode()
        return ident, b'{"id":"' + ident + b'","features":' + self.features[i % POOL] + b"}"

    def label(self, i: int) -> Any:
        return self.truth[i % POOL]


def answered(i: int, share: float) -> bool:
    """Whether the annotator answers instance ``i``: a fixed, evenly spread share of the ids."""
    return (i * 2654435761) % 10_000 < share * 10_000


@dataclass
class Shared:
    """What the producer and the annotator threads tell the sampler."""

    sent_at: np.ndarray  # wall-clock time each instance was handed to the producer (NaN: not yet)
    produced: int = 0
    requests: int = 0
    answers: int = 0
    latencies: deque[tuple[float, float]] = field(default_factory=deque)  # (request timestamp, latency s)
    lock: threading.Lock = field(default_factory=threading.Lock)
    failure: list[BaseException] = field(default_factory=list)


def produce(settings: Settings, load: Load, rate: float, shared: Shared, stop: threading.Event) -> None:
    """Instances at ``rate`` per second until ``stop``."""
    producer = KafkaProducer(**kafka.producer_config(settings))
    started = time.monotonic()
    i = 0
    try:
        while not stop.is_set():
            due = min(int((time.monotonic() - started) * rate), len(shared.sent_at))
            while i < due and not stop.is_set():  # behind (a busy machine): catch up as fast as it can
                key, value = load.message(i)
                shared.sent_at[i] = time.time()
                producer.send(settings.topic_instances, value=value, key=key)
                i += 1
                shared.produced = i
            time.sleep(TICK_S)
    except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
        shared.failure.append(exc)
    finally:
        producer.close(timeout=5)  # what is still queued at the end does not matter


def annotate(settings: Settings, load: Load, share: float, delay_s: float, shared: Shared,
             stop: threading.Event) -> None:
    """Read every label request; note its decision latency; answer ``share`` of them after ``delay_s``."""
    source = kafka.reader(settings, [settings.topic_label_requests])
    producer = KafkaProducer(**kafka.producer_config(settings))
    queue: deque[tuple[float, str, int]] = deque()
    try:
        while not stop.is_set():
            for record in source.poll(0.2, 5000):
                ident = orjson.loads(record.value)["id"]
                i = int(ident.rsplit("-", 1)[1])
                stamp = record.timestamp / 1000.0
                with shared.lock:
                    shared.requests += 1
                    if not np.isnan(shared.sent_at[i]):
                        shared.latencies.append((stamp, stamp - float(shared.sent_at[i])))
                if answered(i, share):
                    queue.append((time.time() + delay_s, ident, i))
            now = time.time()
            while queue and queue[0][0] <= now:
                _, ident, i = queue.popleft()
                value = orjson.dumps({"id": ident, "label": load.label(i), "annotator": "soak"})
                producer.send(settings.topic_labels, value=value, key=ident.encode())
                shared.answers += 1
    except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
        shared.failure.append(exc)
    finally:
        producer.close(timeout=10)
        source.close()


# ----------------------------------------------------------------------------- the service


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_service(settings: Settings, port: int, pending_max: int, log: Path) -> subprocess.Popen[bytes]:
    """``streamal serve`` as a child process, configured as an operator would: STREAMAL_… variables."""
    env = dict(os.environ)
    env.update({
        "STREAMAL_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "STREAMAL_GROUP_ID": settings.group_id,
        "STREAMAL_TOPIC_INSTANCES": settings.topic_instances,
        "STREAMAL_TOPIC_LABEL_REQUESTS": settings.topic_label_requests,
        "STREAMAL_TOPIC_LABELS": settings.topic_labels,
        "STREAMAL_TOPIC_TRAINING": settings.topic_training,
        "STREAMAL_TOPIC_DEAD_LETTER": settings.topic_dead_letter,
        "STREAMAL_SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
        "STREAMAL_STATE_DIR": str(settings.state_dir),
        "STREAMAL_BUDGET": str(settings.budget),
        "STREAMAL_METRICS_PORT": str(port),
        "STREAMAL_PENDING_MAX": str(pending_max),
    })
    script = Path(sys.executable).parent / "streamal"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "streamal.apps.cli"]
    with log.open("wb") as out:
        return subprocess.Popen([*command, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except OSError:
        return 0, ""


def wait_ready(child: subprocess.Popen[bytes], port: int, log: Path) -> float:
    started = time.monotonic()
    while get(f"http://127.0.0.1:{port}/readyz")[0] != 200:
        if child.poll() is not None:
            raise SystemExit(f"streamal serve exited ({child.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() - started > READY_TIMEOUT_S:
            raise SystemExit(f"streamal serve not ready after {READY_TIMEOUT_S:g} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return time.monotonic() - started


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ----------------------------------------------------------------------------- sampling


def scrape(port: int) -> dict[str, Any]:
    """The figures of one /metrics page: sums over labels, and the processing histogram's buckets."""
    status, text = get(f"http://127.0.0.1:{port}/metrics")
    if status != 200:
        return {}
    values: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "streamal_processing_seconds_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
            else:
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return {"values": values, "buckets": buckets}


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    """Upper bound of the bucket holding quantile ``q`` of the observations between two scrapes."""
    les = sorted(after)
    delta = [after[le] - before.get(le, 0.0) for le in les]
    if not delta or delta[-1] <= 0:
        return None
    return next(le for le, c in zip(les, delta, strict=True) if c >= q * delta[-1])


def slope_per_min(t: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of ``y`` against ``t`` (seconds), per minute."""
    if len(t) < 3:
        return float("nan")
    return float(np.polyfit(t, y, 1)[0] * 60)


# ----------------------------------------------------------------------------- calibration


def calibrate(bootstrap: str, stream: str, n: int, budget: float, state: Path) -> float:
    """The maximum rate, as serve_throughput measures it: a Service drains ``n`` pre-filled instances."""
    run = f"soak-{uuid.uuid4().hex[:8]}-max"
    settings = st.settings_for(bootstrap, run, state / "calibrate", budget=budget)
    kafka.ensure_topics(settings)
    records, _ = st.instance_messages(stream, n)
    st.fill(settings, settings.topic_instances, records, "pre-fill (calibration)")
    del records
    metrics = Metrics()
    service = serve.build(settings, metrics)
    try:
        elapsed = st.drain(service, metrics, n, "maximum rate")
    finally:
        service.close()
    return n / elapsed


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the soak")
    parser.add_argument("--broker", default="kafka", choices=["kafka", "tansu"], help="broker started here")
    parser.add_argument("--bootstrap", help="use this broker instead (topics soak-<run>.* are left there)")
    parser.add_argument("--rate", type=float, help="instances per second (default: --load × the measured maximum)")
    parser.add_argument("--load", type=float, default=0.7, help="share of the measured maximum, without --rate")
    parser.add_argument("--calibrate", type=int, default=20_000, help="instances drained to measure the maximum")
    parser.add_argument("--budget", type=float, default=0.05)
    parser.add_argument("--pending-max", type=int, default=2000, help="STREAMAL_PENDING_MAX of the service")
    parser.add_argument("--answer-share", type=float, default=0.5, help="share of the label requests answered")
    parser.add_argument("--answer-delay", type=float, default=2.0, help="seconds from a request to its answer")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--stream", default="hyperplane", help="hyperplane, sea, or a bundled dataset name")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "soak.png", help="PNG of the samples")
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.ERROR)
    load_before = os.getloadavg()
    where: Any = contextlib.nullcontext(args.bootstrap) if args.bootstrap else st.local_broker(args.broker)
    broker_name = "external" if args.bootstrap else {"kafka": "Apache Kafka", "tansu": "Tansu"}[args.broker]
    with where as bootstrap, tempfile.TemporaryDirectory(prefix="streamal-soak-") as tmp:
        state = Path(tmp)
        print(f"broker {bootstrap} ({broker_name}); {os.cpu_count()} cores, load average "
              f"{load_before[0]:.1f} / {load_before[1]:.1f} / {load_before[2]:.1f} at the start")
        if args.rate:
            rate, maximum = args.rate, None
        else:
            maximum = calibrate(bootstrap, args.stream, args.calibrate, args.budget, state)
            rate = args.load * maximum
        print(f"rate {rate:,.0f} inst/s" + (f" = {args.load:.0%} of the maximum measured now, {maximum:,.0f} inst/s "
                                            f"(a Service draining {args.calibrate:,} pre-filled instances)"
                                            if maximum else " (given)"))

        run = f"soak-{uuid.uuid4().hex[:8]}"
        settings = st.settings_for(bootstrap, run, state / "serve", budget=args.budget)
        kafka.ensure_topics(settings)
        port = free_port()
        log = state / "serve.log"
        child = start_service(settings, port, args.pending_max, log)
        try:
            ready_s = wait_ready(child, port, log)
            idle = rss_mb(child.pid)
            print(f"streamal serve pid {child.pid}: ready in {ready_s:.1f} s, RSS {idle:.0f} MB (ready, idle); "
                  f"STREAMAL_PENDING_MAX={args.pending_max}, answering {args.answer_share:.0%} of the requests "
                  f"after {args.answer_delay:g} s; {args.minutes:g} min, a sample every {args.every:g} s")
            samples = soak(args, settings, rate, child, port)
        finally:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
        load_after = os.getloadavg()
        summary(args, samples, rate, idle, load_after)
        plot(args, samples, rate, broker_name)


def soak(args: argparse.Namespace, settings: Settings, rate: float, child: subprocess.Popen[bytes],
         port: int) -> list[dict[str, Any]]:
    """Producer and annotator running, a sample every ``--every`` s for ``--minutes``; the samples."""
    load = Load(args.stream)
    capacity = int(rate * args.minutes * 60 * 1.05) + 10_000
    shared = Shared(sent_at=np.full(capacity, np.nan))
    stop = threading.Event()
    threads = [
        threading.Thread(target=produce, args=(settings, load, rate, shared, stop), name="producer", daemon=True),
        threading.Thread(target=annotate, args=(settings, load, args.answer_share, args.answer_delay, shared, stop),
                         name="annotator", daemon=True),
    ]
    for thread in threads:
        thread.start()
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    previous = scrape(port)
    previous_at = started
    produced_before = 0
    cpu_before = cpu_s(child.pid)
    end = started + args.minutes * 60
    progress = st.Progress("soak (s)", int(args.minutes * 60))
    try:
        while time.monotonic() < end:
            time.sleep(max(0.0, min(args.every - (time.monotonic() - previous_at), end - time.monotonic())))
            if shared.failure:
                raise shared.failure[0]
            if child.poll() is not None:
                raise SystemExit(f"streamal serve exited ({child.returncode}) during the soak")
            now = time.monotonic()
            page = scrape(port)
            if not page:
                continue
            values, before = page["values"], previous.get("values", {})
            dt = now - previous_at
            wall_now = time.time()
            cpu_now = cpu_s(child.pid)
            decided_delta = values.get("streamal_instances_total", 0) - before.get("streamal_instances_total", 0)
            with shared.lock:
                recent = [lat for stamp, lat in shared.latencies if stamp > wall_now - dt]
                while shared.latencies and shared.latencies[0][0] < wall_now - 60:
                    shared.latencies.popleft()
            samples.append({
                "t": now - started,
                "rate": decided_delta / dt,
                "produced": shared.produced,
                "produced_rate": (shared.produced - produced_before) / dt,
                "decided": values.get("streamal_instances_total", 0),
                "lag": values.get("streamal_consumer_lag_records", float("nan")),
                "pending": values.get("streamal_pending_requests", float("nan")),
                "model_version": values.get("streamal_model_version", float("nan")),
                "rss": rss_mb(child.pid),
                "cpu": (cpu_now - cpu_before) / dt,  # cores the service used
                "cpu_per_instance": (cpu_now - cpu_before) / decided_delta if decided_delta else float("nan"),
                "loadavg": os.getloadavg()[0],
                "p99": float(np.percentile(recent, 99)) if recent else float("nan"),
                "p50": float(np.percentile(recent, 50)) if recent else float("nan"),
                "latencies": recent,
                "processing_p99": bucket_quantile(previous.get("buckets", {}), page["buckets"], 0.99),
                "requests": shared.requests,
                "answers": shared.answers,
                "orphaned": values.get("streamal_labels_total", 0),
            })
            previous, previous_at, produced_before, cpu_before = page, now, samples[-1]["produced"], cpu_now
            progress.update(int(now - started))
        progress.done(int(time.monotonic() - started))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    return samples


def summary(args: argparse.Namespace, samples: list[dict[str, Any]], rate: float, idle: float,
            load_after: tuple[float, float, float]) -> None:
    if not samples:
        raise SystemExit("no samples")
    t = np.array([s["t"] for s in samples])
    rss = np.array([s["rss"] for s in samples])
    lag = np.array([s["lag"] for s in samples])
    pending = np.array([s["pending"] for s in samples])
    bound = next((s["t"] for s in samples if s["pending"] >= args.pending_max), None)
    half = t >= t[-1] / 2
    lats = np.concatenate([np.asarray(s["latencies"]) for s in samples if s["latencies"]] or [np.array([])])
    throughput = np.array([s["rate"] for s in samples])
    proc = [s["processing_p99"] for s in samples if s["processing_p99"] is not None]
    last = samples[-1]
    print()
    print(f"{'figure':46} {'value':>20}  note")
    rows = [
        ("throughput: mean / min of the samples", f"{throughput.mean():,.0f} / {throughput.min():,.0f}",
         (f"inst/s; target {rate:,.0f}/s, produced {last['produced'] / t[-1]:,.0f}/s: "
          f"{last['produced']:,} sent, {int(last['decided']):,} decided")),
        ("consumer lag: max, first half / second half",
         f"{np.nanmax(lag[~half]) if (~half).any() else float('nan'):,.0f} / {np.nanmax(lag[half]):,.0f}",
         f"records; at the end {lag[-1]:,.0f}"),
        ("decision latency p50 / p99 (all requests)",
         f"{np.percentile(lats, 50) * 1000:,.0f} / {np.percentile(lats, 99) * 1000:,.0f} ms" if len(lats) else "n/a",
         f"{len(lats):,} label requests: request timestamp − handed to the producer"),
        ("  p99 per sample: median / max",
         f"{np.nanmedian([s['p99'] for s in samples]) * 1000:,.0f} / {np.nanmax([s['p99'] for s in samples]) * 1000:,.0f} ms",
         f"over {args.every:g} s windows"),
        ("streamal_processing_seconds p99 bucket", f"≤{max(proc) * 1e6:,.0f} µs" if proc else "n/a",
         "per instance, the worst sample"),
        ("RSS: ready idle / at the end / peak", f"{idle:.0f} / {rss[-1]:.0f} / {np.nanmax(rss):.0f} MB", ""),
        ("pending requests: at the end", f"{pending[-1]:,.0f}",
         f"bound {args.pending_max:,} {f'reached after {bound:.0f} s' if bound is not None else 'not reached'}"),
    ]
    if bound is not None:
        after = t >= bound
        rows.append(("memory growth after the bound was reached", f"{slope_per_min(t[after], rss[after]):+.2f} MB/min",
                     f"least squares over {int(after.sum())} samples ({t[after][0]:.0f}–{t[-1]:.0f} s)"))
        rows.append(("  RSS then / at the end / highest since",
                     f"{rss[after][0]:.0f} / {rss[-1]:.0f} / {np.nanmax(rss[after]):.0f} MB",
                     "a step (a burst's buffers) is not a slope"))
    rows.append(("memory growth, second half of the run", f"{slope_per_min(t[half], rss[half]):+.2f} MB/min",
                  f"{int(half.sum())} samples"))
    cpu = np.array([s["cpu"] for s in samples])
    per = np.array([s["cpu_per_instance"] for s in samples])
    rows.append(("service CPU: mean cores used / per instance",
                 f"{cpu.mean():.2f} / {np.nanmedian(per) * 1e6:,.0f} µs",
                 "median µs of CPU per decided instance: the cost, whatever the machine's load"))
    rows.append(("labels: requests read / answered", f"{last['requests']:,} / {last['answers']:,}",
                 f"model version {last['model_version']:,.0f}"))
    for name, value, note in rows:
        print(f"{name:46} {value:>20}  {note}")
    print(f"load average at the end {load_after[0]:.1f} / {load_after[1]:.1f} / {load_after[2]:.1f} "
          f"({os.cpu_count()} cores)")


def plot(args: argparse.Namespace, samples: list[dict[str, Any]], rate: float, broker: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = np.array([s["t"] for s in samples]) / 60
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    ax = axes[0][0]
    ax.plot(minutes, [s["rate"] for s in samples], label="decided")
    ax.plot(minutes, [s["produced_rate"] for s in samples], color="grey", linewidth=0.8, label="produced")
    ax.axhline(rate, color="grey", linestyle="--", label="target rate")
    ax.set_ylabel("instances / s")
    ax.set_title("throughput")
    ax.legend(loc="lower right")
    twin = ax.twinx()
    twin.plot(minutes, [s["cpu"] for s in samples], color="C4", linewidth=0.8, linestyle=":")
    twin.set_ylabel("cores used by the service (dotted)")
    twin.set_ylim(0, max(1.0, max(s["cpu"] for s in samples) * 1.2))
    ax = axes[0][1]
    ax.plot(minutes, [s["p99"] * 1000 for s in samples], label="p99")
    ax.plot(minutes, [s["p50"] * 1000 for s in samples], label="p50")
    ax.set_ylabel("ms")
    ax.set_title("decision latency (instance produced → label request)")
    ax.legend(loc="upper right")
    ax = axes[1][0]
    ax.plot(minutes, [s["lag"] for s in samples])
    ax.set_ylabel("records")
    ax.set_title("consumer lag (streamal_consumer_lag_records)")
    ax.set_xlabel("minutes")
    ax = axes[1][1]
    ax.plot(minutes, [s["rss"] for s in samples], color="C3", label="RSS")
    ax.set_ylabel("MB (RSS)")
    ax.set_xlabel("minutes")
    ax.set_title("memory and pending requests")
    twin = ax.twinx()
    twin.plot(minutes, [s["pending"] for s in samples], color="C2", linestyle=":", label="pending")
    twin.axhline(args.pending_max, color="C2", linewidth=0.5)
    twin.set_ylabel("pending requests")
    lines = ax.get_lines() + twin.get_lines()[:1]
    ax.legend(lines, [line.get_label() for line in lines], loc="lower right")
    low, high = ax.get_ylim()
    ax.set_ylim(min(low, 0), max(high, 1.2 * max(s["rss"] for s in samples)))
    loads = [s["loadavg"] for s in samples]
    fig.suptitle(f"streamal serve soak: {rate:,.0f} inst/s for {args.minutes:g} min on {broker}, "
                 f"budget {args.budget:g}, STREAMAL_PENDING_MAX={args.pending_max:,}\n"
                 f"{os.cpu_count()} cores shared with the broker, the producer and other work: "
                 f"load average {min(loads):.1f}–{max(loads):.1f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.plot, dpi=100)
    plt.close(fig)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
