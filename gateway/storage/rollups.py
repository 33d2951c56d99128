"""Blocks and rollups of the readings a transaction appended, computed in that
transaction: so a chart never scans raw rows, and a crash never leaves them out of step.

The writer groups the new rows (in Python, with no bytecode per reading in the usual case)
by (series, minute) into a temporary table: the id range of each group (-> `reading_blocks`,
the raw query's index) and its aggregates, merged into `rollup_1m`. BAD-quality readings are
stored raw but left out of the aggregates.

1-hour rollups are written when the hour closes, i.e. when a transaction holds readings of a
later hour (or retention is about to delete its minutes): all series' hours in one statement
from their minutes, instead of one upsert per group and transaction. Readings of a closed
hour (late ones) are merged into it directly. The query reads the hours not closed yet (the
current one) from their minutes; `rollup_marks.hours_closed_ms` says where closed hours end.

Readings are appended, so a re-delivered reading (same series and time) is stored again. It
can only be a duplicate if its group starts at or before the latest time already rolled up in
its minute, or repeats a time within the group; those (rare) minutes are recomputed exactly
from the raw rows, the first stored reading of each time counting once, as in the raw query.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from operator import itemgetter
from typing import Any

MINUTE_MS = 60_000
HOUR_MS = 3_600_000

CREATE_TEMP = (
    "CREATE TEMP TABLE IF NOT EXISTS txn_groups ("
    " series_id INTEGER NOT NULL, bucket_ms INTEGER NOT NULL,"
    " first_id INTEGER NOT NULL, last_id INTEGER NOT NULL, first_ts INTEGER,"
    " n_ts INTEGER NOT NULL, n INTEGER NOT NULL,"
    " vmin REAL, vmax REAL, vsum REAL, last_ts_ms INTEGER, vlast REAL,"
    " PRIMARY KEY (series_id, bucket_ms))"
)

_INSERT_GROUPS = "INSERT INTO txn_groups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

_BLOCKS = (
    "INSERT INTO reading_blocks (series_id, bucket_ms, first_id, last_id)"
    " SELECT series_id, bucket_ms, first_id, last_id FROM txn_groups"
)

_MERGE_SET = (
    " ON CONFLICT (bucket_ms, series_id) DO UPDATE SET"
    " n = n + excluded.n, vmin = min(vmin, excluded.vmin), vmax = max(vmax, excluded.vmax),"
    " vsum = vsum + excluded.vsum,"
    " vlast = CASE WHEN excluded.last_ts_ms >= last_ts_ms THEN excluded.vlast ELSE vlast END,"
    " last_ts_ms = max(last_ts_ms, excluded.last_ts_ms)"
)
_COLUMNS = "(series_id, bucket_ms, n, vmin, vmax, vsum, last_ts_ms, vlast)"

# `WHERE true`: an upsert's SELECT needs a WHERE clause to parse unambiguously.
_MERGE_1M = (
    f"INSERT INTO rollup_1m {_COLUMNS}"
    " SELECT series_id, bucket_ms, n, vmin, vmax, vsum, last_ts_ms, vlast FROM txn_groups"
    " WHERE n > 0" + _MERGE_SET
)
# Groups of closed hours (late readings) merge straight into their hour, row by row.
_MERGE_1H = (
    f"INSERT INTO rollup_1h {_COLUMNS}"
    " SELECT series_id, bucket_ms - bucket_ms % 3600000, n, vmin, vmax, vsum, last_ts_ms, vlast"
    " FROM txn_groups WHERE n > 0 AND bucket_ms < :closed" + _MERGE_SET
)

CLOSED = "SELECT value FROM rollup_marks WHERE name = 'hours_closed_ms'"
_SET_CLOSED = "UPDATE rollup_marks SET value = ? WHERE name = 'hours_closed_ms'"
# An hour's `vlast` is that of its minute with the latest reading (last_ts_ms lies in it).
_CLOSE_HOURS = (
    f"INSERT OR REPLACE INTO rollup_1h {_COLUMNS}"
    " SELECT a.series_id, a.h, a.n, a.vmin, a.vmax, a.vsum, a.lts,"
    "  (SELECT m.vlast FROM rollup_1m AS m"
    "   WHERE m.bucket_ms = a.lts - a.lts % 60000 AND m.series_id = a.series_id)"
    " FROM (SELECT series_id, bucket_ms - bucket_ms % 3600000 AS h, sum(n) AS n,"
    "   min(vmin) AS vmin, max(vmax) AS vmax, sum(vsum) AS vsum, max(last_ts_ms) AS lts"
    "  FROM rollup_1m WHERE bucket_ms >= :lo AND bucket_ms < :hi GROUP BY 1, 2) AS a"
)
_TOP = "SELECT max(bucket_ms) FROM txn_groups"


# Minutes that may hold a duplicate (checked before this transaction's merge).
_SUSPECT = (
    "SELECT g.series_id, g.bucket_ms FROM txn_groups AS g"
    " JOIN rollup_1m AS m ON m.series_id = g.series_id AND m.bucket_ms = g.bucket_ms"
    " WHERE g.first_ts <= m.last_ts_ms"
    " UNION SELECT series_id, bucket_ms FROM txn_groups WHERE n_ts < n"
)

_RECOMPUTE_1M = (
    "WITH d AS (SELECT r.ts_ms AS ts, r.value AS v, min(r.id)"
    "  FROM reading_blocks AS b CROSS JOIN readings AS r ON r.id BETWEEN b.first_id AND b.last_id"
    "  WHERE b.series_id = :s AND b.bucket_ms = :b AND +r.series_id = :s"
    "  AND r.ts_ms >= :b AND r.ts_ms < :b + 60000 AND r.quality < 2 GROUP BY r.ts_ms)"
    f" INSERT INTO rollup_1m {_COLUMNS}"
    " SELECT :s, :b, count(*), min(v), max(v), sum(v), max(ts),"
    "  (SELECT v FROM d ORDER BY ts DESC LIMIT 1) FROM d HAVING count(*) > 0"
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


Row = tuple[int, int, float, int]
"""A reading as appended: (series_id, ts_ms, value, quality)."""

_SID = itemgetter(0)


def bucket_of(ts_ms: int, width: int = MINUTE_MS) -> int:
    """The bucket as SQLite computes it (`ts_ms - ts_ms % width`: the remainder takes the sign
    of the dividend)."""
    return ts_ms - ts_ms % width if ts_ms >= 0 else ts_ms + -ts_ms % width


def groups(rows: list[Row], first_id: int) -> list[tuple[Any, ...]]:
    """The (series, minute) groups of `rows` (grouped by series, appended with ids from
    `first_id` on), as `txn_groups` rows."""
    out: list[tuple[Any, ...]] = []
    if not rows:
        return out
    _, times, values, qualities = zip(*rows, strict=True)
    all_good = max(qualities) < 2
    i = 0
    # Runs of one series: Counter keeps first-seen order, i.e. the rows' order.
    for sid, n in Counter(map(_SID, rows)).items():
        j = i + n
        ts = times[i:j]
        lo = min(ts)
        hi = max(ts)
        bucket = lo - lo % MINUTE_MS
        # The common case, one minute of distinct GOOD/UNCERTAIN readings, costs no Python
        # bytecode per reading; anything else takes the general path.
        if (
            lo >= 0
            and hi < bucket + MINUTE_MS
            and (all_good or max(qualities[i:j]) < 2)
            and len(set(ts)) == n
        ):
            vs = values[i:j]
            last = vs[-1] if ts[-1] == hi else vs[ts.index(hi)]
            out.append(
                (
                    sid,
                    bucket,
                    first_id + i,
                    first_id + j - 1,
                    lo,
                    n,
                    n,
                    min(vs),
                    max(vs),
                    sum(vs),
                    hi,
                    last,
                )
            )
        else:
            _split(sid, rows[i:j], first_id + i, out)
        i = j
    return out


def _split(sid: int, g: list[Row], start: int, out: list[tuple[Any, ...]]) -> None:
    """One series' rows (in id order) by minute; BAD readings only take up ids."""
    minutes: dict[int, list[int]] = {}
    for i, r in enumerate(g):
        minutes.setdefault(bucket_of(r[1]), []).append(i)
    for bucket, idx in sorted(minutes.items()):
        good = [g[i] for i in idx if g[i][3] < 2]
        first, last = start + idx[0], start + idx[-1]
        if not good:
            out.append((sid, bucket, first, last, None, 0, 0) + (None,) * 5)
            continue
        values = [r[2] for r in good]
        times = [r[1] for r in good]
        hi = max(times)
        out.append(
            (
                sid,
                bucket,
                first,
                last,
                min(times),
                len(set(times)),
                len(good),
                min(values),
                max(values),
                sum(values),
                hi,
                values[times.index(hi)],
            )
        )


