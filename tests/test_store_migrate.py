"""The migration runner on real SQLite files: order, once only, a failing file rolls back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.model import Reading
from gateway.storage import migrate
from gateway.storage.batch import WriteBatch
from gateway.storage.errors import MigrationError
from gateway.storage.migrate import Migration
from tests.fixtures.store import open_store, storage_config


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


async def test_readings_of_the_row_layout_are_packed_at_open(tmp_path: Path) -> None:
    """A database from before migration 0005 (a row per reading) opens with its readings
    packed into their minutes, the old table gone and the rollups exact."""
    db = tmp_path / "store.sqlite"
    conn = _conn(db)
    migrate.apply_pending(conn, [m for m in migrate.discover() if m.version < 5])
    t0 = 1_780_000_020_000
    conn.execute("INSERT INTO series (id, device, metric) VALUES (1, 'm', 't')")
    rows = [(1, t0 + i * 1000, float(i), 0) for i in range(90)]
    rows.append((1, t0 + 1000, 50.0, 0))  # a re-delivery: the first stored counts
    conn.executemany(
        "INSERT INTO readings (series_id, ts_ms, value, quality) VALUES (?,?,?,?)", rows
    )
    conn.execute(  # the old writer's rollup of the first minute, counting the re-delivery
        "INSERT INTO rollup_1m VALUES (1, ?, 61, 0.0, 59.0, 1820.0, ?, 59.0)", (t0, t0 + 59_000)
    )
    conn.close()
    async with open_store(tmp_path, ManualClock(t0 + 90_000)) as store:
        raw = await store.series("m", "t", t0, t0 + 90_000)
        assert [p.last for p in raw] == [float(i) for i in range(90)]
        minutes = await store.series("m", "t", t0, t0 + 90_000, bucket="1m")
        assert [(p.count, p.last) for p in minutes] == [(60, 59.0), (30, 89.0)]
        (hour,) = await store.series("m", "t", t0, t0 + 90_000, bucket="1h")
        assert (hour.count, hour.max) == (90, 89.0)
        tables = await store.read(
            lambda c: {r[0] for r in c.execute("SELECT name FROM sqlite_schema")}
        )
        assert "legacy_readings" not in tables
        assert "reading_blocks" not in tables
        # later readings of those minutes merge into them
        await store.commit(WriteBatch(readings=[Reading("m", "t", t0 + 90_500, 7.0)]))
        minutes = await store.series("m", "t", t0, t0 + 120_000, bucket="1m")
        assert [p.count for p in minutes] == [60, 31]


async def test_an_outbox_from_before_packed_rows_is_read_and_acknowledged(tmp_path: Path) -> None:
    """Outbox rows of one reading each (before migration 0006) are still forwarded, in order
    with the packed rows written after it."""
    conn = _conn(tmp_path / "store.sqlite")
    migrate.apply_pending(conn, [m for m in migrate.discover() if m.version < 6])
    conn.execute("INSERT INTO series (id, device, metric) VALUES (1, 'm', 't')")
    conn.executemany(
        "INSERT INTO outbox (kind, series_id, ts_ms, value, quality) VALUES (0, 1, ?, ?, 0)",
        [(1000, 1.0), (2000, 2.0)],
    )
    conn.close()
    config = storage_config(tmp_path, outbox=True)
    async with open_store(config, ManualClock(1_780_000_000_000)) as store:
        assert (await store.outbox_backlog()).backlog == 2
        await store.commit(WriteBatch(readings=[Reading("m", "t", 3000, 3.0)]))
        entries = await store.outbox_read()
        assert [e.reading.value for e in entries if e.reading] == [1.0, 2.0, 3.0]
        assert entries[0].seq < entries[1].seq < entries[2].seq
        assert await store.outbox_ack(entries[1].seq) == 2
        assert [e.seq for e in await store.outbox_read()] == [entries[2].seq]
