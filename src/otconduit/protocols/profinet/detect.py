"""Recognising PROFINET IO context management from the first datagrams of a UDP flow:
a connectionless DCE/RPC v4 header (C706 §12.5.2) for a PNIO interface (device,
controller, supervisor, parameter server; IEC 61158-6-10 §4.10.3), on any port (a device
answers from an ephemeral port), or the endpoint mapper on port 34964."""

from __future__ import annotations

from otconduit.protocols.profinet.rpc import EPM, is_pnio, looks_like_rpc, parse_rpc


def verdict(client: bytes, server: bytes, on_known_port: bool = False) -> bool | None:
    """:data:`~otconduit.protocols.base.Verdict` for PROFINET IO-CM (UDP)."""
    present = [d for d in (client, server) if d]
    if not present:
        return None
    for data in present:
        if is_pnio(data):
            return True
        if on_known_port and looks_like_rpc(data):
            hdr = parse_rpc(data)
            if not isinstance(hdr, str) and hdr.interface_uuid == EPM:
                return True
    return False
