"""Deployment files checked with the real tools: promtool, the compose schema, Kubernetes schemas."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus; .ci/run installs it)")
    return path


def test_promtool_checks_the_prometheus_config_and_rules():
    config = subprocess.run([promtool(), "check", "config", str(DEPLOY / "prometheus/prometheus.yml")],
                            capture_output=True, text=True)
    assert config.returncode == 0, config.stdout + config.stderr
    rules = subprocess.run([promtool(), "check", "rules", str(DEPLOY / "prometheus/alerts.yml")],
                           capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 5 rules found" in rules.stdout


def test_alert_rules_cover_what_operators_watch():
    rules = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())["groups"][0]["rules"]
    names = {r["alert"] for r in rules}
    assert names == {"StreamalLabelRateOffBudget", "StreamalAnnotatorBacklog", "StreamalConsumerLag",
                     "StreamalDeadLettersRising", "StreamalNotReady"}


def test_compose_file_is_valid_against_the_compose_spec():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(ROOT / "docker-compose.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert set(compose["services"]) >= {"kafka", "streamal", "producer", "annotator", "prometheus", "grafana"}
    kafka_env = compose["services"]["kafka"]["environment"]
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper


@pytest.mark.parametrize("name", ["deployment.yaml", "service.yaml", "configmap.yaml"])
def test_kubernetes_manifests_are_valid(name):
    import kubernetes_validate

    for doc in yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text()):
        kubernetes_validate.validate(doc, "1.30", strict=True)


def test_podmonitor_targets_the_metrics_port():
    # A custom resource of the Prometheus Operator: no built-in schema, check what matters.
    monitor = yaml.safe_load((DEPLOY / "kubernetes/podmonitor.yaml").read_text())
    deployment = yaml.safe_load((DEPLOY / "kubernetes/deployment.yaml").read_text())
    assert monitor["kind"] == "PodMonitor" and monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] in {p["name"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_dockerfile_is_multistage_pinned_non_root_with_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.M)
    assert len(bases) >= 2  # multi-stage
    assert all(re.search(r":\d+\.\d+\.\d+", b) for b in bases), bases  # pinned versions, no :latest
    user = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert user and not user[-1].startswith(("root", "0"))
    assert re.search(r"^HEALTHCHECK\s", text, flags=re.M)
    assert not re.search(r"(PASSWORD|SECRET|TOKEN)\s*=", text, flags=re.I)


def dashboard() -> dict:
    return json.loads((DEPLOY / "grafana/dashboards/streamal.json").read_text())


def panels(board: dict) -> list[tuple[str | None, dict]]:
    """``(row title, panel)`` of every panel that is not a row, top to bottom (a collapsed row holds its own)."""
    out, row = [], None
    for panel in sorted(board["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])):
        if panel["type"] == "row":
            row = panel["title"]
            out += [(row, p) for p in panel.get("panels", [])]
        else:
            out.append((row, panel))
    return out


def test_dashboard_panels_have_queries():
    board = dashboard()
    assert board["uid"] == "streamal"
    for _, panel in panels(board):
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def test_dashboard_panels_have_unique_ids_and_do_not_overlap():
    board = dashboard()
    every = board["panels"] + [p for row in board["panels"] for p in row.get("panels", [])]
    ids = [p["id"] for p in every]
    assert len(ids) == len(set(ids)), ids
    cells: dict[tuple[int, int], str] = {}
    for panel in board["panels"]:
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_capacity_row_shows_budget_backlog_delay_expiry_and_reasking():
    exprs = " ".join(t["expr"] for row, panel in panels(dashboard()) if row == "Capacity" for t in panel["targets"])
    for wanted in ("streamal_budget_ratio", "streamal_instances_total", "streamal_label_requests_total",
                   "streamal_pending_requests", "streamal_pending_oldest_age_seconds",
                   "streamal_label_delay_seconds_bucket", 'streamal_labels_total{outcome="expired"}',
                   "streamal_requests_reasked_total"):
        assert wanted in exprs, wanted
    # Labels per hour: the budget in force times the instance rate, and the requests themselves.
    assert "streamal_budget_ratio * rate(streamal_instances_total" in exprs
    assert re.search(r"rate\(streamal_label_requests_total\[\w+\]\)\) \* 3600", exprs)


def test_dashboard_and_alerts_query_only_metrics_the_service_exposes():
    from streamal.service.metrics import Metrics

    families = {f.name: f.type for f in Metrics().registry.collect()}
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    scraped = {name + s for name, kind in families.items() for s in suffixes[kind]}
    exprs = [t["expr"] for _, panel in panels(dashboard()) for t in panel["targets"]]
    exprs += [r["expr"] for r in yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())["groups"][0]["rules"]]
    used = {name for expr in exprs for name in re.findall(r"\bstreamal_[a-z0-9_]+", expr)}
    assert used - scraped == set(), "queried but not exposed by Metrics()"
