"""In-process publish/subscribe with a bounded queue per subscriber.

Each stream declares what happens when a subscriber's queue is full:
- `SHED`: the newest item is dropped for that subscriber and counted (telemetry);
- `BLOCK`: the publisher waits until there is room (events, alarms, audit: never dropped).
Items reach the bus only after the store committed them, so a shed reading is still stored.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from gateway.metrics import Metrics


class Overflow(enum.Enum):
    SHED = "shed"
    BLOCK = "block"


class Stream(enum.StrEnum):
    READINGS = "readings"
    EVENTS = "events"
    STATUS = "status"
    ALERTS = "alerts"
    AUDIT = "audit"
    KPI = "kpi"


POLICY: dict[Stream, Overflow] = {
    Stream.READINGS: Overflow.SHED,
    Stream.KPI: Overflow.SHED,
    Stream.EVENTS: Overflow.BLOCK,
    Stream.STATUS: Overflow.BLOCK,
    Stream.ALERTS: Overflow.BLOCK,
    Stream.AUDIT: Overflow.BLOCK,
}


@dataclass(slots=True, eq=False)
class Subscription:
    name: str
    stream: Stream
    queue: asyncio.Queue[Any]
    _bus: Bus
    closed: bool = False

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Any]:
        while True:
            yield await self.queue.get()

    async def get(self) -> Any:
        return await self.queue.get()

    def get_nowait_many(self, limit: int) -> list[Any]:
        """Drain up to `limit` items already queued, without waiting."""
        out: list[Any] = []
        while len(out) < limit:
            try:
                out.append(self.queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return out

    def close(self) -> None:
        self._bus.unsubscribe(self)


class Bus:
    def __init__(self, metrics: Metrics | None = None) -> None:
        self._subs: dict[Stream, list[Subscription]] = {s: [] for s in Stream}
        self._metrics = metrics or Metrics()
        self._metrics.gauge_callback(
            "bus_queue_depth", self._depths, "Items waiting per subscriber"
        )

    def _depths(self) -> dict[tuple[tuple[str, str], ...], float]:
        return {
            (("stream", str(s.stream)), ("subscriber", s.name)): float(s.queue.qsize())
            for subs in self._subs.values()
            for s in subs
        }

    def subscribe(self, stream: Stream, name: str, maxsize: int = 10_000) -> Subscription:
        sub = Subscription(name, stream, asyncio.Queue(maxsize), self)
        self._subs[stream].append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to `sub`; a publisher waiting for room in its queue is released."""
        sub.closed = True
        subs = self._subs[sub.stream]
        if sub in subs:
            subs.remove(sub)
        while not sub.queue.empty():
            sub.queue.get_nowait()

    async def publish(self, stream: Stream, item: Any) -> None:
        await self.publish_many(stream, (item,))

    async def publish_many(self, stream: Stream, items: tuple[Any, ...] | list[Any]) -> None:
        shed = POLICY[stream] is Overflow.SHED
        for sub in tuple(self._subs[stream]):
            for item in items:
                if shed:
                    try:
                        sub.queue.put_nowait(item)
                    except asyncio.QueueFull:
                        self._metrics.inc(
                            "bus_shed_total",
                            stream=str(stream),
                            subscriber=sub.name,
                            help_="Telemetry items shed because a subscriber fell behind",
                        )
                elif not sub.closed:
                    await sub.queue.put(item)
