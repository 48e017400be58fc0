"""SSH, RDP and SMB on loopback, captured with tcpdump and compared with tshark: a real
OpenSSH server and client, a real Samba server with smbclient (SMB3 and SMB1, NTLMSSP),
and an RDP connection request/confirm laid out per MS-RDPBCGR over a real TCP
connection. Servers that are not installed make their test skip."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from otconduit.protocols.events import Malformed
from otconduit.protocols.it import ntlmssp
from otconduit.protocols.it import rdp as itrdp
from otconduit.protocols.it import smb as itsmb
from otconduit.protocols.it import ssh as itssh
from otconduit.protocols.it.claims import ItClaim
from tests.streams import flows

from .it_helpers import free_port, loopback_capture, needs_capture, tshark

pytestmark = [pytest.mark.slow, pytest.mark.tshark, *needs_capture]
SSHD = Path("/usr/sbin/sshd")
SMBD = Path("/usr/sbin/smbd")


def decode(pcap: Path, port: int, factory: type) -> tuple[list, list]:
    decoders, events = [], []
    for flow in flows(pcap, {port}):
        dec = factory(flow.endpoints)
        for d, data, n, frame, ts in flow.chunks:
            if data is None:
                dec.gap(d, n, frame, ts)
            else:
                dec.feed(d, data, frame, ts)
        events += dec.finish()
        decoders.append(dec)
    assert not [e for e in events if isinstance(e, Malformed)], events
    return decoders, events


def _wait_port(port: int, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                time.sleep(0.5)  # let the server finish with the probe before capturing
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@contextmanager
def running(cmd: list[str], port: int) -> Iterator[None]:
    """A server in a process group of its own (smbd signals its whole group on exit),
    stopped by that group when the block ends."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait_port(port)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


# -- SSH --------------------------------------------------------------------------------
@pytest.mark.skipif(not SSHD.exists() or shutil.which("ssh") is None, reason="no OpenSSH")
def test_openssh_identification_strings(tmp_path: Path) -> None:
    port = free_port()
    key = tmp_path / "hostkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    Path("/run/sshd").mkdir(exist_ok=True)
    sshd = [str(SSHD), "-D", "-e", "-f", "/dev/null", "-h", str(key), "-p", str(port)]
    sshd += ["-o", "ListenAddress=127.0.0.1", "-o", "PidFile=none"]
    pcap = tmp_path / "ssh.pcap"
    with running(sshd, port), loopback_capture(pcap, f"host 127.0.0.1 and tcp port {port}"):
        subprocess.run(
            [
                "ssh",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-p",
                str(port),
                "nobody@127.0.0.1",
                "true",
            ],
            capture_output=True,
            timeout=30,
        )
    decoders, events = decode(pcap, port, itssh.SshDecoder)
    mine = {f: [[i.line]] for dec in decoders for _, f, i in dec.identifications}
    oracle = tshark(pcap, ["ssh.protocol"], "ssh.protocol", ["-d", f"tcp.port=={port},ssh"])
    assert [len(dec.identifications) for dec in decoders] == [2]
    assert mine == oracle
    (server_line,) = [i.line for dec in decoders for d, _, i in dec.identifications if d == 1]
    claims = {(c.attribute, c.value) for c in events if isinstance(c, ItClaim)}
    software = server_line.split("-", 2)[2].split(" ")[0]
    assert ("role", "ssh_server") in claims
    assert ("software", software) in claims
    expected = itssh.ssh_os(software, server_line.partition(" ")[2])
    if expected:  # a distribution build: its comment names the OS
        assert ("os", expected) in claims


# -- RDP --------------------------------------------------------------------------------
def _tpkt(x224: bytes) -> bytes:
    return bytes([3, 0]) + (len(x224) + 4).to_bytes(2, "big") + x224


def _connection_request(cookie: bytes, protocols: int) -> bytes:
    """X.224 CR (MS-RDPBCGR 2.2.1.1): LI, CR code, dst ref 0, src ref 0, class 0, the
    cookie line, then RDP_NEG_REQ (type 1, flags 0, length 8, requestedProtocols)."""
    neg = bytes([1, 0, 8, 0]) + protocols.to_bytes(4, "little")
    body = bytes([0xE0, 0, 0, 0, 0, 0]) + cookie + b"\r\n" + neg
    return _tpkt(bytes([len(body)]) + body)


def _connection_confirm(selected: int) -> bytes:
    neg = bytes([2, 0x1F, 8, 0]) + selected.to_bytes(4, "little")
    body = bytes([0xD0, 0, 0, 0x12, 0x34, 0]) + neg
    return _tpkt(bytes([len(body)]) + body)


def test_rdp_connection_setup(tmp_path: Path) -> None:
    port = free_port()
    pcap = tmp_path / "rdp.pcap"
    listener = socket.create_server(("127.0.0.1", port))

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(_connection_confirm(2))  # CredSSP
                conn.recv(4096)

    thread = threading.Thread(target=serve, daemon=True)
    with loopback_capture(pcap, f"host 127.0.0.1 and tcp port {port}"):
        thread.start()
        for cookie, protocols in (
            (b"Cookie: mstshash=operator", 0x0B),
            (b"Cookie: mstshash=eng", 3),
        ):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(_connection_request(cookie, protocols))
                s.recv(4096)
        thread.join(timeout=10)
    listener.close()
    decoders, events = decode(pcap, port, itrdp.RdpDecoder)
    mine: dict[int, list[list[str]]] = {}
    for dec in decoders:
        for frame, pdu in dec.pdus:
            mine[frame] = [
                [pdu.token] if pdu.token else [],
                [f"0x{pdu.neg_type:02x}"],
                [f"0x{pdu.protocols:08x}"] if pdu.neg_type == itrdp.NEG_REQ else [],
                [f"0x{pdu.protocols:08x}"] if pdu.neg_type == itrdp.NEG_RSP else [],
            ]
    oracle = tshark(
        pcap,
        [
            "rdp.rt_cookie",
            "rdp.neg_type",
            "rdp.negReq.requestedProtocols",
            "rdp.negReq.selectedProtocol",
        ],
        "rdp",
        ["-d", f"tcp.port=={port},tpkt"],
    )
    assert len(mine) == 4
    assert mine == oracle
    claims = {(c.attribute, c.value) for c in events if isinstance(c, ItClaim)}
    assert claims == {("role", "rdp_server"), ("user", "operator"), ("user", "eng")}


