"""The migration runner on real SQLite files: order, once only, a failing file rolls back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.storage import migrate
from gateway.storage.errors import MigrationError
from gateway.storage.migrate import Migration


def _conn(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_applied_in_number_order_once(tmp_path: Path) -> None:
    conn = _conn(tmp_path / "m.sqlite")
    migs = [
        Migration(20, "0020_b.sql", "INSERT INTO log VALUES ('b');"),
        Migration(1, "0001_a.sql", "CREATE TABLE log (x TEXT); INSERT INTO log VALUES ('a');"),
    ]
    applied = migrate.apply_pending(conn, sorted(migs, key=lambda m: m.version))
    assert [m.version for m in applied] == [1, 20]
    assert migrate.apply_pending(conn, sorted(migs, key=lambda m: m.version)) == []
    assert [r[0] for r in conn.execute("SELECT x FROM log")] == ["a", "b"]
    # a file added later in between is applied (once) as well
    late = Migration(5, "0005_c.sql", "INSERT INTO log VALUES ('c');")
    assert migrate.apply_pending(conn, [migs[1], late, migs[0]]) == [late]
    assert migrate.applied_versions(conn) == {1, 5, 20}


def test_a_failing_migration_rolls_back_whole(tmp_path: Path) -> None:
    conn = _conn(tmp_path / "m.sqlite")
    ok = Migration(1, "0001_a.sql", "CREATE TABLE t (x INTEGER);")
    bad = Migration(2, "0002_b.sql", "CREATE TABLE u (y INTEGER); INSERT INTO nowhere VALUES (1);")
    with pytest.raises(MigrationError, match=r"0002_b\.sql"):
        migrate.apply_pending(conn, [ok, bad])
    assert migrate.applied_versions(conn) == {1}
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "t" in tables
    assert "u" not in tables  # the failed file left nothing behind


def test_discover_finds_every_numbered_file_in_order() -> None:
    found = migrate.discover()
    versions = [m.version for m in found]
    assert versions == sorted(set(versions))
    assert versions[:3] == [1, 2, 3]
    assert all(m.sql.strip() for m in found)
