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
SERIES_PER_CHUNK = 100


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
    """The store's own data classes (raw readings and rollups go per series, see below)."""
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


SERIES_TABLES = (
    ("rollup_1m", "rollup_1m", "bucket_ms"),
    ("rollup_1h", "rollup_1h", "bucket_ms"),
)


def series_days(r: Retention) -> dict[str, int]:
    return {
        "raw_readings": r.raw_readings_days,
        "rollup_1m": r.rollup_1m_days,
        "rollup_1h": r.rollup_1h_days,
    }


def delete_series_rows(
    conn: sqlite3.Connection, table: str, column: str, series_ids: list[int], cutoff_ms: int
) -> int:
    """Delete rows of `series_ids` older than `cutoff_ms` (a range delete per series)."""
    before = conn.total_changes
    conn.executemany(
        f"DELETE FROM {table} WHERE series_id = ? AND {column} < ?",
        [(sid, cutoff_ms) for sid in series_ids],
    )
    return conn.total_changes - before


def delete_raw_readings(conn: sqlite3.Connection, series_ids: list[int], cutoff_ms: int) -> int:
    """Delete readings of `series_ids` older than `cutoff_ms`, found through their blocks, and
    the blocks wholly older than it."""
    before = conn.total_changes
    conn.executemany(
        "DELETE FROM readings WHERE id IN (SELECT r.id FROM reading_blocks AS b"
        " JOIN readings AS r ON r.id BETWEEN b.first_id AND b.last_id"
        " WHERE b.series_id = :s AND b.bucket_ms < :c AND r.series_id = :s AND r.ts_ms < :c)",
        [{"s": sid, "c": cutoff_ms} for sid in series_ids],
    )
    deleted = conn.total_changes - before
    conn.executemany(
        "DELETE FROM reading_blocks WHERE series_id = ? AND bucket_ms <= ?",
        [(sid, cutoff_ms - 60_000) for sid in series_ids],
    )
    return deleted


def run_rule_once(conn: sqlite3.Connection, rule: Rule, cutoff_ms: int) -> int:
    return conn.execute(rule.sql, (cutoff_ms,)).rowcount
