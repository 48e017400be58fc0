"""Usage errors from the real ``conduit`` entry point: one line on stderr naming the
command and its help, exit 2 (typer's default is a usage block and a framed box)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CONDUIT = Path(sys.executable).parent / "conduit"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONDUIT), *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("alerts", "--limit", "abc"), "conduit alerts: Invalid value for '--limit'"),
        (("alerts", "--bogus"), "conduit alerts: No such option: --bogus"),
        (("alrts",), "conduit: No such command 'alrts'. Did you mean 'alerts'"),
        (("analyze",), "conduit analyze: Missing argument"),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(args: tuple[str, ...], needle: str) -> None:
    res = _run(*args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(needle), res.stderr
    assert lines[0].endswith("--help)") and "╭" not in res.stderr and not res.stdout


def test_help_still_works() -> None:
    res = _run("alerts", "--help")
    assert res.returncode == 0 and "--severity" in res.stdout


def test_a_run_builds_only_the_command_it_names() -> None:
    """The entry point hands typer the named command (or group) alone; the program's
    help and unknown names still get every command."""
    from otconduit.cli.main import _narrowed, app

    one = _narrowed(app, ["analyze"])
    (only,) = one.registered_commands
    assert only.callback is not None and only.callback.__name__ == "analyze"
    assert not one.registered_groups
    group = _narrowed(app, ["store"])
    assert not group.registered_commands and len(group.registered_groups) == 1
    for first in ([], ["--help"], ["analyse"]):
        assert _narrowed(app, first) is app
    assert len(app.registered_commands) > 20  # the original is left whole


def test_the_program_help_lists_every_command() -> None:
    res = _run("--help")
    assert res.returncode == 0
    for name in ("analyze", "alerts", "store", "hub", "sites", "policy"):
        assert name in res.stdout
    res = _run("store", "retention", "--help")
    assert res.returncode == 0 and "--keep" in res.stdout
