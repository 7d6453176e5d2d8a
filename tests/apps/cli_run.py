"""Running the real CLI in-process, and what a one-line user error looks like (shared by the apps tests)."""

from __future__ import annotations

from click.testing import CliRunner, Result

from streamal.apps.cli import main


def run(*args: str) -> Result:
    """``streamal ARGS --quiet`` through click's runner."""
    return CliRunner().invoke(main, [*args, "--quiet"])


def one_line_error(result: Result, *fragments: str) -> None:
    """The command failed with one line naming every fragment, and no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert len(result.output.strip().splitlines()) == 1, result.output
    for fragment in fragments:
        assert fragment in result.output
