"""`make demo`: the main job on the embedded default, with no hardware.

Until the full simulated plant lands, the demo records a real Modbus/TCP session from the
lab (a pymodbus server exercised by pymodbus clients on loopback), analyses that capture
into ``demo/conduit.db`` and shows what the monitor found. Without live-capture rights it
analyses the lab capture recorded into the repository instead.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from otconduit.cli.output import make_console

REPO = Path(__file__).resolve().parents[2]
OUT = Path("demo")


def main() -> int:
    console = make_console()
    OUT.mkdir(exist_ok=True)
    pcap = OUT / "lab_modbus.pcap"
    db = OUT / "conduit.db"
    for f in OUT.glob("conduit.db*"):
        f.unlink()
    try:
        from otconduit.lab.modbus_exercise import run_exercise
        from otconduit.lab.sniffer import capture_unavailable_reason

        reason = capture_unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        console.print(
            "[bold]1. Lab:[/] a pymodbus PLC on 127.0.5.10:502, polled and written by "
            "three clients; recording the traffic ..."
        )
        manifest = run_exercise(pcap, host="127.0.5.10", port=502)
        console.print(
            f"   recorded {manifest['capture']['packets']} packets, "
            f"{len(manifest['requests'])} requests → {pcap}"
        )
    except Exception as exc:
        fallback = REPO / "tests" / "data" / "modbus_all_functions.pcap"
        if not fallback.exists():
            console.print(
                f"[red]error:[/] cannot record the lab ({exc}) and no recorded capture is available"
            )
            return 1
        console.print(f"[yellow]Lab recording unavailable ({exc}); using {fallback}[/]")
        shutil.copyfile(fallback, pcap)

    console.print(f"\n[bold]2. Monitor:[/] conduit analyze {pcap} --db {db}\n")
    from otconduit.cli.main import app

    try:
        app(["analyze", str(pcap), "--db", str(db)], standalone_mode=False)
        console.print("\n[bold]3. Writes and controls seen[/] (conduit operations --class write)")
        app(
            ["operations", "--db", str(db), "--class", "write", "--limit", "15"],
            standalone_mode=False,
        )
    except SystemExit as exc:
        return int(exc.code or 0)
    console.print("\nExplore further:", highlight=False)
    for cmd in (
        f"assets --db {db} -f json",
        f"operations --db {db} --status exception",
        f"conversations --db {db}",
        f"problems --db {db}",
    ):
        console.print(f"  .venv/bin/conduit {cmd}", highlight=False, soft_wrap=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
