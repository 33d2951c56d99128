"""Publishing loop: hands time-stamped messages to a publisher at a speed factor, in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

Submit = Callable[[str, bytes, int, bool], Awaitable[asyncio.Future[None]]]
"""Hands one message to the broker connection in call order and returns a future that is done
when the broker acknowledged it (`MqttTransport.submit`)."""


@dataclass(frozen=True, slots=True)
class Timed:
    at_ms: int
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


async def play(
    messages: Iterable[Timed],
    submit: Submit,
    *,
    speed: float | None = 1.0,
    stop_after_s: float | None = None,
) -> int:
    """Publish `messages` (ordered by `at_ms`) keeping their spacing divided by `speed`
    (None: as fast as possible), preserving order; return how many were acknowledged."""
    t0 = time.monotonic()
    first: int | None = None
    pending: list[asyncio.Future[None]] = []
    sent = 0
    for m in messages:
        if first is None:
            first = m.at_ms
        if speed is not None:
            due = (m.at_ms - first) / 1000 / speed
            wait = due - (time.monotonic() - t0)
            if stop_after_s is not None and due > stop_after_s:
                break
            if wait > 0:
                await asyncio.sleep(wait)
        elif stop_after_s is not None and time.monotonic() - t0 > stop_after_s:
            break
        pending.append(await submit(m.topic, m.payload, m.qos, m.retain))
        sent += 1
        if len(pending) >= 4096:
            await asyncio.gather(*pending)
            pending.clear()
    if pending:
        await asyncio.gather(*pending)
    return sent
