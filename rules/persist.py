"""The rule engine's own tables (migration 0050): state snapshots, checkpoint, residents, and
the notification outbox. Writes are `WriteBatch.sql` entries; reads run through `Store.read`."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from gateway.storage.batch import SqlParams
from rules.residents import Roster

UPSERT_STATE = (
    "INSERT INTO rules_state (rule_id, state, updated_ms) VALUES (?, ?, ?) "
    "ON CONFLICT (rule_id) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms"
)
UPSERT_CHECKPOINT = (
    "INSERT INTO rules_checkpoint (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
INSERT_OUTBOX = (
    "INSERT INTO alert_notify_outbox (channel, topic, payload, created_ms) VALUES (?, ?, ?, ?)"
)
DELETE_OUTBOX = "DELETE FROM alert_notify_outbox WHERE id = ?"
RETRY_OUTBOX = (
    "UPDATE alert_notify_outbox SET attempts = attempts + 1, next_ms = ?, last_error = ? "
    "WHERE id = ?"
)
UPSERT_RESIDENT = (
    "INSERT INTO residents (pseudonym, room, name, extra, imported_ms) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (pseudonym) DO UPDATE SET room = excluded.room, name = excluded.name, "
    "extra = excluded.extra, imported_ms = excluded.imported_ms"
)
INSERT_LEAVE = (
    "INSERT OR REPLACE INTO resident_leave (pseudonym, from_ms, to_ms, imported_ms) "
    "VALUES (?, ?, ?, ?)"
)
EVENT_ROWID = "event_rowid"
TICK_MS = "tick_ms"
ROSTER_VERSION = "roster_version"


def state_rows(snapshot: dict[str, Any], now_ms: int) -> list[SqlParams]:
    return [
        (rule_id, json.dumps(state, separators=(",", ":")), now_ms)
        for rule_id, state in snapshot.items()
    ]


@dataclass(frozen=True, slots=True)
class Saved:
    state: dict[str, Any]
    checkpoint: dict[str, int]


def load_saved(conn: sqlite3.Connection) -> Saved:
    state = {
        str(rid): json.loads(text)
        for rid, text in conn.execute("SELECT rule_id, state FROM rules_state")
    }
    checkpoint = {
        str(k): int(v) for k, v in conn.execute("SELECT key, value FROM rules_checkpoint")
    }
    return Saved(state, checkpoint)


def load_roster(conn: sqlite3.Connection) -> Roster:
    rooms = {str(p): str(r) for p, r in conn.execute("SELECT pseudonym, room FROM residents")}
    leave: dict[str, list[tuple[int, int]]] = {}
    for p, a, b in conn.execute("SELECT pseudonym, from_ms, to_ms FROM resident_leave"):
        leave.setdefault(str(p), []).append((int(a), int(b)))
    row = conn.execute(
        "SELECT value FROM rules_checkpoint WHERE key = ?", (ROSTER_VERSION,)
    ).fetchone()
    return Roster(rooms, leave, int(row[0]) if row else 0)


def roster_version(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT value FROM rules_checkpoint WHERE key = ?", (ROSTER_VERSION,)
    ).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    channel: str
    topic: str
    payload: bytes
    attempts: int
    next_ms: int


def due_outbox(conn: sqlite3.Connection, channel: str, limit: int = 100) -> list[OutboxRow]:
    """The oldest undelivered rows of a channel, in order (delivery is in order per channel)."""
    rows = conn.execute(
        "SELECT id, channel, topic, payload, attempts, next_ms FROM alert_notify_outbox "
        "WHERE channel = ? ORDER BY id LIMIT ?",
        (channel, limit),
    )
    return [
        OutboxRow(int(i), str(c), str(t), bytes(p), int(a), int(n)) for i, c, t, p, a, n in rows
    ]


def outbox_backlog(conn: sqlite3.Connection) -> dict[str, int]:
    return {
        str(c): int(n)
        for c, n in conn.execute(
            "SELECT channel, COUNT(*) FROM alert_notify_outbox GROUP BY channel"
        )
    }