def flush(conn: sqlite3.Connection, rows: list[Row], first_id: int) -> int:
    """Record blocks and merge rollups for `rows` (grouped by series, appended with ids from
    `first_id` on); return the number of minutes recomputed because they may hold a
    duplicate."""
    conn.execute(CREATE_TEMP)
    conn.execute("DELETE FROM txn_groups")
    conn.executemany(_INSERT_GROUPS, groups(rows, first_id))
    suspects = conn.execute(_SUSPECT).fetchall()
    conn.execute(_BLOCKS)
    conn.execute(_MERGE_1M)
    closed = hours_closed(conn)
    conn.execute(_MERGE_1H, {"closed": closed})
    if suspects:
        recompute(conn, [(int(s), int(b)) for s, b in suspects], closed)
    top = conn.execute(_TOP).fetchone()[0]
    if top is not None and bucket_of(top, HOUR_MS) > closed:
        close_hours(conn, bucket_of(top, HOUR_MS), closed)  # a later hour began: those before close
    return len(suspects)


def hours_closed(conn: sqlite3.Connection) -> int:
    """Start of the first hour not closed: `rollup_1h` is complete below it, and the hours
    from it on are read from `rollup_1m`."""
    return int(conn.execute(CLOSED).fetchone()[0])


def close_hours(conn: sqlite3.Connection, before_ms: int, closed: int | None = None) -> None:
    """Write the 1-hour rollups of the hours before `before_ms` (an hour start) that are not
    closed yet, from their 1-minute rollups, and mark them closed."""
    if closed is None:
        closed = hours_closed(conn)
    if before_ms <= closed:
        return
    conn.execute(_CLOSE_HOURS, {"lo": closed, "hi": before_ms})
    conn.execute(_SET_CLOSED, (before_ms,))


def recompute(conn: sqlite3.Connection, minutes: list[tuple[int, int]], closed: int) -> None:
    """Recompute these (series, minute) rollups, and their closed hours, from the raw rows."""
    hours = {(s, bucket_of(b, HOUR_MS)) for s, b in minutes if b < closed}
    for s, b in minutes:
        conn.execute("DELETE FROM rollup_1m WHERE series_id = ? AND bucket_ms = ?", (s, b))
        conn.execute(_RECOMPUTE_1M, {"s": s, "b": b})
    for s, b in hours:
        conn.execute("DELETE FROM rollup_1h WHERE series_id = ? AND bucket_ms = ?", (s, b))
        conn.execute(_RECOMPUTE_1H, {"s": s, "b": b})
