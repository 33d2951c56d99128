"""The synchronous half of the single writer: applies coalesced batches on the only write
connection, in the dedicated writer thread. `gateway.storage.store` feeds it from asyncio."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from gateway.metrics import Metrics
from gateway.model import Event
from gateway.storage import codec
from gateway.storage import outbox as outbox_table
from gateway.storage.batch import CommitResult, WriteBatch
from gateway.storage.columns import Columns
from gateway.storage.errors import StoreError, StoreFullError
from gateway.storage.inserts import insert_rows
from gateway.storage.readings import ReadingsPath

log = logging.getLogger(__name__)

T = TypeVar("T")

_EVENTS = "INSERT INTO events (id, device, kind, ts_ms, received_ms, data)"
_STORED_EVENTS = "SELECT id FROM events WHERE id IN (SELECT value FROM json_each(?))"
_STATUSES = "INSERT INTO status_history (device, ts_ms, online, mode, detail)"
_UPSERT_LATEST = (
    "INSERT INTO device_latest (device, ts_ms, online, mode, detail) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (device) DO UPDATE SET ts_ms = excluded.ts_ms, online = excluded.online,"
    " mode = excluded.mode, detail = excluded.detail WHERE excluded.ts_ms >= device_latest.ts_ms"
)
_UPSERT_ALERT = (
    f"INSERT OR REPLACE INTO alerts ({codec.ALERT_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_TRANSITIONS = f"INSERT INTO alert_transitions ({codec.TRANSITION_COLUMNS})"
_AUDIT = f"INSERT INTO audit ({codec.AUDIT_COLUMNS})"
_DEAD_LETTERS = (
    "INSERT INTO dead_letters (ts_ms, source, device, topic, payload, payload_size, reason)"
)

CLASSES = (
    "readings",
    "events",
    "statuses",
    "alerts",
    "transitions",
    "audit",
    "dead_letters",
    "sql",
)


def wrap_error(exc: BaseException, what: str) -> StoreError:
    """A clear StoreError for a failed SQLite operation (StoreFullError for a full disk)."""
    if isinstance(exc, StoreError):
        return exc
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL:
        return StoreFullError(f"{what} failed: the disk or database is full ({exc})")
    return StoreError(f"{what} failed: {type(exc).__name__}: {exc}")


class SyncWriter:
    """Owns the write connection; every method runs in the writer thread."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        metrics: Metrics,
        *,
        now_ms: Callable[[], int],
        late_ms: int,
        outbox: bool,
        outbox_max_rows: int,
    ) -> None:
        self.conn = conn
        self.metrics = metrics
        self.now_ms = now_ms
        self.readings = ReadingsPath(conn, late_ms)
        self.outbox = outbox
        self.outbox_max_rows = outbox_max_rows
        self.series: dict[tuple[str, str], int] = {
            (d, m): int(i) for i, d, m in conn.execute("SELECT id, device, metric FROM series")
        }
        self._next_series = 1 + max(self.series.values(), default=0)
        self.outbox_rows = outbox_table.backlog(conn)
        self.outbox_high_water = self.outbox_rows
        self.outbox_shed = 0
        self._sync_full: bool | None = None
        self._new_series: list[tuple[str, str]] = []
        self._sid: list[int] = []
        self._ts: list[int] = []
        self._val: list[float] = []
        self._qual: list[int] = []

    # -- transactions ---------------------------------------------------------------------

    def _set_sync(self, full: bool) -> None:
        if self._sync_full is not full:
            self.conn.execute(f"PRAGMA synchronous={'FULL' if full else 'NORMAL'}")
            self._sync_full = full

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def apply(self, batches: list[WriteBatch]) -> list[CommitResult | StoreError]:
        """Commit `batches` in one transaction. If it fails and holds several batches, each is
        retried alone so that one bad batch fails only its own caller.

        Due minutes are packed first (one bounded transaction), so readings of a minute that
        just closed are merged into it rather than logged."""
        if self.readings.due(self.now_ms()):
            self.pack_due()
        try:
            return list(self._commit(batches))
        except Exception as exc:
            err = wrap_error(exc, "commit")
            self._count_failure(err)
            if len(batches) == 1:
                return [err]
        out: list[CommitResult | StoreError] = []
        for b in batches:
            try:
                out.extend(self._commit([b]))
            except Exception as exc:
                err = wrap_error(exc, "commit")
                self._count_failure(err)
                out.append(err)
        return out

    def _count_failure(self, err: StoreError) -> None:
        reason = "full" if isinstance(err, StoreFullError) else "error"
        self.metrics.inc(
            "store_commit_failures_total",
            help_="Transactions that failed and were rolled back",
            reason=reason,
        )

    def _commit(self, batches: list[WriteBatch]) -> list[CommitResult]:
        durable = any(b.durable for b in batches)
        self._set_sync(durable)
        started = time.perf_counter()
        outbox_rows = self.outbox_rows
        high_water = self.outbox_high_water
        shed = self.outbox_shed
        counts = dict.fromkeys(CLASSES, 0)
        self._new_series = []
        self._sid, self._ts, self._val, self._qual = [], [], [], []
        minutes: set[int] = set()
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = [self._apply_one(b, counts) for b in batches]
            if self._ts:
                minutes = self._append_readings()
            self._bound_outbox()
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            for key in self._new_series:
                self.series.pop(key, None)
            self.outbox_rows, self.outbox_high_water, self.outbox_shed = (
                outbox_rows,
                high_water,
                shed,
            )
            raise
        self.readings.committed(minutes)
        elapsed = time.perf_counter() - started
        m = self.metrics
        for cls, n in counts.items():
            if n:
                m.inc(
                    "store_rows_written_total", n, "Rows committed per data class", **{"class": cls}
                )
        m.inc(
            "store_transactions_total",
            help_="Committed transactions",
            sync="full" if durable else "normal",
        )
        m.inc("store_commit_seconds_total", elapsed, "Time spent in committed transactions")
        m.set("store_commit_seconds_last", elapsed, "Duration of the last committed transaction")
        if self.outbox:
            m.set("store_outbox_backlog", self.outbox_rows, "Rows waiting in the upstream outbox")
            m.set("store_outbox_high_water", self.outbox_high_water, "Largest outbox backlog")
        if self.outbox_shed != shed:
            m.inc(
                "store_outbox_shed_total",
                self.outbox_shed - shed,
                "Readings dropped from the full outbox (still stored locally)",
            )
        return results

    def run(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """Run `fn` in a transaction of its own on the write connection."""
        self._set_sync(durable)
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            result = fn(self.conn)
            self.conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            if self.outbox:
                self.outbox_recount()
            raise
        return result

    # -- one batch --------------------------------------------------------------------------

    def _series_id(self, key: tuple[str, str]) -> int:
        sid = self._next_series
        self.conn.execute("INSERT INTO series (id, device, metric) VALUES (?, ?, ?)", (sid, *key))
        self._next_series = sid + 1
        self.series[key] = sid
        self._new_series.append(key)
        return sid

    def _append_readings(self) -> set[int]:
        """Store the transaction's readings (see `gateway.storage.readings`) and their outbox
        rows; return the log minutes they added."""
        c = Columns.of(self._sid, self._ts, self._val, self._qual)
        minutes, late = self.readings.write(c)
        if late:
            self.metrics.inc(
                "store_late_readings_total",
                late,
                "Readings merged into minutes already packed (arrived after late_readings_s)",
            )
        if self.outbox:
            outbox_table.add_readings(self.conn, c)
            self._outbox_added(len(c))
        return minutes

    # -- packing ------------------------------------------------------------------------------

    def pack_due(self, max_readings: int = 200_000) -> int:
        """Pack minutes that are over, in one transaction of about `max_readings` at most;
        return how many minutes are still due. A failure is logged and counted: the readings
        stay in the log (queries still find them) and packing is tried again later."""
        self._set_sync(False)
        conn = self.conn
        started = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
            minutes, closed_before, n = self.readings.pack(self.now_ms(), max_readings)
            conn.execute("COMMIT")
        except Exception as exc:
            self._rollback()
            err = wrap_error(exc, "packing readings")
            log.error("%s", err)
            self.metrics.inc("store_pack_failures_total", help_="Failed packing transactions")
            return 0
        self.readings.packed(minutes, closed_before)
        m = self.metrics
        m.inc("store_minutes_packed_total", len(minutes), "Minutes of readings packed")
        m.inc("store_readings_packed_total", n, "Readings packed per series and minute")
        m.inc("store_pack_seconds_total", time.perf_counter() - started, "Time spent packing")
        return len(self.readings.due(self.now_ms()))

    def convert_legacy(self, size: int = 100_000) -> int:
        """Pack readings stored before the packed layout, a transaction per `size`."""
        total = 0
        while True:
            n = self.run(lambda _: self.readings.convert_legacy(size), durable=False)
            total += n
            if n == 0:
                return total

    def _apply_one(self, b: WriteBatch, counts: dict[str, int]) -> CommitResult:
        conn = self.conn
        new_events: tuple[bool, ...] = ()
        if b.readings:
            get = self.series.get
            add_series = self._series_id
            rs = b.readings
            self._sid += [get((r.device, r.metric)) or add_series((r.device, r.metric)) for r in rs]
            self._ts += [r.ts_ms for r in rs]
            self._val += [r.value for r in rs]
            self._qual += [r.quality for r in rs]
            counts["readings"] += len(rs)
        if b.events:
            new_events = self._insert_events(b.events)
            n_new = sum(new_events)
            counts["events"] += n_new
            if n_new != len(new_events):
                self.metrics.inc(
                    "store_events_duplicate_total",
                    len(new_events) - n_new,
                    "Events already stored (same id), ignored",
                )
        if b.statuses:
            rows_s = [codec.status_row(s) for s in b.statuses]
            insert_rows(conn, _STATUSES, rows_s)
            conn.executemany(_UPSERT_LATEST, rows_s)
            counts["statuses"] += len(rows_s)
        if b.alerts:
            conn.executemany(_UPSERT_ALERT, [codec.alert_row(a) for a in b.alerts])
            counts["alerts"] += len(b.alerts)
        if b.transitions:
            insert_rows(conn, _TRANSITIONS, [codec.transition_row(t) for t in b.transitions])
            counts["transitions"] += len(b.transitions)
        if b.audit:
            insert_rows(conn, _AUDIT, [codec.audit_row(a) for a in b.audit])
            counts["audit"] += len(b.audit)
        if b.dead_letters:
            insert_rows(conn, _DEAD_LETTERS, [codec.dead_letter_row(d) for d in b.dead_letters])
            counts["dead_letters"] += len(b.dead_letters)
        for statement, params in b.sql:
            conn.executemany(statement, params)
            counts["sql"] += len(params)
        return CommitResult(new_events=new_events)

    def _insert_events(self, events: list[Event]) -> tuple[bool, ...]:
        """Insert the events not stored yet (by id; the first of a repeated id in `events`);
        return which were new, and give the new ones outbox rows in the same order."""
        conn = self.conn
        stored = {r[0] for r in conn.execute(_STORED_EVENTS, (json.dumps([e.id for e in events]),))}
        flags: list[bool] = []
        rows = []
        for e in events:
            new = e.id not in stored
            flags.append(new)
            if new:
                stored.add(e.id)
                rows.append(codec.event_row(e))
        if rows:
            before = conn.execute("SELECT coalesce(max(rowid), 0) FROM events").fetchone()[0]
            insert_rows(conn, _EVENTS, rows)
            if self.outbox:
                outbox_table.add_events_after(conn, before)
                self._outbox_added(len(rows))
        return tuple(flags)

    # -- outbox -----------------------------------------------------------------------------

    def _outbox_added(self, n: int) -> None:
        self.outbox_rows += n

    def _bound_outbox(self) -> None:
        if self.outbox_rows > self.outbox_max_rows:
            dropped = outbox_table.shed(self.conn, self.outbox_rows - self.outbox_max_rows)
            self.outbox_rows -= dropped
            self.outbox_shed += dropped
        self.outbox_high_water = max(self.outbox_high_water, self.outbox_rows)

    def outbox_ack(self, conn: sqlite3.Connection, upto: int) -> int:
        n = outbox_table.ack(conn, upto)
        self.outbox_rows -= n
        return n

    def outbox_recount(self) -> None:
        self.outbox_rows = outbox_table.backlog(self.conn)


Op = Callable[[sqlite3.Connection], Any]
