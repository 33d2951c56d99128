"""What the API needs from the rule engine about residents (roster, presence, roll call).

The rule engine owns the roster and presence tables; until it provides a directory, the API
runs with `PendingResidents` and marks the residents-based KPIs as pending.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.storage.store import Store


@dataclass(frozen=True, slots=True)
class Resident:
    subject: str  # card pseudonym, as in alerts' subjects
    room: str | None
    name: str | None
    present: bool | None  # None: unknown (e.g. a gate in free mode since the last passage)


@dataclass(frozen=True, slots=True)
class Presence:
    residents_total: int
    residents_in: int
    return_rate: float | None  # at the last roll call, None before the first
    late_returns_today: int


class ResidentDirectory(Protocol):
    async def roster(self) -> list[Resident] | None:
        """All residents, or None when the roster is not available."""
        ...

    async def presence(self, day_start_ms: int, now_ms: int) -> Presence | None: ...

    async def name_of(self, subject: str) -> str | None: ...


class PendingResidents:
    """Used while the rule engine provides no directory."""

    async def roster(self) -> list[Resident] | None:
        return None

    async def presence(self, day_start_ms: int, now_ms: int) -> Presence | None:
        return None

    async def name_of(self, subject: str) -> str | None:
        return None


class SqlResidents:
    """Reads the rule engine's tables: `residents` (roster) and the `_presence` row of
    `rules_state` (last passage per resident, gates in free mode). The return rate and late
    returns come from the rule engine's alerts (`resident.not_returned`, `resident.late_return`).
    Answers None while those tables are missing or empty."""

    PRESENCE_KEY = "_presence"

    def __init__(self, store: Store) -> None:
        self._store = store

    async def _state(self) -> tuple[list[tuple[str, str, str]], dict[str, Any]] | None:
        def q(db: sqlite3.Connection) -> tuple[list[tuple[str, str, str]], dict[str, Any]] | None:
            try:
                rows = db.execute("SELECT pseudonym, room, name FROM residents").fetchall()
                st = db.execute(
                    "SELECT state FROM rules_state WHERE rule_id = ?", (self.PRESENCE_KEY,)
                ).fetchone()
            except sqlite3.OperationalError:  # the rule engine's migration is not there
                return None
            if not rows:
                return None
            presence = json.loads(st[0]) if st and st[0] else {}
            return [(str(r[0]), str(r[1]), str(r[2])) for r in rows], presence

        return await self._store.read(q)

    @staticmethod
    def _present(presence: dict[str, Any], subject: str) -> bool | None:
        last = presence.get("last", {}).get(subject)
        if last is None:
            return None
        direction, ts = str(last[0]), int(last[1])
        if presence.get("free") or int(presence.get("last_free_ms", -1)) >= ts:
            return None
        return direction == "in"

    async def roster(self) -> list[Resident] | None:
        state = await self._state()
        if state is None:
            return None
        rows, presence = state
        return [
            Resident(p, room, name or None, self._present(presence, p)) for p, room, name in rows
        ]

    async def presence(self, day_start_ms: int, now_ms: int) -> Presence | None:
        state = await self._state()
        if state is None:
            return None
        rows, presence = state
        inside = sum(1 for p, _, _ in rows if self._present(presence, p))
        late = await self._store.alerts(
            rule="resident.late_return", since_ms=day_start_ms, limit=100_000
        )
        missing = await self._store.alerts(
            rule="resident.not_returned", since_ms=day_start_ms - 86_400_000, limit=100_000
        )
        rate = None
        if missing:
            # The last roll call: the alerts it raised share one opening minute.
            last_call = max(a.opened_ms for a in missing)
            absent = sum(1 for a in missing if last_call - a.opened_ms < 600_000)
            rate = max(0.0, 1 - absent / len(rows))
        return Presence(len(rows), inside, rate, len(late))

    async def name_of(self, subject: str) -> str | None:
        def q(db: sqlite3.Connection) -> str | None:
            try:
                r = db.execute(
                    "SELECT name FROM residents WHERE pseudonym = ?", (subject,)
                ).fetchone()
            except sqlite3.OperationalError:
                return None
            return str(r[0]) if r and r[0] else None

        return await self._store.read(q)
