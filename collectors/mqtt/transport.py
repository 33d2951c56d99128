"""The MQTT adapter: the only module that imports paho-mqtt.

paho's network loop runs on the asyncio event loop (socket readiness callbacks), so there is
no extra thread. Inbound QoS 1 messages are acknowledged only when the caller says so
(`ack`), after it committed what they carried; the session is persistent (clean start off,
session expiry set), so what was not acknowledged is redelivered after a reconnect or restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import ssl
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

_READ_BURST = 512
_connections = itertools.count(1)
"""Connection numbers unique in the process: an ack never reaches another connection."""
_FAILED_REASON = 0x80
_BARRIER_TOPIC = "$campus-edge/barrier"


@dataclass(frozen=True, slots=True)
class Message:
    """One inbound message; hand it back to `MqttTransport.ack` once it is committed."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    generation: int
    """Connection it arrived on: an ack is only valid on that connection."""


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
        on_connection: Callable[[bool], None] | None = None,
        will: tuple[str, bytes, bool] | None = None,
        retain_as_published: bool = False,
        retained_on_resubscribe: bool = False,
    ) -> None:
        """`will`: (topic, payload, retain) the broker publishes at QoS 1 if this client
        vanishes without disconnecting. `retain_as_published`: keep the publisher's retain flag
        on live messages (recording). `retained_on_resubscribe`: receive the retained messages
        again on every connection, not only when the subscription is new."""
        self._retain_as_published = retain_as_published
        self._retained_always = retained_on_resubscribe
        self._cfg = broker
        self._subscriptions = tuple(subscriptions)
        self._on_message_cb = on_message
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
        self._delivered = 0
        self._sock: Any = None
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
        if not self._connected.is_set():
            return 0
        gen = self._generation
        sent = 0
        ack = self._client.ack
        for m in messages:
            if m.qos > 0 and m.generation == gen:
                ack(m.mid, m.qos)
                sent += 1
        return sent

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
                self._client.loop_write()
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
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_register_write
        c.on_socket_unregister_write = self._on_unregister_write
        loop.add_reader(sock, self._readable)
        if c.want_write():
            loop.add_writer(sock, self._writable)
        self._schedule_misc()

    def _teardown_socket(self) -> None:
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        sock, self._sock = self._sock, None
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

    def _readable(self) -> None:
        # paho reads one packet per call; keep reading while packets come. A TLS socket may
        # hold decrypted bytes the selector does not see: drain those too.
        c = self._client
        pending = getattr(self._sock, "pending", None)
        for _ in range(_READ_BURST):
            before = self._delivered
            rc = c.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._mark_lost(f"read: {paho.error_string(rc)}")
                return
            if self._delivered == before and not (pending is not None and pending() > 0):
                return
        if pending is not None and self._loop is not None and pending() > 0:
            self._loop.call_soon(self._readable)

    def _writable(self) -> None:
        rc = self._client.loop_write()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._mark_lost(f"write: {paho.error_string(rc)}")

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
            # Read what is left until the broker closes: closing a socket with unread input
            # sends a reset, and the broker would drop our last packets with its own input.
            with contextlib.suppress(OSError):
                sock.settimeout(0.5)
                while sock.recv(65536):
                    pass
        self._mark_lost("socket closed")

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if self._loop is not None and self._sock is not None:
            self._loop.add_writer(sock, self._writable)

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if self._loop is not None and self._sock is not None:
            self._loop.remove_writer(sock)

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
        self._delivered += 1
        cb = self._on_message_cb
        if cb is None:
            if msg.qos > 0:
                client.ack(msg.mid, msg.qos)
            return
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = msg._topic.decode("utf-8", "replace")
        cb(Message(topic, bytes(msg.payload), msg.qos, bool(msg.retain), msg.mid, self._generation))

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
