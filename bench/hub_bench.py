"""`make bench` (hub part): many sites into one hub through a real Mosquitto.

Simulated sites (``--sites`` x ``--assets`` assets, their alerts, conversations and
per-minute operation summaries, in the exact uplink envelopes a sensor sends) are
published at QoS 1 as fast as the broker takes them; `conduit hub` (a separate process,
as deployed) applies them. Figures:

* ingest: messages/s and rows/s from the first publish to the last message applied;
* end-to-end delay at a steady load (each site one summary + one health message per
  second): publish -> committed at the hub, p50/p95/max;
* the console's hub pages at that size, over HTTP on loopback: the Sites overview and
  the assets and alerts lists (all sites and one site, first and last page), p95 of 20.

    python bench/hub_bench.py [--sites 50] [--assets 2000] [--alerts 200] [--db URL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from otconduit.store import Store
from otconduit.uplink.collect import batches
from otconduit.uplink.envelope import Envelope, encode, now_iso

CONDUIT = str(Path(sys.executable).parent / "conduit")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
CONVERSATIONS = 20  # per site
MINUTES = 60  # per conversation


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int) -> None:
    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.025)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def site_rows(site: int, assets: int, alerts: int, rng: random.Random) -> dict[str, list[Any]]:
    """One simulated site's state, shaped as the uplink sends it."""
    t0 = 1_796_000_000_000_000_000
    net = f"10.{site // 250}.{site % 250}"
    a = [
        {
            "ip": f"{net}.{i % 250}"
            if i < 250
            else f"172.{16 + i // 62500}.{i // 250 % 250}.{i % 250}",
            "vlan": -1,
            "mac": f"00:1d:9c:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
            "name": None,
            "vendor": rng.choice(["Rockwell", "Siemens", "Schneider", None]),
            "model": rng.choice(["1756-L71", "S7-1500", "M580", None]),
            "roles": rng.choice(["plc", "hmi", "engineering-workstation", None]),
            "protocols": rng.choice(["enip/server", "s7/server", "modbus/server", None]),
            "first_seen": t0,
            "last_seen": t0 + rng.randrange(10**12),
            "packets_sent": rng.randrange(10**6),
            "packets_received": rng.randrange(10**6),
        }
        for i in range(assets)
    ]
    convs = [
        {
            "transport": "tcp",
            "client_ip": f"{net}.{200 + c % 50}",
            "server_ip": f"{net}.{c}",
            "server_port": 502,
            "vlan": -1,
            "protocol": "modbus",
            "connections": 3,
            "packets": 10_000 + c,
            "bytes": 800_000 + c,
            "first_seen": t0,
            "last_seen": t0 + 1,
            "functions": json.dumps({"READ_HOLDING_REGISTERS": 9000, "WRITE_SINGLE_REGISTER": 3}),
        }
        for c in range(CONVERSATIONS)
    ]
    al = [
        {
            "alert_id": k + 1,
            "rule": rng.choice(["modbus-write", "s7-stop", "new-asset"]),
            "title": "Write to a PLC from an unexpected host",
            "category": "impair-process",
            "severity": rng.randrange(5),
            "techniques": '["T0855"]',
            "src_ip": f"{net}.{200 + k % 50}",
            "dst_ip": f"{net}.{k % 250}",
            "protocol": "modbus",
            "operation": "WRITE_SINGLE_REGISTER",
            "summary": f"write #{k} to holding register 40001",
            "first_seen": t0 + k,
            "last_seen": t0 + k + 5,
            "count": 1 + k % 7,
            "status": rng.choice(["open", "open", "acknowledged", "closed"]),
            "change_seq": k + 1,
        }
        for k in range(alerts)
    ]
    ops = [
        {
            **{
                k: cv[k]
                for k in ("transport", "client_ip", "server_ip", "server_port", "vlan", "protocol")
            },
            "minute": 1_796_000_000 + 60 * m,
            "operations": 600,
        }
        for cv in convs
        for m in range(MINUTES)
    ]
    return {"assets": a, "conversations": convs, "alerts": al, "op_minutes": ops}


class Publisher:
    """One paho client, QoS 1, remembering when each (site, seq) was handed over."""

    def __init__(self, port: int) -> None:
        self.sent: dict[tuple[str, int], float] = {}
        self.c = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-sites", protocol=paho.MQTTv311
        )
        self.c.max_inflight_messages_set(1000)
        self.c.max_queued_messages_set(0)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.infos: list[Any] = []

    def send(self, site: str, seq: int, kind: str, rows: list[dict[str, Any]]) -> None:
        env = Envelope(site=site, seq=seq, sent_at=now_iso(), kind=kind, rows=tuple(rows))
        self.sent[(site, seq)] = time.time()
        self.infos.append(self.c.publish(env.topic, encode(env), qos=1))

    def flush(self) -> None:
        for info in self.infos:
            info.wait_for_publish(60)
        self.infos.clear()

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def applied(db: str) -> int:
    try:
        with Store(db, readonly=True) as s:
            return int(s.conn.execute("SELECT count(*) FROM hub_messages").fetchone()[0])
    except Exception:
        return 0


def wait_applied(db: str, n: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while (got := applied(db)) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"the hub applied {got} of {n} messages in {timeout:.0f} s")
        time.sleep(0.1)
    return time.time()


def delays(db: str, sent: dict[tuple[str, int], float], since: float) -> list[float]:
    out = []
    with Store(db, readonly=True) as s:
        for site, seq, at in s.conn.execute("SELECT site, seq, received_at FROM hub_messages"):
            t = sent.get((site, int(seq)))
            if t is not None and t >= since:
                got = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
                out.append(max(0.0, got - t) * 1000)
    return sorted(out)


