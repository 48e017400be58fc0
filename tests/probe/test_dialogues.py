"""The probe dialogues' decisions on canned answers (fallbacks, refusals, bounds), the
runner's timeouts and rate limit against tiny loopback servers, and the allow-list."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from otconduit.policy import parse_policy
from otconduit.probe import dialogue, protocol_name
from otconduit.probe.bacnet.codec import BacnetError, parse_answer, read_property
from otconduit.probe.base import CLOSED, ERROR, IDENTIFIED, NO_ANSWER, REFUSED, ProbeError
from otconduit.probe.modbus import ModbusProbe
from otconduit.probe.opcua import OpcUaProbe
from otconduit.probe.runner import RateLimiter, run, run_dialogue
from otconduit.probe.s7 import S7Probe
from otconduit.probe.targets import MAX_TARGETS, TargetError, resolve

IP = "127.0.92.1"


# -- Modbus -------------------------------------------------------------------------------
def _mb_exception(tid: int, code: int) -> bytes:
    return struct.pack(">HHHB", tid, 0, 3, 255) + bytes([0xAB, code])


def _mb_objects(tid: int, more: int, next_obj: int, objects: dict[int, bytes]) -> bytes:
    pdu = bytes([0x2B, 0x0E, 0x02, 0x02, more, next_obj, len(objects)])
    for oid, val in objects.items():
        pdu += bytes([oid, len(val)]) + val
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, 255) + pdu


def test_modbus_falls_back_to_basic_objects_when_regular_refused() -> None:
    d = ModbusProbe(IP, 502)
    d.sent(d.first())
    nxt = d.answer(_mb_exception(1, 3))
    assert nxt is not None and nxt.data == bytes.fromhex("000200000005ff2b0e0100")
    d.received(_mb_exception(1, 3))
    d.sent(nxt)
    ans = _mb_objects(2, 0, 0, {0: b"ACME", 1: b"X-1", 2: b"V1.2"})
    d.received(ans)
    assert d.answer(ans) is None
    out = d.outcome()
    assert out.status == IDENTIFIED
    assert ("vendor", "ACME") in out.claims and ("revision", "V1.2") in out.claims


def test_modbus_illegal_function_is_refused() -> None:
    d = ModbusProbe(IP, 502)
    d.sent(d.first())
    assert d.answer(_mb_exception(1, 1)) is None
    assert d.outcome().status == REFUSED
    assert "illegal function" in d.outcome().detail


def test_modbus_more_follows_is_followed_a_bounded_number_of_times() -> None:
    d = ModbusProbe(IP, 502)
    d.sent(d.first())
    asked = []
    msg = d.answer(_mb_objects(1, 0xFF, 3, {0: b"A"}))
    while msg is not None:
        asked.append(msg.data[-1])  # the object id asked from
        tid = int.from_bytes(msg.data[:2], "big")
        msg = d.answer(_mb_objects(tid, 0xFF, msg.data[-1] + 1, {msg.data[-1]: b"B"}))
    assert asked == [3, 4, 5]  # three continuations, then it stops


def test_modbus_answer_to_another_transaction_is_an_error() -> None:
    d = ModbusProbe(IP, 502)
    d.first()
    with pytest.raises(ProbeError):
        d.answer(_mb_exception(7, 3))


# -- S7 -----------------------------------------------------------------------------------
def test_s7_disconnect_at_connect_tries_the_other_tsap() -> None:
    d = S7Probe(IP, 102)
    d.sent(d.first())
    dr = bytes.fromhex("0300000b068000000001 00".replace(" ", ""))
    assert d.answer(dr) is None
    assert d.outcome().status == REFUSED
    alt = d.fallback()
    assert isinstance(alt, S7Probe) and alt.tsap == 0x0200
    assert alt.fallback() is None  # only one more attempt


def test_s7_silence_at_connect_also_tries_the_other_tsap() -> None:
    d = S7Probe(IP, 102)
    d.sent(d.first())
    assert isinstance(d.fallback(), S7Probe)


# -- BACnet -------------------------------------------------------------------------------
def _bacnet(apdu: bytes) -> bytes:
    npdu = bytes([0x01, 0x00]) + apdu
    return struct.pack(">BBH", 0x81, 0x0A, len(npdu) + 4) + npdu


def test_bacnet_ack_with_character_string() -> None:
    text = "Schneider Électric".encode()
    value = bytes([0x75, len(text) + 1, 0]) + text
    apdu = bytes([0x30, 1, 12, 0x0C]) + struct.pack(">I", (8 << 22) | 7) + bytes([0x19, 121])
    ans = parse_answer(_bacnet(apdu + b"\x3e" + value + b"\x3f"))
    assert (ans.kind, ans.invoke_id, ans.value, ans.property_id) == (
        "ack",
        1,
        "Schneider Électric",
        121,
    )


def test_bacnet_reject_stops_the_dialogue() -> None:
    d = dialogue("bacnet", IP)
    d.sent(d.first())
    assert d.answer(_bacnet(bytes([0x60, 1, 9]))) is None
    assert d.outcome().status == REFUSED


def test_bacnet_i_am_gives_the_instance_to_ask_with() -> None:
    d = dialogue("bacnet", IP)
    d.sent(d.first())
    unknown = _bacnet(bytes([0x50, 1, 12, 0x91, 1, 0x91, 31]))
    who = d.answer(unknown)
    assert who is not None and who.data == bytes.fromhex("810a000801001008")
    i_am = _bacnet(bytes([0x10, 0x00, 0xC4]) + struct.pack(">I", (8 << 22) | 1234)
                   + bytes([0x22, 0x05, 0xC4, 0x91, 0x03, 0x21, 0x07]))  # fmt: skip
    nxt = d.answer(i_am)
    assert nxt is not None and nxt.data == read_property(2, 121, 8, 1234)
    assert ("bacnet_device_instance", "1234") in d.outcome().claims
    assert ("vendor_id", "7") in d.outcome().claims


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x81\x0a\x00\x04",
        b"\x82\x0a\x00\x06\x01\x00",
        b"\x81\x0a\x00\x09\x01\x00\x30\x01\x0c",
    ],
)
def test_bacnet_malformed_answers_raise_bacnet_error(data: bytes) -> None:
    with pytest.raises(BacnetError):
        parse_answer(data)


# -- OPC UA -------------------------------------------------------------------------------
def test_opcua_err_to_hello_is_refused() -> None:
    d = OpcUaProbe(IP, 4840)
    d.sent(d.first())
    reason = b"Bad_TcpEndpointUrlInvalid"
    err = b"ERRF" + struct.pack("<IIi", 16 + len(reason), 0x80830000, len(reason)) + reason
    assert d.answer(err) is None
    out = d.outcome()
    assert out.status == REFUSED and "0x80830000" in out.detail


# -- runner -------------------------------------------------------------------------------
def test_rate_limiter_spaces_requests() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    lim = RateLimiter(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        lim.wait()
    assert slept == [0.25, 0.25, 0.25, 0.25]


@pytest.fixture
def server() -> Iterator[Callable[[Callable[[socket.socket], None]], int]]:
    """A one-connection loopback TCP server running ``handler``; yields its port."""
    socks: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def start(handler: Callable[[socket.socket], None]) -> int:
        srv = socket.socket()
        srv.bind((IP, 0))
        srv.listen()
        socks.append(srv)

        def serve() -> None:
            conn, _ = srv.accept()
            with conn:
                handler(conn)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        threads.append(t)
        return int(srv.getsockname()[1])

    yield start
    for t in threads:
        t.join(timeout=5)
    for s in socks:
        s.close()


def test_closed_port_is_closed() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind((IP, 0))
        port = s.getsockname()[1]
    res = run_dialogue(ModbusProbe(IP, port), 1.0, RateLimiter(100))
    assert (res.status, res.requests) == (CLOSED, 0)


def test_silent_device_times_out(server: Callable[[Callable[[socket.socket], None]], int]) -> None:
    done = threading.Event()
    port = server(lambda conn: done.wait(3))
    res = run_dialogue(ModbusProbe(IP, port), 0.3, RateLimiter(100))
    done.set()
    assert res.status == NO_ANSWER and "0.3 s" in res.detail and res.requests == 1


def test_garbage_answer_is_an_error(
    server: Callable[[Callable[[socket.socket], None]], int],
) -> None:
    def handler(conn: socket.socket) -> None:
        conn.recv(100)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    port = server(handler)
    res = run_dialogue(ModbusProbe(IP, port), 1.0, RateLimiter(100))
    assert res.status == ERROR


def test_s7_fallback_runs_on_a_new_connection() -> None:
    calls: list[bytes] = []
    srv = socket.socket()
    srv.bind((IP, 0))
    srv.listen()

    def serve() -> None:
        for _ in range(2):
            conn, _addr = srv.accept()
            with conn:
                calls.append(conn.recv(100))
                conn.sendall(bytes.fromhex("0300000b068000000001000"[:22]))  # COTP DR

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    results = run(S7Probe(IP, srv.getsockname()[1]), 1.0, RateLimiter(100))
    t.join(timeout=5)
    srv.close()
    assert [r.status for r in results] == [REFUSED, REFUSED]
    assert [c[17:19] for c in calls] == [b"\x01\x02", b"\x02\x00"]  # called TSAPs


# -- allow-list ---------------------------------------------------------------------------
POLICY = parse_policy(
    """
