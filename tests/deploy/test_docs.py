"""The operators' docs keep up with the code: every metric family, reason and outcome in docs/metrics.md,
every alert rule in docs/runbook.md.

Metric families come from a fresh ``Metrics()`` registry. Reasons and outcomes
come from the constants that exist (``messages.REASONS``, ``metrics.LABEL_OUTCOMES``,
the label values ``Metrics()`` creates up front) and from the string literals
the service passes where it counts a record: ``InvalidMessage(reason, …)``,
``_reject(record, reason, …)``, ``….rejected.labels(topic, reason)``,
``….labels.labels(outcome)``, ``_skip(id, reason)``, ``….skipped.labels(reason)``
(found with :mod:`ast`, so a ternary of two literals counts both).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from streamal.service import messages
from streamal.service.metrics import LABEL_OUTCOMES, Metrics

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ROOT / "streamal/service"
METRICS_DOC = ROOT / "docs/metrics.md"
RUNBOOK = ROOT / "docs/runbook.md"
ALERTS = ROOT / "deploy/prometheus/alerts.yml"

#: The name a family is scraped under, by type (a histogram's heading names the family; its section the suffixes).
SCRAPED = {"counter": "{}_total", "gauge": "{}", "histogram": "{}"}


def sections(text: str, level: str) -> dict[str, str]:
    """Markdown headings of ``level`` (``"##"``) → the text under them, up to the next heading of that level or above."""
    out: dict[str, str] = {}
    parts = re.split(rf"^({level} .*)$", text, flags=re.MULTILINE)
    for heading, body in zip(parts[1::2], parts[2::2]):
        body = re.split(rf"^#{{1,{len(level)}}} ", body, flags=re.MULTILINE)[0]
        out[heading[len(level) + 1:].strip()] = body
    return out


def metric_sections() -> dict[str, str]:
    """Scraped metric name (the first `code` of a ``###`` heading) → its section."""
    out = {}
    for heading, body in sections(METRICS_DOC.read_text(), "###").items():
        name = re.match(r"`([a-z0-9_]+)`", heading)
        assert name, f"a ### heading of docs/metrics.md that names no metric: {heading!r}"
        out[name.group(1)] = body
    return out


def table_keys(body: str) -> list[str]:
    """The `code` in the first cell of every body row of the Markdown tables in ``body`` (headers skipped)."""
    keys, in_body = [], False
    for line in body.splitlines():
        if not line.startswith("|"):
            in_body = False
        elif re.match(r"^\|[-| :]+\|$", line):
            in_body = True
        elif in_body:
            key = re.match(r"^\| `([a-z0-9_]+)` \|", line)
            assert key, f"a table row without a `name` first: {line!r}"
            keys.append(key.group(1))
    return keys


def families() -> dict[str, str]:
    """Scraped name → type of every family ``Metrics()`` registers."""
    return {SCRAPED[f.type].format(f.name): f.type for f in Metrics().registry.collect()}


def literals(node: ast.AST | None) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)} if node else set()


def arg(call: ast.Call, i: int) -> ast.AST | None:
    return call.args[i] if len(call.args) > i else None


def counted_in_code() -> dict[str, set[str]]:
    """String literals the service passes as a rejected reason, a label outcome, a skip reason."""
    found: dict[str, set[str]] = {"rejected": set(), "labels": set(), "skipped": set()}
    for path in sorted(SERVICE.rglob("*.py")):
        for call in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(call, ast.Call):
                continue
            func = call.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            owner = func.value.attr if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Attribute) else None
            if name == "InvalidMessage":
                found["rejected"] |= literals(arg(call, 0))
            elif name == "_reject" or (name == "labels" and owner == "rejected"):
                found["rejected"] |= literals(arg(call, 1))
            elif name == "labels" and owner == "labels":
                found["labels"] |= literals(arg(call, 0))
            elif name == "_skip":
                found["skipped"] |= literals(arg(call, 1))
            elif name == "labels" and owner == "skipped":
                found["skipped"] |= literals(arg(call, 0))
    return found


def created_label_values(family: str, label: str) -> set[str]:
    """Values of ``label`` that ``Metrics()`` creates up front for ``family``."""
    return {s.labels[label] for f in Metrics().registry.collect() if f.name == family for s in f.samples
            if label in s.labels}


# ---------------------------------------------------------------------- docs/metrics.md


