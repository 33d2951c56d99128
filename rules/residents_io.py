"""Residents in the store: CSV import (card numbers become keyed pseudonyms on the way in), and
the audited read of a resident's name."""

from __future__ import annotations

import csv
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.clock import Clock
from gateway.model import AuditRecord
from gateway.privacy import Pseudonymizer
from gateway.storage.batch import SqlParams, WriteBatch
from gateway.storage.store import Store
from rules import persist
from rules.localtime import LocalClock

ROSTER_COLUMNS = ("cardNo", "room", "name")
LEAVE_COLUMNS = ("cardNo", "from", "to")


class RosterImportError(ValueError):
    """A CSV file that cannot be imported; the message names the file, line and column."""


@dataclass(frozen=True, slots=True)
class ResidentRow:
    card_no: str
    room: str
    name: str
    extra: dict[str, str]


@dataclass(frozen=True, slots=True)
class LeaveRow:
    card_no: str
    start: str
    end: str


def _reader(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterImportError(f"{path}: {exc}") from exc
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in required if c not in header]
    if missing:
        raise RosterImportError(
            f"{path}: missing column(s) {', '.join(missing)} (header: {header})"
        )
    rows = []
    for i, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        if not any(row.values()):
            continue
        for c in required:
            if not row.get(c):
                raise RosterImportError(f"{path}:{i}: column {c} is empty")
        if not row["cardNo"].isdigit() or not 6 <= len(row["cardNo"]) <= 20:
            raise RosterImportError(f"{path}:{i}: cardNo must be 6–20 digits")
        rows.append((i, row))
    return rows


def read_roster(path: Path) -> list[ResidentRow]:
    return [
        ResidentRow(
            r["cardNo"],
            r["room"],
            r["name"],
            {k: v for k, v in r.items() if k not in ROSTER_COLUMNS and v},
        )
        for _, r in _reader(path, ROSTER_COLUMNS)
    ]


def read_leave(path: Path) -> list[LeaveRow]:
    return [LeaveRow(r["cardNo"], r["from"], r["to"]) for _, r in _reader(path, LEAVE_COLUMNS)]


async def import_rows(
    store: Store,
    pseudonymizer: Pseudonymizer,
    timezone: str,
    roster: list[ResidentRow],
    leave: list[LeaveRow],
    *,
    now_ms: int,
    replace: bool = True,
) -> dict[str, int]:
    """Write residents and leave (pseudonymised) in one transaction; `replace` drops the
    previous roster and leave first (an import is the full export of the source system)."""
    local = LocalClock(timezone)
    residents: list[SqlParams] = [
        (
            pseudonymizer.card(r.card_no),
            r.room,
            r.name,
            json.dumps(r.extra, ensure_ascii=False),
            now_ms,
        )
        for r in roster
    ]
    leaves: list[SqlParams] = []
    for r in leave:
        try:
            start, end = local.parse(r.start), local.parse(r.end)
        except ValueError as exc:
            raise RosterImportError(f"leave of a card: bad date-time ({exc})") from exc
        if end < start:
            raise RosterImportError(f"leave {r.start} → {r.end}: `to` is before `from`")
        leaves.append((pseudonymizer.card(r.card_no), start, end, now_ms))
    batch = WriteBatch()
    if replace and roster:
        batch.sql.append(("DELETE FROM residents", [()]))
    if replace and leave:
        batch.sql.append(("DELETE FROM resident_leave", [()]))
    if residents:
        batch.sql.append((persist.UPSERT_RESIDENT, residents))
    if leaves:
        batch.sql.append((persist.INSERT_LEAVE, leaves))
    batch.sql.append((persist.UPSERT_CHECKPOINT, [(persist.ROSTER_VERSION, now_ms)]))
    batch.audit.append(
        AuditRecord(
            now_ms,
            "system",
            "residents.import",
            "residents",
            {"residents": len(residents), "leave": len(leaves)},
        )
    )
    await store.commit(batch)
    return {"residents": len(residents), "leave": len(leaves)}


async def resident_name(
    store: Store, clock: Clock, pseudonym: str, *, actor: str, purpose: str = ""
) -> str | None:
    """A resident's name, for a role allowed to see it. The read is audited first (who, when,
    whose name, why), in the same call: there is no unaudited way to read a name."""
    if not actor:
        raise ValueError("reading a resident's name needs the actor who reads it")
    await store.commit(
        WriteBatch(
            audit=[
                AuditRecord(
                    clock.now_ms(), actor, "resident.name.read", pseudonym, {"purpose": purpose}
                )
            ]
        )
    )

    def q(conn: sqlite3.Connection) -> str | None:
        row = conn.execute(
            "SELECT name FROM residents WHERE pseudonym = ?", (pseudonym,)
        ).fetchone()
        return None if row is None else str(row[0])

    return await store.read(q)


async def resident_info(store: Store, pseudonym: str) -> dict[str, Any] | None:
    """Room and import time of a resident (no name: that is `resident_name`, audited)."""

    def q(conn: sqlite3.Connection) -> dict[str, Any] | None:
        row = conn.execute(
            "SELECT room, imported_ms FROM residents WHERE pseudonym = ?", (pseudonym,)
        ).fetchone()
        return None if row is None else {"room": str(row[0]), "imported_ms": int(row[1])}

    return await store.read(q)
