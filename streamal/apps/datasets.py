"""Streams for ``simulate`` and ``produce``: bundled datasets and user files.

A user file is read whole and checked before anything runs, so bad input is
one clear line naming the row or column, never a traceback.
"""

from __future__ import annotations

import csv
import inspect
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from river import datasets as _rd
from river.datasets import synth
from river.datasets import base as river_base

Example = tuple[dict[str, Any], Any]


class DataError(ValueError):
    """Bad input in a user's data: the message names the row or column."""


@dataclass
class Dataset:
    """A finite stream of (features, target) held in memory."""

    name: str
    examples: list[Example]
    task: str  # "classification" or "regression"
    ids: list[str] | None = None

    def __iter__(self) -> Iterator[Example]:
        return iter(self.examples)

    def __len__(self) -> int:
        return len(self.examples)


def _bundled() -> dict[str, type]:
    """River datasets whose files ship inside the river wheel (no download)."""
    out = {}
    for name in _rd.__all__:
        cls = getattr(_rd, name)
        if (
            inspect.isclass(cls)
            and issubclass(cls, river_base.FileDataset)
            and not issubclass(cls, river_base.RemoteDataset)
        ):
            out[_snake(name)] = cls
    return out


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


#: River generators by name: endless streams, cut to ``--limit`` (default 20,000).
SYNTHETIC = {
    "sea": lambda seed: synth.SEA(seed=seed, noise=0.1),
    "agrawal": lambda seed: synth.Agrawal(seed=seed, perturbation=0.05),
    "hyperplane": lambda seed: synth.Hyperplane(seed=seed, n_features=10, n_drift_features=5, mag_change=0.001),
    "led": lambda seed: synth.LED(seed=seed, noise_percentage=0.1, irrelevant_features=True),
}
SYNTHETIC_LENGTH = 20_000


def bundled_names() -> list[str]:
    """Names accepted by :func:`load` besides file paths."""
    names = [n for n, cls in _bundled().items() if _task_of(cls()) is not None]
    return sorted([*names, "tickets", *SYNTHETIC])


def _task_of(ds: Any) -> str | None:
    task = getattr(ds, "task", "")
    if task in (river_base.BINARY_CLF, river_base.MULTI_CLF):
        return "classification"
    if task == river_base.REG:
        return "regression"
    return None


def load(source: str, *, target: str | None = None, limit: int | None = None,
         text_features: Sequence[str] = (), seed: int = 0, task: str | None = None) -> Dataset:
    """A bundled dataset by name (``phishing``, ``tickets``, …) or a CSV/JSONL file.

    ``task`` (``"classification"`` or ``"regression"``) overrides the task a
    bundled dataset declares or a file's target suggests (see
    :func:`infer_task`); regression needs a numeric target.
    """
    path = Path(source)
    if path.suffix.lower() in (".csv", ".jsonl", ".ndjson", ".json") or path.exists():
        if not path.is_file():
            raise DataError(f"{source}: no such file")
        if target is None:
            raise DataError(f"{source}: --target COL is required for a file (the column holding the label)")
        reader = read_csv if path.suffix.lower() == ".csv" else read_jsonl
        ds = reader(path, target=target, text_features=text_features, task=task)
    else:
        ds = _load_bundled(source, seed=seed, limit=limit)
        if task is not None:
            ds.task = _task(source, [y for _, y in ds.examples], "its target", task)
    if limit is not None:
        ds.examples = ds.examples[:limit]
        if ds.ids is not None:
            ds.ids = ds.ids[:limit]
    if not ds.examples:
        raise DataError(f"{source}: no instances")
    return ds


def _load_bundled(name: str, seed: int, limit: int | None = None) -> Dataset:
    key = name.lower().replace("-", "_")
    if key == "tickets":
        return Dataset("tickets", list(tickets(seed=seed)), "classification")
    if key in SYNTHETIC:
        stream = itertools.islice(SYNTHETIC[key](seed), limit or SYNTHETIC_LENGTH)
        return Dataset(key, [(dict(x), y) for x, y in stream], "classification")
    cls = _bundled().get(key)
    if cls is None:
        raise DataError(
            f"unknown dataset {name!r}: give a .csv/.jsonl file or one of: {', '.join(bundled_names())}"
        )
    ds = cls()
    task = _task_of(ds)
    if task is None:
        raise DataError(f"dataset {name!r} is neither classification nor regression")
    return Dataset(key, [(dict(x), y) for x, y in ds], task)


# -- user files ---------------------------------------------------------------

