"""Three real sensors (`conduit sense --follow ... --uplink`), a real Mosquitto with a
password file and a per-site ACL, and `conduit hub`: stop the broker mid-stream and
restart it, kill -9 the hub and restart it, kill -9 a sensor and restart it -- at the end
the hub holds exactly what the three sites' own stores hold, every message id of every
site applied once (replays dropped), and forged or unknown-site messages refused."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from otconduit.hub.sites import SiteEntry, SitesFile, mosquitto_acl
from otconduit.store import Store, StoreError, hub_outbox
from otconduit.store import hub as hub_q
from otconduit.uplink.envelope import Envelope, encode
from tests.conftest import CORPUS, needs_shared
from tests.gateway.mqttbroker import MOSQUITTO_PASSWD, Broker, needs_mosquitto
from tests.sensor.test_follow import _split

pytestmark = [
    needs_shared,
    needs_mosquitto,
    pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap (Wireshark) missing"),
    pytest.mark.skipif(MOSQUITTO_PASSWD is None, reason="mosquitto_passwd is not installed"),
]

CONDUIT = str(Path(sys.executable).parent / "conduit")
SITES = {
    "north": ("iti/ModbusTCP/ModbusTCP.pcap", 600),
    "south": ("iti/EthernetIP/EthernetIP-CIP.pcap", 400),
    "east": ("icsnpp/dnp3/dnp3_example/dnp3_example.pcap", 30),
}
KINDS = ("assets", "conversations", "alerts", "operations", "violations")


class Rig:
    def __init__(self, tmp: Path, hub_db: str) -> None:
        self.tmp = tmp
        passwd = tmp / "passwd"
        subprocess.run([MOSQUITTO_PASSWD, "-b", "-c", str(passwd), "hub", "hub-pw"], check=True)
        for user in (*SITES, "rogue"):
            subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwd), user, f"{user}-pw"], check=True)
        everyone = SitesFile(sites=[SiteEntry(name=s) for s in (*SITES, "rogue")])
        acl = tmp / "acl"
        acl.write_text(mosquitto_acl(everyone, "hub"))
        self.broker = Broker(
            tmp / "broker", anonymous=False, extra=f"password_file {passwd}\nacl_file {acl}\n"
        )
        # the hub accepts the three sites only; "rogue" gets past the broker, not the hub
        self.sites_file = tmp / "sites.yaml"
        self.sites_file.write_text("sites:\n" + "".join(f"  - name: {s}\n" for s in SITES))
        self.hub_db = hub_db  # a SQLite file or a postgresql:// URL
        self.hub: subprocess.Popen[bytes] | None = None
        self.sensors: dict[str, subprocess.Popen[bytes]] = {}
        self.files: dict[str, list[Path]] = {}
        for site, (rel, per) in SITES.items():
            self.files[site] = _split(CORPUS / rel, tmp / f"src-{site}", per)
            (tmp / f"ring-{site}").mkdir()

    def url(self, user: str) -> str:
        return f"mqtt://{user}@127.0.0.1:{self.broker.port}?allow_plaintext=1"

    def start_hub(self) -> None:
        env = {**os.environ, "CONDUIT_MQTT_PASSWORD": "hub-pw"}
        with open(self.tmp / "hub.log", "ab") as log:
            self.hub = subprocess.Popen(
                [
                    CONDUIT,
                    "hub",
                    "--broker",
                    self.url("hub"),
                    "--db",
                    self.hub_db,
                    "--sites",
                    str(self.sites_file),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def start_sensor(self, site: str, *extra: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "CONDUIT_MQTT_PASSWORD": f"{site}-pw"}
        with open(self.tmp / f"{site}.log", "ab") as log:
            proc = subprocess.Popen(
                [
                    CONDUIT,
                    "sense",
                    "--follow",
                    str(self.tmp / f"ring-{site}"),
                    "--db",
                    str(self.tmp / f"{site}.db"),
                    "--uplink",
                    self.url(site),
                    "--site",
                    site,
                    *extra,
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.sensors[site] = proc
        return proc

    def feed(self, fraction_from: float, fraction_to: float) -> None:
        for site, files in self.files.items():
            lo, hi = int(len(files) * fraction_from), int(len(files) * fraction_to)
            for f in files[lo:hi]:
                shutil.copy2(f, self.tmp / f"ring-{site}" / f.name)

    def hub_counts(self, site: str) -> dict[str, int]:
        try:
            with Store(self.hub_db, readonly=True) as s:
                return hub_q.counts(s, site)
        except StoreError:  # not there yet, or the hub is creating it
            return {}

    def site_truth(self, site: str) -> tuple[dict[str, int], int]:
        with Store(self.tmp / f"{site}.db", readonly=True) as s:
            return hub_outbox.totals(s), hub_outbox.next_seq(s, site) - 1

    def missing(self, site: str) -> list[int]:
        """The message ids the site made that the hub has not applied (for reports)."""
        last = self.site_truth(site)[1]
        try:
            with Store(self.hub_db, readonly=True) as s:
                got = {
                    r[0]
                    for r in s.conn.execute("SELECT seq FROM hub_messages WHERE site = ?", (site,))
                }
        except StoreError:
            return []
        return [n for n in range(1, last + 1) if n not in got]

    def wait(self, pred: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                logs = {p.name: p.read_text()[-1500:] for p in self.tmp.glob("*.log")}
                state = {
                    s: (self.hub_counts(s), self.site_truth(s), self.missing(s)) for s in SITES
                }
                raise AssertionError(f"timed out waiting for {what}: {state}; logs: {logs}")
            time.sleep(0.2)

    def stop_all(self) -> None:
        for p in [*self.sensors.values(), *([self.hub] if self.hub else [])]:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        self.broker.stop()


@pytest.fixture
def rig(tmp_path: Path, hub_db: str) -> Iterator[Rig]:
    r = Rig(tmp_path, hub_db)
    r.broker.start()
    try:
        yield r
    finally:
        r.stop_all()


def _publish(port: int, user: str, topic: str, payload: bytes) -> None:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"forger-{user}", protocol=paho.MQTTv311)
    c.username_pw_set(user, f"{user}-pw")
    c.connect("127.0.0.1", port)
    c.loop_start()
    info = c.publish(topic, payload, qos=1)
    info.wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def test_three_sites_outages_and_kills_lose_and_double_nothing(rig: Rig) -> None:
    rig.start_hub()
    # the broker keeps messages for a session it knows: sites start once the hub's exists
    hub_log = rig.tmp / "hub.log"
    rig.wait(lambda: "hub: subscribed" in hub_log.read_text(), 60, "the hub's subscription")
    rig.feed(0.0, 0.3)
    for site in SITES:
        rig.start_sensor(site)
    rig.wait(lambda: all(rig.hub_counts(s).get("messages") for s in SITES), 60, "first messages")

    # 1. the broker stops mid-stream (sensors keep sensing and queue), then comes back
    rig.broker.stop()
    rig.feed(0.3, 0.5)
    time.sleep(4)
    rig.broker.start()

    # 2. the hub is killed (messages wait in its durable session), then restarted
    assert rig.hub is not None
    rig.hub.send_signal(signal.SIGKILL)
    rig.hub.wait(10)
    rig.feed(0.5, 0.7)
    time.sleep(3)
    rig.start_hub()

    # 3. a sensor is killed mid-run and restarted; the others stop cleanly
    victim = rig.sensors["north"]
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    before = rig.site_truth("north")[1]
    rig.feed(0.7, 1.0)
    rig.start_sensor("north")
    # the new process is up (its uplink's first collection is recorded) before anything
    # signals it: a SIGTERM during start-up would end it before its handler exists
    rig.wait(lambda: rig.site_truth("north")[1] > before, 60, "the restarted sensor")
    time.sleep(4)

    # forged and unknown-site messages, through the real broker
    forged = Envelope(
        site="south", seq=10**9, sent_at="2026-12-07T08:00:00Z", kind="assets", rows=()
    )
    _publish(rig.broker.port, "north", "conduit/v1/north/assets", encode(forged))  # hub refuses
    _publish(rig.broker.port, "north", "conduit/v1/south/assets", encode(forged))  # ACL drops
    rogue = Envelope(site="rogue", seq=1, sent_at="2026-12-07T08:00:00Z", kind="assets", rows=())
    _publish(rig.broker.port, "rogue", "conduit/v1/rogue/assets", encode(rogue))  # hub refuses

    def settled() -> bool:
        return all(rig.hub_counts(s).get("messages") == rig.site_truth(s)[1] for s in SITES)

    # the sensors catch up by themselves (reconnect, replay oldest first) ...
    rig.wait(settled, 90, "the hub to catch up with running sensors")
    # ... and what they send while stopping (a last collection, health) arrives too
    for site, proc in rig.sensors.items():
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, (site, (rig.tmp / f"{site}.log").read_text()[-2000:])

    rig.wait(settled, 90, "every message at the hub")
    for site in SITES:
        truth, last_seq = rig.site_truth(site)
        got = rig.hub_counts(site)
        assert {k: got[k] for k in KINDS} == truth, site
        assert truth["operations"] > 0 and truth["assets"] > 0, site
        with Store(rig.hub_db, readonly=True) as s:
            seqs = [
                r[0]
                for r in s.conn.execute(
                    "SELECT seq FROM hub_messages WHERE site = ? ORDER BY seq", (site,)
                )
            ]
        assert seqs == list(range(1, last_seq + 1)), site  # no id lost, none applied twice
        with Store(rig.tmp / f"{site}.db", readonly=True) as s:
            assert hub_outbox.outbox_count(s, site) == 0, site
    with Store(rig.hub_db, readonly=True) as s:
        rejects = hub_q.reject_counts(s)
        overview = {r["site"]: r for r in hub_q.sites(s)}
    assert rejects == {"site_mismatch": 1, "unknown_site": 1}, rejects
    assert overview["rogue"].get("messages") is None  # refused: nothing of it applied
    assert overview["north"]["refused"] == 1  # the forgery is reported against its sender
    assert all(overview[s]["sensors"] for s in SITES)  # health arrived from every site
    assert rig.hub is not None
    rig.hub.send_signal(signal.SIGTERM)
    assert rig.hub.wait(20) == 0
    summary = json.loads(
        subprocess.run(
            [CONDUIT, "sites", "--db", rig.hub_db, "-f", "json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert sorted(r["site"] for r in summary) == sorted([*SITES, "rogue"])
