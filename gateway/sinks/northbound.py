"""Northbound MQTT: a building's device status, KPIs (and optionally readings) to the campus
broker, from a durable outbox; acknowledge/resolve commands from the campus view back in.

What is to be sent is first committed to the `north_outbox` table; the drain publishes it in
id order at QoS 1 and deletes a row only after the broker's PUBACK, so neither a broker outage
nor a gateway restart loses anything (a restart may resend what was in flight: consumers keep
the latest state per topic, so a repeat is harmless). Alerts are not duplicated here: the rule
engine's notifier already publishes them (`campus/{building}/alert/{rule}`, own outbox).

Topics (all under `campus/{building}/`):
    north/status/{device}     retained   a device's status, when it changes
    north/kpi                 retained   the cockpit figures
    north/alerts              retained   the unresolved alerts (a snapshot for resync)
    north/reading/{device}    no         readings (off by default)
    north/online              retained   `true`, the last will `false`
    north/cmd-result          no         the answer to a command
    cmd/alert/{id}/{action}   (in)       acknowledge | resolve from the campus view
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.bus import Stream, Subscription
from gateway.config.campus import NorthboundConfig
from gateway.model import AlertState, DeadLetter, DeviceStatus, Reading
from gateway.runtime import HealthState, Runtime, Stage
from gateway.sinks.notify import alert_json
from gateway.storage.batch import SqlParams, WriteBatch

log = logging.getLogger(__name__)

INSERT = (
    "INSERT INTO north_outbox (kind, topic, payload, retain, created_ms) VALUES (?, ?, ?, ?, ?)"
)
DELETE = "DELETE FROM north_outbox WHERE id = ?"
SHED = (
    "DELETE FROM north_outbox WHERE id IN "
    "(SELECT id FROM north_outbox WHERE kind = 'reading' ORDER BY id LIMIT ?)"
)
ACTIONS = ("acknowledge", "resolve")
ACTOR_PREFIX = "campus:"


@dataclass(frozen=True, slots=True)
class OutRow:
    id: int
    kind: str
    topic: str
    payload: bytes
    retain: bool


class InboundMessage(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> bytes: ...


class Transport(Protocol):
    """What the sink needs of `collectors.mqtt.transport.MqttTransport`."""

    @property
    def connected(self) -> bool: ...

    async def submit(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]: ...

    def ack(self, messages: Any) -> int: ...


def topics(building: str) -> dict[str, str]:
    base = f"campus/{building}"
    return {
        "status": f"{base}/north/status/{{device}}",
        "kpi": f"{base}/north/kpi",
        "alerts": f"{base}/north/alerts",
        "reading": f"{base}/north/reading/{{device}}",
        "online": f"{base}/north/online",
        "result": f"{base}/north/cmd-result",
        "commands": f"{base}/cmd/alert/#",
    }


def command_topic(building: str, alert_id: str, action: str) -> str:
    return f"campus/{building}/cmd/alert/{alert_id}/{action}"


def parse_command(building: str, topic: str) -> tuple[str, str] | None:
    """(alert id, action) of a command topic of this building, or None."""
    prefix = f"campus/{building}/cmd/alert/"
    if not topic.startswith(prefix):
        return None
    alert_id, _, action = topic[len(prefix) :].rpartition("/")
    if not alert_id or action not in ACTIONS:
        return None
    return alert_id, action


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def status_payload(building: str, s: DeviceStatus) -> bytes:
    return _dumps(
        {
            "building": building,
            "device": s.device,
            "ts_ms": s.ts_ms,
            "online": s.online,
            "mode": s.mode,
            "detail": dict(s.detail),
        }
    )


def reading_payload(building: str, r: Reading) -> bytes:
    return _dumps(
        {
            "building": building,
            "device": r.device,
            "metric": r.metric,
            "ts_ms": r.ts_ms,
            "value": r.value,
            "quality": int(r.quality),
        }
    )


def _due(conn: sqlite3.Connection, limit: int) -> list[OutRow]:
    cur = conn.execute(
        "SELECT id, kind, topic, payload, retain FROM north_outbox ORDER BY id LIMIT ?", (limit,)
    )
    return [OutRow(i, k, t, bytes(p), bool(r)) for i, k, t, p, r in cur.fetchall()]


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM north_outbox").fetchone()[0])


class NorthboundSink:
    """The supervised component: collects into the outbox, drains it, answers commands."""

    stage = Stage.OUTPUT

    def __init__(
        self, runtime: Runtime, config: NorthboundConfig, name: str = "northbound"
    ) -> None:
        self.name = name
        self.runtime = runtime
        self.config = config
        self.building = runtime.config.building.id
        self.topics = topics(self.building)
        self.wakeup = asyncio.Event()
        self.commands: asyncio.Queue[InboundMessage] = asyncio.Queue()
        self._last: dict[str, tuple[bool, str | None]] = {}
        self._last_kpi_ms: int | None = None
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Future[None]] = set()
        self.sent = 0

    def subscribe(self) -> None:
        """Subscribe to the bus (done by `run`; tests call it to feed the sink directly)."""
        if self._subs:
            return
        bus, config, name = self.runtime.bus, self.config, self.name
        if config.status:
            self._subs.append(bus.subscribe(Stream.STATUS, name))
        if config.kpis:
            self._subs.append(bus.subscribe(Stream.KPI, name, maxsize=100))
        if config.readings:
            self._subs.append(bus.subscribe(Stream.READINGS, name, maxsize=50_000))
        if config.alert_snapshot:
            self._subs.append(bus.subscribe(Stream.ALERTS, name))

    # --- the outbox -------------------------------------------------------------------------

    async def enqueue(self, rows: list[SqlParams]) -> None:
        if rows:
            await self.runtime.store.commit(WriteBatch(sql=[(INSERT, rows)]))
            self.wakeup.set()

    def _rows_for(self, stream: Stream, items: list[Any]) -> list[SqlParams]:
        now = self.runtime.clock.now_ms()
        rows: list[SqlParams] = []
        for item in items:
            if stream is Stream.STATUS and isinstance(item, DeviceStatus):
                key = (item.online, item.mode)
                if self._last.get(item.device) == key:
                    continue
                self._last[item.device] = key
                topic = self.topics["status"].format(device=item.device)
                rows.append(("status", topic, status_payload(self.building, item), 1, now))
            elif stream is Stream.KPI and isinstance(item, dict):
                interval_ms = int(self.config.kpi_interval_s * 1000)
                if self._last_kpi_ms is not None and now - self._last_kpi_ms < interval_ms:
                    continue
                self._last_kpi_ms = now
                doc = {"building": self.building, **item}
                rows.append(("kpi", self.topics["kpi"], _dumps(doc), 1, now))
            elif stream is Stream.READINGS and isinstance(item, Reading):
                topic = self.topics["reading"].format(device=item.device)
                rows.append(("reading", topic, reading_payload(self.building, item), 0, now))
        return rows

    async def snapshot(self) -> None:
        """Queue the list of unresolved alerts (newest opened first, at most 1,000)."""
        unresolved = await self.runtime.store.alerts(
            states=(AlertState.OPEN, AlertState.ACKNOWLEDGED), limit=1000
        )
        now = self.runtime.clock.now_ms()
        doc = {
            "building": self.building,
            "ts_ms": now,
            "alerts": [alert_json(a) for a in unresolved],
        }
        await self.enqueue([("alerts", self.topics["alerts"], _dumps(doc), 1, now)])

    async def _collect(self, sub: Subscription) -> None:
        while True:
            first = await sub.get()
            items = [first, *sub.get_nowait_many(5000)]
            if sub.stream is Stream.ALERTS:
                await self.snapshot()  # the changes are committed before they are published
            else:
                await self.enqueue(self._rows_for(Stream(sub.stream), items))

    async def backlog(self) -> int:
        return await self.runtime.store.read(_count)

    async def _bound(self) -> None:
        over = await self.backlog() - self.config.outbox_max_rows
        if over > 0:
            await self.runtime.store.commit(WriteBatch(sql=[(SHED, [(over,)])]))
            self.runtime.metrics.inc(
                "northbound_shed_total",
                over,
                help_="Readings dropped from the full northbound outbox (kept in the store)",
            )

    async def drain_once(self, transport: Transport) -> int:
        """Publish what the outbox holds, in order; delete each row after its PUBACK."""
        sent = 0
        store = self.runtime.store
        while True:
            rows = await store.read(lambda c: _due(c, self.config.batch))
            if not rows:
                return sent
            futures = [
                await transport.submit(r.topic, r.payload, qos=1, retain=r.retain) for r in rows
            ]
            done: list[SqlParams] = []
            refused: list[DeadLetter] = []
            for row, fut in zip(rows, futures, strict=True):
                try:
                    await fut
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # refused by the broker (ACL): retrying cannot help
                    refused.append(
                        DeadLetter(
                            self.runtime.clock.now_ms(),
                            "northbound",
                            None,
                            row.topic,
                            row.payload,
                            str(exc)[:500],
                        )
                    )
                done.append((row.id,))
            await store.commit(WriteBatch(sql=[(DELETE, done)], dead_letters=refused))
            self.runtime.metrics.inc(
                "northbound_sent_total", len(done), help_="Northbound messages acknowledged"
            )
            if refused:
                log.error("campus broker refused %d northbound messages", len(refused))
            sent += len(done)
            self.sent += len(done)

    async def _drain(self, transport: Transport) -> None:
        while True:
            await self._bound()
            await self.drain_once(transport)
            self.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=self.config.poll_s)

    # --- commands from the campus view ------------------------------------------------------

    async def handle_command(self, msg: InboundMessage) -> dict[str, Any]:
        """Apply one acknowledge/resolve; the answer is also queued on `north/cmd-result`."""
        parsed = parse_command(self.building, msg.topic)
        result: dict[str, Any] = {"building": self.building, "topic": msg.topic, "ok": False}
        try:
            body = json.loads(msg.payload or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the payload must be a JSON object")
        except ValueError as exc:
            body = {}
            result["error"] = f"bad payload: {exc}"
        result["request_id"] = body.get("request_id")
        service = self.runtime.alert_service
        if "error" in result:
            pass
        elif parsed is None:
            result["error"] = "unknown command topic"
        elif service is None:
            result["error"] = "the rule engine is not running in this building"
        else:
            alert_id, action = parsed
            user = str(body.get("actor") or "unknown")
            actor = user if user.startswith(ACTOR_PREFIX) else ACTOR_PREFIX + user
            note = str(body.get("note") or "")
            result.update(alert_id=alert_id, action=action, actor=actor)
            try:
                if action == "acknowledge":
                    alert = await service.acknowledge(alert_id, actor, note)
                else:
                    alert = await service.resolve(alert_id, actor, note or "resolved from campus")
                result.update(ok=True, state=str(alert.state))
            except Exception as exc:  # AlertNotFound, InvalidTransition: answered, not raised
                result["error"] = f"{type(exc).__name__}: {exc}"
        self.runtime.metrics.inc(
            "northbound_commands_total",
            help_="Commands from the campus view",
            outcome="ok" if result["ok"] else "error",
        )
        now = self.runtime.clock.now_ms()
        await self.enqueue([("result", self.topics["result"], _dumps(result), 0, now)])
        return result

    async def _commands(self, transport: Transport) -> None:
        while True:
            msg = await self.commands.get()
            try:
                await self.handle_command(msg)
            except Exception:
                log.exception("northbound command %s failed", msg.topic)
            transport.ack([msg])

    # --- running ----------------------------------------------------------------------------

    async def run(self) -> None:
        from collectors.mqtt.transport import MqttTransport  # noqa: PLC0415

        self.subscribe()
        health = self.runtime.health
        # Degraded, not starting: the building works on its own while the campus is away.
        health.set(self.name, HealthState.DEGRADED, "connecting to the campus broker")
        subs = [self.topics["commands"]] if self.config.commands else []
        online = self.topics["online"]
        transport: MqttTransport | None = None

        def on_connection(up: bool) -> None:
            if up:
                health.set(self.name, HealthState.RUNNING, "connected to the campus broker")
                if transport is not None:
                    task = asyncio.ensure_future(transport.publish(online, b"true", 1, True))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            else:
                health.set(self.name, HealthState.DEGRADED, "campus broker unreachable")

        transport = MqttTransport(
            self.config.broker,
            subscriptions=subs,
            on_message=self.commands.put_nowait,
            on_connection=on_connection,
            will=(online, b"false", True),
        )
        if self.config.alert_snapshot:
            await self.snapshot()
        try:
            async with transport, asyncio.TaskGroup() as tg:
                for sub in self._subs:
                    tg.create_task(self._collect(sub), name=f"{self.name}:{sub.stream}")
                tg.create_task(self._drain(transport), name=f"{self.name}:drain")
                tg.create_task(self._commands(transport), name=f"{self.name}:commands")
        finally:
            for sub in self._subs:
                self.runtime.bus.unsubscribe(sub)
            self._subs.clear()
