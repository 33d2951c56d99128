"""Read queries, run on reader connections in worker threads."""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np

from gateway.model import (
    Alert,
    AlertState,
    AlertTransition,
    AuditRecord,
    DeviceStatus,
    Severity,
)
from gateway.storage import codec
from gateway.storage.columns import BAD, HOUR_MS, MINUTE_MS, Columns, aggregate, canonical
from gateway.storage.records import SeriesPoint, StoredDeadLetter, StoredEvent

_TOP = "\U0010ffff"


def series_id(conn: sqlite3.Connection, device: str, metric: str) -> int | None:
    row = conn.execute(
        "SELECT id FROM series WHERE device = ? AND metric = ?", (device, metric)
    ).fetchone()
    return None if row is None else int(row[0])


def series_keys(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return [(str(d), str(m)) for d, m in conn.execute("SELECT device, metric FROM series")]


# One key lookup per bucket of the window (tables are keyed time first).
_BUCKETS = (
    "WITH RECURSIVE k(b) AS (SELECT :first UNION ALL SELECT b + :width FROM k"
    " WHERE b + :width < :last)"
)
_CHUNKS = (
    _BUCKETS + " SELECT c.bucket_ms, c.n, c.offsets, c.val, c.qual FROM k"
    " CROSS JOIN reading_chunks AS c ON c.bucket_ms = k.b AND c.series_id = :s"
    " ORDER BY c.bucket_ms"
)
_ROLLUP = (
    _BUCKETS + " SELECT r.bucket_ms, r.n, r.vmin, r.vmax, r.vsum, r.last_ts_ms, r.vlast FROM k"
    " CROSS JOIN {table} AS r ON r.bucket_ms = k.b AND r.series_id = :s ORDER BY r.bucket_ms"
)
_LOG = (
    "SELECT sid, ts, val, qual FROM reading_log WHERE bucket_ms >= ? AND bucket_ms < ? ORDER BY id"
)
_WIDTHS = {"raw": MINUTE_MS, "1m": MINUTE_MS, "1h": HOUR_MS}

Agg = tuple[int, float, float, float, int, float]
"""n, min, max, sum, time of the last value, last value."""


def _window(
    conn: sqlite3.Connection, table: str, width: int, since_ms: int, until_ms: int
) -> tuple[int, int] | None:
    """The buckets to look up: the window, clamped to what the table holds."""
    lo, hi = conn.execute(  # two subqueries: each is one B-tree seek, together a scan
        f"SELECT (SELECT min(bucket_ms) FROM {table}), (SELECT max(bucket_ms) FROM {table})"
    ).fetchone()
    if lo is None:
        return None
    first = max(since_ms - since_ms % width, lo)
    last = min(until_ms, hi + 1)
    return (first, last) if first < last else None


def series_points(
    conn: sqlite3.Connection, sids: list[int], since_ms: int, until_ms: int, bucket: str
) -> list[list[SeriesPoint]]:
    """Points of each series: packed minutes and rollups, plus the minutes still in the log
    (see `gateway.storage.readings`, read once for all), in one snapshot: a minute is in one
    of them."""
    width = _WIDTHS.get(bucket)
    if width is None:
        raise ValueError(f"unknown bucket {bucket!r}: use 'raw', '1m' or '1h'")
    first = since_ms - since_ms % width
    if until_ms <= first:
        return [[] for _ in sids]
    conn.execute("BEGIN")
    try:
        if bucket == "raw":
            logged = _logged(conn, sids, first, until_ms)
            return [_raw_points(conn, s, since_ms, until_ms, logged[s]) for s in sids]
        end = until_ms - 1 - (until_ms - 1) % width + width  # the end of the last bucket
        logged = _logged(conn, sids, first, end)
        table = f"rollup_{bucket}"
        return [_bucket_points(conn, s, first, until_ms, table, width, logged[s]) for s in sids]
    finally:
        conn.execute("COMMIT")


def _logged(
    conn: sqlite3.Connection, sids: list[int], first_ms: int, last_ms: int
) -> dict[int, Columns]:
    """Each series' readings in the log's minutes [first_ms, last_ms), canonical."""
    wanted = np.array(sids, np.int64)
    parts = []
    for row in conn.execute(_LOG, (first_ms, last_ms)):
        c = Columns.from_log(*row)
        parts.append(c.take(np.isin(c.sid, wanted)))
    c = canonical(Columns.concat(parts))
    bounds = np.searchsorted(c.sid, wanted).tolist(), np.searchsorted(c.sid, wanted, "right")
    return {
        s: c.take(slice(a, b)) for s, a, b in zip(sids, bounds[0], bounds[1].tolist(), strict=True)
    }


def _raw_points(
    conn: sqlite3.Connection, sid: int, since_ms: int, until_ms: int, logged: Columns
) -> list[SeriesPoint]:
    """Raw readings; a re-delivered reading (same time) counts once, BAD ones not at all."""
    parts = []
    window = _window(conn, "reading_chunks", MINUTE_MS, since_ms, until_ms)
    if window is not None:
        params = {"s": sid, "first": window[0], "last": window[1], "width": MINUTE_MS}
        parts.append(Columns.from_chunks(sid, conn.execute(_CHUNKS, params).fetchall()))
    parts.append(logged)
    c = Columns.concat(parts)
    c = c.take((c.ts >= since_ms) & (c.ts < until_ms) & (c.qual < BAD))
    c = c.take(np.argsort(c.ts, kind="stable"))
    values = zip(c.ts.tolist(), c.val.tolist(), strict=True)
    return [SeriesPoint(t, 1, v, v, v, v) for t, v in values]


def _bucket_points(  # noqa: PLR0917
    conn: sqlite3.Connection,
    sid: int,
    first: int,
    until_ms: int,
    table: str,
    width: int,
    logged: Columns,
) -> list[SeriesPoint]:
    """Buckets starting in [first, until_ms): rollups of packed minutes, merged with the
    aggregates of the logged ones."""
    points: dict[int, Agg] = {}
    window = _window(conn, table, width, first, until_ms)
    if window is not None:
        params = {"s": sid, "first": window[0], "last": window[1], "width": width}
        for b, n, lo, hi, total, last_ts, last in conn.execute(_ROLLUP.format(table=table), params):
            points[b] = (n, lo, hi, total, last_ts, last)
    for _, b, n, lo, hi, total, last_ts, last in aggregate(logged, width).rows():
        agg = (n, lo, hi, total, last_ts, last)
        prev = points.get(b)
        points[b] = agg if prev is None else _merge(prev, agg)
    return [
        SeriesPoint(b, n, lo, hi, total / n, last)
        for b, (n, lo, hi, total, _, last) in sorted(points.items())
    ]


def _merge(a: Agg, b: Agg) -> Agg:
    later = b if b[4] >= a[4] else a
    return (a[0] + b[0], min(a[1], b[1]), max(a[2], b[2]), a[3] + b[3], later[4], later[5])


def events(
    conn: sqlite3.Connection,
    *,
    device: str | None,
    kind_prefix: str | None,
    since_ms: int | None,
    until_ms: int | None,
    after_rowid: int | None,
    limit: int,
) -> list[StoredEvent]:
    where: list[str] = []
    params: list[Any] = []
    if device is not None:
        where.append("device = ?")
        params.append(device)
    if kind_prefix:
        where.append("kind >= ? AND kind < ?")
        params += [kind_prefix, kind_prefix + _TOP]
    if since_ms is not None:
        where.append("ts_ms >= ?")
        params.append(since_ms)
    if until_ms is not None:
        where.append("ts_ms < ?")
        params.append(until_ms)
    if after_rowid is not None:
        where.append("rowid > ?")
        params.append(after_rowid)
    sql = f"SELECT {codec.EVENT_COLUMNS} FROM events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY rowid LIMIT ?"
    params.append(limit)
    out = []
    for row in conn.execute(sql, params):
        rowid, event = codec.event_from_row(row)
        out.append(StoredEvent(rowid, event))
    return out


def latest_statuses(conn: sqlite3.Connection) -> dict[str, DeviceStatus]:
    rows = conn.execute(f"SELECT {codec.STATUS_COLUMNS} FROM device_latest")
    return {s.device: s for s in map(codec.status_from_row, rows)}


def status_history(
    conn: sqlite3.Connection, device: str, since_ms: int | None, limit: int
) -> list[DeviceStatus]:
    cols = codec.STATUS_COLUMNS
    if since_ms is None:
        rows = conn.execute(
            f"SELECT * FROM (SELECT {cols}, seq FROM status_history WHERE device = ?"
            " ORDER BY ts_ms DESC, seq DESC LIMIT ?) ORDER BY ts_ms, seq",
            (device, limit),
        )
    else:
        rows = conn.execute(
            f"SELECT {cols}, seq FROM status_history WHERE device = ? AND ts_ms >= ?"
            " ORDER BY ts_ms, seq LIMIT ?",
            (device, since_ms, limit),
        )
    return [codec.status_from_row(r[:5]) for r in rows]


def alert(conn: sqlite3.Connection, alert_id: str) -> Alert | None:
    row = conn.execute(f"SELECT {codec.ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,))
    found = row.fetchone()
    return None if found is None else codec.alert_from_row(found)


def alerts(
    conn: sqlite3.Connection,
    *,
    states: tuple[AlertState, ...],
    rule: str | None,
    severity: Severity | None,
    subject_prefix: str | None,
    since_ms: int | None,
    until_ms: int | None,
    overdue_at_ms: int | None,
    after: tuple[int, str] | None,
    limit: int,
) -> list[Alert]:
    where: list[str] = []
    params: list[Any] = []
    if states:
        where.append(f"state IN ({','.join('?' * len(states))})")
        params += [AlertState(s).value for s in states]
    if rule is not None:
        where.append("rule = ?")
        params.append(rule)
    if severity is not None:
        where.append("severity = ?")
        params.append(Severity(severity).value)
    if subject_prefix:
        where.append("subject >= ? AND subject < ?")
        params += [subject_prefix, subject_prefix + _TOP]
    if since_ms is not None:
        where.append("opened_ms >= ?")
        params.append(since_ms)
    if until_ms is not None:
        where.append("opened_ms < ?")
        params.append(until_ms)
    if overdue_at_ms is not None:
        where.append(
            "((state = 'open' AND ack_deadline_ms IS NOT NULL AND ack_deadline_ms < ?)"
            " OR (state != 'resolved' AND resolve_deadline_ms IS NOT NULL"
            " AND resolve_deadline_ms < ?))"
        )
        params += [overdue_at_ms, overdue_at_ms]
    if after is not None:
        where.append("(opened_ms < ? OR (opened_ms = ? AND id > ?))")
        params += [after[0], after[0], after[1]]
    sql = f"SELECT {codec.ALERT_COLUMNS} FROM alerts"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY opened_ms DESC, id LIMIT ?"
    params.append(limit)
    return [codec.alert_from_row(r) for r in conn.execute(sql, params)]


def transitions(conn: sqlite3.Connection, alert_id: str) -> list[AlertTransition]:
    rows = conn.execute(
        f"SELECT {codec.TRANSITION_COLUMNS} FROM alert_transitions WHERE alert_id = ? ORDER BY seq",
        (alert_id,),
    )
    return [codec.transition_from_row(r) for r in rows]


def audit_log(conn: sqlite3.Connection, since_ms: int | None, limit: int) -> list[AuditRecord]:
    cols = codec.AUDIT_COLUMNS
    if since_ms is None:
        rows = conn.execute(
            f"SELECT * FROM (SELECT {cols}, seq FROM audit ORDER BY seq DESC LIMIT ?) ORDER BY seq",
            (limit,),
        )
    else:
        rows = conn.execute(
            f"SELECT {cols}, seq FROM audit WHERE ts_ms >= ? ORDER BY seq LIMIT ?",
            (since_ms, limit),
        )
    return [codec.audit_from_row(r[:5]) for r in rows]


def dead_letters(
    conn: sqlite3.Connection, device: str | None, limit: int
) -> list[StoredDeadLetter]:
    sql = f"SELECT {codec.DEAD_LETTER_COLUMNS} FROM dead_letters"
    params: list[Any] = []
    if device is not None:
        sql += " WHERE coalesce(device, '') = ?"
        params.append(device)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    out = []
    for row in conn.execute(sql, params):
        id_, size, letter = codec.dead_letter_from_row(row)
        out.append(StoredDeadLetter(id_, letter, size))
    return out


def dead_letter_counts(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT coalesce(device, ''), count(*) FROM dead_letters GROUP BY 1")
    return {str(d): int(n) for d, n in rows}
