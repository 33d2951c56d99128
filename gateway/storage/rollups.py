"""Blocks and rollups of the readings a transaction appended, computed by SQLite in that
transaction: so a chart never scans raw rows, and a crash never leaves them out of step.

One pass groups the new rows (ids above the transaction's first) by (series, minute) into a
temporary table: the id range of each group (-> `reading_blocks`, the raw query's index) and
its aggregates; those are merged into `rollup_1m`, and grouped by hour into `rollup_1h`.
BAD-quality readings are stored raw but left out of the aggregates.

Readings are appended, so a re-delivered reading (same series and time) is stored again. It
can only be a duplicate if its group starts at or before the latest time already rolled up in
its minute, or repeats a time within the group; those (rare) minutes are recomputed exactly
from the raw rows, the first stored reading of each time counting once, as in the raw query.
"""

from __future__ import annotations

import sqlite3

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

# One pass over the new rows; `vlast` is then looked up within each group's id range.
_GROUP = (
    "INSERT INTO txn_groups"
    " SELECT a.series_id, a.b, a.first_id, a.last_id, a.first_ts, a.n_ts, a.n, a.vmin,"
    "  a.vmax, a.vsum, a.lts,"
    "  (SELECT r.value FROM readings AS r WHERE r.id BETWEEN a.first_id AND a.last_id"
    "   AND +r.series_id = a.series_id AND r.ts_ms = a.lts AND r.quality < 2"
    "   ORDER BY r.id LIMIT 1)"
    " FROM (SELECT series_id, ts_ms - ts_ms % 60000 AS b, min(id) AS first_id,"
    "   max(id) AS last_id, min(ts_ms) FILTER (WHERE quality < 2) AS first_ts,"
    "   count(DISTINCT ts_ms) FILTER (WHERE quality < 2) AS n_ts,"
    "   count(*) FILTER (WHERE quality < 2) AS n,"
    "   min(value) FILTER (WHERE quality < 2) AS vmin,"
    "   max(value) FILTER (WHERE quality < 2) AS vmax,"
    "   sum(value) FILTER (WHERE quality < 2) AS vsum,"
    "   max(ts_ms) FILTER (WHERE quality < 2) AS lts"
    "  FROM readings WHERE id >= :first GROUP BY 1, 2) AS a"
)

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
# Each group merges straight into its hour: the upsert folds groups of one hour row by row.
_MERGE_1H = (
    f"INSERT INTO rollup_1h {_COLUMNS}"
    " SELECT series_id, bucket_ms - bucket_ms % 3600000, n, vmin, vmax, vsum, last_ts_ms, vlast"
    " FROM txn_groups WHERE n > 0" + _MERGE_SET
)


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


def flush(conn: sqlite3.Connection, first_id: int) -> int:
    """Record blocks and merge rollups for the readings with id >= `first_id`; return the
    number of minutes recomputed because they may hold a duplicate."""
    conn.execute(CREATE_TEMP)
    conn.execute("DELETE FROM txn_groups")
    conn.execute(_GROUP, {"first": first_id})
    suspects = conn.execute(_SUSPECT).fetchall()
    conn.execute(_BLOCKS)
    conn.execute(_MERGE_1M)
    conn.execute(_MERGE_1H)
    if suspects:
        recompute(conn, [(int(s), int(b)) for s, b in suspects])
    return len(suspects)


def recompute(conn: sqlite3.Connection, minutes: list[tuple[int, int]]) -> None:
    """Recompute these (series, minute) rollups, and their hours, from the raw rows."""
    hours = {(s, b - b % HOUR_MS) for s, b in minutes}
    for s, b in minutes:
        conn.execute("DELETE FROM rollup_1m WHERE series_id = ? AND bucket_ms = ?", (s, b))
        conn.execute(_RECOMPUTE_1M, {"s": s, "b": b})
    for s, b in hours:
        conn.execute("DELETE FROM rollup_1h WHERE series_id = ? AND bucket_ms = ?", (s, b))
        conn.execute(_RECOMPUTE_1H, {"s": s, "b": b})
