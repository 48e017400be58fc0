"""Reconnaissance: function-code scans, address sweeps, identity sweeps, port sweeps.

Thresholds come from the rules file (:class:`~otconduit.detect.config.Thresholds`).
The shapes told apart: an HMI polls a fixed handful of functions and addresses over and
over; a scanner touches many functions/addresses/ports once or twice each, and many of
its requests are refused or unanswered.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict

import numpy as np

from otconduit.detect.config import Thresholds
from otconduit.detect.findings import Evidence, Finding
from otconduit.detect.scan import ScanResult
from otconduit.protocols import registry
from otconduit.store import sweeps
from otconduit.store.sqlite import Store

# Industrial ports of protocols no registered spec decodes yet (a registered protocol's
# services replace its entry here).
_UNDECODED_PORTS = {
    2404: "iec104",
    47808: "bacnet",
    34962: "profinet",
    34963: "profinet",
    34964: "profinet",
}
ICS_PORTS = {**_UNDECODED_PORTS, **registry.port_names()}


def _is_broadcast(ip: str) -> bool:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return a.is_multicast or (a.version == 4 and ip.endswith(".255"))


def function_scans(scan: ScanResult, th: Thresholds) -> list[Finding]:
    out = []
    for (src, dst, proto, port), st in scan.stats.items():
        if (
            len(st.codes) >= th.fc_scan_min_functions
            and st.unsupported >= th.fc_scan_min_unsupported
        ):
            # The scan is the burst of refusals, not the whole conversation it sits in
            # (a rogue write minutes earlier on the same connection is its own event).
            exc = np.concatenate(st.exception_ts) if st.exception_ts else None
            out.append(
                Finding(
                    rule="function-code-scan",
                    first_ts=int(exc.min()) if exc is not None else st.first_ts,
                    last_ts=int(exc.max()) if exc is not None else st.last_ts,
                    count=len(st.codes),
                    src_ip=src,
                    dst_ip=dst,
                    protocol=proto,
                    dst_port=port,
                    note=f"{len(st.codes)} function codes, {st.unsupported} refused as unsupported",
                    context={"function_codes": sorted(st.codes)},
                    evidence=[
                        Evidence(st.exception_frames[:40], None, {"functions": dict(st.functions)})
                    ],
                )
            )
    return out


def address_sweeps(scan: ScanResult, th: Thresholds) -> list[Finding]:
    out = []
    for (src, dst, proto, port), st in scan.stats.items():
        for (fn, unit), tally in st.addresses.items():
            uniq, counts = tally.counts()
            if len(uniq) < th.sweep_min_addresses:
                continue
            total = int(counts.sum())
            per_addr = total / len(uniq)
            if per_addr > th.sweep_max_reads_per_address:
                continue
            out.append(
                Finding(
                    rule="address-sweep",
                    first_ts=st.first_ts,
                    last_ts=st.last_ts,
                    count=total,
                    src_ip=src,
                    dst_ip=dst,
                    protocol=proto,
                    operation=fn,
                    dst_port=port,
                    note=f"{len(uniq)} distinct addresses {int(uniq[0])}-{int(uniq[-1])} "
                    f"(unit {unit}), {per_addr:.1f} requests each",
                    context={"unit": unit, "first": int(uniq[0]), "last": int(uniq[-1])},
                    evidence=[Evidence(st.exception_frames[:40], None, {})],
                )
            )
    return out


def _widest_walk(
    walked: list[tuple[int, int | None, str | None, int]], window_ns: int
) -> tuple[int, int, int]:
    """The most distinct items walked within one window: (count, start, end) as indexes
    of the time-sorted ``walked`` (an unnamed item counts as distinct)."""
    best = (0, 0, 0)
    names: Counter[str] = Counter()
    unnamed = j = 0
    for i, (t, _, item, n) in enumerate(walked):
        if item is None:
            unnamed += n
        else:
            names[item] += 1
        while t - walked[j][0] > window_ns:
            _, _, old, m = walked[j]
            if old is None:
                unnamed -= m
            else:
                names[old] -= 1
                if not names[old]:
                    del names[old]
            j += 1
        distinct = len(names) + unnamed
        if distinct > best[0]:
            best = (distinct, j, i)
    return best


def browse_sweeps(scan: ScanResult, th: Thresholds) -> list[Finding]:
    """One client walking many distinct nodes of a server's address space in a short
    window (OPC UA Browse / BrowseNext / TranslateBrowsePathsToNodeIds)."""
    window = int(th.browse_sweep_window_s * 1e9)
    out = []
    for (src, dst, proto, port), st in scan.stats.items():
        if not st.walked:
            continue
        walked = sorted(st.walked, key=lambda w: (w[0], w[1] or 0))
        distinct, lo, hi = _widest_walk(walked, window)
        if distinct < th.browse_sweep_min_nodes:
            continue
        burst = walked[lo : hi + 1]
        frames = sorted({f for _, f, _, _ in burst if f is not None})
        named = list(dict.fromkeys(item for _, _, item, _ in burst if item is not None))
        total = sum(n for *_, n in walked)
        out.append(
            Finding(
                rule="browse-sweep",
                first_ts=burst[0][0],
                last_ts=burst[-1][0],
                count=distinct,
                src_ip=src,
                dst_ip=dst,
                protocol=proto,
                dst_port=port,
                note=f"{distinct} distinct nodes walked within "
                f"{th.browse_sweep_window_s:g} s by {len(frames)} requests "
                f"({total} in the capture)",
                context={"nodes": distinct, "requests": len(frames), "sample": named[:20]},
                evidence=[Evidence(frames[:40], burst[0][0], {"sample": named[:20]})],
            )
        )
    return out


def _most_within(times: list[int], window_ns: int) -> int:
    """Largest number of the sorted times that fit in one window."""
    best = j = 0
    for i, t in enumerate(times):
        while t - times[j] > window_ns:
            j += 1
        best = max(best, i - j + 1)
    return best


def identity_sweeps(scan: ScanResult, th: Thresholds) -> list[Finding]:
    """Identity requests from one host to several devices within a short window (an
    engineering station reading one device's identity now and then is not a sweep)."""
    targets: dict[str, dict[str, tuple[int, int, str]]] = defaultdict(dict)
    frames: dict[str, list[int]] = defaultdict(list)
    for (src, dst, proto, _port), st in scan.stats.items():
        first, seen = st.identity_first_ts, st.identity_frames
        if first is None and st.setup_identity_ts is not None and not st.classes["session"]:
            # asked how to connect (GetEndpoints) and never opened a session: probing
            first, seen = st.setup_identity_ts, st.setup_identity_frames
        if first is None:
            continue
        targets[src][dst] = (first, st.last_ts, proto)
        frames[src] += seen[:10]
    window = int(th.identity_sweep_window_s * 1e9)
    out = []
    for src, dsts in targets.items():
        broadcast = [d for d in dsts if _is_broadcast(d)]
        burst = _most_within(sorted(v[0] for v in dsts.values()), window)
        if burst < th.identity_sweep_min_hosts and not broadcast:
            continue
        first = min(v[0] for v in dsts.values())
        last = max(v[1] for v in dsts.values())
        protos = sorted({v[2] for v in dsts.values()})
        note = (
            f"identity broadcast to {', '.join(broadcast)}"
            if broadcast and burst < th.identity_sweep_min_hosts
            else f"identity requests to {burst} hosts within "
            f"{th.identity_sweep_window_s:g} s ({len(dsts)} in all)"
        )
        out.append(
            Finding(
                rule="identity-sweep",
                first_ts=first,
                last_ts=last,
                count=len(dsts),
                src_ip=src,
                dst_ip=broadcast[0] if len(dsts) == 1 and broadcast else None,
                protocol=protos[0] if len(protos) == 1 else ",".join(protos),
                note=note,
                context={"targets": sorted(dsts)},
                evidence=[Evidence(frames[src][:60], None, {"targets": sorted(dsts)})],
            )
        )
    return out


MANY_HOSTS = 50  # vertical sweeps of more hosts than this, from one source, are one finding


def _many_hosts(src: str, swept: list[tuple[str, int, int, int, int, str]]) -> Finding:
    """One source sweeping the ports of many hosts: one finding for the sweep (a row per
    host would bury everything else), with the hosts and ports it touched."""
    ports: set[int] = set()
    for *_, text in swept:
        ports.update(int(p) for p in text.split(","))
    hosts = sorted(h for h, *_ in swept)
    probes = sum(n for _, _, _, n, _, _ in swept)
    unanswered = sum(u for _, _, _, _, u, _ in swept)
    ics = sorted(p for p in ports if p in ICS_PORTS)
    return Finding(
        rule="port-sweep",
        first_ts=min(f for _, f, _, _, _, _ in swept),
        last_ts=max(la for _, _, la, _, _, _ in swept),
        count=probes,
        src_ip=src,
        note=f"{len(ports)} ports probed across {len(hosts)} hosts ({probes} probes, "
        f"{unanswered} unanswered)" + (f", industrial ports {ics}" if ics else ""),
        context={"ports": sorted(ports)[:200], "hosts": hosts[:200], "kind": "vertical-many"},
    )


def port_sweeps(
    store: Store,
    capture_id: int,
    th: Thresholds,
    since_ns: int | None = None,
    also: int | None = None,
) -> list[Finding]:
    """From the capture's conversations (those first seen at ``since_ns`` or later, when
    given; with capture ``also`` added in, a sensor's connections still open): one client
    to many ports of a host (vertical), or one client to an industrial port on many
    hosts (horizontal). Grouped in SQL: a scan of a million addresses is a million
    conversations, and only the groups that qualify come back."""
    since = since_ns if since_ns is not None else -(1 << 62)
    out = []
    per_source: dict[str, list[tuple[str, int, int, int, int, str]]] = defaultdict(list)
    min_ports = th.port_sweep_min_ports
    for src, dst, first, last, n, unanswered, ports_text in sweeps.vertical(
        store, capture_id, also, since, min_ports
    ):
        per_source[src].append((dst, first, last, n, unanswered, ports_text))
    for src, swept in per_source.items():
        if len(swept) > MANY_HOSTS:
            out.append(_many_hosts(src, swept))
            continue
        for dst, first, last, n, unanswered, ports_text in swept:
            ports = sorted(int(p) for p in ports_text.split(","))
            ics = [p for p in ports if p in ICS_PORTS]
            out.append(
                Finding(
                    rule="port-sweep",
                    first_ts=first,
                    last_ts=last,
                    count=n,
                    src_ip=src,
                    dst_ip=dst,
                    note=f"{n} ports probed ({unanswered} unanswered)"
                    + (f", industrial ports {ics}" if ics else ""),
                    context={"ports": ports[:200], "kind": "vertical"},
                )
            )
    # A master polling many PLCs is normal; a sweep leaves most hosts unanswered or with
    # nothing the protocol decoder recognised.
    for src, port, first, last, hosts_n, probed, hosts_text in sweeps.horizontal(
        store, capture_id, also, since, list(ICS_PORTS), th.port_sweep_min_hosts
    ):
        hosts = sorted(hosts_text.split(","))
        out.append(
            Finding(
                rule="port-sweep",
                first_ts=first,
                last_ts=last,
                count=hosts_n,
                src_ip=src,
                dst_port=port,
                protocol=ICS_PORTS[port],
                note=f"port {port} ({ICS_PORTS[port]}) probed on {hosts_n} hosts, "
                f"{probed} without a protocol answer",
                context={"hosts": hosts[:200], "kind": "horizontal"},
            )
        )
    return out