def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def read_csv(path: Path, *, target: str, text_features: Sequence[str] = (), task: str | None = None) -> Dataset:
    """A CSV file with a header row; ``target`` names the label column.

    A column whose first non-empty value is a number is numeric: a later
    value that is not a number, or is NaN or infinite, is an error naming
    its row and column. Other columns are categories (or free text, if named
    in ``text_features``). Empty cells are missing values, except in the
    target column. Row numbers count the header as row 1. ``task`` as for
    :func:`load`.
    """
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise DataError(f"{path}: empty file (expected a header row and data rows)")
    header = [h.strip() for h in rows[0]]
    _check_columns(path, header, target, text_features)
    data = rows[1:]
    if not data:
        raise DataError(f"{path}: no data rows after the header")
    numeric: dict[str, bool] = {}
    for row in data:
        for col, cell in zip(header, row):
            if col not in numeric and cell.strip() and col not in text_features:
                numeric[col] = _number(cell) is not None
    examples = []
    for r, row in enumerate(data, start=2):
        if len(row) != len(header):
            raise DataError(f"{path}: row {r} has {len(row)} values, the header has {len(header)}")
        x: dict[str, Any] = {}
        y: Any = None
        for col, cell in zip(header, row):
            cell = cell.strip()
            if not cell:
                if col == target:
                    raise DataError(f"{path}: row {r}: the target column {target!r} is empty")
                continue
            value: Any = cell
            if numeric.get(col):
                number = _number(cell)
                if number is None:
                    raise DataError(f"{path}: row {r}, column {col!r}: {cell!r} is not a number (the column is numeric)")
                if not math.isfinite(number):
                    raise DataError(f"{path}: row {r}, column {col!r}: {cell} is not a finite number")
                value = int(number) if col == target and number.is_integer() else number
            if col == target:
                y = value
            else:
                x[col] = value
        examples.append((x, y))
    return _dataset(path, examples, target, task)


def read_jsonl(path: Path, *, target: str, text_features: Sequence[str] = (), task: str | None = None) -> Dataset:
    """A JSON Lines file: one object per line; ``target`` names the label key.

    Values must be numbers, strings or booleans (``null`` is a missing value,
    except for the target); an ``id`` key, if present, is kept as the
    instance id and not used as a feature. ``task`` as for :func:`load`.
    """
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: empty file")
    examples, ids = [], []
    for n, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DataError(f"{path}: line {n}: not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}: line {n}: expected a JSON object, got {type(obj).__name__}")
        if target not in obj or obj[target] is None:
            raise DataError(f"{path}: line {n}: no value for the target {target!r}")
        y = obj.pop(target)
        if isinstance(y, (dict, list)):
            raise DataError(f"{path}: line {n}: the target {target!r} must be a string or a number")
        if "id" in obj:
            ids.append(str(obj.pop("id")))
        x = {}
        for key, value in obj.items():
            if value is None:
                continue
            if isinstance(value, (dict, list)):
                raise DataError(f"{path}: line {n}, key {key!r}: nested values are not features")
            if isinstance(value, float) and not math.isfinite(value):
                raise DataError(f"{path}: line {n}, key {key!r}: not a finite number")
            x[key] = value
        examples.append((x, y))
    for name in text_features:
        if not any(name in x for x, _ in examples):
            raise DataError(f"{path}: unknown text feature {name!r}: no line has it")
    ds = _dataset(path, examples, target, task)
    ds.ids = ids if len(ids) == len(examples) else None
    return ds


def _check_columns(path: Path, header: list[str], target: str, text_features: Sequence[str]) -> None:
    if target not in header:
        raise DataError(f"{path}: unknown column {target!r} for --target; columns are: {', '.join(header)}")
    for name in text_features:
        if name not in header:
            raise DataError(f"{path}: unknown text feature column {name!r}; columns are: {', '.join(header)}")


def _dataset(path: Path, examples: list[Example], target: str, task: str | None) -> Dataset:
    if not examples:
        raise DataError(f"{path}: no instances")
    return Dataset(path.name, examples, _task(str(path), [y for _, y in examples], f"the target {target!r}", task))


def _is_number(y: Any) -> bool:
    return isinstance(y, (int, float)) and not isinstance(y, bool)


