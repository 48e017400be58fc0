"""OPC UA collector (asyncua client): one Read for the initial values, then
subscriptions; read-only by construction - the only services this module asks for are
GetEndpoints, the session services, Read, CreateSubscription and CreateMonitoredItems
(asyncua's own keep-alive probe is a Read as well).

- Tag ``address`` is a NodeId: ``ns=2;s=Press.Temp``, ``ns=3;i=1001``, or with the
  namespace URI, which survives a server re-ordering its namespaces:
  ``nsu=urn:acme:press;s=Temp``.
- One subscription per interval group: publishing interval and each item's sampling
  interval are the tag's ``interval`` (or the device's). On-change items keep a queue of
  ``QUEUE_SIZE`` values so changes between two publishes are not lost.
- Deadband: numeric tags with a ``deadband`` ask the server for an absolute
  DataChangeFilter (the deadband turned into raw units through the tag's scaling); a
  server that refuses the filter gets the item without it. Either way the deadband is
  also applied here, from the last value *reported* (DataChangeFilter, OPC 10000-4
  §7.22.2; some servers, asyncua's among them, compare with the previous sample).
- Cyclic tags are reported every interval with their latest value.
- Quality: Good status -> GOOD; Bad or Uncertain status -> BAD with the status name as
  reason; the value's SourceTimestamp becomes ``source_ts_ns``.
- Session loss (asyncua's watchdog, a socket closed, a subscription status change) ends
  the session: the collector backs off and reconnects, reads again and subscribes
  again; tags turn STALE once the server has been gone for ``stale_after``.

Security (OPC 10000-2 and -4): policy ``None`` or ``Basic256Sha256`` with ``Sign`` or
``SignAndEncrypt``. The gateway's application certificate is generated when missing
(:mod:`otconduit.gateway.certs`). The server's certificate, taken from its endpoint
description, must be one of ``security.trust`` (files or folders): an unknown one is
refused with one line naming its thumbprint, and a copy is saved under ``rejected/``
next to the gateway certificate for the operator to verify and move into the trust
list. Username/password login goes through the endpoint's user token policy (asyncua
encrypts the password with the server certificate when the policy asks for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otconduit.gateway import certs
from otconduit.gateway.codec import engineering
from otconduit.gateway.collectors import Emit
from otconduit.gateway.collectors.tagstate import TagState, interval_of, stale_limit
from otconduit.gateway.config import Device, GatewayConfig, Tag
from otconduit.gateway.model import Quality, TagSample, Value

if TYPE_CHECKING:
    from asyncua import Client, ua
    from asyncua.common.subscription import Subscription

log = logging.getLogger(__name__)

QUEUE_SIZE = 10  # values a server keeps per on-change item between two publishes
READ_CHUNK = 500  # nodes per Read request (servers cap MaxNodesPerRead)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_LOGIN_REFUSED = {"BadUserAccessDenied", "BadIdentityTokenInvalid", "BadIdentityTokenRejected"}
_CERT_REFUSED = {
    "BadCertificateUntrusted",
    "BadSecurityChecksFailed",
    "BadCertificateInvalid",
    "BadCertificateUriInvalid",
    "BadCertificateUseNotAllowed",
    "BadCertificateTimeInvalid",
    "BadCertificateRevoked",
}
_FILTER_REFUSED = {
    "BadFilterNotAllowed",
    "BadMonitoredItemFilterUnsupported",
    "BadMonitoredItemFilterInvalid",
    "BadDeadbandFilterInvalid",
}
_NUMERIC = {
    "SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64", "Float", "Double",
}  # fmt: skip


class DeviceDown(Exception):
    """The session is unusable (or cannot be opened): ``str()`` is one line saying what
    happened, where, and what to do about it."""


class UntrustedServer(DeviceDown):
    """The server's certificate is not in the trust list."""

    def __init__(self, message: str, thumbprint: str, saved: Path | None) -> None:
        super().__init__(message)
        self.thumbprint = thumbprint
        self.saved = saved


