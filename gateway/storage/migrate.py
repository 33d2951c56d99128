"""Schema migrations: numbered SQL files applied in order, each in its own transaction.

Files are `NNNN_name.sql` in the `gateway.storage.migrations` package (read with
importlib.resources, so they are found in an installed wheel too). Each applied number is
recorded in `schema_migrations`; a number is applied once, whatever files appear later.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from importlib import resources

from gateway.storage.errors import MigrationError

MIGRATIONS_PACKAGE = "gateway.storage.migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def discover(package: str = MIGRATIONS_PACKAGE) -> list[Migration]:
    """All migration files of `package`, in version order; duplicate numbers are an error."""
    found: dict[int, Migration] = {}
    for entry in resources.files(package).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        m = _NAME.match(entry.name)
        if m is None:
            raise MigrationError(
                f"migration file {entry.name!r} is not named NNNN_lowercase_name.sql"
            )
        version = int(m.group(1))
        if version in found:
            raise MigrationError(
                f"migrations {found[version].name!r} and {entry.name!r} share number {version}"
            )
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def applied_versions(conn: sqlite3.Connection) -> set[int]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)"
    )
    return {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}


def apply_pending(conn: sqlite3.Connection, migrations: list[Migration]) -> list[Migration]:
    """Apply the migrations not yet recorded, in order; return those applied.

    `conn` must be in autocommit mode (isolation_level=None). A failing migration is rolled
    back and raised as MigrationError; those before it stay applied.
    """
    done = applied_versions(conn)
    applied: list[Migration] = []
    for mig in migrations:
        if mig.version in done:
            continue
        now_ms = time.time_ns() // 1_000_000
        record = (
            "INSERT INTO schema_migrations (version, name, applied_ms) VALUES "
            f"({mig.version}, '{mig.name}', {now_ms});"
        )
        try:
            # executescript runs the whole file; BEGIN/COMMIT make it one transaction.
            conn.executescript(f"BEGIN IMMEDIATE;\n{mig.sql}\n;\n{record}\nCOMMIT;")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise MigrationError(f"migration {mig.name} failed: {exc}") from exc
        applied.append(mig)
    return applied
