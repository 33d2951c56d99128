"""The MQTT adapter: the only module that imports paho-mqtt.

paho connects and keeps the session (CONNECT, subscriptions, keepalive, our own publishes and
their acknowledgements), driven from the asyncio event loop by socket readiness callbacks, so
there is no extra thread. The two packets that carry the ingest stream are framed here:
inbound PUBLISH (QoS 0/1) is cut straight out of each socket read, and PUBACKs go out
together, in one `send` per event-loop pass. Through paho's reader a message took four `recv`
calls, a `send` for its ack and (MQTT 5) a properties object: a bare subscriber spent 50-80 µs
of CPU per message, against 5-10 µs here (`bench/mqtt_ingest.py`). paho's own network thread
(`loop_start`) was slower still (~200 µs, GIL contention and a wake-up write per ack).
Every other packet is handed to paho as it came.

Inbound QoS 1 messages are acknowledged only when the caller says so (`ack`), after it
committed what they carried; the session is persistent (clean start off, session expiry set),
so what was not acknowledged is redelivered after a reconnect or restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import ssl
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.config.mqtt import BrokerConfig

log = logging.getLogger(__name__)

_RECV_BYTES = 256 * 1024
_TLS_RECORDS_PER_CALL = 64
"""TLS reads per readiness callback (a record is at most 16 KiB) before yielding the loop."""
_connections = itertools.count(1)
"""Connection numbers unique in the process: an ack never reaches another connection."""
_FAILED_REASON = 0x80
_BARRIER_TOPIC = "$campus-edge/barrier"
_PUBLISH = 3
_PUBACK_HEADER = 0x4002_0000
"""PUBACK, remaining length 2, then the packet id: the same in MQTT 3.1.1 and 5 (a 5 PUBACK
without reason code means success)."""


@dataclass(slots=True)
class Message:
    """One inbound message; hand it back to `MqttTransport.ack` once it is committed.
    Read-only by convention (not frozen: that costs a microsecond per message)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    generation: int
    """Connection it arrived on: an ack is only valid on that connection."""


class ProtocolError(Exception):
    """The broker sent bytes that are no MQTT packet."""


