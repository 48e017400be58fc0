"""A BACnet/IP device made with bacpypes3, for the probe tests: ``python bacnet_peer.py
ADDRESS`` (e.g. 127.0.91.50/32:15808) prints ``ready`` and serves until terminated."""

from __future__ import annotations

import asyncio
import sys

from bacpypes3.app import Application  # type: ignore[import-untyped]
from bacpypes3.argparse import SimpleArgumentParser  # type: ignore[import-untyped]


async def main(address: str) -> None:
    args = SimpleArgumentParser().parse_args(
        ["--address", address, "--instance", "599", "--name", "conduit-test-peer"]
    )
    app = Application.from_args(args)
    dev = app.device_object
    dev.vendorName = "Conduit Test"
    dev.modelName = "CT-BAC-1"
    dev.firmwareRevision = "3.1.4"
    print("ready", flush=True)
    await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
