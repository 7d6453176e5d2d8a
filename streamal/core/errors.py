"""The core's one error type for a bad parameter, naming it so that callers can name their own setting."""

from __future__ import annotations


class ParameterError(ValueError):
    """A parameter of a core component is invalid; ``parameter`` is its name (``"budget"``, ``"task"``, …).

    The message names the parameter as the Python API spells it; the service
    and the CLI map it to their own setting or flag.

    >>> str(ParameterError("budget", "must be in (0, 1], got 2"))
    'budget: must be in (0, 1], got 2'
    """

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.detail = message
