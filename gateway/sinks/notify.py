"""Alert notifications northbound: MQTT and webhooks, from a durable outbox.

Every alert change is written to the `alert_notify_outbox` table in the same transaction as
the alert itself (`outbox_rows`), one row per channel. The `Notifier` drains each channel in
order, deletes a row once delivered, and retries a failed delivery with capped exponential
backoff: nothing is lost across restarts, and a channel never reorders.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from gateway.clock import Clock
from gateway.config.rules import NotifyConfig
from gateway.metrics import Metrics
from gateway.model import Alert, AlertTransition, Severity
from gateway.runtime import Stage
from gateway.storage.batch import SqlParams, WriteBatch
from gateway.storage.store import Store
from rules.persist import (
    DELETE_OUTBOX,
    INSERT_OUTBOX,
    RETRY_OUTBOX,
    OutboxRow,
    due_outbox,
)

log = logging.getLogger(__name__)

MQTT_CHANNEL = "mqtt"
_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Publisher(Protocol):
    """What the notifier needs from an MQTT transport."""

    async def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> None: ...


Deliver = Callable[[OutboxRow], Awaitable[None]]


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "rule": alert.rule,
        "subject": alert.subject,
        "severity": str(alert.severity),
        "state": str(alert.state),
        "opened_ms": alert.opened_ms,
        "updated_ms": alert.updated_ms,
        "message": alert.message,
        "receivers": list(alert.receivers),
        "tier": alert.tier,
        "assignee": alert.assignee,
        "ack_deadline_ms": alert.ack_deadline_ms,
        "resolve_deadline_ms": alert.resolve_deadline_ms,
        "data": dict(alert.data),
    }


def transition_json(t: AlertTransition) -> dict[str, Any]:
    return {
        "alert_id": t.alert_id,
        "ts_ms": t.ts_ms,
        "action": t.action,
        "actor": t.actor,
        "state": str(t.state),
        "severity": str(t.severity),
        "note": t.note,
        "data": dict(t.data),
    }


def payload(building: str, alert: Alert, transition: AlertTransition) -> bytes:
    doc = {
        "building": building,
        "alert": alert_json(alert),
        "transition": transition_json(transition),
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def mqtt_topic(building: str, alert: Alert) -> str:
    return f"campus/{building}/alert/{alert.rule}"


def outbox_rows(
    config: NotifyConfig,
    building: str,
    alert: Alert,
    transition: AlertTransition,
    now_ms: int,
) -> list[SqlParams]:
    """The outbox rows announcing one alert change on every configured channel."""
    body = payload(building, alert, transition)
    rows: list[SqlParams] = []
    if config.mqtt:
        rows.append((MQTT_CHANNEL, mqtt_topic(building, alert), body, now_ms))
    for hook in config.webhooks:
        if _RANK[alert.severity] >= _RANK[Severity(hook.min_severity)]:
            rows.append((f"webhook:{hook.name}", str(hook.url), body, now_ms))
    return rows


def outbox_statement(rows: list[SqlParams]) -> tuple[str, list[SqlParams]]:
    return (INSERT_OUTBOX, rows)


class Notifier:
    """Drains the outbox: one task per channel, in order, with retry."""

    stage = Stage.OUTPUT

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        metrics: Metrics,
        config: NotifyConfig,
        channels: Mapping[str, Deliver],
        name: str = "notify",
    ) -> None:
        self.name = name
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.config = config
        self.channels = dict(channels)
        self.wakeup = asyncio.Event()

    def poke(self) -> None:
        """New rows were committed: look now rather than at the next poll."""
        self.wakeup.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for channel, deliver in self.channels.items():
                tg.create_task(self._drain(channel, deliver), name=f"notify:{channel}")

    async def _drain(self, channel: str, deliver: Deliver) -> None:
        while True:
            await self.drain_once(channel, deliver)
            self.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=self.config.poll_s)

    async def drain_once(self, channel: str, deliver: Deliver) -> int:
        """Deliver what is due on `channel`, in order; stop at the first failure."""
        sent = 0
        while True:
            rows = await self.store.read(lambda c: due_outbox(c, channel))
            if not rows:
                return sent
            for row in rows:
                now = self.clock.now_ms()
                if row.next_ms > now:
                    return sent
                try:
                    await deliver(row)
                except Exception as exc:  # any failure of a remote end: retry later
                    delay = min(
                        self.config.retry_initial_s * 2**row.attempts, self.config.retry_max_s
                    )
                    await self.store.commit(
                        WriteBatch(
                            sql=[
                                (RETRY_OUTBOX, [(now + int(delay * 1000), str(exc)[:500], row.id)])
                            ]
                        )
                    )
                    self.metrics.inc(
                        "notify_failures_total",
                        channel=channel,
                        help_="Failed alert notification deliveries (retried)",
                    )
                    log.warning(
                        "notification on %s failed (retry in %.0f s): %s", channel, delay, exc
                    )
                    return sent
                await self.store.commit(WriteBatch(sql=[(DELETE_OUTBOX, [(row.id,)])]))
                self.metrics.inc(
                    "notify_sent_total", channel=channel, help_="Alert notifications delivered"
                )
                sent += 1


def mqtt_deliver(publisher: Publisher) -> Deliver:
    async def deliver(row: OutboxRow) -> None:
        await publisher.publish(row.topic, row.payload, qos=1, retain=False)

    return deliver
