"""The embedded time-series store (SQLite). PUBLIC API CONTRACT — implementation pending.

Every other package codes against the signatures below. One writer task owns the only write
connection: callers hand it `WriteBatch`es with `commit()`, it coalesces whatever is queued into
one transaction and resolves each caller's future after COMMIT. Reads run on separate reader
connections in threads (WAL), so they never wait for the writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from gateway.clock import Clock
from gateway.config.storage import StorageConfig
from gateway.metrics import Metrics
from gateway.model import (
    Alert,
    AlertState,
    AlertTransition,
    AuditRecord,
    DeadLetter,
    DeviceStatus,
    Event,
    Severity,
)
from gateway.storage.batch import CommitResult, WriteBatch

T = TypeVar("T")
Bucket = Literal["raw", "1m", "1h"]


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


class Store:
    @classmethod
    async def open(cls, config: StorageConfig, clock: Clock, metrics: Metrics) -> Store:
        """Open (creating if needed) the database, apply pending migrations, start the writer."""
        raise NotImplementedError

    async def close(self) -> None:
        """Commit everything queued, stop the writer, close all connections."""
        raise NotImplementedError

    async def commit(self, batch: WriteBatch) -> CommitResult:
        """Return once the batch is committed (on disk if `batch.durable`)."""
        raise NotImplementedError

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on a reader connection in a worker thread (for component-owned tables)."""
        raise NotImplementedError

    async def series(
        self, device: str, metric: str, since_ms: int, until_ms: int, bucket: Bucket = "raw"
    ) -> list[SeriesPoint]:
        raise NotImplementedError

    async def events(
        self,
        *,
        device: str | None = None,
        kind_prefix: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        after_rowid: int | None = None,
        limit: int = 1000,
    ) -> list[StoredEvent]:
        """Events in insertion order (rowid), filtered."""
        raise NotImplementedError

    async def latest_statuses(self) -> dict[str, DeviceStatus]:
        raise NotImplementedError

    async def status_history(
        self, device: str, since_ms: int | None = None, limit: int = 1000
    ) -> list[DeviceStatus]:
        raise NotImplementedError

    async def alert(self, alert_id: str) -> Alert | None:
        raise NotImplementedError

    async def alerts(
        self,
        *,
        states: tuple[AlertState, ...] = (),
        rule: str | None = None,
        severity: Severity | None = None,
        subject_prefix: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        overdue_at_ms: int | None = None,
        limit: int = 500,
    ) -> list[Alert]:
        """Latest state of alerts, newest opened first. `overdue_at_ms`: only those past their
        acknowledge (if open) or resolve (if not resolved) deadline at that time."""
        raise NotImplementedError

    async def transitions(self, alert_id: str) -> list[AlertTransition]:
        raise NotImplementedError

    async def audit_log(self, since_ms: int | None = None, limit: int = 1000) -> list[AuditRecord]:
        raise NotImplementedError

    async def dead_letters(
        self, device: str | None = None, limit: int = 100
    ) -> list[StoredDeadLetter]:
        raise NotImplementedError

    async def dead_letter_counts(self) -> dict[str, int]:
        """Rejections per device ("" for input that named no known device)."""
        raise NotImplementedError

    async def run_retention(self) -> dict[str, int]:
        """Roll up and delete what is past retention; return rows deleted per data class."""
        raise NotImplementedError
