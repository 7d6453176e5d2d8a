"""The classes a person is offered, and the JSON type each answer is sent as.

Class names reach the page as text, but the model learns labels as typed:
``1`` and ``"1"`` are two different classes to it. The label requests' class
probabilities have string keys on the wire (JSON object keys), so the type
comes from typed evidence: the requests' predicted labels and the labels and
training records already on the topics. A number-looking answer is sent as a
number when the model's classes are numbers, and as a string otherwise.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Sequence

LabelValue = str | int | float

#: Longest class name a person may type.
MAX_CLASS_CHARS = 200
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")


def as_number(text: str) -> int | float | None:
    """``text`` as the number it spells (an int when whole), or ``None``.

    >>> as_number("3"), as_number("-2.5"), as_number("1e3"), as_number("x"), as_number("nan")
    (3, -2.5, 1000.0, None, None)
    """
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        value = float(text)
        return value if math.isfinite(value) else None
    return None


class ClassBook:
    """Known classes and their types, gathered from the topics; turns typed text into a label.

    >>> book = ClassBook()
    >>> book.note_names(["0", "1"]); book.note_value(1)
    >>> book.offered(), book.parse("1"), book.parse("2"), book.parse("spam")
    (['0', '1'], 1, 2, 'spam')
    >>> words = ClassBook(); words.note_value("ham"); words.parse("7")
    '7'
    """

    def __init__(self, allowed: Sequence[str] | None = None, task: str = "classification") -> None:
        self.allowed = tuple(allowed) if allowed else None
        self.task = task
        self._names: set[str] = set()
        self._typed: dict[str, LabelValue] = {}
        self._lock = threading.Lock()

    def note_names(self, names: Iterable[str]) -> None:
        """Class names without a type (the keys of a request's class probabilities)."""
        with self._lock:
            self._names.update(str(n) for n in names)

    def note_value(self, value: object) -> None:
        """A class as the model learns it (a predicted label, a label, a training record's label)."""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or self.task != "classification":
            return
        with self._lock:
            self._names.add(str(value))
            self._typed.setdefault(str(value), value)

    def offered(self) -> list[str]:
        """The classes to show, in a fixed order (number keys 1-9 follow it)."""
        if self.task != "classification":
            return []
        if self.allowed:
            return list(self.allowed)
        with self._lock:
            names = list(self._names)
        if names and all(as_number(n) is not None for n in names):
            return sorted(names, key=lambda n: (as_number(n), n))
        return sorted(names, key=lambda n: (n.casefold(), n))

    def parse(self, text: str) -> LabelValue:
        """The label a person's answer stands for; ``ValueError`` with a message for the person."""
        text = text.strip()
        if not text:
            raise ValueError("the label is empty")
        if len(text) > MAX_CLASS_CHARS:
            raise ValueError(f"a label has at most {MAX_CLASS_CHARS} characters")
        number = as_number(text)
        if self.task != "classification":
            if number is None:
                raise ValueError(f"{text!r} is not a number: this service learns a numeric target (regression)")
            return number
        if self.allowed and text not in self.allowed:
            raise ValueError(f"{text!r} is not one of the classes the service accepts (STREAMAL_CLASSES): "
                             + ", ".join(self.allowed))
        with self._lock:
            if text in self._typed:
                return self._typed[text]
            numeric = bool(self._typed) and all(not isinstance(v, str) for v in self._typed.values())
        return number if number is not None and numeric else text

    def free_entry_note(self) -> str:
        """What the page says happens to a typed answer."""
        if self.task != "classification":
            return "Type the target value: a number."
        if self.allowed:
            return ("The service accepts only its configured classes (STREAMAL_CLASSES); "
                    "anything else is refused here, since the service would dead-letter it.")
        return ("A class the model does not know yet is sent as typed and learned as a new class. "
                "A number is sent as a number when the model's classes are numbers, else as text.")
