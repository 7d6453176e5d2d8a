"""Structured logs: plain text for people, JSON lines for log shippers.

A record that concerns one instance carries its id (``extra={"instance_id": …}``),
and it appears as a field in JSON lines.
"""

from __future__ import annotations

import logging
import sys

import orjson


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        instance_id = getattr(record, "instance_id", None)
        if instance_id is not None:
            entry["instance_id"] = instance_id
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure(json_lines: bool = False, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        formatter: logging.Formatter = JsonLines()
        formatter.converter = __import__("time").gmtime  # type: ignore[attr-defined]
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger("streamal")
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("kafka",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