# -- SMB --------------------------------------------------------------------------------
SMB_FIELDS = [
    "smb.cmd",
    "smb2.cmd",
    "smb2.dialect",
    "smb.native_os",
    "smb.native_lanman",
    "ntlmssp.messagetype",
    "ntlmssp.challenge.target_info.nb_computer_name",
    "ntlmssp.challenge.target_info.dns_computer_name",
    "ntlmssp.challenge.target_info.nb_domain_name",
    "ntlmssp.challenge.target_info.dns_domain_name",
    "ntlmssp.auth.hostname",
    "ntlmssp.auth.domain",
    "ntlmssp.auth.username",
]


def _smb_rows(decoders: list) -> dict[int, list[list[str]]]:
    out: dict[int, list[list[str]]] = {}
    for dec in decoders:
        for _, frame, m in dec.messages:
            row = out.setdefault(frame, [[] for _ in SMB_FIELDS])
            if m.version == 1:  # tshark lists the AndX chain as further commands
                row[0] += [f"0x{c:02x}" for c in (m.command, *m.andx)]
            else:
                row[1].append(str(m.command))
            if m.version == 2 and m.negotiate is not None:
                row[2] += [d for d in m.negotiate.dialects]
            if m.native is not None:
                row[3].append(m.native.native_os)
                row[4].append(m.native.native_lanman)
        for _, frame, n in dec.ntlm:
            row = out.setdefault(frame, [[] for _ in SMB_FIELDS])
            row[5].append(f"0x{n.kind:08x}")
            info = n.target_info
            for i, key in enumerate(("nb_computer", "dns_computer", "nb_domain", "dns_domain"), 6):
                row[i] += [info[key]] if info.get(key) else []
            if n.kind == ntlmssp.AUTHENTICATE:
                row[10].append(n.workstation or "NULL")
                row[11].append(n.domain or "NULL")
                row[12].append(n.user or "NULL")
    return out


@pytest.mark.skipif(not SMBD.exists() or shutil.which("smbclient") is None, reason="no Samba")
@pytest.mark.parametrize("dialect", ["SMB3", "NT1"])
def test_samba_session_setup(tmp_path: Path, dialect: str) -> None:
    port = free_port()
    for d in ("share", "lock", "state", "cache", "pid", "private", "ncalrpc"):
        (tmp_path / d).mkdir()
    conf = tmp_path / "smb.conf"
    dirs = "\n".join(
        f"  {k} = {tmp_path / v}"
        for k, v in (
            ("lock directory", "lock"),
            ("state directory", "state"),
            ("cache directory", "cache"),
            ("pid directory", "pid"),
            ("private dir", "private"),
            ("ncalrpc dir", "ncalrpc"),
        )
    )
    conf.write_text(
        "[global]\n  interfaces = lo\n  bind interfaces only = yes\n"
        f"  smb ports = {port}\n  disable netbios = yes\n  netbios name = FILESRV01\n"
        "  workgroup = PLANT\n  server role = standalone server\n  map to guest = Bad User\n"
        f"  server min protocol = NT1\n{dirs}\n  log file = {tmp_path}/log.%m\n"
        f"  passdb backend = tdbsam:{tmp_path}/private/passdb.tdb\n"
        f"[share]\n  path = {tmp_path}/share\n  guest ok = yes\n"
    )
    client_conf = tmp_path / "client.conf"
    client_conf.write_text(
        "[global]\n  netbios name = ENGWS01\n  workgroup = PLANT\n  client min protocol = NT1\n"
    )
    smbd = [str(SMBD), "-F", "--no-process-group", "-s", str(conf), "-d", "0"]
    pcap = tmp_path / "smb.pcap"
    with running(smbd, port), loopback_capture(pcap, f"host 127.0.0.1 and tcp port {port}"):
        subprocess.run(
            [
                "smbclient",
                "-s",
                str(client_conf),
                "-p",
                str(port),
                "-m",
                dialect,
                "-U",
                "operator%secret",
                "//127.0.0.1/share",
                "-c",
                "ls",
            ],
            capture_output=True,
            timeout=60,
        )
    decoders, events = decode(pcap, port, itsmb.SmbDecoder)
    mine = _smb_rows(decoders)
    oracle = tshark(pcap, SMB_FIELDS, "smb || smb2 || ntlmssp", ["-d", f"tcp.port=={port},nbss"])
    assert mine == oracle
    claims = {(c.attribute, c.value) for c in events if isinstance(c, ItClaim)}
    assert ("role", "file_server") in claims
    assert ("hostname", "FILESRV01") in claims  # NTLM challenge: the server's name
    assert ("hostname", "ENGWS01") in claims  # NTLM authenticate: the client's
    assert ("user", "PLANT\\operator") in claims
