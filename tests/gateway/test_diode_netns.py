"""The diode across a real one-way link: two network namespaces, OT and IT, joined by a
veth pair, with nftables in IT dropping every packet IT tries to send back to OT (IPv4,
IPv6 and ARP; OT knows IT's MAC statically, as on a real diode link).

``conduit diode receive`` runs in IT and ``conduit diode send`` in OT, in four runs
(four sender sessions): a clean run, random loss (tc netem on OT's side of the veth, or
an nftables random-drop shim where the kernel has no netem), one datagram in ten
dropped (inside the 8:2 FEC budget) and three in ten (beyond it). Then a third process
in OT sends datagrams made with a wrong key and garbage, and IT tries to reach OT. The
proof: everything within the budget arrives, everything beyond it is reported as a gap
naming exactly the missing samples, forgeries are counted and never delivered, and a
counter on OT's interface sees not one frame from IT.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from otconduit.gateway.diode import generate_key

pytestmark = pytest.mark.slow

OT_IP, IT_IP, PORT = "10.97.0.1", "10.97.0.2", 47110
OT_DEV, IT_DEV = "dot", "dit"
CLI = [sys.executable, "-m", "otconduit.cli.diode_cmd"]

IT_RULES = f"""
table inet diode_oneway {{
  chain output {{
    type filter hook output priority 0; policy accept;
    oifname "{IT_DEV}" counter drop comment "IT to OT: nothing"
  }}
}}
table arp diode_oneway {{
  chain output {{
    type filter hook output priority 0; policy accept;
    oifname "{IT_DEV}" counter drop comment "IT to OT: not even ARP"
  }}
}}
table inet shape {{
  chain input {{
    type filter hook input priority 0; policy accept;
  }}
}}
"""
OT_WATCH = f"""
table netdev watch {{
  chain ingress {{
    type filter hook ingress device "{OT_DEV}" priority 0; policy accept;
    counter comment "every frame reaching OT from the link"
  }}
}}
"""
FORGER = textwrap.dedent(
    """
    import random, socket, sys
    from otconduit.gateway.diode import batch, wire
    from otconduit.gateway.diode.encoder import DiodeEncoder, FecParams
    from otconduit.gateway.model import Quality, TagSample
    enc = DiodeEncoder(wire.Authenticator(bytes.fromhex("45c1b0d4e6a2f39807bd5c6e1f2a3b4c")),
                       fec_params=FecParams(k=1, m=0))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rng = random.Random(1)
    for i in range(50):
        fake = [TagSample(path="evil/valve/open", value=True, quality=Quality.GOOD,
                          recv_ts_ns=0, seq=i)]
        for d in enc.data(batch.encode(fake), 0):
            s.sendto(d, (sys.argv[1], int(sys.argv[2])))
    for i in range(20):
        s.sendto(b"junk" + rng.randbytes(rng.randrange(100)), (sys.argv[1], int(sys.argv[2])))
    """
)
REACH_BACK = textwrap.dedent(
    """
    import socket, sys
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for port in range(40000, 40010):
        try:
            u.sendto(b"hello OT", (sys.argv[1], port))
        except OSError:
            pass
    t = socket.socket()
    t.settimeout(0.3)
    try:
        t.connect((sys.argv[1], 22))
        print("connected")
    except OSError as exc:
        print("refused", exc)
    """
)


@dataclass(frozen=True)
class Lab:
    ot: str
    it: str


def _run(*cmd: str, ns: str | None = None, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    full = ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)
    return subprocess.run(full, capture_output=True, text=True, timeout=timeout, check=False)


def _ok(*cmd: str, ns: str | None = None, stdin: str | None = None) -> str:
    full = ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)
    res = subprocess.run(full, input=stdin, capture_output=True, text=True, timeout=20, check=False)
    assert res.returncode == 0, f"{cmd}: {res.stderr.strip()}"
    return res.stdout


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install -y nftables iproute2)"
    return None


@pytest.fixture
def lab() -> Iterator[Lab]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    tag = uuid.uuid4().hex[:6]
    names = Lab(f"cdd-ot-{tag}", f"cdd-it-{tag}")
    created: list[str] = []
    try:
        for ns in (names.ot, names.it):
            res = _run("ip", "netns", "add", ns)
            if res.returncode != 0:
                pytest.skip(f"cannot create network namespaces: {res.stderr.strip()}")
            created.append(ns)
            for key in ("all", "default"):  # no IPv6 chatter (DAD, router solicitations)
                _ok("sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1", ns=ns)
        _ok("ip", "link", "add", OT_DEV, "type", "veth", "peer", "name", IT_DEV, "netns",
            names.it, ns=names.ot)  # fmt: skip
        for ns, dev, ip in ((names.ot, OT_DEV, OT_IP), (names.it, IT_DEV, IT_IP)):
            _ok("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=ns)
            _ok("ip", "addr", "add", f"{ip}/24", "dev", dev, ns=ns)
            _ok("ip", "link", "set", "lo", "up", ns=ns)
        # Filters first, then the link: not one frame from IT is ever missed.
        _ok("nft", "-f", "-", ns=names.it, stdin=IT_RULES)
        _ok("nft", "-f", "-", ns=names.ot, stdin=OT_WATCH)
        it_mac = json.loads(_ok("ip", "-j", "link", "show", IT_DEV, ns=names.it))[0]["address"]
        _ok("ip", "neigh", "replace", IT_IP, "lladdr", it_mac, "dev", OT_DEV, "nud",
            "permanent", ns=names.ot)  # fmt: skip
        for ns, dev in ((names.ot, OT_DEV), (names.it, IT_DEV)):
            _ok("ip", "link", "set", dev, "up", ns=ns)
        yield names
    finally:
        for ns in created:
            for pid in _run("ip", "netns", "pids", ns).stdout.split():
                subprocess.run(["kill", "-9", pid], capture_output=True, check=False)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def _counter(ns: str, family: str, table: str, chain: str) -> int:
    data = json.loads(_ok("nft", "-j", "list", "chain", family, table, chain, ns=ns))
    return sum(
        e["counter"]["packets"]
        for item in data["nftables"]
        if "rule" in item
        for e in item["rule"]["expr"]
        if "counter" in e
    )


def _shape(lab: Lab, rule: str | None) -> None:
    _ok("nft", "flush", "chain", "inet", "shape", "input", ns=lab.it)
    if rule:
        _ok("nft", "add", "rule", "inet", "shape", "input", "iifname", IT_DEV, "udp", "dport",
            str(PORT), *rule.split(), "counter", "drop", ns=lab.it)  # fmt: skip


def _netem(lab: Lab, loss: str | None) -> bool:
    """tc netem loss on OT's side of the veth; False where the kernel has no netem."""
    if shutil.which("tc") is None:
        return False
    if loss is None:
        _run("tc", "qdisc", "del", "dev", OT_DEV, "root", ns=lab.ot)
        return True
    res = _run("tc", "qdisc", "add", "dev", OT_DEV, "root", "netem", "loss", loss, ns=lab.ot)
    return res.returncode == 0