def source_ns(ts: dt.datetime | None) -> int | None:
    """An OPC UA DateTime (UTC) as ns since the Unix epoch; None when absent."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    if ts <= dt.datetime(1601, 1, 2, tzinfo=dt.UTC):  # DateTime 0 means "no timestamp"
        return None
    return (ts - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def plain(raw: Any) -> tuple[Value, str]:
    """A Variant's value as a sample value, or (None, why not)."""
    if raw is None or isinstance(raw, bool | str | float):
        return raw, ""
    if isinstance(raw, int):
        return int(raw), ""  # IntEnum and friends become plain ints
    if isinstance(raw, list | tuple):
        return None, "array values are not supported"
    if isinstance(raw, dt.datetime):
        return raw.isoformat(), ""
    if isinstance(raw, bytes | bytearray):
        return raw.hex(), ""
    if type(raw).__name__ == "LocalizedText":
        return raw.Text or "", ""
    return str(raw), ""


def coerce(value: Value, tag: Tag) -> Value:
    """Convert to the tag's type when the configuration names one explicitly."""
    if value is None or "type" not in tag.model_fields_set:
        return value
    if tag.type == "string":
        return str(value)
    if tag.type == "bool":
        if isinstance(value, str):
            raise ValueError(f"cannot read {value!r} as bool")
        return bool(value)
    if isinstance(value, str):
        raise ValueError(f"cannot read {value!r} as {tag.type}")
    if tag.type.startswith("float"):
        return float(value)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{value!r} is not an integer ({tag.type})")
    return int(value)


def raw_deadband(tag: Tag) -> float:
    """The tag's deadband (engineering units) in the server's raw units."""
    s = tag.scale
    if s is None:
        return tag.deadband
    if s.raw is not None and s.eng is not None:
        slope = (s.eng[1] - s.eng[0]) / (s.raw[1] - s.raw[0])
    else:
        slope = s.factor
    return tag.deadband / abs(slope) if slope else 0.0


