"""The embedded time-series store (SQLite, WAL, one writer).

One writer task owns the only write connection, in a dedicated thread: callers hand it
`WriteBatch`es with `commit()`; it coalesces whatever is queued, and commits that keep
arriving (for at most `batch_linger_ms`, up to `batch_max` rows), into one transaction and
resolves each caller's future after COMMIT; the next group gathers while one commits. If
that transaction fails (a full disk, a bad component statement) it is rolled back and its
batches are retried one by one, so each caller gets its own clear `StoreError`
(`StoreFullError` for a full disk) and the writer keeps running. Reads run on separate
read-only connections in worker threads and never wait for the writer (WAL snapshots).

Durability. The database is in WAL mode. A transaction holding anything but readings
(events, statuses, alerts, transitions, audit, dead letters, component rows: `batch.durable`)
commits with `synchronous=FULL`: the WAL is fsynced before `commit()` returns, so it survives
a power loss. A readings-only transaction commits with `synchronous=NORMAL`: it survives a
crash or `kill -9` of the process (the WAL is in the OS page cache, recovered at the next open),
but the last ones may be lost on a power loss; the next FULL commit also syncs them. In every
case SQLite's atomic commit keeps the file consistent: a transaction is wholly there or absent.

Readings are logged as a few column blobs per transaction, and packed per series and minute,
with their 1-minute and 1-hour rollups, once the minute is over (`gateway.storage.readings`):
charts read rollups, raw queries read a series' packed minutes, and the minutes still in the
log are read from there. A re-delivered reading (same series and time) counts once, in the raw
query and in the rollups. Events are deduplicated by id (`CommitResult.new_events`).

Upstream outbox (`storage.outbox`): every reading and every new event also gets an outbox
entry in the same transaction (a transaction's readings share one row: `gateway.storage.outbox`);
the upstream sender reads them in order (`outbox_read`) and deletes what it delivered
(`outbox_ack`). The outbox is bounded (`outbox_max_rows`): past the bound the
oldest readings leave the outbox (never events; they stay in the store), counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

from gateway.clock import Clock
from gateway.config.storage import StorageConfig
from gateway.metrics import Metrics
from gateway.model import (
    Alert,
    AlertState,
    AlertTransition,
    AuditRecord,
    DeviceStatus,
    Severity,
)
from gateway.storage import migrate, queries, retention
from gateway.storage import outbox as outbox_table
from gateway.storage.batch import CommitResult, WriteBatch
from gateway.storage.errors import StoreClosedError, StoreError
from gateway.storage.records import (
    OutboxEntry,
    OutboxStatus,
    SeriesPoint,
    StoredDeadLetter,
    StoredEvent,
)
from gateway.storage.writer import SyncWriter, wrap_error

__all__ = [
    "Bucket",
    "OutboxEntry",
    "OutboxStatus",
    "SeriesPoint",
    "Store",
    "StoredDeadLetter",
    "StoredEvent",
]

T = TypeVar("T")
Bucket = Literal["raw", "1m", "1h"]

log = logging.getLogger(__name__)

PAGE_SIZE = 4096
"""Page size of a new database: small, so the frequent small durable commits (an event, an
alert) write little to the WAL; readings are appended, so larger pages would not pay."""


PACK_INTERVAL_S = 5.0
"""How often the store checks for minutes to pack while no commits come."""


@dataclass(slots=True)
class _Job:
    future: asyncio.Future[Any]
    rows: int
    batch: WriteBatch | None = None
    op: Callable[[sqlite3.Connection], Any] | None = None
    durable: bool = True


_STOP = object()


def _connect_writer(config: StorageConfig, metrics: Metrics, clock: Clock) -> SyncWriter:
    conn = sqlite3.connect(config.path, isolation_level=None, check_same_thread=False)
    try:
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"cannot put {config.path} in WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA cache_size=-32768")
        conn.execute("PRAGMA journal_size_limit=67108864")
        conn.execute("PRAGMA temp_store=MEMORY")
        migrate.apply_pending(conn, migrate.discover())
        writer = SyncWriter(
            conn,
            metrics,
            now_ms=clock.now_ms,
            late_ms=config.late_readings_s * 1000,
            outbox=config.outbox,
            outbox_max_rows=config.outbox_max_rows,
        )
        converted = writer.convert_legacy()
        if converted:
            log.info("packed %d readings stored before the packed layout", converted)
        return writer
    except BaseException:
        conn.close()
        raise


class _Readers:
    """Read-only connections, one per worker thread."""

    def __init__(self, path: Path, threads: int) -> None:
        self._uri = path.resolve().as_uri() + "?mode=ro"
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="store-reader")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self._uri, uri=True, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA query_only=1")
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return fn(self._conn())

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()


class Store:
    """Open with `await Store.open(...)`; close with `await store.close()`."""

    def __init__(
        self,
        config: StorageConfig,
        clock: Clock,
        metrics: Metrics,
        *,
        writer: SyncWriter,
        write_thread: ThreadPoolExecutor,
        readers: _Readers,
    ) -> None:
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self._sync = writer
        self._write_thread = write_thread
        self._readers = readers
        self._queue: asyncio.Queue[_Job | object] = asyncio.Queue()
        self._queued_rows = 0
        self._closing = False
        self._retention_rules: list[retention.Rule] = []
        self._writer_task: asyncio.Task[None] | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self._pack_task: asyncio.Task[None] | None = None
        metrics.gauge_callback(
            "store_queue_rows",
            lambda: {(): float(self._queued_rows)},
            "Rows waiting for the store's writer",
        )

    @classmethod
    async def open(
        cls,
        config: StorageConfig,
        clock: Clock,
        metrics: Metrics,
        *,
        retention_loop: bool = True,
        pack_loop: bool = True,
    ) -> Store:
        """Open (creating if needed) the database, apply pending migrations, start the writer
        (and, unless turned off, the retention loop and the loop packing minutes that are
        over, on `clock`; commits also pack them)."""
        config.path.parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        write_thread = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        try:
            writer = await loop.run_in_executor(
                write_thread, _connect_writer, config, metrics, clock
            )
        except BaseException:
            write_thread.shutdown(wait=True)
            raise
        store = cls(
            config,
            clock,
            metrics,
            writer=writer,
            write_thread=write_thread,
            readers=_Readers(config.path, config.readers),
        )
        store._writer_task = asyncio.create_task(store._writer_loop(), name="store-writer")
        if pack_loop:
            store._pack_task = asyncio.create_task(store._pack_loop(), name="store-pack")
        if retention_loop:
            store._retention_task = asyncio.create_task(
                store._retention_loop(), name="store-retention"
            )
        return store

    @property
    def path(self) -> Path:
        return self.config.path

    async def close(self) -> None:
        """Commit everything queued, stop the writer, close all connections."""
        if self._closing:
            return
        self._closing = True
        for task in (self._retention_task, self._pack_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._queue.put_nowait(_STOP)
        if self._writer_task is not None:
            await self._writer_task
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._write_thread, self._sync.conn.close)
        self._write_thread.shutdown(wait=True)
        await loop.run_in_executor(None, self._readers.close)

    # -- writing ----------------------------------------------------------------------------

    def _submit(self, job: _Job) -> None:
        if self._closing:
            raise StoreClosedError("the store is closed")
        self._queued_rows += job.rows
        self._queue.put_nowait(job)

    async def commit(self, batch: WriteBatch) -> CommitResult:
        """Return once the batch is committed (on disk if `batch.durable`).

        Raises StoreError (StoreFullError for a full disk) if its transaction failed: nothing
        of the batch was stored. Cancelling the caller does not withdraw the batch.
        """
        fut: asyncio.Future[CommitResult] = asyncio.get_running_loop().create_future()
        self._submit(_Job(fut, len(batch), batch=batch))
        return await fut

    async def _write(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """Run `fn` on the write connection in a transaction of its own, in queue order."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._submit(_Job(fut, 0, op=fn, durable=durable))
        return await fut

    async def _writer_loop(self) -> None:
        loop = asyncio.get_running_loop()
        linger = self.config.batch_linger_ms / 1000
        batch_max = self.config.batch_max
        carry: _Job | object | None = None
        while True:
            job = carry if carry is not None else await self._queue.get()
            carry = None
            if job is _STOP:
                return
            assert isinstance(job, _Job)
            if job.op is not None:
                await self._run_op(job)
                continue
            group = [job]
            rows = job.rows
            # Gather while callers keep coming (each pass lets ready tasks run), for at most
            # `linger`: waiting longer only idles the writer while its callers wait for it.
            deadline = loop.time() + linger
            quiet = 0
            while rows < batch_max:
                try:
                    nxt = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    if quiet >= 2 or loop.time() >= deadline:
                        break
                    quiet += 1
                    await asyncio.sleep(0)
                    continue
                quiet = 0
                if not isinstance(nxt, _Job) or nxt.op is not None or rows + nxt.rows > batch_max:
                    carry = nxt
                    break
                group.append(nxt)
                rows += nxt.rows
            self._queued_rows -= rows
            batches = [j.batch for j in group if j.batch is not None]
            try:
                results = await loop.run_in_executor(self._write_thread, self._sync.apply, batches)
            except Exception as exc:  # a defect in the writer itself: fail these, keep going
                log.exception("store writer failed")
                err = wrap_error(exc, "commit")
                results = [err] * len(group)
            for j, res in zip(group, results, strict=True):
                if j.future.done():
                    continue
                if isinstance(res, BaseException):
                    j.future.set_exception(res)
                else:
                    j.future.set_result(res)

    async def _run_op(self, job: _Job) -> None:
        assert job.op is not None
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(
                self._write_thread, partial(self._sync.run, job.op, durable=job.durable)
            )
        except Exception as exc:
            if not job.future.done():
                job.future.set_exception(wrap_error(exc, "write"))
            return
        if not job.future.done():
            job.future.set_result(result)

    async def pack_closed_minutes(self) -> int:
        """Pack every minute of readings that is over by the store's clock (the writer also
        does so before a commit and every few seconds); return how many were due."""
        if self._closing:
            raise StoreClosedError("the store is closed")
        loop = asyncio.get_running_loop()
        due = len(self._sync.readings.due(self.clock.now_ms()))
        while await loop.run_in_executor(self._write_thread, self._sync.pack_due):
            pass
        return due

    async def _pack_loop(self) -> None:
        while True:
            await self.clock.sleep(PACK_INTERVAL_S)
            if self._sync.readings.due(self.clock.now_ms()):
                await self.pack_closed_minutes()

    # -- reading ----------------------------------------------------------------------------

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on a reader connection in a worker thread (for component-owned tables)."""
        if self._closing:
            raise StoreClosedError("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers.pool, self._readers.run, fn)

    async def series(
        self, device: str, metric: str, since_ms: int, until_ms: int, bucket: Bucket = "raw"
    ) -> list[SeriesPoint]:
        """Points of one series in [since_ms, until_ms), oldest first. Aggregated buckets are
        those whose start lies in [since_ms rounded down to the bucket, until_ms). BAD-quality
        readings are left out."""
        (points,) = await self.series_many([(device, metric)], since_ms, until_ms, bucket)
        return points

    async def series_keys(self) -> list[tuple[str, str]]:
        """Every (device, metric) that has readings stored."""
        return await self.read(queries.series_keys)

    async def series_many(
        self,
        keys: Sequence[tuple[str, str]],
        since_ms: int,
        until_ms: int,
        bucket: Bucket = "raw",
    ) -> list[list[SeriesPoint]]:
        """`series()` of each (device, metric) of `keys`, read together (the minutes not yet
        packed are read once for all)."""
        if bucket not in ("raw", "1m", "1h"):
            raise ValueError(f"unknown bucket {bucket!r}: use 'raw', '1m' or '1h'")

        def q(conn: sqlite3.Connection) -> list[list[SeriesPoint]]:
            sids = [queries.series_id(conn, d, m) for d, m in keys]
            known = [s for s in sids if s is not None]
            found = dict(
                zip(
                    known,
                    queries.series_points(conn, known, since_ms, until_ms, bucket),
                    strict=True,
                )
            )
            return [[] if s is None else found[s] for s in sids]

        return await self.read(q)

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
        """Events in insertion order (rowid), filtered (`since_ms`/`until_ms` on event time)."""
        return await self.read(
            partial(
                queries.events,
                device=device,
                kind_prefix=kind_prefix,
                since_ms=since_ms,
                until_ms=until_ms,
                after_rowid=after_rowid,
                limit=limit,
            )
        )

    async def latest_statuses(self) -> dict[str, DeviceStatus]:
        return await self.read(queries.latest_statuses)

    async def status_history(
        self, device: str, since_ms: int | None = None, limit: int = 1000
    ) -> list[DeviceStatus]:
        """Oldest first: from `since_ms` on, or (without it) the latest `limit` entries."""
        return await self.read(
            partial(queries.status_history, device=device, since_ms=since_ms, limit=limit)
        )

    async def alert(self, alert_id: str) -> Alert | None:
        return await self.read(partial(queries.alert, alert_id=alert_id))

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
        after: Alert | None = None,
        limit: int = 500,
    ) -> list[Alert]:
        """Latest state of alerts, newest opened first (then by id). `overdue_at_ms`: only
        those past their acknowledge (if open) or resolve (if not resolved) deadline at that
        time. `after`: the next page, those that come after this alert in that order."""
        return await self.read(
            partial(
                queries.alerts,
                states=states,
                rule=rule,
                severity=severity,
                subject_prefix=subject_prefix,
                since_ms=since_ms,
                until_ms=until_ms,
                overdue_at_ms=overdue_at_ms,
                after=None if after is None else (after.opened_ms, after.id),
                limit=limit,
            )
        )

    async def transitions(self, alert_id: str) -> list[AlertTransition]:
        """The alert's transitions in the order they were committed."""
        return await self.read(partial(queries.transitions, alert_id=alert_id))

    async def audit_log(self, since_ms: int | None = None, limit: int = 1000) -> list[AuditRecord]:
        """Oldest first: from `since_ms` on, or (without it) the latest `limit` records."""
        return await self.read(partial(queries.audit_log, since_ms=since_ms, limit=limit))

    async def dead_letters(
        self, device: str | None = None, limit: int = 100
    ) -> list[StoredDeadLetter]:
        """Newest first; `device=""` selects those that named no known device."""
        return await self.read(partial(queries.dead_letters, device=device, limit=limit))

    async def dead_letter_counts(self) -> dict[str, int]:
        """Rejections per device ("" for input that named no known device)."""
        return await self.read(queries.dead_letter_counts)

    # -- upstream outbox --------------------------------------------------------------------

    async def outbox_read(self, after: int = 0, limit: int = 1000) -> list[OutboxEntry]:
        """Outbox entries with seq > `after`, in order ([] when the outbox is off)."""
        if not self.config.outbox:
            return []
        return await self.read(partial(outbox_table.read, after=after, limit=limit))

    async def outbox_ack(self, upto: int) -> int:
        """Delete outbox entries with seq <= `upto` (delivered); return how many."""
        if not self.config.outbox:
            return 0
        n = await self._write(partial(self._sync.outbox_ack, upto=upto), durable=False)
        self.metrics.set("store_outbox_backlog", self._sync.outbox_rows)
        return n

    async def outbox_backlog(self) -> OutboxStatus:
        oldest = await self.read(outbox_table.oldest)
        s = self._sync
        return OutboxStatus(
            enabled=self.config.outbox,
            backlog=s.outbox_rows,
            high_water=s.outbox_high_water,
            bound=s.outbox_max_rows,
            shed=s.outbox_shed,
            oldest_seq=oldest,
        )

    # -- retention --------------------------------------------------------------------------

    def add_retention(self, data_class: str, days: int, sql: str, chunk: int = 0) -> None:
        """Have `run_retention` also delete a component's old rows: `sql` is a DELETE with one
        `?`, the cutoff (epoch ms: now - days); with `chunk` > 0 it is repeated, one
        transaction each, until it deletes fewer than `chunk` rows (bound it with a LIMIT)."""
        self._retention_rules.append(retention.Rule(data_class, days, sql, chunk))

    async def run_retention(self) -> dict[str, int]:
        """Delete what is past retention on the store's clock; return rows deleted per class.

        Minutes that are over are packed first: retention deletes packed readings."""
        await self.pack_closed_minutes()
        now = self.clock.now_ms()
        r = self.config.retention
        out: dict[str, int] = {}
        days = retention.series_days(r)
        for cls, table, width, window in retention.SERIES_CLASSES:
            cutoff = now - days[cls] * retention.DAY_MS
            total = 0
            more = True
            while more:
                n, more = await self._write(
                    partial(
                        retention.delete_oldest,
                        table=table,
                        window_ms=window,
                        before_ms=cutoff - width + 1,  # whole buckets older than cutoff
                    ),
                    durable=False,
                )
                total += n
            out[cls] = total
        for rule in [*retention.builtin_rules(r), *self._retention_rules]:
            cutoff = now - rule.days * retention.DAY_MS
            total = 0
            while True:
                n = await self._write(
                    partial(retention.run_rule_once, rule=rule, cutoff_ms=cutoff), durable=False
                )
                total += n
                if rule.chunk <= 0 or n < rule.chunk:
                    break
            out[rule.data_class] = out.get(rule.data_class, 0) + total
        for cls, n in out.items():
            if n:
                self.metrics.inc(
                    "store_retention_deleted_total",
                    n,
                    "Rows deleted by retention",
                    **{"class": cls},
                )
        return out

    async def _retention_loop(self) -> None:
        while True:
            await self.clock.sleep(self.config.retention_interval_s)
            try:
                deleted = await self.run_retention()
            except StoreClosedError:
                return
            except StoreError:
                log.exception("retention failed; retrying at the next interval")
                self.metrics.inc("store_retention_failures_total", help_="Failed retention runs")
            else:
                log.info("retention deleted %s", deleted)