def test_every_metric_family_has_a_section_and_every_section_a_family():
    documented, exposed = metric_sections(), families()
    assert set(exposed) - set(documented) == set(), "exposed by Metrics() but not in docs/metrics.md"
    assert set(documented) - set(exposed) == set(), "in docs/metrics.md but not exposed by Metrics()"
    for name, kind in exposed.items():
        body = documented[name]
        assert f"**Type** {kind}" in body, (name, kind)
        if kind == "histogram":
            assert all(f"`{name}{s}`" in body or f"`{s}`" in body for s in ("_bucket", "_sum", "_count")), name


def test_the_summary_table_lists_every_family_with_its_type():
    summary = sections(METRICS_DOC.read_text(), "##")["Summary"]
    types = dict(re.findall(r"^\| `([a-z0-9_]+)` \| (\w+) \|", summary, flags=re.MULTILINE))
    assert table_keys(summary) == list(types) and types == families()


def test_the_code_scan_finds_the_reasons_it_should():
    # Guards the scan itself: the reasons outside messages.REASONS live in the loop and the changelog.
    found = counted_in_code()
    assert found["rejected"] > messages.REASONS, found["rejected"] - messages.REASONS
    assert found["labels"] and found["skipped"], found


def test_reasons_used_by_the_code_are_declared_with_their_metric():
    found = counted_in_code()
    # An InvalidMessage reason outside REASONS, or an outcome outside LABEL_OUTCOMES, escapes the constant.
    invalid = set()
    for path in sorted(SERVICE.rglob("*.py")):
        for call in ast.walk(ast.parse(path.read_text())):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "InvalidMessage":
                invalid |= literals(arg(call, 0))
    assert invalid <= messages.REASONS, invalid - messages.REASONS
    assert found["labels"] <= set(LABEL_OUTCOMES), found["labels"] - set(LABEL_OUTCOMES)
    assert found["skipped"] <= created_label_values("streamal_instances_skipped", "reason")


@pytest.mark.parametrize("metric, values", [
    ("streamal_rejected_total", lambda: messages.REASONS | counted_in_code()["rejected"]),
    ("streamal_labels_total", lambda: set(LABEL_OUTCOMES) | counted_in_code()["labels"]
     | created_label_values("streamal_labels", "outcome")),
    ("streamal_instances_skipped_total", lambda: counted_in_code()["skipped"]
     | created_label_values("streamal_instances_skipped", "reason")),
])
def test_every_reason_and_outcome_is_documented_under_its_metric(metric, values):
    body = metric_sections()[metric]
    rows = set(table_keys(body))
    assert values() - rows == set(), f"not in the table under {metric} in docs/metrics.md"
    assert rows - values() == set(), f"documented under {metric} but never used by the code"


# ---------------------------------------------------------------------- docs/runbook.md


def rules() -> list[dict]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"] if "alert" in r]


def test_every_alert_has_a_runbook_section_that_says_what_to_check_and_do():
    runbook = sections(RUNBOOK.read_text(), "##")
    alerts = {r["alert"] for r in rules()}
    assert alerts - set(runbook) == set(), "alerts without a section in docs/runbook.md"
    assert set(runbook) - alerts == set(), "runbook sections for alerts that do not exist"
    for alert in alerts:
        for part in ("**What it means.**", "**Check.**", "**What to do.**"):
            assert part in runbook[alert], (alert, part)


def test_every_alert_links_its_runbook_section():
    for rule in rules():
        url = rule["annotations"].get("runbook_url", "")
        path, _, anchor = url.partition("#")
        assert (ROOT / path).resolve() == RUNBOOK, (rule["alert"], url)
        # GitHub's anchor of a heading: lower case, spaces to dashes, punctuation dropped.
        assert anchor == re.sub(r"[^a-z0-9 _-]", "", rule["alert"].lower()).replace(" ", "-"), (rule["alert"], url)


def test_metrics_named_in_the_runbook_exist():
    text = RUNBOOK.read_text()
    exposed = families()
    names = set()
    for kind_name, kind in exposed.items():
        names.add(kind_name)
        if kind == "histogram":
            names |= {kind_name + s for s in ("_bucket", "_sum", "_count")}
    used = set(re.findall(r"\bstreamal_[a-z0-9_]+", text))
    assert used - names == set(), "the runbook names metrics Metrics() does not expose"
