"""MQTT delivery shared by the Unified Namespace and Sparkplug B sinks.

:class:`MqttLink` is one MQTT session (one paho-mqtt client, a fresh one per connection
so no message of an old session can leak into a new one), driven by the asyncio loop:
the blocking TCP/TLS connect runs in a worker thread, then reads and writes are loop
callbacks on the socket. Every outcome is a future: CONNACK, each QoS 1 PUBACK, and a
*barrier* (an UNSUBSCRIBE of a topic we never subscribed to, whose UNSUBACK proves the
broker has processed everything sent before it on this connection — how QoS 0 messages,
which Sparkplug requires for births and data, are confirmed).

:class:`MqttSink` is the store-and-forward sender: every sample goes through a
:class:`~otconduit.gateway.buffer.SampleBuffer`; a supervisor task connects with
back-off, lets the subclass announce itself (births, online status), then sends the
queue oldest first in chunks, at most ``WINDOW`` unconfirmed chunks at a time, and acks
each chunk to the buffer once the broker confirmed it. When the session breaks, every
unconfirmed sample is still queued and is sent again in the next session (at least
once, never reordered). Samples queued outside the current session are *historical*
and are replayed at ``buffer.replay_rate`` per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from otconduit.gateway.buffer import Queued, SampleBuffer, buffer_path
from otconduit.gateway.config import PLAINTEXT_CREDENTIALS, GatewayConfig, Mqtt
from otconduit.gateway.model import TagSample

log = logging.getLogger(__name__)

CHUNK = 500  # samples per confirmation unit (subclasses may lower it)
WINDOW = 32  # unconfirmed chunks in flight
CLOSE_DRAIN_S = 5.0  # how long close() keeps sending what is queued
BARRIER_TOPIC = "$conduit/barrier"  # never subscribed; '$' topics are the broker's


class MqttLinkError(Exception):
    """A session could not be established (refused, unreachable, TLS, auth)."""


class MqttLinkLost(Exception):
    """The session ended before the broker confirmed an operation."""


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool = False


def tls_context(cfg: Mqtt) -> ssl.SSLContext | None:
    if cfg.tls is None:
        return None
    tls = cfg.tls
    ctx = ssl.create_default_context(cafile=str(tls.ca) if tls.ca else None)
    if tls.cert is not None:
        ctx.load_cert_chain(str(tls.cert), str(tls.key) if tls.key else None)
    if tls.insecure:
        ctx.check_hostname = False  # the CA is still checked
    return ctx


class MqttLink:
    """One MQTT 3.1.1 session with a clean start."""

    def __init__(
        self,
        cfg: Mqtt,
        client_id: str,
        *,
        will: Will | None = None,
        on_message: Callable[[str, bytes], None] | None = None,
        max_inflight: int = 1000,
    ) -> None:
        self.cfg = cfg
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._on_message = on_message
        self._connack: asyncio.Future[None] = self._loop.create_future()
        _quiet(self._connack)  # a failed CONNECT is reported by connect() or not at all
        self.lost: asyncio.Future[str] = self._loop.create_future()
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._misc: asyncio.Task[None] | None = None
        c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=paho.MQTTv311,
        )
        c.enable_logger(log)
        c.connect_timeout = cfg.connect_timeout
        c.max_inflight_messages_set(max_inflight)
        c.max_queued_messages_set(0)
        if cfg.username is not None:
            c.username_pw_set(cfg.username, cfg.password)
        ctx = tls_context(cfg)
        if ctx is not None:
            c.tls_set_context(ctx)
            if cfg.tls is not None and cfg.tls.insecure:
                c.tls_insecure_set(True)
        if will is not None:
            c.will_set(will.topic, will.payload, will.qos, will.retain)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_ack
        c.on_unsubscribe = self._on_unsuback
        c.on_subscribe = self._on_unsuback
        c.on_message = self._on_msg
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_register_write
        c.on_socket_unregister_write = self._on_unregister_write
        self._client = c

    # -- session -------------------------------------------------------------------------

    async def connect(self) -> None:
        cfg = self.cfg
        try:
            await asyncio.wait_for(
                self._loop.run_in_executor(
                    None, self._client.connect, cfg.host, cfg.port, cfg.keepalive
                ),
                cfg.connect_timeout + 1,
            )
            await asyncio.wait_for(asyncio.shield(self._connack), cfg.connect_timeout)
        except (OSError, ValueError, TimeoutError, MqttLinkError) as exc:
            _close_orphan_sockets(exc)
            self._force_close()
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError):
                reason = f"no CONNACK within {cfg.connect_timeout:g} s"
            raise MqttLinkError(f"{cfg.host}:{cfg.port}: {reason}") from exc

    @property
    def connected(self) -> bool:
        return self._connack.done() and not self._connack.exception() and not self.lost.done()

    async def subscribe(self, topics: Sequence[tuple[str, int]]) -> None:
        if not topics:
            return
        rc, mid = self._client.subscribe(list(topics))
        if rc != paho.MQTT_ERR_SUCCESS or mid is None:
            raise MqttLinkLost(f"subscribe: {paho.error_string(rc)}")
        await self._track(mid)

    def publish(self, msg: Message) -> asyncio.Future[None] | None:
        """Queue one message; QoS 1 gives a future resolved by its PUBACK."""
        if self.lost.done():
            raise MqttLinkLost(self.lost.result())
        info = self._client.publish(msg.topic, msg.payload, msg.qos, msg.retain)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_QUEUE_SIZE) and msg.qos == 0:
            raise MqttLinkLost(paho.error_string(info.rc))
        if msg.qos == 0:
            return None
        return self._track(info.mid)

    def barrier(self) -> asyncio.Future[None]:
        """Resolved once the broker has processed everything sent before it."""
        if self.lost.done():
            raise MqttLinkLost(self.lost.result())
        rc, mid = self._client.unsubscribe(BARRIER_TOPIC)
        if rc != paho.MQTT_ERR_SUCCESS or mid is None:
            raise MqttLinkLost(f"barrier: {paho.error_string(rc)}")
        return self._track(mid)

    async def disconnect(self, timeout: float = 2.0) -> None:
        if self.lost.done():
            return
        self._client.disconnect()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.lost), timeout)
        self._force_close()

    # -- paho callbacks (on the loop thread, except socket_open during connect) ------------

    def _track(self, mid: int) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = self._loop.create_future()
        if self.lost.done():
            fut.set_exception(MqttLinkLost(self.lost.result()))
        else:
            self._pending[mid] = fut
        return fut

    def _resolve(self, mid: int) -> None:
        fut = self._pending.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _on_ack(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        self._resolve(mid)

    def _on_unsuback(self, client: Any, userdata: Any, mid: int, rcs: Any, props: Any) -> None:
        self._resolve(mid)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        def done() -> None:
            if self._connack.done():
                return
            if rc.is_failure:
                self._connack.set_exception(MqttLinkError(f"broker refused: {rc}"))
            else:
                self._connack.set_result(None)

        self._call(done)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self._call(self._set_lost, f"disconnected: {rc}")

    def _set_lost(self, reason: str) -> None:
        if not self.lost.done():
            self.lost.set_result(reason)
        if not self._connack.done():
            self._connack.set_exception(MqttLinkError(reason))
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(MqttLinkLost(reason))
        if self._misc is not None:
            self._misc.cancel()

    def _on_msg(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        if self._on_message is not None:
            try:
                self._on_message(message.topic, bytes(message.payload))
            except Exception:  # a bad command must not end the session
                log.exception("handling %s", message.topic)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        if self._loop.is_closed():
            return  # paho's __del__ closing a socket after the loop is gone
        if threading.get_ident() == self._thread:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        self._call(self._watch, sock)

    def _watch(self, sock: Any) -> None:
        if sock.fileno() < 0:
            return
        if self.lost.done():  # a connect that finished after we gave up on it
            with contextlib.suppress(OSError):
                sock.close()
            return
        self._loop.add_reader(sock, self._readable)
        if self._misc is None:
            self._misc = self._loop.create_task(self._misc_loop())

    def _on_socket_close(self, client: Any, userdata: Any, sock: Any) -> None:
        self._call(self._unwatch, sock)

    def _unwatch(self, sock: Any) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)

    def _on_register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        self._call(self._want_write, sock)

    def _want_write(self, sock: Any) -> None:
        if sock.fileno() >= 0:
            self._loop.add_writer(sock, self._writable)

    def _on_unregister_write(self, client: Any, userdata: Any, sock: Any) -> None:
        def off() -> None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_writer(sock)

        self._call(off)

    def _readable(self) -> None:
        try:
            rc = self._client.loop_read()
            # TLS may hold decrypted records that select() cannot see
            sock = self._client.socket()
            while rc == paho.MQTT_ERR_SUCCESS and sock is not None and _pending_tls(sock):
                rc = self._client.loop_read()
                sock = self._client.socket()
        except Exception as exc:
            self._fail(exc)

    def _writable(self) -> None:
        try:
            self._client.loop_write()
        except Exception as exc:
            self._fail(exc)

    async def _misc_loop(self) -> None:
        while not self.lost.done():
            await asyncio.sleep(1.0)
            self._client.loop_misc()  # keepalive pings, ping timeouts

    def _fail(self, exc: BaseException) -> None:
        self._force_close()
        self._set_lost(f"{type(exc).__name__}: {exc}")

    def _force_close(self) -> None:
        sock = self._client.socket()
        if sock is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(sock)
                self._loop.remove_writer(sock)
            with contextlib.suppress(OSError):
                sock.close()
        # paho still holds the (closed) socket; when it lets go of it later, the loop
        # must not hear about it
        c = self._client
        c.on_socket_open = c.on_socket_close = None
        c.on_socket_register_write = c.on_socket_unregister_write = None
        self._set_lost("closed")


def _close_orphan_sockets(exc: BaseException) -> None:
    """paho-mqtt (2.2) leaves the socket open when the TLS handshake fails inside
    ``connect()`` (it wraps and handshakes before keeping a reference); close any socket
    still held by the failed call's frames instead of leaving it to the collector."""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        for value in list(frame.f_locals.values()):
            if isinstance(value, socket.socket) and value.fileno() >= 0:
                value.close()