class OpcUaCollector:
    """One OPC UA server: subscriptions per interval group, read-only, until ``stop``."""

    def __init__(self, device: Device, cfg: GatewayConfig, emit: Emit) -> None:
        from asyncua import ua  # guarded: asyncua is an optional extra

        if device.protocol != "opcua" or not device.endpoint:
            raise ValueError(f"device {device.name}: the OPC UA collector needs an endpoint")
        self.device = device
        self.cfg = cfg
        self.node_ids: dict[str, ua.NodeId] = {}
        for t in device.tags:
            try:
                self.node_ids[t.path] = ua.NodeId.from_string(t.address.strip())
            except Exception as exc:
                raise ValueError(
                    f"device {device.name}, tag {t.path}: {t.address!r} is not a NodeId "
                    f"(ns=2;s=Name, ns=3;i=1001, nsu=urn:...;s=Name): {exc}"
                ) from None
        self.groups: dict[float, list[Tag]] = {}
        for t in device.tags:
            self.groups.setdefault(interval_of(t, device), []).append(t)
        sec = device.security
        self.stats: dict[str, Any] = {
            "device": device.name,
            "protocol": "opcua",
            "endpoint": device.endpoint,
            "security": f"{sec.policy}/{sec.mode}",
            "state": "starting",
            "reads": 0,
            "notifications": 0,
            "errors": 0,
            "connects": 0,
            "samples": 0,
            "last_error": None,
            "last_ok_ts": None,
            "backoff_s": 0.0,
            "subscriptions": 0,
            "monitored_items": 0,
            "server_deadband": 0,  # items the server filters with our deadband
            "client_deadband": 0,  # items whose deadband filter the server refused
            "server_certificate": None,
            "certificate": None,  # the gateway's own thumbprint (secure policies)
        }
        self.state = TagState(device, cfg, emit, self.stats)
        self._client: Client | None = None
        self._session_up = False
        self._lost: asyncio.Event = asyncio.Event()
        self._lost_reason = ""
        self._handles: dict[int, Tag] = {}
        self._consumers: list[asyncio.Task[None]] = []

    # -- status ------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return dict(self.stats)

    # -- lifecycle ---------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Collect until ``stop``; every failure is counted, backed off and retried."""
        ticker = asyncio.create_task(self._tick(stop))
        backoff = self.device.backoff.initial
        try:
            while not stop.is_set():
                try:
                    await self._session(stop)
                except DeviceDown as exc:
                    self._fail(str(exc))
                except certs.CertificateError as exc:
                    self._fail(f"device {self.device.name}: {exc}")
                except Exception as exc:
                    if not self._expected(exc):  # a bug must not end collection: log, retry
                        log.exception("OPC UA device %s", self.device.name)
                    self._fail(self._explain(exc))
                if self.stats["state"] == "connected":
                    backoff = self.device.backoff.initial  # it worked for a while
                await self._close()
                if stop.is_set():
                    break
                self.stats["state"] = "backoff"
                self.stats["backoff_s"] = backoff
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, self.device.backoff.max)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await self._close()
            self.stats["state"] = "stopped"

    def _fail(self, reason: str) -> None:
        self.state.unreachable()
        self.stats["errors"] += 1
        if reason != self.stats["last_error"]:
            log.warning("OPC UA device %s: %s", self.device.name, reason)
        self.stats["last_error"] = reason

    @staticmethod
    def _expected(exc: BaseException) -> bool:
        from asyncua import ua

        return isinstance(exc, ua.UaError | OSError | TimeoutError)

    def _explain(self, exc: BaseException) -> str:
        """One line for an exception from asyncua or the network: what, where, what to do."""
        from asyncua import ua

        d, ep = self.device, self.device.endpoint
        if isinstance(exc, ua.UaStatusCodeError):
            name = ua.StatusCode(exc.code).name
            if name in _LOGIN_REFUSED:
                who = f"user {d.username!r}" if d.username else "anonymous login"
                return (
                    f"{ep} refused {who} ({name}): check devices[{d.name}].username and "
                    "password against the server's user list"
                )
            if name in _CERT_REFUSED and d.security.policy != "None":
                return (
                    f"{ep} does not accept the gateway certificate {d.security.certificate} "
                    f"({name}; {self.stats['certificate']}): add it to the server's trusted "
                    "certificates; the gateway retries by itself"
                )
            if name == "BadSecurityPolicyRejected":
                return (
                    f"{ep} rejected security {d.security.policy}/{d.security.mode} ({name}): "
                    "choose a policy and mode the server offers"
                )
            return f"{ep}: {name} ({ua.StatusCode(exc.code).doc})"
        if isinstance(exc, TimeoutError):
            return f"no answer from {ep} within {d.timeout:g} s"
        if isinstance(exc, ConnectionRefusedError):
            return f"cannot connect to {ep}: connection refused (server down or wrong port?)"
        if isinstance(exc, OSError):
            return f"connection to {ep} failed: {exc.strerror or exc}"
        return f"{ep}: {type(exc).__name__}: {exc}"

    # -- one session -------------------------------------------------------------------
    async def _session(self, stop: asyncio.Event) -> None:
        self.stats["state"] = "connecting"
        client = await self._connect()
        namespaces = await self._namespaces(client)
        nodes = {path: self._resolve(nid, namespaces) for path, nid in self.node_ids.items()}
        types = await self._initial_read(client, nodes)
        await self._subscribe(client, nodes, types)
        self.stats["connects"] += 1
        self.stats["state"] = "connected"
        waiters: list[asyncio.Task[Any]] = [
            asyncio.create_task(stop.wait()),
            asyncio.create_task(self._lost.wait()),
        ]
        try:
            await asyncio.wait([*waiters, *self._consumers], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        if stop.is_set():
            return
        for task in self._consumers:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise DeviceDown(f"session to {self.device.endpoint} failed: {task.exception()}")
        why = self._lost_reason or "subscription ended"
        raise DeviceDown(f"session to {self.device.endpoint} lost: {why}")

    async def _connect(self) -> Client:
        from asyncua import Client, ua
        from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

        d, sec = self.device, self.device.security
        assert d.endpoint is not None
        probe = max(0.2, min(5.0, d.timeout))  # asyncua reads the server state this often
        client = Client(d.endpoint, timeout=d.timeout, watchdog_intervall=probe)
        client.name = client.description = f"Conduit gateway {self.cfg.name}"
        client.product_uri = "urn:conduit:gateway"
        client.session_timeout = 60_000  # ms: a vanished gateway's session is dropped soon
        self._client = client
        self._lost = asyncio.Event()
        self._lost_reason = ""

        async def lost(exc: Exception) -> None:
            self._lost_reason = self._explain(exc)
            self._lost.set()

        client.connection_lost_callback = lost
        if sec.policy != "None":
            assert sec.certificate is not None and sec.private_key is not None
            own, created = certs.ensure_certificate(
                sec.certificate, sec.private_key, sec.application_uri
            )
            if created:
                log.warning(
                    "OPC UA device %s: generated the gateway certificate %s (%s); the server "
                    "must trust it",
                    d.name,
                    sec.certificate,
                    own.thumbprint,
                )
            self.stats["certificate"] = own.thumbprint
            client.application_uri = own.application_uri or certs.default_application_uri()
            server_der = await self._trusted_server_certificate(client)
            await client.set_security(
                SecurityPolicyBasic256Sha256,
                own.der,
                certs.load_private_key_der(sec.private_key),
                server_certificate=server_der,
                mode=getattr(ua.MessageSecurityMode, sec.mode),
            )
        elif sec.application_uri:
            client.application_uri = sec.application_uri
        if d.username is not None:
            client.set_user(d.username)
            client.set_password(d.password or "")
        await asyncio.wait_for(client.connect(), 4 * d.timeout + 1)
        self._session_up = True
        return client

    async def _trusted_server_certificate(self, client: Client) -> bytes:
        """The server certificate of the endpoint matching our policy and mode, if it is
        in the trust list; otherwise UntrustedServer (and a copy under ``rejected/``)."""
        from asyncua import ua
        from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
        from asyncua.crypto.uacrypto import x509_from_der

        d, sec = self.device, self.device.security
        endpoints = await asyncio.wait_for(
            client.connect_and_get_server_endpoints(), 2 * d.timeout + 1
        )
        mode = getattr(ua.MessageSecurityMode, sec.mode)
        match = [
            e
            for e in endpoints
            if e.SecurityPolicyUri == SecurityPolicyBasic256Sha256.URI and e.SecurityMode == mode
        ]
        if not match:
            offered = sorted(
                {
                    f"{e.SecurityPolicyUri.rsplit('#', 1)[-1]}/{e.SecurityMode.name}"
                    for e in endpoints
                }
            )
            raise DeviceDown(
                f"{d.endpoint} offers no {sec.policy}/{sec.mode} endpoint (it offers "
                f"{', '.join(offered)}): set devices[{d.name}].security to one of those"
            )
        blob = match[0].ServerCertificate or b""
        x509 = x509_from_der(blob) if blob else None
        if x509 is None:
            raise DeviceDown(f"{d.endpoint} sent no server certificate for {sec.policy}")
        from cryptography.hazmat.primitives.serialization import Encoding

        cert = certs.parse_certificate(x509.public_bytes(Encoding.DER))
        self.stats["server_certificate"] = cert.thumbprint
        if cert.der in certs.load_trust(list(sec.trust)):
            return cert.der
        saved: Path | None = None
        if sec.certificate is not None:
            saved = sec.certificate.parent / "rejected" / f"{cert.sha1.replace(':', '')}.der"
            with contextlib.suppress(OSError):
                saved.parent.mkdir(parents=True, exist_ok=True)
                saved.write_bytes(cert.der)
        where = f"add {saved}" if saved is not None else "add the server certificate file"
        raise UntrustedServer(
            f"{d.endpoint} presented certificate '{cert.subject}' ({cert.thumbprint}) which "
            f"is not trusted: compare the thumbprint with the server's, then {where} to "
            f"devices[{d.name}].security.trust",
            cert.thumbprint,
            saved,
        )

    async def _namespaces(self, client: Client) -> list[str]:
        if not any(getattr(n, "NamespaceUri", None) for n in self.node_ids.values()):
            return []
        self.stats["reads"] += 1
        return list(await client.get_namespace_array())

    def _resolve(self, nid: ua.NodeId, namespaces: list[str]) -> ua.NodeId:
        from asyncua import ua

        uri = getattr(nid, "NamespaceUri", None)
        if not uri:
            return nid
        if uri not in namespaces:
            raise DeviceDown(
                f"{self.device.endpoint} has no namespace {uri!r} (it has {len(namespaces)}): "
                "check the tag addresses"
            )
        return ua.NodeId(nid.Identifier, ua.Int16(namespaces.index(uri)), nid.NodeIdType)

    async def _initial_read(self, client: Client, nodes: dict[str, ua.NodeId]) -> dict[str, str]:
        """Read every tag once; report it; return each tag's Variant type name."""
        from asyncua import ua

        paths = list(nodes)
        types: dict[str, str] = {}
        for i in range(0, len(paths), READ_CHUNK):
            chunk = paths[i : i + READ_CHUNK]
            self.stats["reads"] += 1
            values = await client.uaclient.read_attributes(
                [nodes[p] for p in chunk], ua.AttributeIds.Value
            )
            now = time.time_ns()
            out: list[TagSample | None] = []
            for path, dv in zip(chunk, values, strict=True):
                tag = self.state.tags[path]
                if dv.Value is not None:
                    types[path] = dv.Value.VariantType.name
                out.append(self._offer(tag, dv, now, initial=True))
            self.state.emit(out)
        return types

    def _offer(
        self, tag: Tag, dv: ua.DataValue, now: int, initial: bool = False
    ) -> TagSample | None:
        status = dv.StatusCode
        raw = dv.Value.Value if dv.Value is not None else None
        value, why = plain(raw)
        quality, reason = Quality.GOOD, ""
        if status is not None and not status.is_good():
            kind = "uncertain" if status.is_uncertain() else "bad"
            quality, reason = Quality.BAD, f"{kind}: {status.name}"
        elif why:
            quality, reason = Quality.BAD, why
        if value is not None and not why:
            try:
                value = engineering(coerce(value, tag), tag)
            except (ValueError, TypeError, OverflowError) as exc:
                value, quality, reason = None, Quality.BAD, f"cannot convert: {exc}"
        if quality is Quality.GOOD:
            self.stats["last_ok_ts"] = now
        report = False if (tag.mode == "cyclic" and not initial) else None
        return self.state.offer(
            tag,
            value,
            quality,
            reason,
            source_ts_ns=source_ns(dv.SourceTimestamp),
            now=now,
            report=report,
        )

    async def _subscribe(
        self, client: Client, nodes: dict[str, ua.NodeId], types: dict[str, str]
    ) -> None:
        from asyncua import ua

        self._handles = {}
        self.stats.update(subscriptions=0, monitored_items=0, server_deadband=0, client_deadband=0)
        handle = 0
        for interval, tags in sorted(self.groups.items()):
            sub = await client.create_subscription(interval * 1000.0, None)
            self.stats["subscriptions"] += 1
            requests: list[ua.MonitoredItemCreateRequest] = []
            filtered: set[int] = set()
            for tag in tags:
                handle += 1
                self._handles[handle] = tag
                flt = None
                if tag.deadband > 0 and types.get(tag.path) in _NUMERIC and raw_deadband(tag) > 0:
                    flt = ua.DataChangeFilter(
                        Trigger=ua.DataChangeTrigger.StatusValue,
                        DeadbandType=ua.DeadbandType.Absolute,
                        DeadbandValue=raw_deadband(tag),
                    )
                    filtered.add(handle)
                requests.append(self._item(nodes[tag.path], handle, interval, tag, flt))
            results = await sub.create_monitored_items(requests)
            retry = []
            for req, res in zip(requests, results, strict=True):
                h = req.RequestedParameters.ClientHandle
                if not isinstance(res, ua.StatusCode):
                    self.stats["monitored_items"] += 1
                    self.stats["server_deadband"] += h in filtered
                elif res.name in _FILTER_REFUSED and h in filtered:
                    self.stats["client_deadband"] += 1
                    tag = self._handles[h]
                    retry.append(self._item(nodes[tag.path], h, interval, tag, None))
                else:
                    self._refused(self._handles[h], res)
            if retry:
                for req, res in zip(retry, await sub.create_monitored_items(retry), strict=True):
                    if isinstance(res, ua.StatusCode):
                        self._refused(self._handles[req.RequestedParameters.ClientHandle], res)
                    else:
                        self.stats["monitored_items"] += 1
            self._consumers.append(asyncio.create_task(self._consume(sub)))

    @staticmethod
    def _item(
        node: ua.NodeId, handle: int, interval: float, tag: Tag, flt: ua.DataChangeFilter | None
    ) -> ua.MonitoredItemCreateRequest:
        from asyncua import ua

        params = ua.MonitoringParameters(
            ClientHandle=handle,
            SamplingInterval=interval * 1000.0,
            QueueSize=1 if tag.mode == "cyclic" else QUEUE_SIZE,
            DiscardOldest=True,
            Filter=flt,
        )
        return ua.MonitoredItemCreateRequest(
            ItemToMonitor=ua.ReadValueId(NodeId=node, AttributeId=ua.AttributeIds.Value),
            MonitoringMode=ua.MonitoringMode.Reporting,
            RequestedParameters=params,
        )

    def _refused(self, tag: Tag, status: ua.StatusCode) -> None:
        reason = f"cannot subscribe to {tag.address}: {status.name}"
        self.state.emit([self.state.offer(tag, None, Quality.BAD, reason)])

    async def _consume(self, sub: Subscription) -> None:
        from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent

        async for ev in sub:
            if isinstance(ev, DataChangeEvent):
                tag = self._handles.get(int(ev.data.subscription_data.client_handle or 0))
                dv = ev.data.monitored_item.Value
                if tag is None or dv is None:
                    continue
                self.stats["notifications"] += 1
                self.state.emit([self._offer(tag, dv, time.time_ns())])
            elif isinstance(ev, StatusChangeEvent):
                status = ev.notification.Status
                if status is not None and not status.is_good():
                    self._lost_reason = f"subscription status {status.name}"
                    self._lost.set()
                    return

    async def _close(self) -> None:
        consumers, self._consumers = self._consumers, []
        for task in consumers:
            task.cancel()
        for task in consumers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        client, self._client = self._client, None
        up, self._session_up = self._session_up, False
        if client is None:
            return
        if not up:  # connect failed: asyncua has already closed what it opened
            with contextlib.suppress(Exception):
                client.disconnect_socket()
            return
        with contextlib.suppress(Exception):  # CloseSession, and stops asyncua's tasks
            await asyncio.wait_for(client.disconnect(), self.device.timeout + 1)

    # -- cyclic reports and staleness --------------------------------------------------
    async def _tick(self, stop: asyncio.Event) -> None:
        """Cyclic reports on their interval while a session is up (counted from the
        session's initial Read, which reported them), and staleness checks."""
        cyclic = {
            iv: [t for t in tags if t.mode == "cyclic"]
            for iv, tags in self.groups.items()
            if any(t.mode == "cyclic" for t in tags)
        }
        limits = [stale_limit(t, self.device) for t in self.device.tags]
        tick = min(0.5, max(0.02, min(limits) / 5))
        loop = asyncio.get_running_loop()
        due: dict[float, float] = {}
        while not stop.is_set():
            up = self.stats["state"] == "connected" and not self._lost.is_set()
            if up and not due:
                due = {iv: loop.time() + iv for iv in cyclic}
            elif not up:
                due = {}
            wake = min([loop.time() + tick, *due.values()])
            await asyncio.sleep(max(0.0, wake - loop.time()))
            now = time.time_ns()
            if up and self.stats["state"] == "connected" and not self._lost.is_set():
                self.state.refresh(now)
                out: list[TagSample | None] = []
                for iv, when in due.items():
                    if loop.time() >= when - 0.001:
                        due[iv] = max(when + iv, loop.time())
                        out += [self.state.repeat(t, now) for t in cyclic[iv]]
                self.state.emit(out)
            reason = self.stats["last_error"] or "no session with the server"
            self.state.emit(self.state.due_stale(f"device unreachable: {reason}", now))
