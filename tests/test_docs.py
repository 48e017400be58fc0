"""The README documents every command and option that exists (and so cannot drift)."""

from __future__ import annotations

import typer.main

from otconduit.cli.main import app
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_every_command_and_option_is_documented() -> None:
    group = typer.main.get_command(app)
    assert hasattr(group, "commands")
    missing = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        if f"conduit {name}" not in README:
            missing.append(f"command {name}")
        for param in cmd.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt not in README and opt != "--help":
                    missing.append(f"{name} {opt}")
    assert not missing, f"undocumented in README.md: {missing}"


def test_readme_starts_with_the_two_commands() -> None:
    head = README[:1500]
    assert "make demo" in head and "make test" in head
