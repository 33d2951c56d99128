"""The MQTT collector: messages -> decoded batch -> one store commit -> acks -> bus.

Nothing is acknowledged to the broker before the store committed what it carried (the event,
the status, or the dead letter saying why it was rejected), so a gateway killed at any
instant loses nothing: the broker redelivers, and the store drops repeated event ids.
The next batch is decoded and handed to the store while the previous one commits, so
decoding (event loop) and committing (the store's writer thread) overlap.
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
from gateway.storage.batch import CommitResult, WriteBatch

log = logging.getLogger(__name__)

DEAD_PAYLOAD_BYTES = 4096
COMMITS_IN_FLIGHT = 2
"""Batches handed to the store at once: one committing while the next is decoded and queued."""


@dataclass(slots=True)
class BatchOutcome:
    events: list[Event] = field(default_factory=list)
    statuses: list[DeviceStatus] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    ignored: int = 0


Arrival = tuple[int, list[Message]]
"""Messages that came in one socket read, with the time they arrived (epoch ms)."""


def decode_batch(
    decoder: Decoder, arrivals: list[Arrival], counts: dict[tuple[str, str], int]
) -> BatchOutcome:
    """Decode messages; `counts` gathers rejections per (device, reason code)."""
    out = BatchOutcome()
    decode = decoder.decode
    events = out.events
    for received_ms, messages in arrivals:
        for msg in messages:
            try:
                item = decode(msg.topic, msg.payload, received_ms)
            except Rejected as rej:
                _reject(out, counts, msg, received_ms, rej)
                continue
            if isinstance(item, Event):
                events.append(item)
            elif item is None:
                out.ignored += 1
            else:
                out.statuses.append(item)
    return out


def _reject(
    out: BatchOutcome,
    counts: dict[tuple[str, str], int],
    msg: Message,
    received_ms: int,
    rej: Rejected,
) -> None:
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


@dataclass(slots=True)
class _Pending:
    """A batch handed to the store, to acknowledge once committed."""

    messages: list[Message]
    outcome: BatchOutcome
    counts: dict[tuple[str, str], int]
    commit: asyncio.Future[CommitResult]


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
        self._inbox: collections.deque[Arrival] = collections.deque()
        self._queued = 0
        """Messages in the inbox."""
        self._wake = asyncio.Event()
        self.transport: MqttTransport | None = None
        self.committed = 0

    def _on_messages(self, batch: list[Message]) -> None:
        self._inbox.append((self._rt.clock.now_ms(), batch))
        self._queued += len(batch)
        self._wake.set()

    def _take(self, n: int) -> list[Arrival]:
        """The next `n` messages of the inbox (or all of them)."""
        taken: list[Arrival] = []
        inbox = self._inbox
        while n > 0 and inbox:
            received_ms, batch = inbox[0]
            if len(batch) <= n:
                inbox.popleft()
                taken.append((received_ms, batch))
                n -= len(batch)
                self._queued -= len(batch)
            else:
                taken.append((received_ms, batch[:n]))
                inbox[0] = (received_ms, batch[n:])
                self._queued -= n
                n = 0
        return taken

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
        self._queued = 0
        transport = MqttTransport(
            self._cfg.broker,
            subscriptions=self.decoder.subscriptions,
            on_messages=self._on_messages,
            on_connection=self._on_connection,
        )
        self.transport = transport
        inflight: collections.deque[_Pending] = collections.deque()
        async with transport:
            try:
                while True:
                    if not self._inbox and not inflight:
                        self._wake.clear()
                        await self._wake.wait()
                        if self._cfg.batch_linger_ms and self._queued < self._cfg.batch_max:
                            await asyncio.sleep(self._cfg.batch_linger_ms / 1000)
                    while self._inbox and len(inflight) < COMMITS_IN_FLIGHT:
                        inflight.append(self._submit())
                    if inflight:
                        await asyncio.shield(inflight[0].commit)
                        await self._finish(inflight.popleft(), transport)
            except asyncio.CancelledError:
                # Stopping: finish what the store has and acknowledge it, so nothing of it
                # is redelivered.
                with contextlib.suppress(Exception):
                    for p in inflight:
                        await asyncio.wait_for(p.commit, 5.0)
                        transport.ack(p.messages)
                raise

    def _submit(self) -> _Pending:
        """Decode the next batch from the inbox and hand it to the store."""
        arrivals = self._take(self._cfg.batch_max)
        messages = [m for _, batch in arrivals for m in batch]
        counts: dict[tuple[str, str], int] = {}
        out = decode_batch(self.decoder, arrivals, counts)
        batch = WriteBatch(events=out.events, statuses=out.statuses, dead_letters=out.dead_letters)
        commit = asyncio.ensure_future(self._rt.store.commit(batch))
        return _Pending(messages, out, counts, commit)

    async def _finish(self, p: _Pending, transport: MqttTransport) -> None:
        """Acknowledge a committed batch, count it and publish what was new."""
        rt = self._rt
        result = p.commit.result()
        messages, out, counts = p.messages, p.outcome, p.counts
        transport.ack(messages)
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