class _Wire:
    """The connection's socket as paho sees it once connected: paho reads only the packets
    the adapter hands it (`inbound`), and what it writes collects in `out`, which the adapter
    sends in one `send` per event-loop pass."""

    __slots__ = ("eof", "inbound", "out", "sock")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.inbound = bytearray()
        self.out = bytearray()
        self.eof = False

    def recv(self, bufsize: int) -> bytes:
        data = self.inbound
        if not data:
            if self.eof:
                return b""
            raise BlockingIOError
        chunk = bytes(data[:bufsize])
        del data[:bufsize]
        return chunk

    def send(self, buffer: bytes | bytearray) -> int:
        self.out += buffer
        return len(buffer)

    def close(self) -> None:
        self.sock.close()

    def fileno(self) -> int:
        return int(self.sock.fileno())

    def setblocking(self, flag: bool) -> None:
        self.sock.setblocking(flag)


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(value, position after it) of an MQTT variable byte integer; (-1, pos) if cut off."""
    value = 0
    shift = 0
    while pos < end:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            raise ProtocolError("remaining length over 4 bytes")
    return -1, pos


class PublishError(Exception):
    """The broker refused a publish (MQTT 5 reason code ≥ 0x80)."""


class MqttTransport:
    """A persistent MQTT session on the running event loop.

    Use as `async with MqttTransport(...) as t:`; it connects in the background and keeps
    reconnecting (capped, jittered backoff) until closed. `on_message` is called on the
    event loop for every inbound message and must not block.
    """

    def __init__(
        self,
        broker: BrokerConfig,
        *,
        subscriptions: Sequence[str] = (),
        on_message: Callable[[Message], None] | None = None,
        on_messages: Callable[[list[Message]], None] | None = None,
        on_connection: Callable[[bool], None] | None = None,
        will: tuple[str, bytes, bool] | None = None,
        retain_as_published: bool = False,
        retained_on_resubscribe: bool = False,
    ) -> None:
        """`on_message` is called for every inbound message, or `on_messages` once per socket
        read with the messages it carried (in order); without either, messages are
        acknowledged on receipt. `will`: (topic, payload, retain) the broker publishes at QoS 1
        if this client vanishes without disconnecting. `retain_as_published`: keep the
        publisher's retain flag on live messages (recording). `retained_on_resubscribe`:
        receive the retained messages again on every connection, not only when the
        subscription is new."""
        self._retain_as_published = retain_as_published
        self._retained_always = retained_on_resubscribe
        self._cfg = broker
        self._subscriptions = tuple(subscriptions)
        self._on_message_cb = on_message
        self._on_messages_cb = on_messages
        self._on_connection = on_connection
        self._loop: asyncio.AbstractEventLoop | None = None
        self._generation = 0
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._misc: asyncio.TimerHandle | None = None
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._barriers: dict[int, asyncio.Future[None]] = {}
        self._subscribed = asyncio.Event()
        self._subscribe_mid: int | None = None
        self._window = asyncio.Semaphore(broker.publish_window)
        self._sock: Any = None
        self._wire: _Wire | None = None
        self._partial = b""
        """The start of a packet whose rest has not arrived yet."""
        self._v5 = broker.protocol == "5"
        self._flush_due = False
        self._write_waiting = False
        self.last_error = ""
        self._closing = False
        self._client = self._make_client()
        if will is not None:
            self._client.will_set(will[0], will[1], qos=1, retain=will[2])

    # --- public API -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def wait_subscribed(self) -> None:
        """Until the broker acknowledged this connection's subscriptions: from then on it
        queues what they match for this session."""
        await self._subscribed.wait()

    def ack(self, messages: Iterable[Message]) -> int:
        """Acknowledge committed messages; those of an earlier connection are skipped (the
        broker redelivers them on the current one). Returns how many acks were sent."""
        wire = self._wire
        if wire is None or not self._connected.is_set():
            return 0
        gen = self._generation
        mids = []
        for m in messages:
            if m.generation == gen:
                if m.qos == 1:
                    mids.append(_PUBACK_HEADER | m.mid)
                elif m.qos == 2:
                    self._client.ack(m.mid, 2)
        if mids:
            self._send_pubacks(wire, mids)
        return len(mids)

    async def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish and return once the broker acknowledged it (QoS 1) or it was written (QoS 0).

        A publish survives reconnects (paho resends it); raises `PublishError` if refused.
        """
        await (await self.submit(topic, payload, qos, retain))

    async def submit(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]:
        """Hand a message to the connection and return a future done at its acknowledgement.

        Messages go out in the order of `submit` calls. At most `broker.publish_window` are
        outstanding: `submit` waits for room (and for a connection) before handing over.
        """
        await self._window.acquire()
        try:
            await self._connected.wait()
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except BaseException:
            self._window.release()
            raise
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda _: self._window.release())
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            fut.set_exception(PublishError(f"publish to {topic}: {paho.error_string(info.rc)}"))
        elif qos == 0:
            fut.set_result(None)
        else:
            self._pending[info.mid] = fut
        return fut

    async def barrier(self) -> None:
        """Return once the broker processed everything sent before (acknowledgements above
        all): a round trip the broker answers in order."""
        rc, mid = self._client.unsubscribe(_BARRIER_TOPIC)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            return
        fut = asyncio.get_running_loop().create_future()
        self._barriers[mid] = fut
        await fut

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name=f"mqtt:{self._cfg.client_id}")

    async def close(self) -> None:
        """Flush what is queued (acknowledgements above all), disconnect, stop."""
        self._closing = True
        if self._connected.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.barrier(), 2.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._connected.is_set():
            with contextlib.suppress(Exception):
                self._client.disconnect()
                self._flush()
        self._teardown_socket()
        self._connected.clear()
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()
        self._pending.clear()

    async def __aenter__(self) -> MqttTransport:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- connection management ---------------------------------------------------------------

    def _make_client(self) -> paho.Client:
        cfg = self._cfg
        v5 = cfg.protocol == "5"
        c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else False,
        )
        c.manual_ack_set(True)
        c.max_inflight_messages_set(0)  # our window bounds it; paho scans all per ack else
        c.max_queued_messages_set(0)
        c.connect_timeout = cfg.connect_timeout_s
        if cfg.username is not None:
            pw = cfg.password.get_secret_value() if cfg.password is not None else None
            c.username_pw_set(cfg.username, pw)
        if cfg.tls is not None:
            ctx = ssl.create_default_context(
                cafile=str(cfg.tls.ca_file) if cfg.tls.ca_file else None
            )
            if cfg.tls.cert_file is not None:
                ctx.load_cert_chain(
                    str(cfg.tls.cert_file), str(cfg.tls.key_file) if cfg.tls.key_file else None
                )
            if cfg.tls.insecure:
                ctx.check_hostname = False
            c.tls_set_context(ctx)
            c.tls_insecure_set(cfg.tls.insecure)
        c.on_message = self._on_message
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_unsubscribe = self._on_unsubscribe
        c.on_subscribe = self._on_subscribe
        return c

    async def _run(self) -> None:
        delay = self._cfg.reconnect_min_s
        first = True
        while True:
            try:
                await self._connect(first)
                first = False
                await asyncio.wait_for(self._settled(), self._cfg.connect_timeout_s * 2)
                if self._connected.is_set():
                    delay = self._cfg.reconnect_min_s
                    await self._lost.wait()
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("MQTT %s:%s: %s", self._cfg.host, self._cfg.port, self.last_error)
            self._teardown_socket()
            self._connected.clear()
            sleep = random.uniform(delay / 2, delay)
            delay = min(delay * 2, self._cfg.reconnect_max_s)
            await asyncio.sleep(sleep)

    async def _settled(self) -> None:
        """Wait until the connection attempt succeeded or failed."""
        while not (self._connected.is_set() or self._lost.is_set()):
            waiters = [
                asyncio.ensure_future(self._connected.wait()),
                asyncio.ensure_future(self._lost.wait()),
            ]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()

    async def _connect(self, first: bool) -> None:
        self._lost.clear()
        self._teardown_socket()
        c = self._client
        c.on_socket_open = None
        c.on_socket_close = None
        c.on_socket_register_write = None
        c.on_socket_unregister_write = None
        loop = asyncio.get_running_loop()
        if first and self._cfg.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self._cfg.session_expiry_s
            props.ReceiveMaximum = self._cfg.receive_maximum
            await loop.run_in_executor(
                None,
                lambda: c.connect(
                    self._cfg.host,
                    self._cfg.port,
                    self._cfg.keepalive_s,
                    clean_start=False,
                    properties=props,
                ),
            )
        elif first:
            await loop.run_in_executor(
                None, lambda: c.connect(self._cfg.host, self._cfg.port, self._cfg.keepalive_s)
            )
        else:
            await loop.run_in_executor(None, c.reconnect)
        sock = c.socket()
        if sock is None:
            raise OSError("no socket after connect")
        self._sock = sock
        self._wire = wire = _Wire(sock)
        c._sock = wire  # paho reads and writes through the adapter from now on
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_register_write
        loop.add_reader(sock, self._readable)
        if c.want_write():
            self._want_flush()
        self._schedule_misc()

    def _teardown_socket(self) -> None:
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        sock, self._sock = self._sock, None
        self._wire = None
        self._partial = b""
        self._write_waiting = False
        if sock is not None and self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(sock)
                self._loop.remove_writer(sock)

    def _schedule_misc(self) -> None:
        assert self._loop is not None
        self._misc = self._loop.call_later(1.0, self._do_misc)

    def _do_misc(self) -> None:
        rc = self._client.loop_misc()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._mark_lost(f"keepalive: {paho.error_string(rc)}")
            return
        self._schedule_misc()

    # --- reading ------------------------------------------------------------------------------

    def _readable(self) -> None:
        wire = self._wire
        if wire is None:
            return
        sock = wire.sock
        # A TLS socket returns one record per call and may hold decrypted bytes the selector
        # does not see: read until it has nothing more.
        tls = isinstance(sock, ssl.SSLSocket)
        for _ in range(_TLS_RECORDS_PER_CALL if tls else 1):
            try:
                chunk = sock.recv(_RECV_BYTES)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except OSError as exc:
                self._connection_failed(wire, f"read: {exc}")
                return
            if not chunk:
                self._connection_failed(wire, "read: the broker closed the connection")
                return
            try:
                self._received(wire, chunk)
            except ProtocolError as exc:
                self._connection_failed(wire, f"read: {exc}")
                return
            if wire is not self._wire:
                return
        if tls and self._loop is not None and sock.pending() > 0:
            self._loop.call_soon(self._readable)

    def _received(self, wire: _Wire, chunk: bytes) -> None:
        """Split what arrived into packets: PUBLISH (QoS 0/1) becomes a `Message` here, any
        other packet goes to paho."""
        data = self._partial + chunk if self._partial else chunk
        self._partial = b""
        end = len(data)
        pos = 0
        v5 = self._v5
        gen = self._generation
        batch: list[Message] = []
        while pos < end:
            header = data[pos]
            if pos + 2 < end and data[pos + 1] < 0x80:  # lengths under 128 and 16,384 first
                body = pos + 2
                stop = body + data[pos + 1]
            elif pos + 3 < end and data[pos + 2] < 0x80:
                body = pos + 3
                stop = body + (data[pos + 1] & 0x7F) + (data[pos + 2] << 7)
            else:
                length, body = _varint(data, pos + 1, end)
                if length < 0:
                    break
                stop = body + length
            if stop > end:
                break
            if header >> 4 == _PUBLISH and header & 0x06 != 0x04:
                qos = (header >> 1) & 3
                topic_end = end  # past the packet: a packet this short is malformed
                if stop > body + 1:
                    topic_end = body + 2 + ((data[body] << 8) | data[body + 1])
                at = topic_end + 2 if qos else topic_end
                if at > stop or (v5 and at >= stop):
                    raise ProtocolError("PUBLISH shorter than its headers")
                mid = (data[topic_end] << 8) | data[topic_end + 1] if qos else 0
                if v5:
                    if data[at] == 0:  # no properties
                        at += 1
                    else:
                        size, at = _varint(data, at, stop)
                        if size < 0 or at + size > stop:
                            raise ProtocolError("PUBLISH properties cut off")
                        at += size
                batch.append(
                    Message(
                        data[body + 2 : topic_end].decode("utf-8", "replace"),
                        data[at:stop],
                        qos,
                        bool(header & 1),
                        mid,
                        gen,
                    )
                )
            else:
                if batch:
                    self._deliver(batch)
                    batch = []
                wire.inbound += data[pos:stop]
                self._feed_paho(wire)
                if wire is not self._wire:
                    return  # the connection ended (refused, disconnected): the rest is moot
                gen = self._generation  # a CONNACK starts a new generation
            pos = stop
        if pos < end:
            self._partial = data[pos:]
        if batch:
            self._deliver(batch)

    def _feed_paho(self, wire: _Wire) -> None:
        c = self._client
        while wire.inbound and wire is self._wire:
            before = len(wire.inbound)
            rc = c.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._mark_lost(f"read: {paho.error_string(rc)}")
                return
            if len(wire.inbound) == before:
                raise ProtocolError("paho did not take a packet")

    def _deliver(self, batch: list[Message]) -> None:
        if self._on_messages_cb is not None:
            self._on_messages_cb(batch)
        elif self._on_message_cb is not None:
            cb = self._on_message_cb
            for m in batch:
                cb(m)
        else:
            self.ack(batch)

    def _connection_failed(self, wire: _Wire, why: str) -> None:
        """Record why, then let paho see the end of the stream (it closes the socket and
        resets its state for the reconnect)."""
        self._mark_lost(why)
        wire.eof = True
        with contextlib.suppress(Exception):
            self._client.loop_read()

    # --- writing ------------------------------------------------------------------------------

    def _send_pubacks(self, wire: _Wire, words: list[int]) -> None:
        c = self._client
        if c.want_write():
            c.loop_write()  # what paho queued before goes first
        wire.out += struct.pack(f">{len(words)}I", *words)
        self._want_flush()

    def _want_flush(self) -> None:
        if not self._flush_due and self._loop is not None:
            self._flush_due = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Send what paho and `ack` queued since the last flush, in one `send` if it fits."""
        self._flush_due = False
        wire = self._wire
        if wire is None:
            return
        c = self._client
        if c.want_write():
            c.loop_write()  # paho's packets into `wire.out` (the wire takes everything)
            if wire is not self._wire:
                return  # a DISCONNECT went out and closed the connection
        if self._write_waiting or not wire.out:
            return  # the writer callback sends when the socket has room
        self._send_out(wire)

    def _send_out(self, wire: _Wire) -> None:
        out = wire.out
        sock = wire.sock
        while out:
            try:
                n = sock.send(out)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                if not self._write_waiting and self._loop is not None:
                    self._loop.add_writer(sock, self._writable)
                    self._write_waiting = True
                return
            except OSError as exc:
                self._connection_failed(wire, f"write: {exc}")
                return
            del out[:n]
        if self._write_waiting and self._loop is not None:
            self._loop.remove_writer(sock)
            self._write_waiting = False

    def _writable(self) -> None:
        wire = self._wire
        if wire is not None:
            self._send_out(wire)

    def _mark_lost(self, why: str) -> None:
        if self._connected.is_set() and not self._closing:
            log.warning("MQTT connection to %s:%s lost (%s)", self._cfg.host, self._cfg.port, why)
        if not self._lost.is_set():
            self.last_error = why  # the first reason, not what followed from it
        self._teardown_socket()
        self._subscribed.clear()
        if self._connected.is_set():
            self._connected.clear()
            if self._on_connection is not None:
                self._on_connection(False)
        self._lost.set()

    # --- paho callbacks (all on the event loop thread once connected) -------------------------

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if self._closing:
            wire = sock if isinstance(sock, _Wire) else None
            raw = wire.sock if wire is not None else sock
            with contextlib.suppress(OSError):
                raw.settimeout(0.5)
                if wire is not None and wire.out:
                    raw.sendall(wire.out)
                    wire.out.clear()
                # Read what is left until the broker closes: closing a socket with unread
                # input sends a reset, and the broker would drop our last packets with it.
                while raw.recv(65536):
                    pass
        self._mark_lost("socket closed")

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._want_flush()

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason: Any,
        properties: Any,
    ) -> None:
        if reason.is_failure:
            self._mark_lost(f"broker refused the connection: {reason}")
            return
        self._generation = next(_connections)
        self._subscribed.clear()
        self._subscribe_mid = None
        if not self._subscriptions:
            self._subscribed.set()
        elif self._cfg.protocol != "5":
            _, self._subscribe_mid = client.subscribe([(t, 1) for t in self._subscriptions])
        else:
            opts = SubscribeOptions(
                qos=1,
                retainAsPublished=self._retain_as_published,
                retainHandling=(
                    SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE
                    if self._retained_always
                    else SubscribeOptions.RETAIN_SEND_IF_NEW_SUB
                ),
            )
            _, self._subscribe_mid = client.subscribe([(t, opts) for t in self._subscriptions])
        self.last_error = ""
        self._connected.set()
        log.info(
            "MQTT connected to %s:%s (session present: %s)",
            self._cfg.host,
            self._cfg.port,
            flags.session_present,
        )
        if self._on_connection is not None:
            self._on_connection(True)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._mark_lost(f"disconnected: {reason}")

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        # Only what the adapter does not frame itself (QoS 2) arrives through paho.
        topic = bytes(msg._topic).decode("utf-8", "replace")
        m = Message(topic, bytes(msg.payload), msg.qos, bool(msg.retain), msg.mid, self._generation)
        self._deliver([m])

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        if mid != self._subscribe_mid:
            return
        refused = [str(r) for r in reasons if getattr(r, "is_failure", False)]
        if refused:
            log.error("MQTT subscriptions refused: %s", ", ".join(refused))
            self.last_error = f"subscription refused: {', '.join(refused)}"
        else:
            log.info("MQTT subscribed to %s", ", ".join(self._subscriptions))
        self._subscribed.set()

    def _on_unsubscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        fut = self._barriers.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        fut = self._pending.pop(mid, None)
        if fut is None or fut.done():
            return
        code = getattr(reason, "value", 0)
        if isinstance(code, int) and code >= _FAILED_REASON:
            fut.set_exception(PublishError(f"broker refused publish: {reason}"))
        else:
            fut.set_result(None)
