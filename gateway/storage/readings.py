"""The writer's readings path: log at commit, pack per series once a minute is over.

A transaction's readings go into `reading_log` as one row per minute they fall in, their
columns packed (a few blob writes, whatever their number): that is what makes readings cheap
to commit, and durable like any row. Once a minute is over by the store's clock (plus
`storage.late_readings_s`), the writer packs it: the minute's log rows become one
`reading_chunks` row per series (canonical: sorted, one reading per time), one `rollup_1m` row
and a merge into `rollup_1h`, and the log rows are deleted, in one transaction. Every minute
before `closed_before` is packed (a durable mark); a reading that arrives for such a minute is
merged into its packed minute in the commit's own transaction, and that minute's rollups are
recomputed. So any minute is wholly in the log or wholly packed, and queries read the one
place it is in (`gateway.storage.queries`).

Packing only moves and aggregates what was committed; a crash before or during it leaves the
log as it was, and the next pack does it again.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable

import numpy as np

from gateway.storage.columns import (
    HOUR_MS,
    MINUTE_MS,
    Columns,
    aggregate,
    canonical,
    chunk_rows,
)

CLOSED_BEFORE = "readings_closed_before"

_INSERT_LOG = "INSERT INTO reading_log (bucket_ms, n, sid, ts, val, qual) VALUES (?, ?, ?, ?, ?, ?)"
_LOG_OF_MINUTE = "SELECT sid, ts, val, qual FROM reading_log WHERE bucket_ms = ? ORDER BY id"
_INSERT_CHUNK = (
    "INSERT INTO reading_chunks (bucket_ms, series_id, n, offsets, val, qual)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_CHUNK = (
    "SELECT bucket_ms, n, offsets, val, qual FROM reading_chunks"
    " WHERE bucket_ms = ? AND series_id = ?"
)
_COLUMNS = "(series_id, bucket_ms, n, vmin, vmax, vsum, last_ts_ms, vlast)"
_INSERT_1M = f"INSERT INTO rollup_1m {_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
# A packed minute merges into its hour; `last_ts_ms` orders `vlast` when buckets merge.
_MERGE_1H = (
    f"INSERT INTO rollup_1h {_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (bucket_ms, series_id) DO UPDATE SET"
    " n = n + excluded.n, vmin = min(vmin, excluded.vmin), vmax = max(vmax, excluded.vmax),"
    " vsum = vsum + excluded.vsum,"
    " vlast = CASE WHEN excluded.last_ts_ms >= last_ts_ms THEN excluded.vlast ELSE vlast END,"
    " last_ts_ms = max(last_ts_ms, excluded.last_ts_ms)"
)
_RECOMPUTE_1H = (
    "WITH RECURSIVE k(b) AS (SELECT :b UNION ALL SELECT b + 60000 FROM k"
    "  WHERE b + 60000 < :b + 3600000),"
    " m AS (SELECT r.* FROM k CROSS JOIN rollup_1m AS r ON r.bucket_ms = k.b AND r.series_id = :s)"
    f" INSERT INTO rollup_1h {_COLUMNS}"
    " SELECT :s, :b, sum(n), min(vmin), max(vmax), sum(vsum), max(last_ts_ms),"
    "  (SELECT vlast FROM m ORDER BY last_ts_ms DESC LIMIT 1)"
    " FROM m HAVING count(*) > 0"
)
_SET_STATE = "INSERT OR REPLACE INTO store_state (key, value) VALUES (?, ?)"


class ReadingsPath:
    """State and statements of the readings path; runs in the writer thread, inside the
    transactions the writer opens. The in-memory state (`open_minutes`, `closed_before`)
    follows a transaction only once it committed (`committed()`, `packed()`)."""

    def __init__(self, conn: sqlite3.Connection, late_ms: int) -> None:
        self.conn = conn
        self.late_ms = late_ms
        row = conn.execute("SELECT value FROM store_state WHERE key = ?", (CLOSED_BEFORE,))
        found = row.fetchone()
        self.closed_before = 0 if found is None else int(found[0])
        self.open_minutes = {
            int(b) for (b,) in conn.execute("SELECT DISTINCT bucket_ms FROM reading_log")
        }

    # -- at commit ----------------------------------------------------------------------------

    def write(self, c: Columns) -> tuple[set[int], int]:
        """Store readings (in the order given): return (minutes added to the log, number of
        readings merged into packed minutes)."""
        minutes = c.buckets(MINUTE_MS)
        late = minutes < self.closed_before
        n_late = int(late.sum())
        if n_late:
            self.merge_packed(c.take(late))
            c = c.take(~late)
            minutes = minutes[~late]
        if len(c) == 0:
            return set(), n_late
        distinct = np.unique(minutes).tolist()
        rows = []
        for m in distinct:
            part = c if len(distinct) == 1 else c.take(minutes == m)
            rows.append((m, len(part), *part.log_blobs()))
        self.conn.executemany(_INSERT_LOG, rows)
        return set(distinct), n_late

    def merge_packed(self, c: Columns) -> None:
        """Merge readings into their packed minutes (stored first: they come first) and
        recompute those minutes' rollups and their hours'."""
        conn = self.conn
        minutes = c.buckets(MINUTE_MS)
        order = np.lexsort((minutes, c.sid))  # stable: each group keeps the order given
        c = c.take(order)
        minutes = minutes[order]
        new = np.ones(len(c), bool)
        new[1:] = (c.sid[1:] != c.sid[:-1]) | (minutes[1:] != minutes[:-1])
        bounds = [*np.flatnonzero(new).tolist(), len(c)]
        hours: set[tuple[int, int]] = set()
        for a, b in itertools.pairwise(bounds):
            sid, m = int(c.sid[a]), int(minutes[a])
            parts = [c.take(slice(a, b))]
            stored = conn.execute(_CHUNK, (m, sid)).fetchall()
            if stored:
                parts.insert(0, Columns.from_chunks(sid, stored))
            merged = canonical(Columns.concat(parts))
            conn.execute(
                "DELETE FROM reading_chunks WHERE bucket_ms = ? AND series_id = ?", (m, sid)
            )
            conn.executemany(_INSERT_CHUNK, chunk_rows(merged, m))
            conn.execute("DELETE FROM rollup_1m WHERE bucket_ms = ? AND series_id = ?", (m, sid))
            conn.executemany(_INSERT_1M, aggregate(merged, MINUTE_MS).rows())
            hours.add((sid, m - m % HOUR_MS))
        for sid, h in hours:
            conn.execute("DELETE FROM rollup_1h WHERE bucket_ms = ? AND series_id = ?", (h, sid))
            conn.execute(_RECOMPUTE_1H, {"s": sid, "b": h})

    def committed(self, minutes: Iterable[int]) -> None:
        self.open_minutes.update(minutes)

    # -- packing ------------------------------------------------------------------------------

    def close_boundary(self, now_ms: int) -> int:
        """Minutes before this are over (by `now_ms` and the lateness allowed)."""
        edge = now_ms - self.late_ms
        return max(self.closed_before, edge - edge % MINUTE_MS)

    def due(self, now_ms: int) -> list[int]:
        """Log minutes that are over, oldest first."""
        boundary = self.close_boundary(now_ms)
        # A copy first: the event loop's thread reads this too.
        return sorted(m for m in list(self.open_minutes) if m < boundary)

    def pack(self, now_ms: int, max_readings: int) -> tuple[list[int], int, int]:
        """Pack due minutes, oldest first, until about `max_readings` were packed (at least
        one minute); return (minutes packed, the new `closed_before`, readings packed).
        Apply with `packed()` once the transaction committed."""
        boundary = self.close_boundary(now_ms)
        due = self.due(now_ms)
        done: list[int] = []
        total = 0
        for m in due:
            if done and total >= max_readings:
                break
            total += self._pack_minute(m)
            done.append(m)
        closed = boundary if len(done) == len(due) else due[len(done)]
        closed = max(closed, self.closed_before)
        self.conn.execute(_SET_STATE, (CLOSED_BEFORE, closed))
        return done, closed, total

    def packed(self, minutes: list[int], closed_before: int) -> None:
        self.open_minutes.difference_update(minutes)
        self.closed_before = closed_before

    def _pack_minute(self, m: int) -> int:
        conn = self.conn
        parts = [Columns.from_log(*r) for r in conn.execute(_LOG_OF_MINUTE, (m,))]
        c = canonical(Columns.concat(parts))
        conn.executemany(_INSERT_CHUNK, chunk_rows(c, m))
        rows = aggregate(c, MINUTE_MS).rows()
        conn.executemany(_INSERT_1M, rows)
        h = m - m % HOUR_MS
        conn.executemany(_MERGE_1H, [(s, h, *rest) for s, _, *rest in rows])
        conn.execute("DELETE FROM reading_log WHERE bucket_ms = ?", (m,))
        return len(c)

    # -- readings stored before the packed layout ---------------------------------------------

    def convert_legacy(self, size: int) -> int:
        """Pack up to `size` rows of `legacy_readings` (renamed by migration 0005) into their
        minutes, or drop the table once it is empty; return the rows converted. Call in a
        transaction of its own, before anything else is written."""
        conn = self.conn
        if not conn.execute(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'legacy_readings'"
        ).fetchone():
            return 0
        rows = conn.execute(
            "SELECT id, series_id, ts_ms, value, quality FROM legacy_readings ORDER BY id LIMIT ?",
            (size,),
        ).fetchall()
        if not rows:
            conn.execute("DROP TABLE legacy_readings")
            return 0
        ids, sid, ts, val, qual = (list(col) for col in zip(*rows, strict=True))
        c = Columns.of(sid, ts, val, qual)
        last = int(c.buckets(MINUTE_MS).max()) + MINUTE_MS
        if last > self.closed_before:
            self.closed_before = last
            conn.execute(_SET_STATE, (CLOSED_BEFORE, last))
        self.merge_packed(c)
        conn.execute("DELETE FROM legacy_readings WHERE id <= ?", (ids[-1],))
        return len(rows)