def _send(lab: Lab, key: Path, src: Path, *extra: str) -> dict[str, Any]:
    res = _run(*CLI, "send", "--to", f"{IT_IP}:{PORT}", "-k", str(key), "-i", str(src),
               *extra, ns=lab.ot, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary: dict[str, Any] = json.loads(res.stderr.strip().splitlines()[-1])
    assert summary["send_errors"] == 0 and summary["dropped"] == 0
    return summary


def _phase_input(tmp: Path, phase: int, n: int) -> tuple[Path, range]:
    seqs = range(phase * 1_000_000, phase * 1_000_000 + n)
    src = tmp / f"phase{phase}.jsonl"
    src.write_text(
        "".join(
            json.dumps({"path": f"acme/diode/ph{phase}/t{i % 20}", "value": i, "seq": i}) + "\n"
            for i in seqs
        )
    )
    return src, seqs


def _account(seqs: range, delivered: list[int], gaps: list[dict[str, Any]]) -> set[int]:
    """Checks order and returns the samples neither delivered nor named by a gap."""
    assert delivered == sorted(set(delivered)), "delivered out of order or twice"
    assert set(delivered) <= set(seqs)
    named: set[int] = set()
    for g in gaps:
        lo = g["samples_from"] if g["samples_from"] is not None else seqs[0]
        hi = g["samples_to"] if g["samples_to"] is not None else seqs[-1]
        named |= set(range(lo, hi + 1))
    assert not named & set(delivered), "a gap names a delivered sample"
    return set(seqs) - set(delivered) - named


def test_one_way_link_fec_gaps_forgeries_and_no_return_path(lab: Lab, tmp_path: Path) -> None:
    started = time.monotonic()
    key = generate_key(tmp_path / "diode.key")
    out, ev = tmp_path / "out.jsonl", tmp_path / "events.jsonl"
    rx = subprocess.Popen(
        ["ip", "netns", "exec", lab.it, *CLI, "receive", "-k", str(key), "--listen",
         f"{IT_IP}:{PORT}", "-o", str(out), "--events", str(ev), "--reorder-timeout", "0.2",
         "--duration", "120"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    runs: dict[str, tuple[dict[str, Any], range]] = {}
    try:
        for _ in range(200):
            if ev.exists() and "listening" in ev.read_text():
                break
            assert rx.poll() is None, rx.stderr.read() if rx.stderr else ""
            time.sleep(0.05)

        src, seqs = _phase_input(tmp_path, 1, 20_000)  # clean, full-size datagrams
        runs["clean"] = (_send(lab, key, src), seqs)

        small = ("--mtu", "400")  # ~20 samples a datagram: hundreds of datagrams per run
        netem = _netem(lab, "5%")
        if not netem:
            _shape(lab, "numgen random mod 100 < 5")
        src, seqs = _phase_input(tmp_path, 2, 10_000)
        runs["random"] = (_send(lab, key, src, *small, "--rate", "3000"), seqs)
        _netem(lab, None) if netem else _shape(lab, None)

        _shape(lab, "numgen inc mod 7 0")  # one in seven: at most 2 of any 10 in a row
        src, seqs = _phase_input(tmp_path, 3, 10_000)
        runs["within"] = (_send(lab, key, src, *small), seqs)
        dropped_within = _counter(lab.it, "inet", "shape", "input")

        _shape(lab, "numgen inc mod 10 { 0, 3, 6 }")  # three in ten: beyond the budget
        src, seqs = _phase_input(tmp_path, 4, 10_000)
        runs["beyond"] = (_send(lab, key, src, *small), seqs)
        dropped_beyond = _counter(lab.it, "inet", "shape", "input")
        _shape(lab, None)

        forger = _run(sys.executable, "-c", FORGER, IT_IP, str(PORT), ns=lab.ot)
        assert forger.returncode == 0, forger.stderr
        back = _run(sys.executable, "-c", REACH_BACK, OT_IP, ns=lab.it)
        assert back.returncode == 0 and "connected" not in back.stdout, back.stdout
        time.sleep(0.3)  # the receiver's reorder timeout, for the last run's tail
    finally:
        rx.send_signal(signal.SIGTERM)
        _, err = rx.communicate(timeout=20)
    assert rx.returncode == 0, err

    events = [json.loads(x) for x in ev.read_text().splitlines()]
    samples = [json.loads(x) for x in out.read_text().splitlines()]
    summary = events[-1]
    assert summary["event"] == "summary"
    ended = {e["session"]: e for e in events if e["event"] == "session_end"}
    gaps: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e["event"] == "gap":
            gaps.setdefault(e["session"], []).append(e)
    figures: dict[str, Any] = {"netem": netem}
    for name, (sent, seqs) in runs.items():
        session = sent["session"]
        got = [s["seq"] for s in samples if s["seq"] in seqs]
        unreported = _account(seqs, got, gaps.get(session, []))
        end = ended[session]
        figures[name] = {
            k: end[k] for k in ("data", "delivered", "recovered", "lost", "gaps", "samples")
        } | {"datagrams_sent": sent["datagrams"], "elapsed_s": sent["elapsed_s"]}
        assert end["samples"] == len(got)
        if name == "clean":
            assert got == list(seqs) and end["lost"] == end["recovered"] == 0
            assert end["sender_sent"] == sent["datagrams"] - 1  # its last heartbeat arrived
            figures["clean"]["samples_per_s"] = round(len(seqs) / sent["elapsed_s"])
        elif name == "random":
            assert end["recovered"] > 0
            # Random loss may take the last datagrams and both final heartbeats: only
            # such a tail can go unreported, because nothing after it says it existed.
            assert not unreported or min(unreported) > max(got), sorted(unreported)[:5]
        elif name == "within":
            assert got == list(seqs), "every loss within the budget is rebuilt"
            assert end["lost"] == 0 and 0 < end["recovered"] <= dropped_within
        else:
            assert not unreported, sorted(unreported)[:10]
            assert end["gaps"] > 0 and end["lost"] > 0 and len(got) < len(seqs)
            assert dropped_beyond >= sent["datagrams"] * 3 // 10 - 1

    figures["nft_dropped"] = {"within": dropped_within, "beyond": dropped_beyond}
    print(json.dumps(figures))  # the figures quoted in the README (pytest -s shows them)

    # Forgeries: counted, never delivered.
    assert summary["forged"] == 50 and summary["malformed"] == 20
    assert not [s for s in samples if s["path"].startswith("evil/")]
    # The return path: IT tried (its drop counters moved), OT received not one frame.
    # (IP packets die in the output hook before the kernel would even ask for OT's MAC,
    # so the ARP rule stays at zero here; it is there for ARP itself.)
    assert _counter(lab.it, "inet", "diode_oneway", "output") >= 10
    assert _counter(lab.ot, "netdev", "watch", "ingress") == 0
    assert time.monotonic() - started < 40
