"""What the store's queries return (re-exported by `gateway.storage.store`)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.model import DeadLetter, Event, Reading


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    ts_ms: int  # bucket start for aggregated points
    count: int
    min: float
    max: float
    mean: float
    last: float


@dataclass(frozen=True, slots=True)
class StoredEvent:
    rowid: int
    event: Event


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    id: int
    letter: DeadLetter
    payload_size: int = 0
    """Size of the payload as received; `letter.payload` keeps at most its first 4 KiB."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One item waiting to be forwarded upstream: `reading` or `event` (neither: the event was
    deleted by retention before it was forwarded; acknowledge it like the others)."""

    seq: int
    reading: Reading | None = None
    event: StoredEvent | None = None


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    enabled: bool
    backlog: int
    """Rows waiting (not yet acknowledged)."""
    high_water: int
    """Largest backlog since the store was opened."""
    bound: int
    """`storage.outbox_max_rows`."""
    shed: int
    """Readings dropped from the outbox at the bound since the store was opened."""
    oldest_seq: int | None
