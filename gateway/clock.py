"""Clocks: the system clock live, a manual clock in tests, scenarios and replays."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time, UTC epoch milliseconds."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for timeouts and backoff)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that moves only when told; sleepers wake when it passes their deadline."""

    def __init__(self, start_ms: int = 1_780_000_000_000) -> None:
        self._now_ms = start_ms
        self._start_ms = start_ms
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic(self) -> float:
        return (self._now_ms - self._start_ms) / 1000.0

    def set_ms(self, ts_ms: int) -> None:
        if ts_ms < self._now_ms:
            raise ValueError("a ManualClock never goes back")
        self._now_ms = ts_ms
        due = self.monotonic()
        keep: list[tuple[float, asyncio.Future[None]]] = []
        for deadline, fut in self._sleepers:
            if deadline <= due:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((deadline, fut))
        self._sleepers = keep

    def advance(self, seconds: float) -> None:
        self.set_ms(self._now_ms + round(seconds * 1000))

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.monotonic() + seconds, fut))
        await fut