version: 1
plant: t
hosts: {plc-1: 127.0.93.10, hmi: 127.0.94.10}
zones:
  - {name: cell, level: 1, members: [127.0.93.0/24], probe: true}
  - {name: super, level: 2, members: [127.0.94.0/24]}
"""
)


def test_policy_zone_marked_probe_allows_its_hosts() -> None:
    (t,) = resolve(["plc-1"], POLICY, [])
    assert (t.ip, t.allowed_by, t.name) == ("127.0.93.10", "zone cell (probe: true)", "plc-1")


def test_one_target_outside_refuses_the_whole_run() -> None:
    with pytest.raises(TargetError, match="zone super is not probe: true"):
        resolve(["127.0.93.10", "hmi"], POLICY, [])


def test_allow_cidr_without_policy_and_cidr_expansion() -> None:
    found = resolve(["127.0.95.0/30"], None, ["127.0.95.0/24"])
    assert [t.ip for t in found] == ["127.0.95.1", "127.0.95.2"]
    assert found[0].allowed_by == "--allow 127.0.95.0/24"


@pytest.mark.parametrize(
    ("targets", "allow", "message"),
    [
        (["127.0.95.1"], [], "without an allow-list"),
        (["224.0.0.1"], ["224.0.0.0/4"], "multicast"),
        (["10.0.0.0/8"], ["10.0.0.0/8"], f"at most {MAX_TARGETS}"),
        (["plc-9"], ["127.0.0.0/8"], "not an IP address"),
        (["127.0.95.1"], ["bogus"], "--allow 'bogus'"),
        (["127.0.96.1"], ["127.0.95.0/24"], "outside the allow-list"),
    ],
)
def test_refusals(targets: list[str], allow: list[str], message: str) -> None:
    with pytest.raises(TargetError, match=message):
        resolve(targets, None, allow)


def test_protocol_names() -> None:
    assert [protocol_name(n) for n in ("S7", "cip", "OPC-UA", "bacnet", "dnp3")] == [
        "s7comm",
        "enip",
        "opcua",
        "bacnet",
        None,
    ]
