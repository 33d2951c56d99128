"""The live stream: a bounded ring of recent items, read by SSE clients. `EventRing` is the
ring itself (the campus view feeds one from its MQTT state); `StreamHub` feeds one from the bus.

Each item gets an id `"{epoch}-{seq}"`; `epoch` changes with every start, so a client resuming
with an id from another run (or one that fell out of the ring) is told to reload instead of
silently missing items.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from gateway.bus import Bus, Stream, Subscription
from gateway.metrics import Metrics
from gateway.model import Alert, AlertTransition, DeviceStatus
from gateway.storage.store import Store


@dataclass(frozen=True, slots=True)
class StreamItem:
    seq: int
    kind: str  # the SSE event name: "alert", "status", "kpi", ...
    payload: Any  # Alert | DeviceStatus | JSON-able mapping


@dataclass(frozen=True, slots=True)
class Reset:
    """The client's position is unknown here: it must reload its state and go on from `seq`."""

    seq: int


class EventRing:
    """The last `ring` items, each numbered; `follow` gives a client what it has not seen."""

    def __init__(self, ring: int) -> None:
        self.epoch = secrets.token_hex(4)
        self._ring: deque[StreamItem] = deque(maxlen=ring)
        self._seq = 0
        self._changed = asyncio.Event()
        self._closed = False
        self.clients = 0

    def close(self) -> None:
        """End every open stream (on shutdown)."""
        self._closed = True
        self._changed.set()

    def append(self, kind: str, payload: Any) -> None:
        self._seq += 1
        self._ring.append(StreamItem(self._seq, kind, payload))
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def event_id(self, seq: int) -> str:
        return f"{self.epoch}-{seq}"

    def _position(self, last_event_id: str | None) -> int | None:
        """The seq to continue after, or None when the client must reload."""
        if not last_event_id:
            return self._seq
        epoch, _, seq_s = last_event_id.partition("-")
        if epoch != self.epoch or not seq_s.isdigit():
            return None
        seq = int(seq_s)
        oldest = self._ring[0].seq if self._ring else self._seq + 1
        if seq > self._seq or seq < oldest - 1:
            return None
        return seq

    async def follow(
        self, last_event_id: str | None, keepalive_s: float
    ) -> AsyncIterator[StreamItem | Reset | None]:
        """Items after the client's position; `None` means "send a keep-alive"."""
        pos = self._position(last_event_id)
        if pos is None:
            pos = self._seq
            yield Reset(pos)
        while not self._closed:
            changed = self._changed
            fresh = [i for i in self._ring if i.seq > pos] if self._seq > pos else []
            if fresh and fresh[0].seq > pos + 1:
                yield Reset(fresh[0].seq - 1)
            for item in fresh:
                yield item
                pos = item.seq
            if fresh:
                continue
            try:
                await asyncio.wait_for(changed.wait(), keepalive_s)
            except TimeoutError:
                yield None


async def sse_frames(
    ring: EventRing,
    last_event_id: str | None,
    keepalive_s: float,
    render: Callable[[StreamItem], Any],
) -> AsyncIterator[str]:
    """The SSE text of `ring.follow(...)`: each item as `id:`/`event:`/`data:` (JSON of
    `render(item)`), `reset` events, and keep-alive comments; counts the open clients."""
    ring.clients += 1
    try:
        yield "retry: 1000\n\n"
        async for item in ring.follow(last_event_id, keepalive_s):
            if item is None:
                yield ": keep-alive\n\n"
            elif isinstance(item, Reset):
                yield f"id: {ring.event_id(item.seq)}\nevent: reset\ndata: {{}}\n\n"
            else:
                data = json.dumps(render(item), ensure_ascii=False, default=str)
                yield f"id: {ring.event_id(item.seq)}\nevent: {item.kind}\ndata: {data}\n\n"
    finally:
        ring.clients -= 1


class StreamHub(EventRing):
    """The cockpit's ring, fed from the bus's alert, status and KPI streams."""

    def __init__(self, bus: Bus, store: Store, metrics: Metrics, ring: int) -> None:
        super().__init__(ring)
        self._bus = bus
        self._store = store
        self._metrics = metrics
        self._tasks: list[asyncio.Task[None]] = []
        self._subs: list[Subscription] = []

    def start(self) -> None:
        for stream in (Stream.ALERTS, Stream.STATUS, Stream.KPI):
            sub = self._bus.subscribe(stream, f"api-stream-{stream}", maxsize=1000)
            self._subs.append(sub)
            self._tasks.append(asyncio.create_task(self._pump(sub), name=f"api-stream-{stream}"))
        self._metrics.gauge_callback(
            "api_stream_clients", lambda: {(): float(self.clients)}, "Open live-stream clients"
        )

    async def stop(self) -> None:
        self.close()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for sub in self._subs:
            sub.close()
        self._tasks.clear()
        self._subs.clear()

    async def _pump(self, sub: Subscription) -> None:
        while True:
            item = await sub.get()
            await self.push(item)

    async def push(self, item: object) -> None:
        changed = getattr(item, "alert", None)  # the rule engine's Change(alert, transition)
        if isinstance(changed, Alert):
            self.append("alert", changed)
            return
        if isinstance(item, tuple):
            for part in item:
                if isinstance(part, Alert):
                    await self.push(part)
                    return
            return
        if isinstance(item, AlertTransition):
            alert = await self._store.alert(item.alert_id)
            if alert is not None:
                self.append("alert", alert)
        elif isinstance(item, Alert):
            self.append("alert", item)
        elif isinstance(item, DeviceStatus):
            self.append("status", item)
        else:
            self.append("kpi", item)

    def append(self, kind: str, payload: Any) -> None:
        self._metrics.inc("api_stream_items_total", kind=kind, help_="Items put on the live stream")
        super().append(kind, payload)
