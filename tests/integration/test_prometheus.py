"""A real Prometheus scrapes a live ``streamal serve``; every dashboard and alert query is evaluated.

Debian's ``prometheus`` package (installed by ``.ci/run``) runs as a
subprocess on loopback, scraping the service's metrics port every second;
the test waits for data, then asks Prometheus's HTTP API for every PromQL
expression of the Grafana dashboard (each must parse and return data) and of
the alert rules (each must parse, and the rules must load healthy).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from streamal.apps.datasets import load
from streamal.apps.replay import produce
from helpers import OracleThread, ServiceThread, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
integration = pytest.mark.integration


def _query(port: int, expr: str) -> dict:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 400: the expression does not parse
        return json.loads(exc.read())


@integration
@pytest.mark.timeout(240)
def test_every_dashboard_and_alert_query_returns_data_from_a_live_service(settings_for, tmp_path):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (Debian: apt-get install prometheus; .ci/run installs it)")
    metrics_port, prom_port = free_port(), free_port()
    settings = settings_for(metrics_port=metrics_port, state_dir=tmp_path / "state", partitions=1)
    dataset = load("phishing", limit=800)

    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "deploy/prometheus/alerts.yml")],
        "scrape_configs": [{"job_name": "streamal", "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("w")
    prometheus = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        with ServiceThread(settings) as service:
            service.wait_ready()
            with OracleThread(settings, dataset, delay_s=0.2):
                produce(settings, dataset, rate=200)
                wait_until(lambda: service.value("streamal_model_version") >= service.requests > 0, 90,
                           "every requested label to be learned", failed=service.failed)
                # Scraped, with a few samples after the labels: rate() needs two points in its window.
                wait_until(lambda: _result(_query(prom_port, "streamal_model_version")) and
                           _value(_query(prom_port, "max(streamal_model_version)")) >= service.requests,
                           60, "Prometheus to scrape the learned labels",
                           failed=lambda: "prometheus exited" if prometheus.poll() is not None else None)
                time.sleep(5)

                dashboard = json.loads((ROOT / "deploy/grafana/dashboards/streamal.json").read_text())
                empty = []
                for panel in dashboard["panels"]:
                    for target in panel["targets"]:
                        answer = _query(prom_port, target["expr"])
                        assert answer["status"] == "success", (panel["title"], target["expr"], answer)
                        if not _result(answer):
                            empty.append(f"{panel['title']}: {target['expr']}")
                assert not empty, "dashboard queries without data:\n" + "\n".join(empty)

                rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
                for rule in rules["groups"][0]["rules"]:
                    answer = _query(prom_port, rule["expr"])
                    assert answer["status"] == "success", (rule["alert"], answer)
                loaded = json.loads(urllib.request.urlopen(
                    f"http://127.0.0.1:{prom_port}/api/v1/rules", timeout=10).read())
                states = [r["health"] for g in loaded["data"]["groups"] for r in g["rules"]]
                assert len(states) == 5 and set(states) <= {"ok", "unknown"}, loaded
    finally:
        prometheus.terminate()
        try:
            prometheus.wait(20)
        except subprocess.TimeoutExpired:
            prometheus.kill()
        log.close()


def _result(answer: dict) -> list:
    return answer.get("data", {}).get("result", [])


def _value(answer: dict) -> float:
    result = _result(answer)
    return float(result[0]["value"][1]) if result else 0.0
