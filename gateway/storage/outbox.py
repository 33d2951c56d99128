"""The upstream outbox: what the writer adds in a commit's transaction, and how it is read,
acknowledged and bounded.

A row holds one event (kind 1) or a transaction's readings (kind 2: `n` entries, columns
packed as in `reading_log`; kind 0, one reading, is the layout before migration 0006). The
first `done` entries of a row are acknowledged or shed. An entry's `seq` is its row's `seq`
shifted left by `ENTRY_BITS`, plus its index in the row: increasing in outbox order.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from gateway.model import Quality, Reading
from gateway.storage import codec
from gateway.storage.columns import Columns
from gateway.storage.records import OutboxEntry, StoredEvent

ENTRY_BITS = 20
ROW_ENTRIES = 1 << ENTRY_BITS
"""Most entries in one row; a transaction with more readings gets several rows."""
READING, EVENT, READINGS = 0, 1, 2

_ADD_READINGS = "INSERT INTO outbox (kind, n, sid, ts, val, qual) VALUES (2, ?, ?, ?, ?, ?)"
_ADD_EVENTS = (
    "INSERT INTO outbox (kind, event_rowid) SELECT 1, rowid FROM events WHERE rowid > ?"
    " ORDER BY rowid"
)
_ROWS = (
    "SELECT seq, kind, n, done, series_id, ts_ms, value, quality, event_rowid,"
    " sid, ts, val, qual FROM outbox WHERE seq >= ? ORDER BY seq"
)


def backlog(conn: sqlite3.Connection) -> int:
    """Entries waiting."""
    return int(conn.execute("SELECT coalesce(sum(n - done), 0) FROM outbox").fetchone()[0])


def add_readings(conn: sqlite3.Connection, c: Columns) -> None:
    for i in range(0, len(c), ROW_ENTRIES):
        part = c.take(slice(i, i + ROW_ENTRIES))
        conn.execute(_ADD_READINGS, (len(part), *part.log_blobs()))


def add_events_after(conn: sqlite3.Connection, rowid: int) -> None:
    """Entries for the events inserted after `rowid`, in order."""
    conn.execute(_ADD_EVENTS, (rowid,))


def shed(conn: sqlite3.Connection, count: int) -> int:
    """Drop up to `count` of the oldest reading entries (never events); return how many."""
    dropped = 0
    rows = conn.execute("SELECT seq, n - done FROM outbox WHERE kind != 1 ORDER BY seq")
    for seq, left in rows.fetchmany(1 + count):
        take = min(left, count - dropped)
        if take == left:
            conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
        else:
            conn.execute("UPDATE outbox SET done = done + ? WHERE seq = ?", (take, seq))
        dropped += take
        if dropped >= count:
            break
    return dropped


def ack(conn: sqlite3.Connection, upto: int) -> int:
    """Acknowledge the entries with seq <= `upto`; return how many were waiting."""
    row, index = upto >> ENTRY_BITS, upto & (ROW_ENTRIES - 1)
    gone = int(
        conn.execute(
            "SELECT coalesce(sum(n - done), 0) FROM outbox WHERE seq < ?", (row,)
        ).fetchone()[0]
    )
    conn.execute("DELETE FROM outbox WHERE seq < ?", (row,))
    found = conn.execute("SELECT n, done FROM outbox WHERE seq = ?", (row,)).fetchone()
    if found is not None:
        n, done = found
        if index + 1 >= n:
            conn.execute("DELETE FROM outbox WHERE seq = ?", (row,))
            gone += n - done
        elif index + 1 > done:
            conn.execute("UPDATE outbox SET done = ? WHERE seq = ?", (index + 1, row))
            gone += index + 1 - done
    return gone


def oldest(conn: sqlite3.Connection) -> int | None:
    """The seq of the oldest entry waiting."""
    row = conn.execute("SELECT seq, done FROM outbox ORDER BY seq LIMIT 1").fetchone()
    return None if row is None else (int(row[0]) << ENTRY_BITS) + int(row[1])


def read(conn: sqlite3.Connection, after: int, limit: int) -> list[OutboxEntry]:
    """Up to `limit` entries with seq > `after`, in order."""
    out: list[OutboxEntry] = []
    first_row = (after >> ENTRY_BITS) if after >= 0 else 0
    pending_events: list[tuple[int, int]] = []  # (position in out, event rowid)
    names = _SeriesNames(conn)
    cur = conn.execute(_ROWS, (first_row,))
    while len(out) < limit:
        batch = cur.fetchmany(64)
        if not batch:
            break
        for seq, kind, n, done, *single, sid, ts, val, qual in batch:
            base = seq << ENTRY_BITS
            start = max(done, after - base + 1)
            if start >= n:
                continue
            if kind == READINGS:
                take = min(n - start, limit - len(out))
                c = Columns.from_log(sid, ts, val, qual).take(slice(start, start + take))
                out += names.entries(base + start, c)
            elif kind == EVENT:
                pending_events.append((len(out), single[4]))
                out.append(OutboxEntry(base))
            else:
                series_id, ts_ms, value, quality, _ = single
                reading = names.reading(series_id, ts_ms, value, quality)
                out.append(OutboxEntry(base, reading=reading))
            if len(out) >= limit:
                break
    _fill_events(conn, out, pending_events)
    return out


def _fill_events(
    conn: sqlite3.Connection, out: list[OutboxEntry], pending: list[tuple[int, int]]
) -> None:
    """Put each event entry's event in (an entry whose event retention deleted stays empty:
    the sender skips and acknowledges it)."""
    if not pending:
        return
    rows = conn.execute(
        f"SELECT {codec.EVENT_COLUMNS} FROM events WHERE rowid IN (SELECT value FROM json_each(?))",
        (json.dumps([rowid for _, rowid in pending]),),
    )
    events = dict(codec.event_from_row(r) for r in rows)
    for pos, rowid in pending:
        event = events.get(rowid)
        if event is not None:
            out[pos] = OutboxEntry(out[pos].seq, event=StoredEvent(rowid, event))


class _SeriesNames:
    """Device and metric of series ids, looked up once per read."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.names: dict[int, tuple[str, str]] = {}

    def _load(self, ids: list[int]) -> None:
        missing = [i for i in ids if i not in self.names]
        if missing:
            rows = self.conn.execute(
                "SELECT id, device, metric FROM series"
                " WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(missing),),
            )
            self.names.update((int(i), (d, m)) for i, d, m in rows)

    def reading(self, sid: int, ts_ms: int, value: float, quality: int) -> Reading | None:
        self._load([sid])
        name = self.names.get(sid)
        return None if name is None else Reading(*name, ts_ms, value, Quality(quality))

    def entries(self, first_seq: int, c: Columns) -> list[OutboxEntry]:
        sids = c.sid.tolist()
        self._load(sorted(set(sids)))
        names = self.names
        qualities: dict[int, Any] = {q: Quality(q) for q in set(c.qual.tolist())}
        return [
            OutboxEntry(
                first_seq + i,
                reading=Reading(*names[s], t, v, qualities[q]) if s in names else None,
            )
            for i, (s, t, v, q) in enumerate(
                zip(sids, c.ts.tolist(), c.val.tolist(), c.qual.tolist(), strict=True)
            )
        ]