def pct(xs: list[float], p: float) -> float:
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")


def page_times(db: str, tmp: Path, n_sites: int, assets: int) -> dict[str, float]:
    """p95 ms of the console's hub pages (real HTTP on loopback, logged in), 20 each."""
    import httpx

    from otconduit.console.app import build_console, create_app
    from otconduit.console.context import ConsoleSettings
    from otconduit.console.server import BackgroundServer

    settings = ConsoleSettings(db=Path(db), auth_db=tmp / "console.db")
    ctx = build_console(settings)
    ctx.auth.add_user("bench", "viewer", "bench-pass-1234")
    site = f"site-{n_sites // 2:03d}"
    last = (n_sites * assets - 1) // 50 * 50
    cases = {
        "Sites": "/sites",
        "assets, all sites, page 1": "/sites/assets",
        f"assets, all sites, offset {last:,}": f"/sites/assets?offset={last}",
        "assets, one site, last page": f"/sites/assets?site={site}&offset={assets - 50}",
        "alerts, all sites": "/sites/alerts",
        "alerts, one site": f"/sites/alerts?site={site}",
    }
    out = {}
    with (
        BackgroundServer(create_app(settings, console=ctx), ctx) as srv,
        httpx.Client(base_url=srv.url) as c,
    ):
        r = c.post("/api/session", json={"username": "bench", "password": "bench-pass-1234"})
        r.raise_for_status()
        for name, path in cases.items():
            times = []
            for _ in range(20):
                t = time.perf_counter()
                r = c.get(path)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200 and "<table" in r.text, (path, r.status_code)
            out[name] = pct(sorted(times), 0.95)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sites", type=int, default=50)
    ap.add_argument("--assets", type=int, default=2000)
    ap.add_argument("--alerts", type=int, default=200)
    ap.add_argument("--steady-seconds", type=float, default=10.0)
    ap.add_argument("--db", default=None, help="hub database (default: a SQLite file)")
    a = ap.parse_args()
    if not os.access(MOSQUITTO, os.X_OK):
        print("hub figures skipped: mosquitto is not installed")
        return
    rng = random.Random(14)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        port = _port()
        conf = tmp / "m.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
            "max_inflight_messages 0\nmessage_size_limit 0\n"
        )
        broker = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_port(port)
        db = a.db or str(tmp / "hub.db")
        with open(tmp / "hub.log", "wb") as log:
            hub = subprocess.Popen(
                [CONDUIT, "hub", "--broker", f"mqtt://127.0.0.1:{port}", "--db", db],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        pub = Publisher(port)
        try:
            time.sleep(1.5)  # the hub subscribes (a durable session: nothing is lost anyway)
            seqs = dict.fromkeys((f"site-{i:03d}" for i in range(a.sites)), 0)
            plan: list[tuple[str, int, str, list[dict[str, Any]]]] = []
            rows = 0
            for i, site in enumerate(seqs):
                for kind, rs in site_rows(i, a.assets, a.alerts, rng).items():
                    for batch in batches(rs):
                        seqs[site] += 1
                        plan.append((site, seqs[site], kind, batch))
                        rows += len(batch)
            t0 = time.time()
            for site, seq, kind, batch in plan:
                pub.send(site, seq, kind, batch)
            pub.flush()
            t_pub = time.time()
            t_done = wait_applied(db, len(plan), 600)
            dur = t_done - t0
            print(
                f"hub ingest: {a.sites} sites x {a.assets:,} assets, {a.alerts} alerts, "
                f"{CONVERSATIONS} conversations x {MINUTES} minute summaries: {len(plan):,} "
                f"messages, {rows:,} rows in {dur:.1f} s = {len(plan) / dur:,.0f} messages/s, "
                f"{rows / dur:,.0f} rows/s (published in {t_pub - t0:.1f} s)"
            )
            # steady load: every site one summary and one health message per second
            start = time.time()
            total = len(plan)
            n = 0
            while time.time() - start < a.steady_seconds:
                tick = time.time()
                for i, site in enumerate(seqs):
                    op = site_rows(i, 0, 0, rng)["op_minutes"][:CONVERSATIONS]
                    for row in op:
                        row["minute"] = 1_796_100_000 + 60 * n
                    for kind, rs in (
                        ("op_minutes", op),
                        ("health", [{"sensor": "eth1", "backlog": 0}]),
                    ):
                        seqs[site] += 1
                        pub.send(site, seqs[site], kind, rs)
                        total += 1
                n += 1
                time.sleep(max(0.0, 1.0 - (time.time() - tick)))
            pub.flush()
            wait_applied(db, total, 120)
            d = delays(db, pub.sent, start)
            print(
                f"hub end-to-end delay at {2 * a.sites} messages/s ({a.sites} sites, publish -> "
                f"committed): p50 {pct(d, 0.5):.0f} ms, p95 {pct(d, 0.95):.0f} ms, "
                f"max {d[-1]:.0f} ms over {len(d):,} messages"
            )
            pages = page_times(db, tmp, a.sites, a.assets)
            worst = max(pages.values())
            print(
                f"hub console pages at {a.sites * a.assets:,} assets, "
                f"{a.sites * a.alerts:,} alerts (p95 of 20): "
                + ", ".join(f"{k} {v:.0f} ms" for k, v in pages.items())
                + f" -- {'within' if worst < 300 else 'OVER'} the 300 ms budget"
            )
        finally:
            pub.close()
            hub.terminate()
            hub.wait(30)
            broker.terminate()
            broker.wait(10)


if __name__ == "__main__":
    main()
