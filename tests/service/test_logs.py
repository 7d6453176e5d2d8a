"""Structured logs: JSON lines carry the instance id where one is involved."""

from __future__ import annotations

import logging

import orjson

from streamal.service.logs import configure


def test_json_lines_carry_the_instance_id(capsys):
    configure(json_lines=True)
    logging.getLogger("streamal.service").warning("orphaned label for %s dropped", "t-9", extra={"instance_id": "t-9"})
    logging.getLogger("streamal.service").info("no instance here")
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["instance_id"] == "t-9" and lines[0]["level"] == "warning"
    assert lines[0]["message"] == "orphaned label for t-9 dropped" and lines[0]["ts"].endswith("Z")
    assert "instance_id" not in lines[1]


def test_plain_text_by_default(capsys):
    configure()
    logging.getLogger("streamal.serve").info("metrics on http://localhost:9400/metrics")
    assert "INFO streamal.serve: metrics on" in capsys.readouterr().err
