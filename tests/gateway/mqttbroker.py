"""A real Mosquitto broker for tests (own config, free loopback port, stoppable and
restartable on the same port), and a paho subscriber that records what it sees."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")

needs_mosquitto = pytest.mark.skipif(
    MOSQUITTO is None, reason="mosquitto is not installed (apt-get install mosquitto)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Broker:
    """``mosquitto -c <conf>`` on 127.0.0.1:<port>; ``extra`` is appended to the config.
    Persistence keeps durable subscriber sessions across ``restart()``."""

    def __init__(self, workdir: Path, *, extra: str = "", anonymous: bool = True) -> None:
        assert MOSQUITTO is not None
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = self.dir / "mosquitto.conf"
        self.log = self.dir / "mosquitto.log"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"allow_anonymous {'true' if anonymous else 'false'}\n"
            "user root\n"  # tests run as root; keep access to the temp files
            "persistence true\n"
            f"persistence_location {self.dir}/\n"
            "autosave_interval 0\n"
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
            "queue_qos0_messages true\n" + extra
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(MOSQUITTO), "-c", str(self.conf)], stdout=log, stderr=log
            )
        try:
            wait_port(self.port)
        except TimeoutError:
            self.stop()
            tail = self.log.read_text()[-2000:]
            raise RuntimeError(f"mosquitto did not start:\n{tail}") from None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass(frozen=True)
class Seen:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    at: float


class Subscriber:
    """A paho client on its own thread that records every message, reconnecting by
    itself; ``durable`` keeps its session (and queued messages) in the broker."""

    def __init__(
        self,
        port: int,
        topics: list[str],
        *,
        client_id: str = "test-subscriber",
        durable: bool = False,
        tls_ca: Path | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.messages: list[Seen] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.topics = topics
        c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not durable,
            protocol=paho.MQTTv311,
        )
        if tls_ca is not None:
            c.tls_set(ca_certs=str(tls_ca))
        if username is not None:
            c.username_pw_set(username, password)
        c.reconnect_delay_set(0.05, 0.2)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.on_message = self._on_message
        self.client = c
        self.port = port

    def _on_connect(self, client: paho.Client, ud: object, flags: object, rc: object, p: object):
        client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client: paho.Client, ud: object, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(
                Seen(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos, time.monotonic())
            )

    def start(self) -> Subscriber:
        self.client.connect("127.0.0.1", self.port, keepalive=5)
        self.client.loop_start()
        if not self.subscribed.wait(5):
            raise TimeoutError("subscriber got no SUBACK")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def snapshot(self) -> list[Seen]:
        with self.lock:
            return list(self.messages)

    def wait_for(self, pred: Callable[[list[Seen]], bool], timeout: float = 5.0) -> list[Seen]:
        deadline = time.monotonic() + timeout
        while True:
            snap = self.snapshot()
            if pred(snap):
                return snap
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met; {len(snap)} messages seen")
            time.sleep(0.01)


def compile_sparkplug_schema(outdir: Path) -> object:
    """tests/gateway/sparkplug_b.proto compiled with protoc (grpcio-tools), imported."""
    import importlib
    import sys

    protoc = pytest.importorskip("grpc_tools.protoc", reason="grpcio-tools is not installed")
    here = Path(__file__).parent
    outdir.mkdir(parents=True, exist_ok=True)
    rc = protoc.main(
        ["protoc", f"-I{here}", f"--python_out={outdir}", str(here / "sparkplug_b.proto")]
    )
    assert rc == 0, "protoc failed on sparkplug_b.proto"
    sys.path.insert(0, str(outdir))
    try:
        return importlib.import_module("sparkplug_b_pb2")
    finally:
        sys.path.remove(str(outdir))
