"""Tables print values exactly as they are: capture data is never markup or emoji."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from otconduit.cli.output import Format, emit


@pytest.mark.parametrize(
    "value",
    [
        "00:ab:cd:12:ef:01",  # a MAC address: ":ab:" is the emoji code of 🆎
        "SHA-1 88:C8:0A:30:AB:13:AF",  # a certificate thumbprint
        "[/]",  # a closing tag with nothing to close: rich raises on it as markup
        "Line1[3]",
        "[bold]PLC[/bold] :thumbs_up:",
    ],
)
def test_table_cells_are_text(value: str) -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=200, emoji=False)
    emit([{"v": value}], Format.table, columns=["v"], title="[/]", console=console)
    out = buf.getvalue()
    assert value in out and out.splitlines()[0].strip() == "[/]"  # the title, as written
