"""Identity requests that are part of connecting (OPC UA GetEndpoints before
CreateSession) are not an identity sweep; asked without a session following, they are."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from otconduit.analysis.run import analyze_file
from otconduit.detect.config import Thresholds
from otconduit.detect.recon import identity_sweeps
from otconduit.detect.scan import ConvStats, ScanResult, scan_capture
from otconduit.protocols import registry
from otconduit.store.sqlite import Store
from tests.conftest import SHARED, needs_shared

S = 1_000_000_000


def _opcua(servers: int, *, session: bool) -> ScanResult:
    """One client asking ``servers`` OPC UA servers for their endpoints within seconds."""
    scan = ScanResult()
    for i in range(servers):
        st = ConvStats(first_ts=i * S, last_ts=i * S + S // 2)
        st.functions["GetEndpoints"] = 1
        st.classes["identity"] = 1
        st.setup_identity_ts = i * S
        st.setup_identity_frames = [10 * i + 1, 10 * i + 2]
        if session:
            st.functions.update(CreateSession=1, ActivateSession=1, Read=20)
            st.classes.update(Counter(session=2, read=20))
        scan.stats[("10.0.0.5", f"10.0.1.{i + 1}", "opcua", 4840)] = st
    return scan


def test_getendpoints_is_session_setup_for_opcua() -> None:
    assert registry.setup_identity("opcua") == frozenset({"GetEndpoints"})
    assert registry.setup_identity("modbus") == frozenset()


def test_a_scada_opening_sessions_to_many_servers_is_no_sweep() -> None:
    assert identity_sweeps(_opcua(6, session=True), Thresholds()) == []


def test_asking_endpoints_without_a_session_is_a_sweep() -> None:
    (found,) = identity_sweeps(_opcua(6, session=False), Thresholds())
    assert found.rule == "identity-sweep" and found.src_ip == "10.0.0.5"
    assert found.count == 6 and 1 in found.evidence[0].frames


@needs_shared
def test_a_stored_opcua_session_marks_getendpoints_as_setup(tmp_path: Path) -> None:
    """Through the store: open62541's client asks GetEndpoints, then opens a session."""
    cap = SHARED / "corpus/icsnpp/opcua/open62541_client-server_mainloop"
    with Store(tmp_path / "ua.db") as store:
        res = analyze_file(store, cap / "open62541_client-server_mainloop.pcap")
        assert res.capture_id is not None
        scan = scan_capture(store, res.capture_id)
    (st,) = [s for k, s in scan.stats.items() if k[2] == "opcua"]
    assert st.functions["GetEndpoints"] == 2 and st.classes["session"] > 0
    assert st.setup_identity_ts is not None and st.identity_first_ts is None
    assert st.setup_identity_frames
