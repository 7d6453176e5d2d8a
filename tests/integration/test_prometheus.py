"""A real Prometheus scrapes a live ``streamal serve``; every dashboard and alert query is evaluated.

Debian's ``prometheus`` package (installed by ``.ci/run``) runs as a
subprocess on loopback, scraping the service's metrics port every second;
the test waits for data, then asks Prometheus's HTTP API for every PromQL
expression of the Grafana dashboard (each must parse and return data) and of
the alert rules (each must parse, and the rules must load healthy).

The Capacity row needs requests that expired unanswered and were asked
again: the annotator knows only the first 600 of the 800 instances, requests
expire after 8 s (``STREAMAL_PENDING_MAX_AGE_S``) and expired ones are asked
again (``STREAMAL_REASK_EXPIRED``); predictions are published
(``STREAMAL_TOPIC_PREDICTIONS``) so that their panel has data too.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from streamal.apps.datasets import Dataset, load
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
    # 8 s: long enough for every answered request to be joined on a loaded machine (the oracle answers
    # after 0.2 s). A budget of 0.2: ~40 requests for the 200 unknown instances, so some are asked again.
    settings = settings_for(metrics_port=metrics_port, state_dir=tmp_path / "state", partitions=1, budget=0.2,
                            labels_per_hour=72_000, pending_max_age_s=8.0, reask_expired=True,
                            topic_predictions=f"test-{uuid.uuid4().hex[:12]}.predictions")
    dataset = load("phishing", limit=800)
    known = Dataset(dataset.name, dataset.examples[:600], dataset.task, dataset.ids[:600] if dataset.ids else None)

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
            # A sample before any label: rate() and increase() see the counters move from there
            # (a first scrape after the labels would leave the label delay quantiles NaN).
            wait_until(lambda: _value(_query(prom_port, 'max(up{job="streamal"})')) == 1, 60,
                       "Prometheus to scrape the service",
                       failed=lambda: "prometheus exited" if prometheus.poll() is not None else None)
            with OracleThread(settings, known, delay_s=0.2):
                produce(settings, dataset, rate=200)

                def expired_asked_again_and_joined_learned() -> bool:
                    joined = service.value("streamal_labels_total", outcome="joined")
                    return (service.value("streamal_labels_total", outcome="expired") > 0 and
                            service.value("streamal_requests_reasked_total") > 0 and
                            service.value("streamal_model_version") >= joined > 0)

                wait_until(expired_asked_again_and_joined_learned, 90,
                           "requests to expire and be asked again, every joined label to be learned",
                           failed=service.failed)
                # Scraped, with a few samples after the labels: rate() needs two points in its window.
                learned = service.value("streamal_model_version")
                wait_until(lambda: _result(_query(prom_port, "streamal_model_version")) and
                           _value(_query(prom_port, "max(streamal_model_version)")) >= learned and
                           _value(_query(prom_port, 'max(streamal_labels_total{outcome="expired"})')) > 0 and
                           _value(_query(prom_port, "max(streamal_requests_reasked_total)")) > 0,
                           60, "Prometheus to scrape the learned labels, the expired and re-asked requests",
                           failed=lambda: "prometheus exited" if prometheus.poll() is not None else None)
                time.sleep(5)

                dashboard = json.loads((ROOT / "deploy/grafana/dashboards/streamal.json").read_text())
                empty, unset = [], []
                for row, panel in _panels(dashboard):
                    for target in panel["targets"]:
                        answer = _query(prom_port, target["expr"])
                        assert answer["status"] == "success", (panel["title"], target["expr"], answer)
                        if not _result(answer):
                            empty.append(f"{panel['title']}: {target['expr']}")
                        elif row == "Capacity" and not all(math.isfinite(float(r["value"][1]))
                                                           for r in _result(answer)):
                            unset.append(f"{panel['title']}: {target['expr']} = {_result(answer)}")
                assert not empty, "dashboard queries without data:\n" + "\n".join(empty)
                # Every capacity query has a number, not NaN: the requests expired, the labels had a delay.
                assert not unset, "capacity queries without a value:\n" + "\n".join(unset)
                for moved in ('max(rate(streamal_labels_total{outcome="expired"}[5m])) * 3600',
                              "sum(rate(streamal_requests_reasked_total[5m])) * 3600",
                              "sum(rate(streamal_predictions_total[1m]))"):
                    assert _value(_query(prom_port, moved)) > 0, moved

                rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
                for rule in rules["groups"][0]["rules"]:
                    answer = _query(prom_port, rule["expr"])
                    assert answer["status"] == "success", (rule["alert"], answer)
                loaded = json.loads(urllib.request.urlopen(
                    f"http://127.0.0.1:{prom_port}/api/v1/rules", timeout=10).read())
                states = [r["health"] for g in loaded["data"]["groups"] for r in g["rules"]]
                assert len(states) == len(rules["groups"][0]["rules"]), loaded
                assert set(states) <= {"ok", "unknown"}, loaded
    finally:
        prometheus.terminate()
        try:
            prometheus.wait(20)
        except subprocess.TimeoutExpired:
            prometheus.kill()
        log.close()


def _panels(dashboard: dict) -> list[tuple[str | None, dict]]:
    """``(row title, panel)`` of every panel that is not a row, top to bottom (a collapsed row holds its own)."""
    out, row = [], None
    for panel in sorted(dashboard["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])):
        if panel["type"] == "row":
            row = panel["title"]
            out += [(row, p) for p in panel.get("panels", [])]
        else:
            out.append((row, panel))
    return out


def _result(answer: dict) -> list:
    return answer.get("data", {}).get("result", [])


def _value(answer: dict) -> float:
    result = _result(answer)
    return float(result[0]["value"][1]) if result else 0.0
