"""The MQTT collector: messages -> decoded batch -> one store commit -> acks -> bus.

Nothing is acknowledged to the broker before the store committed what it carried (the event,
the status, or the dead letter saying why it was rejected), so a gateway killed at any
instant loses nothing: the broker redelivers, and the store drops repeated event ids.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from collectors.mqtt.decode import Decoder, Rejected
from collectors.mqtt.transport import Message, MqttTransport
from gateway.bus import Stream
from gateway.model import DeadLetter, DeviceStatus, Event
from gateway.runtime import HealthState, Runtime, Stage
from gateway.storage.batch import WriteBatch

log = logging.getLogger(__name__)

DEAD_PAYLOAD_BYTES = 4096


@dataclass(slots=True)
class BatchOutcome:
    events: list[Event] = field(default_factory=list)
    statuses: list[DeviceStatus] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    ignored: int = 0


def decode_batch(
    decoder: Decoder, messages: list[tuple[Message, int]], counts: dict[tuple[str, str], int]
) -> BatchOutcome:
    """Decode messages (with their arrival times); `counts` gathers rejections per
    (device, reason code)."""
    out = BatchOutcome()
    decode = decoder.decode
    for msg, received_ms in messages:
        try:
            item = decode(msg.topic, msg.payload, received_ms)
        except Rejected as rej:
            out.dead_letters.append(
                DeadLetter(
                    ts_ms=received_ms,
                    source="mqtt",
                    device=rej.device,
                    topic=msg.topic,
                    payload=msg.payload[:DEAD_PAYLOAD_BYTES],
                    reason=rej.reason,
                )
            )
            key = (rej.device or "", rej.code)
            counts[key] = counts.get(key, 0) + 1
            continue
        if item is None:
            out.ignored += 1
        elif isinstance(item, Event):
            out.events.append(item)
        else:
            out.statuses.append(item)
    return out


class MqttCollector:
    """Component: reads the building's gates and terminals from the broker into the store."""

    stage = Stage.INGEST

    def __init__(self, runtime: Runtime, name: str = "mqtt") -> None:
        self.name = name
        self._rt = runtime
        cfg = runtime.config
        self._cfg = cfg.mqtt
        self.decoder = Decoder(
            cfg.mqtt,
            cfg.building.id,
            ZoneInfo(cfg.building.timezone),
            runtime.pseudonymizer,
        )
        self._inbox: collections.deque[tuple[Message, int]] = collections.deque()
        self._wake = asyncio.Event()
        self.transport: MqttTransport | None = None
        self.committed = 0

    def _on_message(self, msg: Message) -> None:
        self._inbox.append((msg, self._rt.clock.now_ms()))
        self._wake.set()

    def _on_connection(self, up: bool) -> None:
        self._rt.metrics.set(
            "mqtt_connected", 1.0 if up else 0.0, "Whether the broker is reachable"
        )
        if up:
            self._rt.health.set(self.name, HealthState.RUNNING)
        else:
            err = self.transport.last_error if self.transport else ""
            self._rt.health.set(self.name, HealthState.DEGRADED, f"broker unreachable: {err}")

    async def run(self) -> None:
        self._rt.health.set(self.name, HealthState.STARTING, "connecting to the broker")
        # A restart after a failure starts over: what was received and not acknowledged on
        # the previous connection is redelivered on the new one.
        self._inbox.clear()
        transport = MqttTransport(
            self._cfg.broker,
            subscriptions=self.decoder.subscriptions,
            on_message=self._on_message,
            on_connection=self._on_connection,
        )
        self.transport = transport
        async with transport:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._cfg.batch_linger_ms and len(self._inbox) < self._cfg.batch_max:
                    await asyncio.sleep(self._cfg.batch_linger_ms / 1000)
                while self._inbox:
                    n = min(len(self._inbox), self._cfg.batch_max)
                    popleft = self._inbox.popleft
                    await self._commit([popleft() for _ in range(n)], transport)

    async def _commit(self, messages: list[tuple[Message, int]], transport: MqttTransport) -> None:
        rt = self._rt
        counts: dict[tuple[str, str], int] = {}
        out = decode_batch(self.decoder, messages, counts)
        batch = WriteBatch(events=out.events, statuses=out.statuses, dead_letters=out.dead_letters)
        commit = asyncio.ensure_future(rt.store.commit(batch))
        try:
            result = await asyncio.shield(commit)
        except asyncio.CancelledError:
            # Stopping: finish this commit and acknowledge it, so nothing is redelivered.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(commit, 5.0)
                transport.ack(m for m, _ in messages)
            raise
        transport.ack(m for m, _ in messages)
        self.committed += len(messages)
        metrics = rt.metrics
        metrics.inc(
            "mqtt_messages_total", len(messages), "MQTT messages committed and acknowledged"
        )
        for (device, code), n in counts.items():
            metrics.inc(
                "mqtt_dead_letters_total",
                n,
                "MQTT messages rejected into the dead-letter table",
                device=device,
                reason=code,
            )
        if out.ignored:
            metrics.inc("mqtt_ignored_total", out.ignored, "Messages a mapping ignores")
        new = [e for e, fresh in zip(out.events, result.new_events, strict=False) if fresh]
        if len(new) < len(out.events):
            metrics.inc(
                "mqtt_duplicate_events_total",
                len(out.events) - len(new),
                "Redelivered events already stored",
            )
        if new:
            await rt.bus.publish_many(Stream.EVENTS, new)
        if out.statuses:
            await rt.bus.publish_many(Stream.STATUS, out.statuses)
