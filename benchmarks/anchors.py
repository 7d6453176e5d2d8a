"""Parse the published anchor figures in ``label_efficiency.md``.

The file lives at ``../shared/anchors/label_efficiency.md`` relative to the
repository root; set ``STREAMAL_ANCHORS`` to read another copy.

All figures stay in **percent**, as printed. Budgets are fractions
(``0.01, 0.05, 0.10, 0.20``). Markers after a cell (``*``: realised rate
more than 10 % above budget; ``‡``: EntropySampler calibration missed the
budget) are kept apart in :attr:`Anchors.flags`.

``load_anchors().per_stream["phishing"]["river full [LR]"][0.1]`` is
``(89.28, 100.0)``; ``benchmarks/tests/test_anchors.py`` checks the parser on
the real file (and skips where ``shared/`` is not beside the repository).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ANCHORS_ENV", "Anchors", "anchor_base", "default_path", "is_full", "load_anchors"]

ANCHORS_ENV = "STREAMAL_ANCHORS"

Budget = float
PerStream = dict[str, dict[str, dict[Budget, tuple[float, float]]]]


@dataclass
class Anchors:
    """Everything the benchmark compares with.

    Attributes:
        per_stream: ``{stream: {anchor: {budget: (acc %, rate %)}}}``.
        flags: ``{stream: {anchor: {budget: "*" | "‡" | ...}}}``, only flagged cells.
        instances: ``{stream: number of instances}`` from the section titles.
        summary: ``{anchor: {budget: (mean acc %, wins or None)}}``; the
            full-supervision rows have no wins.
        gap_at_10: ``{anchor: {stream or "mean": acc - full acc, points}}``.
        best_full: ``{stream: best full-supervision acc %}``.
        adherence: ``{anchor: {budget: (rate / budget, worst deviation %)}}``.
        throughput: ``{anchor: {"aggregate" | budget: instances/s or None}}``.
    """

    per_stream: PerStream = field(default_factory=dict)
    flags: dict[str, dict[str, dict[Budget, str]]] = field(default_factory=dict)
    instances: dict[str, int] = field(default_factory=dict)
    summary: dict[str, dict[Budget, tuple[float, int | None]]] = field(default_factory=dict)
    gap_at_10: dict[str, dict[str, float]] = field(default_factory=dict)
    best_full: dict[str, float] = field(default_factory=dict)
    adherence: dict[str, dict[Budget, tuple[float, float]]] = field(default_factory=dict)
    throughput: dict[str, dict[str | Budget, float | None]] = field(default_factory=dict)

    @property
    def streams(self) -> list[str]:
        """Stream names in file order."""
        return list(self.per_stream)

    @property
    def budgets(self) -> list[Budget]:
        """Budgets of the per-stream tables, ascending."""
        first = next(iter(self.per_stream.values()))
        return sorted(next(iter(first.values())))

    def anchors(self, stream: str | None = None) -> list[str]:
        """Anchor names (row labels) in file order."""
        table = self.per_stream[stream or self.streams[0]]
        return list(table)


def default_path() -> Path:
    """``$STREAMAL_ANCHORS`` or ``<repo>/../shared/anchors/label_efficiency.md``."""
    env = os.environ.get(ANCHORS_ENV)
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parent.parent
    return repo.parent / "shared" / "anchors" / "label_efficiency.md"


def anchor_base(anchor: str) -> str | None:
    """Base classifier in brackets: ``"river random [LR]" -> "LR"``."""
    m = re.search(r"\[([^\]]+)\]", anchor)
    return m.group(1) if m else None


def is_full(anchor: str) -> bool:
    """Whether ``anchor`` is a full-supervision (all labels) row."""
    return " full " in f" {anchor} "


# --------------------------------------------------------------------------
# parsing

_NUM = r"[-+]?\d[\d,]*(?:\.\d+)?"
_CELL = re.compile(rf"^\s*({_NUM})\s*/\s*({_NUM})\s*(\S*)\s*$")
_WINS = re.compile(rf"^\s*({_NUM})\s*(?:\((\d+)\))?\s*$")
_DEV = re.compile(rf"^\s*({_NUM})\s*\(\s*({_NUM})\s*%\s*\)\s*$")
_STREAM_TITLE = re.compile(r"^###\s+(\S+)\s+\(([\d,]+)\s+instances\)")
_BUDGET = re.compile(r"(\d+(?:\.\d+)?)\s*%")


def _num(s: str) -> float:
    return float(s.replace(",", "").lstrip("+"))


def _anchor_name(cell: str) -> str:
    name = cell.replace("**", "").strip()
    return re.sub(r"\s*\(all labels\)\s*$", "", name)


def _budget(header: str) -> Budget:
    m = _BUDGET.search(header)
    if not m:
        raise ValueError(f"no budget in column header {header!r}")
    return float(m.group(1)) / 100


def _split_row(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _tables(text: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """Every markdown table as ``(heading above it, header cells, rows)``."""
    out: list[tuple[str, list[str], list[list[str]]]] = []
    heading = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line
        if line.lstrip().startswith("|") and i + 1 < len(lines) and re.match(
            r"^\s*\|[\s:|-]+\|\s*$", lines[i + 1]
        ):
            header = _split_row(line)
            rows: list[list[str]] = []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_split_row(lines[i]))
                i += 1
            out.append((heading, header, rows))
            continue
        i += 1
    return out


def parse_anchors(text: str) -> Anchors:
    """Parse the markdown text of the anchor file."""
    a = Anchors()
    for heading, header, rows in _tables(text):
        title = _STREAM_TITLE.match(heading)
        if title:
            stream = title.group(1)
            a.instances[stream] = int(title.group(2).replace(",", ""))
            budgets = [_budget(h) for h in header[1:]]
            table = a.per_stream.setdefault(stream, {})
            for row in rows:
                anchor = _anchor_name(row[0])
                for b, cell in zip(budgets, row[1:]):
                    m = _CELL.match(cell)
                    if not m:
                        raise ValueError(f"{stream}/{anchor}: cannot parse cell {cell!r}")
                    table.setdefault(anchor, {})[b] = (_num(m.group(1)), _num(m.group(2)))
                    if m.group(3):
                        a.flags.setdefault(stream, {}).setdefault(anchor, {})[b] = m.group(3)
        elif heading.startswith("## Summary"):
            budgets = [_budget(h) for h in header[1:]]
            for row in rows:
                entry = a.summary.setdefault(_anchor_name(row[0]), {})
                for b, cell in zip(budgets, row[1:]):
                    m = _WINS.match(cell)
                    if not m:
                        raise ValueError(f"summary: cannot parse cell {cell!r}")
                    entry[b] = (_num(m.group(1)), int(m.group(2)) if m.group(2) else None)
        elif heading.startswith("## Gap"):
            cols = header[1:]
            for row in rows:
                if row[0].startswith("*"):  # "*best full supervision, acc %*"
                    for col, cell in zip(cols, row[1:]):
                        if cell:
                            a.best_full[col] = _num(cell)
                    continue
                a.gap_at_10[_anchor_name(row[0])] = {
                    col: _num(cell) for col, cell in zip(cols, row[1:]) if cell
                }
        elif heading.startswith("## Budget adherence"):
            budgets = [_budget(h) for h in header[1:]]
            for row in rows:
                entry_a: dict[Budget, tuple[float, float]] = {}
                for b, cell in zip(budgets, row[1:]):
                    m = _DEV.match(cell)
                    if not m:
                        raise ValueError(f"adherence: cannot parse cell {cell!r}")
                    entry_a[b] = (_num(m.group(1)), _num(m.group(2)))
                a.adherence[_anchor_name(row[0])] = entry_a
        elif heading.startswith("## Throughput"):
            for row in rows:
                entry_t: dict[str | Budget, float | None] = {}
                for h, cell in zip(header[1:], row[1:]):
                    key: str | Budget = _budget(h) if _BUDGET.search(h) else h
                    entry_t[key] = None if cell in {"—", "-", ""} else _num(cell)
                a.throughput[_anchor_name(row[0])] = entry_t
    if not a.per_stream:
        raise ValueError("no per-stream anchor tables found")
    return a


def load_anchors(path: str | os.PathLike[str] | None = None) -> Anchors:
    """Read and parse the anchor file (default: :func:`default_path`)."""
    p = Path(path) if path is not None else default_path()
    return parse_anchors(p.read_text(encoding="utf-8"))