def _task(source: str, ys: Sequence[Any], what: str, task: str | None) -> str:
    """``task`` if given (checked: regression needs numbers), else :func:`infer_task`'s reading."""
    if task is None:
        return infer_task(source, ys, what)
    if task not in ("classification", "regression"):
        raise DataError(f"task must be 'classification' or 'regression', got {task!r}")
    if task == "regression":
        wrong = next((y for y in ys if not _is_number(y)), None)
        if wrong is not None:
            raise DataError(f"{source}: --task regression needs numbers, but {what} holds {wrong!r}")
    return task


#: When a target of whole numbers is taken for a quantity rather than for
#: classes: more than ``QUANTITY_VALUES`` distinct values, seen fewer than
#: ``QUANTITY_ROWS`` times each on average. Classes recur: at a 5 % budget a
#: value seen fewer than 50 times gets about two labels or fewer, so a
#: target made of such values cannot be learned as classes and would score
#: near 0 % (a disease-progression score from 25 to 346: 214 values in 442
#: rows; River's airline passengers and chick weights: 118 in 144, 212 in
#: 578). 20 keeps the usual class codes out (digits, ratings, a few dozen
#: categories in a long stream: LED's 10 in 20,000, 26 letters in 20,000).
#: A wrong guess costs one flag, ``--task``; a missed one, a silently wrong figure.
QUANTITY_VALUES = 20
QUANTITY_ROWS = 50


def infer_task(source: str, ys: Sequence[Any], what: str = "the target") -> str:
    """The task a target's values ``ys`` suggest, or :class:`DataError` when they are ambiguous.

    Fractional numbers are a regression target; values that are not all
    numbers are classes; whole numbers are classes unless they look like a
    quantity (see ``QUANTITY_VALUES``), which is refused, naming ``--task``.

    >>> infer_task("a.csv", [0, 1, 1, 0]), infer_task("a.csv", [0.5, 2, 3])
    ('classification', 'regression')
    >>> infer_task("a.csv", list(range(100)), "the target 'y'")
    Traceback (most recent call last):
    ...
    streamal.apps.datasets.DataError: a.csv: the target 'y' holds 100 different whole numbers in 100 rows, like a quantity more than classes: give --task regression, or --task classification to learn each value as a class

    """
    if not all(_is_number(y) for y in ys):
        return "classification"
    if not all(float(y).is_integer() for y in ys):
        return "regression"
    distinct = len(set(ys))
    if distinct > QUANTITY_VALUES and distinct * QUANTITY_ROWS > len(ys):
        raise DataError(
            f"{source}: {what} holds {distinct:,} different whole numbers in {len(ys):,} rows, like a quantity "
            "more than classes: give --task regression, or --task classification to learn each value as a class"
        )
    return "classification"


# -- a generated stream of support tickets (free text + numbers + categories) --

_TOPICS = {
    "billing": ["charged twice", "refund my payment", "invoice is wrong", "card was declined",
                "cancel my subscription", "billing address change"],
    "login": ["cannot log in", "password reset link broken", "two factor code never arrives",
              "account locked out", "sso login fails"],
    "shipping": ["parcel has not arrived", "tracking number invalid", "package damaged",
                 "wrong delivery address", "delivery is late"],
    "bug": ["app crashes on start", "export button does nothing", "page shows error 500",
            "sync loses my data", "search returns nothing"],
}
_FILLER = ["hi", "please help", "urgent", "thanks", "since yesterday", "again", "asap", "hello team"]


def tickets(n: int = 4000, seed: int = 0, new_class_at: float = 0.5) -> Iterator[Example]:
    """Short support tickets: free text ``body``, a category ``plan``, a number ``account_age_days``.

    The label is the ticket's topic; the ``bug`` topic first appears at
    ``new_class_at`` of the stream (a class that appears mid-stream). Topic
    words decide the label; filler words and the plan are noise, and
    ``account_age_days`` is weakly informative (billing tickets come from
    newer accounts).

    >>> x, y = next(tickets(seed=1))
    >>> sorted(x), y
    (['account_age_days', 'body', 'plan'], 'billing')

    """
    rng = random.Random(seed)
    topics = sorted(_TOPICS)
    for i in range(n):
        pool = topics if i >= new_class_at * n else [t for t in topics if t != "bug"]
        topic = rng.choice(pool)
        words = [rng.choice(_FILLER), rng.choice(_TOPICS[topic])]
        if rng.random() < 0.5:
            words.append(rng.choice(_FILLER))
        rng.shuffle(words)
        age = rng.expovariate(1 / (60 if topic == "billing" else 300))
        yield (
            {"body": " ".join(words), "plan": rng.choice(["free", "pro", "enterprise"]),
             "account_age_days": round(age, 1)},
            topic,
        )


