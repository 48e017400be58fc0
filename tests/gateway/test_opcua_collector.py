"""The OPC UA collector against a real asyncua server on loopback (in its own thread and
event loop, as a separate device would be): values, source timestamps, deadband on the
server and in the gateway, cyclic reports, Basic256Sha256 with an explicit trust list,
username login, and a server restart. Also the application certificate helpers."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from asyncua import Server, ua
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.monitored_item_service import MonitoredItemService
from asyncua.server.user_managers import UserManager
from asyncua.ua import uaprotocol_auto
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from otconduit.gateway import certs
from otconduit.gateway.collectors.opcua import OpcUaCollector, source_ns
from otconduit.gateway.config import GatewayConfig
from otconduit.gateway.model import Quality, TagSample

pytestmark = pytest.mark.anyio
HOST = "127.0.0.1"
NS_URI = "urn:conduit:test:press"
ENT, SITE = "acme", "plant1"
USERS = {"operator": "s3cret"}
_T = TypeVar("_T")

# name -> (initial value, Variant type)
VARIABLES: dict[str, tuple[Any, ua.VariantType]] = {
    "Temp": (21.5, ua.VariantType.Double),
    "Count": (7, ua.VariantType.Int32),
    "Running": (True, ua.VariantType.Boolean),
    "Recipe": ("PRESS-A", ua.VariantType.String),
    "Raw": (13824, ua.VariantType.UInt16),
    "Levels": ([1.0, 2.0], ua.VariantType.Double),
    "Pressure": (10.0, ua.VariantType.Double),
    "Flow": (5.0, ua.VariantType.Float),
    "Speed": (100, ua.VariantType.Int32),
    "Tick": (3, ua.VariantType.Int32),
    "Secure": (42.0, ua.VariantType.Double),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _node(name: str) -> str:
    return f"ns=2;s=Press.{name}"  # the test namespace is the server's second one


class _Users(UserManager):
    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, **_: Any
    ) -> Any:
        from asyncua.crypto.permission_rules import User, UserRole

        if username is None or USERS.get(username) == password:
            return User(role=UserRole.User)
        return None


class UaServer:
    """An asyncua server in its own thread and event loop; the test talks to it through
    thread-safe calls, as to a separate machine."""

    def __init__(self, port: int, pki: Path) -> None:
        self.port = port
        self.url = f"opc.tcp://{HOST}:{port}/conduit"
        self.pki = pki
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: Server | None = None
        self.running = False
        self.nodes: dict[str, ua.NodeId] = {}

    def _run(self, coro: Coroutine[Any, Any, _T], timeout: float = 15) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def arun(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def start(self) -> None:
        """Start the server; again after stop(): the listener comes back with the same
        address space (a server process restarting with its retained values), without
        paying asyncua's second-long address space load again."""
        if not self.running:
            self._run(self._restart() if self.server is not None else self._start())
            self.running = True

    def stop(self) -> None:
        """Close the listener and every client connection."""
        if self.server is not None and self.running:
            self._run(self.server.stop())
            self.running = False

    async def _restart(self) -> None:
        assert self.server is not None
        await self.server.start()

    async def _start(self) -> None:
        server = Server(user_manager=_Users())
        await server.init()
        server.disable_clock()  # its 1 s loop would only delay stop()
        server.set_endpoint(self.url)
        server.set_server_name("Conduit test press")
        await server.set_application_uri("urn:conduit:test:server")
        server.set_security_policy(
            [
                ua.SecurityPolicyType.NoSecurity,
                ua.SecurityPolicyType.Basic256Sha256_Sign,
                ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
            ]
        )
        await server.load_certificate(str(self.pki / "server.der"))
        await server.load_private_key(str(self.pki / "server-key.pem"))
        store = TrustStore([self.pki / "server-trusts"], [])
        await store.load()
        server.set_certificate_validator(
            CertificateValidator(
                CertificateValidatorOptions.TRUSTED_VALIDATION
                | CertificateValidatorOptions.PEER_CLIENT,
                store,
            )
        )
        ns = await server.register_namespace(NS_URI)
        assert ns == 2
        press = await server.nodes.objects.add_object(ua.NodeId("Press", ns), "Press")
        for name, (initial, vtype) in VARIABLES.items():
            nid = ua.NodeId(f"Press.{name}", ns)
            await press.add_variable(nid, name, ua.Variant(initial, vtype))
            self.nodes[name] = nid
        await server.start()
        self.server = server

    def close(self) -> None:
        self.stop()
        self._run(self._cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    @staticmethod
    async def _cancel_all() -> None:
        """End what the stopped server left running (session timers, publish loops)."""
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def write(
        self,
        name: str,
        value: Any,
        source_ts: dt.datetime | None = None,
        status: int = ua.StatusCodes.Good,
    ) -> None:
        vtype = VARIABLES[name][1]
        dv = ua.DataValue(
            ua.Variant(value, vtype),
            StatusCode=ua.StatusCode(status),
            SourceTimestamp=source_ts or dt.datetime.now(dt.UTC),
        )
        server = self.server
        assert server is not None
        await self.arun(server.write_attribute_value(self.nodes[name], dv))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Server and gateway certificates; the server trusts the gateway's."""
    d = tmp_path_factory.mktemp("pki")
    certs.generate(
        d / "server.der",
        d / "server-key.pem",
        "urn:conduit:test:server",
        hostname=HOST,
        server=True,
        common_name="Test press server",
    )
    certs.generate(d / "gateway.der", d / "gateway-key.pem", "urn:conduit:test:gateway")
    (d / "server-trusts").mkdir()
    shutil.copy(d / "gateway.der", d / "server-trusts" / "gateway.der")
    return d


@pytest.fixture(scope="module")
def server(pki: Path) -> Iterator[UaServer]:
    srv = UaServer(_free_port(), pki)
    srv.start()
    yield srv
    srv.close()


def _cfg(url: str, tags: list[dict[str, Any]], **dev: Any) -> GatewayConfig:
    device: dict[str, Any] = {
        "name": "press-ua",
        "protocol": "opcua",
        "endpoint": url,
        "interval": 0.05,
        "timeout": 1.0,
        "backoff": {"initial": 0.1, "max": 0.3},
        "tags": tags,
    }
    device.update(dev)
    return GatewayConfig.model_validate(
        {"enterprise": ENT, "site": SITE, "devices": [device], "sinks": {"historian": None}}
    )


class Run:
    def __init__(self, cfg: GatewayConfig) -> None:
        self.samples: list[TagSample] = []
        self.collector = OpcUaCollector(cfg.devices[0], cfg, self.samples.extend)
        self.stop = asyncio.Event()

    def latest(self) -> dict[str, TagSample]:
        return {s.path.rsplit("/", 1)[1]: s for s in self.samples}

    def of(self, name: str) -> list[TagSample]:
        return [s for s in self.samples if s.path.endswith("/" + name)]

    def status(self) -> dict[str, Any]:
        return self.collector.status()

    async def subscribed(self) -> None:
        """Wait until the subscriptions exist and each item has sent its first value
        (servers send one when an item is created)."""

        def ready() -> bool:
            st = self.status()
            return bool(st["state"] == "connected" and st["notifications"] >= st["monitored_items"])

        await self.until(ready)

    async def until(self, pred: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; status {self.status()}; samples {self.samples}")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(cfg: GatewayConfig) -> AsyncIterator[Run]:
    run = Run(cfg)
    task = asyncio.create_task(run.collector.run(run.stop))
    try:
        yield run
    finally:
        run.stop.set()
        await asyncio.wait_for(task, 10)


def _secure(pki: Path, mode: str = "SignAndEncrypt", **over: Any) -> dict[str, Any]:
    sec = {
        "policy": "Basic256Sha256",
        "mode": mode,
        "certificate": str(pki / "gateway.der"),
        "private_key": str(pki / "gateway-key.pem"),
        "trust": [str(pki / "server.der")],
    }
    sec.update(over)
    return sec


# -- values --------------------------------------------------------------------------


async def test_initial_values_and_every_change_with_source_timestamps(server: UaServer) -> None:
    tags = [
        {"path": "press/ua/temp", "address": _node("Temp"), "unit": "degC"},
        {"path": "press/ua/count", "address": _node("Count")},
        {"path": "press/ua/running", "address": _node("Running")},
        {"path": "press/ua/recipe", "address": f"nsu={NS_URI};s=Press.Recipe"},
        {
            "path": "press/ua/pressure_bar",
            "address": _node("Raw"),
            "unit": "bar",
            "scale": {"raw": [0, 27648], "eng": [0, 100]},
        },
        {"path": "press/ua/levels", "address": _node("Levels")},
        {"path": "press/ua/ghost", "address": _node("DoesNotExist")},
    ]
    async with running(_cfg(server.url, tags)) as run:
        await run.until(lambda: len(run.latest()) == len(tags))
        await run.subscribed()
        first = run.latest()
        base = dt.datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=dt.UTC)
        writes = [
            ("Temp", 22.25),
            ("Count", 8),
            ("Running", False),
            ("Recipe", "PRESS-B"),
            ("Temp", 23.0),
            ("Count", 9),
        ]
        for i, (name, value) in enumerate(writes):
            await server.write(name, value, base + dt.timedelta(seconds=i))
            await asyncio.sleep(0.1)
        await run.until(lambda: len(run.of("count")) == 3 and len(run.of("temp")) == 3)
        status = run.status()
    assert first["temp"].value == 21.5 and first["temp"].unit == "degC"
    assert first["count"].value == 7 and first["running"].value is True
    assert first["recipe"].value == "PRESS-A"  # through the namespace URI form
    assert first["pressure_bar"].value == pytest.approx(50.0)
    assert first["pressure_bar"].unit == "bar"
    assert first["levels"].quality is Quality.BAD and "array" in first["levels"].reason
    assert first["ghost"].quality is Quality.BAD and "BadNodeIdUnknown" in first["ghost"].reason
    assert all(s.path == f"{ENT}/{SITE}/press/ua/{n}" for n, s in first.items())
    assert all(first[n].source_ts_ns is not None for n in ("temp", "count", "running"))
    # every change, in order, with the server's source timestamp
    for name, values in {
        "temp": [21.5, 22.25, 23.0],
        "count": [7, 8, 9],
        "running": [True, False],
        "recipe": ["PRESS-A", "PRESS-B"],
    }.items():
        got = run.of(name)
        assert [s.value for s in got] == values, name
        assert all(s.quality is Quality.GOOD for s in got)
    stamps = {(s.path.rsplit("/", 1)[1], s.value): s.source_ts_ns for s in run.samples}
    for i, (name, value) in enumerate(writes):
        expected = source_ns(base + dt.timedelta(seconds=i))
        assert stamps[(name.lower(), value)] == expected
    assert expected == 1777863721123456000 + 5 * 10**9
    assert status["state"] == "connected" and status["connects"] == 1
    assert status["subscriptions"] == 1 and status["monitored_items"] == 6
    assert status["notifications"] >= 6 and status["errors"] == 0
    assert status["security"] == "None/None"


async def test_bad_status_from_the_server_is_bad_quality(server: UaServer) -> None:
    tags = [{"path": "p/speed", "address": _node("Speed"), "unit": "rpm"}]
    async with running(_cfg(server.url, tags)) as run:
        await run.until(lambda: len(run.samples) == 1)
        await run.subscribed()
        await server.write("Speed", 0, status=ua.StatusCodes.BadSensorFailure)
        await run.until(lambda: len(run.samples) == 2)
        await server.write("Speed", 120)
        await run.until(lambda: len(run.samples) == 3)
    q = [(s.quality, s.value, s.reason) for s in run.samples]
    assert q[0] == (Quality.GOOD, 100, "")
    assert q[1][0] is Quality.BAD and q[1][2] == "bad: BadSensorFailure"
    assert q[2] == (Quality.GOOD, 120, "")


async def test_deadband_is_filtered_by_the_server(server: UaServer) -> None:
    tags = [{"path": "p/pressure", "address": _node("Pressure"), "deadband": 0.5}]
    async with running(_cfg(server.url, tags)) as run:
        await run.until(lambda: len(run.samples) == 1)
        await run.subscribed()
        before = run.status()["notifications"]
        await server.write("Pressure", 10.3)  # within the deadband
        await asyncio.sleep(0.3)
        assert run.status()["notifications"] == before  # the server did not even send it
        await server.write("Pressure", 11.0)
        await run.until(lambda: len(run.samples) == 2)
        status = run.status()
    assert [s.value for s in run.samples] == [10.0, 11.0]
    assert status["server_deadband"] == 1 and status["client_deadband"] == 0


async def test_deadband_falls_back_to_the_gateway_when_the_server_refuses_filters(
    server: UaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = MonitoredItemService._create_data_change_monitored_item

    async def no_filters(
        self: MonitoredItemService, params: ua.MonitoredItemCreateRequest
    ) -> ua.MonitoredItemCreateResult:
        # decoded filters are the generated class (ua.DataChangeFilter is a subclass)
        if isinstance(params.RequestedParameters.Filter, uaprotocol_auto.DataChangeFilter):
            result = ua.MonitoredItemCreateResult()
            result.StatusCode = ua.StatusCode(ua.StatusCodes.BadMonitoredItemFilterUnsupported)
            return result
        return await original(self, params)

    monkeypatch.setattr(MonitoredItemService, "_create_data_change_monitored_item", no_filters)
    tags = [
        {
            "path": "p/flow",
            "address": _node("Flow"),
            "unit": "m3/h",
            "deadband": 1.0,
            "scale": {"factor": 2.0},  # 1.0 m3/h is 0.5 raw
        }
    ]
    async with running(_cfg(server.url, tags)) as run:
        await run.until(lambda: len(run.samples) == 1)
        await run.subscribed()
        await server.write("Flow", 5.25)  # 10.5 m3/h: within 1.0 of 10.0
        await server.write("Flow", 5.4)  # 10.8: still within 1.0 of the last *reported*
        await asyncio.sleep(0.3)
        assert len(run.samples) == 1
        assert run.status()["notifications"] >= 2  # they came, the gateway dropped them
        await server.write("Flow", 5.75)  # 11.5
        await run.until(lambda: len(run.samples) == 2)
        status = run.status()
    assert [s.value for s in run.samples] == [10.0, 11.5]
    assert status["server_deadband"] == 0 and status["client_deadband"] == 1
    assert status["monitored_items"] == 1


async def test_cyclic_tags_report_every_interval(server: UaServer) -> None:
    tags = [{"path": "p/tick", "address": _node("Tick"), "mode": "cyclic", "interval": 0.1}]
    async with running(_cfg(server.url, tags)) as run:
        await run.until(lambda: len(run.samples) >= 6)
        await run.subscribed()
        await server.write("Tick", 4)
        await run.until(lambda: run.samples[-1].value == 4)
    values = [s.value for s in run.samples]
    assert values[:6] == [3] * 6 and values[-1] == 4
    ts = [s.recv_ts_ns for s in run.samples[:6]]
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(ts)]
    assert all(0.05 < g < 0.5 for g in gaps), gaps  # every 0.1 s, however loaded the host


# -- security ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
async def test_basic256sha256_with_trusted_server_and_username(
    server: UaServer, pki: Path, mode: str
) -> None:
    tags = [{"path": "p/secure", "address": _node("Secure")}]
    cfg = _cfg(
        server.url,
        tags,
        security=_secure(pki, mode),
        username="operator",
        password=USERS["operator"],
    )
    async with running(cfg) as run:
        await run.until(lambda: len(run.samples) == 1)
        status = run.status()
    assert run.samples[0].value == 42.0 and run.samples[0].quality is Quality.GOOD
    assert status["security"] == f"Basic256Sha256/{mode}"
    assert status["server_certificate"] == certs.thumbprint(pki / "server.der")
    assert status["certificate"] == certs.thumbprint(pki / "gateway.der")


async def test_untrusted_server_certificate_is_refused_clearly(
    server: UaServer, pki: Path, tmp_path: Path
) -> None:
    own = tmp_path / "own"
    own.mkdir()
    shutil.copy(pki / "gateway.der", own / "gateway.der")
    shutil.copy(pki / "gateway-key.pem", own / "gateway-key.pem")
    other = tmp_path / "trusted"
    certs.generate(other / "other.der", tmp_path / "other-key.pem", "urn:someone:else")
    sec = _secure(
        pki,
        certificate=str(own / "gateway.der"),
        private_key=str(own / "gateway-key.pem"),
        trust=[str(other)],  # a folder: trusts other.der, not this server
    )
    tags = [{"path": "p/secure", "address": _node("Secure")}]
    async with running(_cfg(server.url, tags, security=sec)) as run:
        await run.until(lambda: run.status()["last_error"] is not None)
        await run.until(lambda: len(run.samples) == 1)
        status = run.status()
    err = status["last_error"]
    fingerprint = certs.thumbprint(pki / "server.der")
    assert "\n" not in err
    assert server.url in err and "not trusted" in err and fingerprint in err
    saved = own / "rejected" / (certs.load_certificate(pki / "server.der").sha1.replace(":", ""))
    saved = saved.with_suffix(".der")
    assert str(saved) in err and "security.trust" in err
    assert saved.read_bytes() == certs.load_certificate(pki / "server.der").der
    assert status["connects"] == 0 and status["state"] in ("backoff", "connecting")
    (s,) = run.samples  # no value ever came through; the tag just went stale
    assert s.quality is Quality.STALE and s.value is None and "not trusted" in s.reason


@pytest.mark.parametrize("mode", [0o644, 0o640])
async def test_private_key_readable_by_others_is_refused(
    server: UaServer, pki: Path, tmp_path: Path, mode: int
) -> None:
    """The key the server trusts, but in a file the group or everyone may read: the
    collector refuses to use it (one line: chmod 600) and never connects."""
    key = tmp_path / "gateway-key.pem"
    shutil.copy(pki / "gateway-key.pem", key)
    key.chmod(mode)
    sec = _secure(pki, private_key=str(key))
    tags = [{"path": "p/secure", "address": _node("Secure")}]
    async with running(_cfg(server.url, tags, security=sec)) as run:
        await run.until(lambda: run.status()["last_error"] is not None)
        status = run.status()
    err = status["last_error"]
    assert f"chmod 600 {key}" in err and f"mode 0{mode:o}" in err and "\n" not in err
    assert status["connects"] == 0
    assert not [s for s in run.samples if s.quality is Quality.GOOD]
    with pytest.raises(certs.KeyPermissionError, match="chmod 600"):
        certs.load_private_key_der(key)
    key.chmod(0o600)
    assert certs.load_private_key_der(key)  # the same file is fine once private


async def test_wrong_password_fails_clearly(server: UaServer) -> None:
    tags = [{"path": "p/secure", "address": _node("Secure")}]
    cfg = _cfg(server.url, tags, username="operator", password="guess")
    async with running(cfg) as run:
        await run.until(lambda: run.status()["last_error"] is not None)
        status = run.status()
    err = status["last_error"]
    assert "refused user 'operator'" in err and "BadUserAccessDenied" in err
    assert "devices[press-ua].username and password" in err
    assert status["connects"] == 0 and not [s for s in run.samples if s.quality is Quality.GOOD]


async def test_generated_certificate_the_server_does_not_trust_yet(
    server: UaServer, pki: Path, tmp_path: Path
) -> None:
    cert, key = tmp_path / "pki" / "gw.der", tmp_path / "pki" / "gw-key.pem"
    sec = _secure(pki, certificate=str(cert), private_key=str(key))
    tags = [{"path": "p/secure", "address": _node("Secure")}]
    async with running(_cfg(server.url, tags, security=sec)) as run:
        await run.until(lambda: run.status()["last_error"] is not None)
        status = run.status()
    assert cert.exists() and key.exists() and (key.stat().st_mode & 0o777) == 0o600
    err = status["last_error"]
    assert "does not accept the gateway certificate" in err and str(cert) in err
    assert certs.thumbprint(cert) in err and "Bad" in err
    assert certs.load_certificate(cert).application_uri == certs.default_application_uri()


# -- reconnects ----------------------------------------------------------------------


async def test_server_restart_goes_stale_then_resumes(server: UaServer) -> None:
    tags = [
        {"path": "p/temp", "address": _node("Temp"), "unit": "degC"},
        {"path": "p/count", "address": _node("Count")},
    ]
    await server.write("Temp", 21.5)
    await server.write("Count", 7)
    cfg = _cfg(server.url, tags, interval=0.1, timeout=0.5)
    try:
        async with running(cfg) as run:
            await run.until(lambda: len(run.samples) == 2)
            await run.subscribed()
            await asyncio.to_thread(server.stop)
            await run.until(lambda: len(run.samples) == 4)
            assert {s.quality for s in run.samples[2:]} == {Quality.STALE}
            assert run.status()["state"] in ("backoff", "connecting")
            await asyncio.sleep(0.3)
            assert len(run.samples) == 4  # down: nothing more until it recovers
            await server.write("Temp", 30.5)  # changed while the gateway could not see it
            await asyncio.to_thread(server.start)
            await run.until(lambda: len(run.of("count")) == 3, timeout=8)
            await server.write("Count", 11)
            await run.until(lambda: run.of("count")[-1].value == 11)
            status = run.status()
    finally:
        server.start()  # the module's other tests need it
    temp = [(s.quality, s.value) for s in run.of("temp")]
    assert temp == [(Quality.GOOD, 21.5), (Quality.STALE, 21.5), (Quality.GOOD, 30.5)]
    assert [s.value for s in run.of("count")] == [7, 7, 7, 11]
    assert "unreachable" in run.of("count")[1].reason
    assert status["connects"] == 2 and status["state"] == "connected"


# -- read-only by construction, certificates ------------------------------------------


def test_the_collectors_ask_for_no_write_service() -> None:
    import otconduit.gateway.collectors.opcua as opcua_mod
    import otconduit.gateway.collectors.s7 as s7_mod

    forbidden = [
        "write_value", "write_values", "write_attribute", "set_value", "call_method",
        ".call(", "add_nodes", "delete_nodes", "history_update", "WriteRequest",
        "CallRequest", "db_write", "write_area", "write_multi_vars", "ab_write", "mb_write",
        "plc_stop", "plc_hot_start", "plc_cold_start", "download", "set_plc", "delete(",
        "write_tag", "force_bit",
    ]  # fmt: skip
    for mod in (opcua_mod, s7_mod):
        assert mod.__file__ is not None
        text = Path(mod.__file__).read_text()
        assert not [f for f in forbidden if f in text], mod.__name__


def test_certificate_is_generated_once_and_reused(tmp_path: Path) -> None:
    cert_path, key_path = tmp_path / "a" / "gw.der", tmp_path / "a" / "gw.pem"
    cert, created = certs.ensure_certificate(cert_path, key_path, "urn:x:gateway")
    assert created and cert.application_uri == "urn:x:gateway"
    again, created2 = certs.ensure_certificate(cert_path, key_path)
    assert not created2 and again.der == cert.der
    parsed = x509.load_der_x509_certificate(cert_path.read_bytes())
    assert parsed.signature_hash_algorithm is not None
    assert parsed.signature_hash_algorithm.name == "sha256"
    assert parsed.public_key().key_size == 2048  # type: ignore[union-attr]
    usage = parsed.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and usage.data_encipherment
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    tp = certs.thumbprint(cert_path)
    assert tp.startswith("SHA-1 ") and ", SHA-256 " in tp
    sha1 = tp.split(",")[0].removeprefix("SHA-1 ")
    assert len(sha1.split(":")) == 20 and sha1 == cert.sha1
    # PEM works as well, and reads back to the same certificate
    pem = tmp_path / "gw.pem.crt"
    pem.write_bytes(parsed.public_bytes(serialization.Encoding.PEM))
    assert certs.load_certificate(pem).der == cert.der


def test_certificate_problems_are_one_line_and_say_what_to_do(tmp_path: Path) -> None:
    a, ka = tmp_path / "a.der", tmp_path / "a.pem"
    b, kb = tmp_path / "b.der", tmp_path / "b.pem"
    certs.generate(a, ka, "urn:a")
    certs.generate(b, kb, "urn:b")
    with pytest.raises(certs.CertificateError, match="is not the private key of"):
        certs.ensure_certificate(a, kb)
    with pytest.raises(certs.CertificateError, match="names application URI 'urn:a'"):
        certs.ensure_certificate(a, ka, "urn:other")
    ka.unlink()
    with pytest.raises(certs.CertificateError) as err:
        certs.ensure_certificate(a, ka)
    assert f"{ka} is missing but {a} exists" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "junk.der").write_bytes(b"not a certificate")
    with pytest.raises(certs.CertificateError, match=r"not an X\.509 certificate"):
        certs.thumbprint(tmp_path / "junk.der")
    with pytest.raises(certs.CertificateError, match="does not exist"):
        certs.load_trust([tmp_path / "nowhere.der"])


def test_basic256sha256_needs_certificate_paths_in_the_config() -> None:
    with pytest.raises(ValueError, match="needs 'certificate' and 'private_key'"):
        _cfg("opc.tcp://127.0.0.1:4840", [], security={"policy": "Basic256Sha256", "mode": "Sign"})
