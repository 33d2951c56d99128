"""Retention: what each data class keeps, as statements run by the writer in short transactions.

Deletes go in chunks (one transaction each) so that commits queued behind retention wait
for a chunk, not for the whole run. An alert that is not resolved is never deleted, nor are
its transitions.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gateway.config.storage import Retention

DAY_MS = 86_400_000
CHUNK_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class Rule:
    """Delete rows of one data class older than `days`; `sql` has one `?`: the cutoff (ms).

    The statement must delete at most a bounded number of rows per run (e.g. with a
    `rowid IN (SELECT ... LIMIT n)` subquery) or the whole table if small; it is repeated until
    it deletes fewer than `chunk` rows (`chunk=0`: run once).
    """

    data_class: str
    days: int
    sql: str
    chunk: int = 0


def _chunked(table: str, key: str, where: str) -> str:
    return (
        f"DELETE FROM {table} WHERE {key} IN"
        f" (SELECT {key} FROM {table} WHERE {where} LIMIT {CHUNK_ROWS})"
    )


def builtin_rules(r: Retention) -> list[Rule]:
    """The store's other data classes (raw readings and rollups: `delete_oldest`)."""
    resolved_old = "state = 'resolved' AND updated_ms < ?"
    return [
        Rule("events", r.events_days, _chunked("events", "rowid", "ts_ms < ?"), CHUNK_ROWS),
        Rule(
            "statuses",
            r.events_days,
            _chunked("status_history", "seq", "ts_ms < ?"),
            CHUNK_ROWS,
        ),
        Rule(
            "dead_letters", r.events_days, _chunked("dead_letters", "id", "ts_ms < ?"), CHUNK_ROWS
        ),
        Rule(
            "transitions",
            r.alerts_days,
            "DELETE FROM alert_transitions WHERE alert_id IN"
            f" (SELECT id FROM alerts WHERE {resolved_old})",
        ),
        Rule("alerts", r.alerts_days, f"DELETE FROM alerts WHERE {resolved_old}"),
        Rule("audit", r.audit_days, _chunked("audit", "seq", "ts_ms < ?"), CHUNK_ROWS),
    ]


SERIES_CLASSES = (
    # data class, table, bucket width, window deleted per transaction
    ("raw_readings", "reading_chunks", 60_000, 3_600_000),
    ("rollup_1m", "rollup_1m", 60_000, 3_600_000),
    ("rollup_1h", "rollup_1h", 3_600_000, DAY_MS),
)


def series_days(r: Retention) -> dict[str, int]:
    return {
        "raw_readings": r.raw_readings_days,
        "rollup_1m": r.rollup_1m_days,
        "rollup_1h": r.rollup_1h_days,
    }


def delete_oldest(
    conn: sqlite3.Connection, table: str, window_ms: int, before_ms: int
) -> tuple[int, bool]:
    """Delete the oldest `window_ms` of buckets of `table` that start before `before_ms`;
    return (rows deleted, whether more remain). For `reading_chunks` the count is of readings.

    The tables are keyed time first, so this is a range at the start of the B-tree."""
    lo = conn.execute(f"SELECT min(bucket_ms) FROM {table}").fetchone()[0]
    if lo is None or lo >= before_ms:
        return 0, False
    hi = min(lo + window_ms, before_ms)
    if table == "reading_chunks":
        deleted = conn.execute(
            "SELECT coalesce(sum(n), 0) FROM reading_chunks WHERE bucket_ms < ?", (hi,)
        ).fetchone()[0]
        conn.execute("DELETE FROM reading_chunks WHERE bucket_ms < ?", (hi,))
    else:
        deleted = conn.execute(f"DELETE FROM {table} WHERE bucket_ms < ?", (hi,)).rowcount
    return int(deleted), hi < before_ms


def run_rule_once(conn: sqlite3.Connection, rule: Rule, cutoff_ms: int) -> int:
    return conn.execute(rule.sql, (cutoff_ms,)).rowcount