def _pending_tls(sock: Any) -> bool:
    pending = getattr(sock, "pending", None)
    return bool(pending and pending() > 0)


class _Limiter:
    """Token bucket for replaying historical samples."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, min(float(CHUNK), rate / 10))  # bursts of 0.1 s at most
        self.tokens = self.capacity
        self.t = time.monotonic()

    def available(self) -> int:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.t) * self.rate)
        self.t = now
        return int(self.tokens)

    def take(self, n: int) -> None:
        self.tokens -= n

    def wait_for_one(self) -> float:
        return max(0.0, (1.0 - self.tokens) / self.rate)


class MqttSink:
    """Base of the MQTT sinks; subclasses say what a session announces and how queued
    samples become messages."""

    kind = "mqtt"
    chunk = CHUNK
    window = WINDOW

    def __init__(self, cfg: GatewayConfig) -> None:
        if cfg.sinks.mqtt is None:
            raise ValueError("the gateway config has no 'sinks.mqtt' section")
        self.cfg = cfg
        self.mqtt: Mqtt = cfg.sinks.mqtt
        if self.mqtt.plaintext_credentials and not self.mqtt.allow_plaintext:
            raise ValueError(f"sinks.mqtt: {PLAINTEXT_CREDENTIALS}")  # a config built unchecked
        self.name = self.kind
        base_id = self.mqtt.client_id or f"conduit-{cfg.name}"
        self.client_id = f"{base_id}-{self.kind}"
        self.buffer = SampleBuffer(cfg.buffer, buffer_path(cfg.buffer.disk_path, self.kind))
        # Samples are tagged with the session they were queued in: the current session's
        # id (time-based) while connected, 0 during an outage. Before the first connection
        # has been tried they get a per-process startup id, live for the first session if
        # it connects at the first try: values polled while the first CONNECT is under
        # way are not history.
        self._startup = -time.time_ns()
        self._startup_live = True
        self._session = self._startup
        self._wake = asyncio.Event()
        self._closing = False
        self._close_deadline = 0.0
        self._task: asyncio.Task[None] | None = None
        self._link: MqttLink | None = None
        self._limiter = _Limiter(cfg.buffer.replay_rate)
        self._announce_requested = False
        self.sent = 0  # samples confirmed by the broker
        self.sent_historical = 0
        self.messages = 0  # messages confirmed by the broker
        self.sessions = 0
        self.last_error = ""
        self.last_error_at: float | None = None
        self.connected_since: float | None = None

    # -- Sink protocol -------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            if self.mqtt.plaintext_credentials:
                log.warning(
                    "%s: sending the MQTT password for %r to %s:%s WITHOUT TLS "
                    "(allow_plaintext: true): anyone on the path can read it",
                    self.name, self.mqtt.username, self.mqtt.host, self.mqtt.port,
                )  # fmt: skip
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._supervise(), name=f"sink-{self.name}")

    async def write(self, samples: Sequence[TagSample]) -> None:
        if not samples:
            return
        self.observe(samples)
        self.buffer.put(samples, self._session)
        self._wake.set()

    async def close(self) -> None:
        """Send what is queued for up to CLOSE_DRAIN_S, say goodbye (the subclass's last
        words, then DISCONNECT), and keep whatever is left on disk for the next start."""
        if self._task is not None:
            self._close_deadline = time.monotonic() + CLOSE_DRAIN_S
            self._closing = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), CLOSE_DRAIN_S + 4)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        self.buffer.close()

    def status(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "broker": f"{self.mqtt.host}:{self.mqtt.port}",
            "tls": self.mqtt.tls is not None,
            "plaintext_credentials": self.mqtt.plaintext_credentials,
            "sessions": self.sessions,
            "sent": self.sent,
            "sent_historical": self.sent_historical,
            "messages": self.messages,
            **self.buffer.stats(),
            "dropped": self.buffer.dropped,
            "last_error": self.last_error or self.buffer.last_error,
            "last_error_at": self.last_error_at,
        }

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.connected and self._session > 0

    # -- subclass hooks ------------------------------------------------------------------

    def observe(self, samples: Sequence[TagSample]) -> None:
        """Sees every sample as it is written (before queueing)."""

    def will(self) -> Will | None:
        return None

    def subscriptions(self) -> list[tuple[str, int]]:
        return []

    def on_message(self, topic: str, payload: bytes) -> None:
        """A message on one of ``subscriptions()``."""

    def announce(self, link: MqttLink) -> list[asyncio.Future[None]]:
        """Publish what opens a session (and what a requested rebirth repeats)."""
        return []

    def encode(self, entries: Sequence[Queued], historical: Sequence[bool]) -> list[Message]:
        raise NotImplementedError

    async def goodbye(self, link: MqttLink) -> None:
        """Publish what an intentional disconnect should say (confirmed)."""

    def session_ended(self) -> None:
        """The session is over (lost or closed)."""

    def request_announce(self) -> None:
        """Re-run ``announce`` before the next chunk (e.g. a Sparkplug rebirth)."""
        self._announce_requested = True
        self._wake.set()

    # -- sender --------------------------------------------------------------------------

    def _error(self, text: str) -> None:
        self.last_error = text
        self.last_error_at = time.time()
        log.warning("%s: %s", self.name, text)

    async def _supervise(self) -> None:
        delay = self.mqtt.reconnect.initial
        while not self._closing:
            link = MqttLink(self.mqtt, self.client_id, will=self.will(), on_message=self.on_message)
            try:
                await link.connect()
            except MqttLinkError as exc:
                self._error(str(exc))
                self._session, self._startup_live = 0, False
                await self._sleep(delay)
                delay = min(delay * 2, self.mqtt.reconnect.max)
                continue
            delay = self.mqtt.reconnect.initial
            self._link = link
            self.sessions += 1
            self.connected_since = time.time()
            try:
                await self._run_session(link)
            except MqttLinkLost as exc:
                self._error(f"connection lost: {exc}")
            except Exception as exc:  # a bug must not end delivery: report, back off, retry
                log.exception("%s: session failed", self.name)
                self._error(f"session failed: {type(exc).__name__}: {exc}")
                delay = self.mqtt.reconnect.max
            finally:
                self._session, self._startup_live = 0, False
                self._link = None
                self.connected_since = None
                self.session_ended()
                await link.disconnect(0.5)
            await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the sink is closing."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wait_closing(), seconds)

    async def _wait_closing(self) -> None:
        while not self._closing:
            self._wake.clear()
            await self._wake.wait()

    def _close_wait(self) -> float | None:
        """How long an idle sender may sleep: forever, or until the close deadline."""
        return max(0.0, self._close_deadline - time.monotonic()) if self._closing else None

    async def _run_session(self, link: MqttLink) -> None:
        session = time.time_ns()
        startup = self._startup if self._startup_live else session
        link.lost.add_done_callback(lambda _: self._wake.set())
        await link.subscribe(self.subscriptions())
        self._session = session
        self._announce_requested = False
        outstanding: deque[tuple[int, int, int, int, asyncio.Future[Any]]] = deque()
        for fut in self.announce(link):
            _quiet(fut)
        last_sent = self.buffer.head_bid
        try:
            while True:
                if link.lost.done():
                    raise MqttLinkLost(link.lost.result())
                self._confirm(outstanding)
                if self._closing and (
                    not len(self.buffer) or time.monotonic() >= self._close_deadline
                ):
                    break
                if self._announce_requested:
                    self._announce_requested = False
                    for fut in self.announce(link):
                        _quiet(fut)
                if len(outstanding) >= self.window:
                    await self._idle(self._close_wait())
                    continue
                last_sent = max(last_sent, self.buffer.head_bid)
                entries = self.buffer.after(last_sent, self.chunk)
                if not entries:
                    await self._idle(self._close_wait())
                    continue
                hist = [
                    q.sample.historical or not (q.session == session or q.session == startup)
                    for q in entries
                ]
                entries, hist = self._rate_limit(entries, hist)
                if not entries:
                    await self._idle(self._limiter.wait_for_one())
                    continue
                msgs = self.encode(entries, hist)
                futs = [f for m in msgs if (f := link.publish(m)) is not None]
                if any(m.qos == 0 for m in msgs) or not futs:
                    futs.append(link.barrier())
                done = asyncio.gather(*futs)
                done.add_done_callback(lambda _: self._wake.set())
                outstanding.append((entries[-1].bid, len(entries), sum(hist), len(msgs), done))
                last_sent = entries[-1].bid
            try:  # closing: the last words, in this session, then a clean DISCONNECT
                await asyncio.wait_for(self.goodbye(link), 2.0)
            except (MqttLinkLost, TimeoutError) as exc:
                self._error(f"goodbye: {exc}")
            await link.disconnect()
        finally:
            for *_, fut in outstanding:
                _quiet(fut)

    def _rate_limit(
        self, entries: list[Queued], hist: list[bool]
    ) -> tuple[list[Queued], list[bool]]:
        if not any(hist):
            return entries, hist
        budget = self._limiter.available()
        n = 0
        used = 0
        for h in hist:
            if h:
                if used >= budget:
                    break
                used += 1
            n += 1
        self._limiter.take(used)
        return entries[:n], hist[:n]

    def _confirm(self, outstanding: deque[tuple[int, int, int, int, asyncio.Future[Any]]]) -> None:
        while outstanding and outstanding[0][4].done():
            bid, n, n_hist, n_msgs, fut = outstanding.popleft()
            if fut.cancelled() or fut.exception() is not None:
                outstanding.appendleft((bid, n, n_hist, n_msgs, fut))
                exc = fut.exception() if not fut.cancelled() else None
                raise MqttLinkLost(str(exc) if exc else "cancelled")
            self.buffer.ack(bid)
            self.sent += n
            self.sent_historical += n_hist
            self.messages += n_msgs

    async def _idle(self, timeout: float | None) -> None:
        self._wake.clear()
        if timeout is None:
            await self._wake.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)


def _quiet(fut: asyncio.Future[Any]) -> None:
    """Mark a future's outcome as seen (its failure is reported through the session)."""

    def seen(f: asyncio.Future[Any]) -> None:
        if not f.cancelled():
            f.exception()

    fut.add_done_callback(seen)


def mqtt_sinks(cfg: GatewayConfig) -> list[MqttSink]:
    """The MQTT sinks the config enables (UNS and/or Sparkplug B)."""
    if cfg.sinks.mqtt is None:
        return []
    from otconduit.gateway.sinks.sparkplug import SparkplugSink
    from otconduit.gateway.sinks.uns import UnsSink

    out: list[MqttSink] = []
    if cfg.sinks.mqtt.uns.enabled:
        out.append(UnsSink(cfg))
    if cfg.sinks.mqtt.sparkplug.enabled:
        out.append(SparkplugSink(cfg))
    return out
