"""The store against real SQLite files: every data class, dedup, rollups, retention, failures."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.config.storage import Retention
from gateway.metrics import Metrics
from gateway.model import (
    Alert,
    AlertState,
    AuditRecord,
    DeadLetter,
    DeviceStatus,
    Quality,
    Reading,
    Severity,
)
from gateway.storage.batch import WriteBatch
from gateway.storage.errors import StoreClosedError, StoreError, StoreFullError
from gateway.storage.store import SeriesPoint, Store
from tests.fixtures.net import await_until
from tests.fixtures.store import (
    make_alert,
    make_event,
    make_readings,
    make_transition,
    open_store,
    storage_config,
)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
T0 = 1_780_000_020_000  # a whole minute (and 1_779_998_400_000 is the hour)
LAYOUTS = ("logged", "packed", "merged")
"""Where a test's readings are when it queries them: still in the log (their minutes are not
over), packed after they were committed, or merged into minutes packed before they came."""


@pytest.fixture(params=LAYOUTS)
def layout(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _before(store: Store, clock: ManualClock, layout: str) -> None:
    if layout == "merged":  # pack a minute, so the next hour is over when readings come
        await store.commit(WriteBatch(readings=[Reading("seed", "t", T0 - HOUR_MS, 0.0)]))
        clock.set_ms(T0 + HOUR_MS)
        assert await store.pack_closed_minutes() == 1


async def _after(store: Store, clock: ManualClock, layout: str) -> None:
    if layout == "packed":
        clock.set_ms(T0 + HOUR_MS)
        assert await store.pack_closed_minutes() >= 1


async def test_readings_raw_and_rollups(
    store: Store, store_clock: ManualClock, layout: str
) -> None:
    await _before(store, store_clock, layout)
    values = [float(i % 7) for i in range(150)]  # 150 s from T0: minutes of 60, 60, 30
    readings = make_readings("meter-1", "power_w", T0, values)
    readings.append(Reading("meter-1", "power_w", T0 + 151_000, 1000.0, Quality.BAD))
    await store.commit(WriteBatch(readings=readings))
    await _after(store, store_clock, layout)

    raw = await store.series("meter-1", "power_w", T0, T0 + 200_000)
    assert [p.ts_ms for p in raw] == [T0 + i * 1000 for i in range(150)]  # BAD left out
    assert raw[3] == SeriesPoint(T0 + 3000, 1, 3.0, 3.0, 3.0, 3.0)

    minutes = await store.series("meter-1", "power_w", T0, T0 + 200_000, bucket="1m")
    assert [p.ts_ms for p in minutes] == [T0, T0 + 60_000, T0 + 120_000]
    first = values[:60]
    assert minutes[0] == SeriesPoint(T0, 60, 0.0, 6.0, sum(first) / 60, first[-1])
    assert minutes[2].count == 30
    assert minutes[2].last == values[-1]

    hours = await store.series("meter-1", "power_w", T0, T0 + 200_000, bucket="1h")
    assert len(hours) == 1
    assert hours[0].ts_ms == T0 - T0 % 3_600_000
    assert (hours[0].count, hours[0].min, hours[0].max) == (150, 0.0, 6.0)
    assert hours[0].mean == pytest.approx(sum(values) / 150)
    assert hours[0].last == values[-1]

    assert await store.series("meter-1", "nope", T0, T0 + 1) == []
    with pytest.raises(ValueError, match="bucket"):
        await store.series("meter-1", "power_w", T0, T0 + 1, bucket="5m")  # type: ignore[arg-type]


async def test_rollups_merge_across_transactions_and_out_of_order(
    store: Store, store_clock: ManualClock, layout: str
) -> None:
    await _before(store, store_clock, layout)
    await store.commit(WriteBatch(readings=make_readings("m", "t", T0 + 30_000, [5.0, 6.0])))
    await store.commit(WriteBatch(readings=make_readings("m", "t", T0, [9.0, 1.0])))  # earlier
    await _after(store, store_clock, layout)
    (pt,) = await store.series("m", "t", T0, T0 + 60_000, bucket="1m")
    assert pt == SeriesPoint(T0, 4, 1.0, 9.0, 21.0 / 4, 6.0)  # last: value at the latest time
    (hr,) = await store.series("m", "t", T0, T0 + 60_000, bucket="1h")
    assert (hr.count, hr.min, hr.max, hr.last) == (4, 1.0, 9.0, 6.0)


async def test_duplicate_readings_do_not_inflate_rollups(
    store: Store, store_clock: ManualClock, layout: str
) -> None:
    await _before(store, store_clock, layout)
    await store.commit(WriteBatch(readings=make_readings("m", "t", T0, [1.0, 2.0, 3.0])))
    # re-delivery of two of them plus one new: first write wins, rollup recomputed exactly
    again = make_readings("m", "t", T0 + 1000, [20.0, 30.0, 4.0])
    await store.commit(WriteBatch(readings=again))
    await _after(store, store_clock, layout)
    raw = await store.series("m", "t", T0, T0 + 60_000)
    assert [p.last for p in raw] == [1.0, 2.0, 3.0, 4.0]
    (pt,) = await store.series("m", "t", T0, T0 + 60_000, bucket="1m")
    assert pt == SeriesPoint(T0, 4, 1.0, 4.0, 2.5, 4.0)
    (hr,) = await store.series("m", "t", T0, T0 + 60_000, bucket="1h")
    assert (hr.count, hr.mean, hr.last) == (4, 2.5, 4.0)


async def test_late_and_repeated_readings_in_one_transaction(
    store: Store, store_clock: ManualClock, layout: str
) -> None:
    await _before(store, store_clock, layout)
    # one batch, out of time order, spanning three minutes, with a reading repeated
    rs = [
        Reading("m", "t", T0 + 125_000, 7.0),
        Reading("m", "t", T0 + 5_000, 1.0),
        Reading("m", "t", T0 + 65_000, 4.0),
        Reading("m", "t", T0 + 5_000, 99.0),  # same time again: the first stored counts
        Reading("m", "t", T0 + 6_000, 2.0),
        Reading("other", "t", T0 + 6_000, 50.0),
    ]
    await store.commit(WriteBatch(readings=rs))
    await _after(store, store_clock, layout)
    raw = await store.series("m", "t", T0, T0 + 180_000)
    assert [(p.ts_ms - T0, p.last) for p in raw] == [
        (5_000, 1.0),
        (6_000, 2.0),
        (65_000, 4.0),
        (125_000, 7.0),
    ]
    minutes = await store.series("m", "t", T0, T0 + 180_000, bucket="1m")
    assert [(p.ts_ms - T0, p.count, p.min, p.max, p.last) for p in minutes] == [
        (0, 2, 1.0, 2.0, 2.0),
        (60_000, 1, 4.0, 4.0, 4.0),
        (120_000, 1, 7.0, 7.0, 7.0),
    ]
    (hour,) = await store.series("m", "t", T0, T0 + 180_000, bucket="1h")
    assert (hour.count, hour.mean, hour.last) == (4, 3.5, 7.0)
    assert [p.last for p in await store.series("other", "t", T0, T0 + 180_000)] == [50.0]
    # a window inside a minute: raw is exact, buckets are those starting in it
    assert [p.last for p in await store.series("m", "t", T0 + 6_000, T0 + 65_000)] == [2.0]
    assert len(await store.series("m", "t", T0 + 6_000, T0 + 65_000, bucket="1m")) == 2


async def test_many_series_read_together_as_one_by_one(
    store: Store, store_clock: ManualClock, layout: str
) -> None:
    await _before(store, store_clock, layout)
    readings = make_readings("a", "t", T0, [1.0, 2.0, 3.0])
    readings += make_readings("b", "t", T0 + 30_000, [float(i) for i in range(40)])
    await store.commit(WriteBatch(readings=readings))
    await _after(store, store_clock, layout)
    keys = [("a", "t"), ("nope", "t"), ("b", "t"), ("a", "t")]
    for bucket in ("raw", "1m", "1h"):
        many = await store.series_many(keys, T0, T0 + 120_000, bucket)  # type: ignore[arg-type]
        one = [await store.series(d, m, T0, T0 + 120_000, bucket) for d, m in keys]  # type: ignore[arg-type]
        assert many == one
        assert [len(p) > 0 for p in many] == [True, False, True, True]
    assert sum(p.count for p in many[2]) == 40


async def test_a_chart_joins_packed_minutes_and_logged_ones(
    store: Store, store_clock: ManualClock, store_metrics: Metrics
) -> None:
    await store.commit(WriteBatch(readings=make_readings("m", "t", T0, [1.0] * 150)))
    store_clock.set_ms(T0 + 60_000 + 30_000)  # the first minute is over, with lateness
    assert await store.pack_closed_minutes() == 1
    where = await store.read(
        lambda c: (
            c.execute("SELECT bucket_ms - ?, n FROM reading_chunks", (T0,)).fetchall(),
            c.execute("SELECT DISTINCT bucket_ms - ? FROM reading_log", (T0,)).fetchall(),
        )
    )
    assert where == ([(0, 60)], [(60_000,), (120_000,)])
    assert len(await store.series("m", "t", T0, T0 + 150_000)) == 150
    (hour,) = await store.series("m", "t", T0, T0 + 150_000, bucket="1h")
    assert (hour.count, hour.mean) == (150, 1.0)
    minutes = await store.series("m", "t", T0, T0 + 150_000, bucket="1m")
    assert [p.count for p in minutes] == [60, 60, 30]
    # a reading for the packed minute is merged into it, and counted
    await store.commit(WriteBatch(readings=[Reading("m", "t", T0 + 500, 5.0)]))
    assert store_metrics.total("store_late_readings_total") == 1
    (first, *_) = await store.series("m", "t", T0, T0 + 150_000, bucket="1m")
    assert (first.count, first.max) == (61, 5.0)
    (hour,) = await store.series("m", "t", T0, T0 + 150_000, bucket="1h")
    assert (hour.count, hour.max) == (151, 5.0)
    assert store_metrics.total("store_minutes_packed_total") == 1


async def test_a_failed_pack_loses_nothing_and_is_tried_again(
    store: Store, store_clock: ManualClock, store_metrics: Metrics
) -> None:
    await store.commit(WriteBatch(readings=make_readings("m", "t", T0, [1.0, 2.0])))
    # a stray packed row where the minute must go makes the packing transaction fail
    stray = "INSERT INTO reading_chunks VALUES (?, 1, 0, x'', x'', x'')"
    await store._write(lambda c: c.execute(stray, (T0,)))
    store_clock.set_ms(T0 + HOUR_MS)
    await store.pack_closed_minutes()
    assert store_metrics.total("store_pack_failures_total") == 1
    assert [p.last for p in await store.series("m", "t", T0, T0 + 60_000)] == [1.0, 2.0]
    await store._write(lambda c: c.execute("DELETE FROM reading_chunks"))
    assert await store.pack_closed_minutes() == 1
    assert store_metrics.total("store_minutes_packed_total") == 1
    (pt,) = await store.series("m", "t", T0, T0 + 60_000, bucket="1m")
    assert (pt.count, pt.mean) == (2, 1.5)


async def test_events_dedup_order_and_filters(store: Store, store_metrics: Metrics) -> None:
    e1 = make_event("gate-1:1", ts_ms=T0, card="p:abc")
    e2 = make_event("gate-2:1", device="gate-2", ts_ms=T0 + 5)
    e3 = make_event("cam-1:9", device="cam-1", kind="camera.line_crossing", ts_ms=T0 - 100)
    r1 = await store.commit(WriteBatch(events=[e1, e2]))
    assert r1.new_events == (True, True)
    r2 = await store.commit(WriteBatch(events=[e2, e3, e3]))
    assert r2.new_events == (False, True, False)
    assert store_metrics.total("store_events_duplicate_total") == 2

    stored = await store.events()
    assert [s.event for s in stored] == [e1, e2, e3]  # insertion order, not event time
    assert stored[0].event.data == {"card": "p:abc"}
    assert [s.event.id for s in await store.events(device="gate-2")] == ["gate-2:1"]
    assert [s.event.id for s in await store.events(kind_prefix="camera.")] == ["cam-1:9"]
    assert [s.event.id for s in await store.events(kind_prefix="gate")] == ["gate-1:1", "gate-2:1"]
    assert [s.event.id for s in await store.events(since_ms=T0)] == ["gate-1:1", "gate-2:1"]
    assert [s.event.id for s in await store.events(until_ms=T0)] == ["cam-1:9"]
    after = await store.events(after_rowid=stored[0].rowid, limit=1)
    assert [s.event.id for s in after] == ["gate-2:1"]


async def test_statuses_latest_and_history(store: Store) -> None:
    s1 = DeviceStatus("gate-1", T0, True, "normal")
    s2 = DeviceStatus("gate-1", T0 + 10, False, None, {"why": "timeout"})
    late = DeviceStatus("gate-1", T0 + 5, True, "locked")  # arrives last, older
    other = DeviceStatus("term-1", T0, True, "idle")
    await store.commit(WriteBatch(statuses=[s1, s2, other]))
    await store.commit(WriteBatch(statuses=[late]))
    latest = await store.latest_statuses()
    assert latest == {"gate-1": s2, "term-1": other}
    assert await store.status_history("gate-1") == [s1, late, s2]
    assert await store.status_history("gate-1", since_ms=T0 + 5) == [late, s2]
    assert await store.status_history("gate-1", limit=2) == [late, s2]


async def test_alerts_upsert_filters_and_transitions(store: Store) -> None:
    a = make_alert("a1", opened_ms=T0, ack_deadline_ms=T0 + 120_000, receivers=("ops", "sec"))
    b = make_alert(
        "a2",
        rule="gate.forced",
        subject="gate-2",
        severity=Severity.CRITICAL,
        opened_ms=T0 + 1000,
        resolve_deadline_ms=T0 + 1_800_000,
        data={"n": 1},
    )
    await store.commit(WriteBatch(alerts=[a, b], transitions=[make_transition(a, "open", T0)]))
    acked = make_alert(
        "a1",
        opened_ms=T0,
        updated_ms=T0 + 60_000,
        state=AlertState.ACKNOWLEDGED,
        assignee="li",
        ack_deadline_ms=T0 + 120_000,
        receivers=("ops", "sec"),
    )
    await store.commit(
        WriteBatch(
            alerts=[acked], transitions=[make_transition(acked, "acknowledge", T0 + 60_000, "li")]
        )
    )
    assert await store.alert("a1") == acked
    assert await store.alert("nope") is None
    assert [x.id for x in await store.alerts()] == ["a2", "a1"]  # newest opened first
    assert [x.id for x in await store.alerts(states=(AlertState.OPEN,))] == ["a2"]
    assert [x.id for x in await store.alerts(rule="device.offline")] == ["a1"]
    assert [x.id for x in await store.alerts(severity=Severity.CRITICAL)] == ["a2"]
    assert [x.id for x in await store.alerts(subject_prefix="gate-1")] == ["a1"]
    assert [x.id for x in await store.alerts(since_ms=T0 + 1)] == ["a2"]
    assert [x.id for x in await store.alerts(until_ms=T0 + 1)] == ["a1"]
    # a1 is acknowledged: its ack deadline no longer counts; a2 is past its resolve deadline
    assert await store.alerts(overdue_at_ms=T0 + 200_000) == []
    assert [x.id for x in await store.alerts(overdue_at_ms=T0 + 1_900_000)] == ["a2"]
    assert [t.action for t in await store.transitions("a1")] == ["open", "acknowledge"]
    assert (await store.transitions("a1"))[1].actor == "li"


async def test_alerts_page_by_page_through_equal_opening_times(store: Store) -> None:
    batch = [make_alert(f"x{n}", opened_ms=T0 - (n // 3) * 1000) for n in range(7)]
    await store.commit(WriteBatch(alerts=batch))
    seen: list[str] = []
    page: list[Alert] = []
    while True:
        page = await store.alerts(after=page[-1] if page else None, limit=2)
        seen += [a.id for a in page]
        if len(page) < 2:
            break
    assert seen == [a.id for a in await store.alerts()]
    assert sorted(seen) == sorted(a.id for a in batch)


async def test_overdue_open_alert(store: Store) -> None:
    a = make_alert("a1", opened_ms=T0, ack_deadline_ms=T0 + 120_000)
    await store.commit(WriteBatch(alerts=[a]))
    assert await store.alerts(overdue_at_ms=T0 + 120_000) == []
    assert [x.id for x in await store.alerts(overdue_at_ms=T0 + 120_001)] == ["a1"]


async def test_audit_and_dead_letters(store: Store) -> None:
    recs = [
        AuditRecord(T0 + i, "admin", "login", f"user-{i}", {"ip": "127.0.0.1"}) for i in range(5)
    ]
    big = bytes(range(256)) * 40  # 10 KiB
    letters = [
        DeadLetter(T0, "mqtt", "gate-1", "b07/gate/gate-1/event", b"{bad", "invalid JSON"),
        DeadLetter(T0 + 1, "mqtt", None, "b07/unknown/x", big, "unknown device"),
        DeadLetter(T0 + 2, "modbus", "meter-3", "", b"\x00\x01", "CRC"),
        DeadLetter(T0 + 3, "mqtt", "gate-1", "b07/gate/gate-1/event", b"{}", "missing serialNo"),
    ]
    await store.commit(WriteBatch(audit=recs, dead_letters=letters))
    assert await store.audit_log() == recs
    assert await store.audit_log(since_ms=T0 + 3) == recs[3:]
    assert await store.audit_log(limit=2) == recs[3:]
    assert await store.dead_letter_counts() == {"gate-1": 2, "": 1, "meter-3": 1}
    newest = await store.dead_letters()
    assert [d.letter.reason for d in newest] == [
        "missing serialNo",
        "CRC",
        "unknown device",
        "invalid JSON",
    ]
    (unknown,) = await store.dead_letters(device="")
    assert unknown.letter.payload == big[:4096]
    assert unknown.payload_size == len(big)
    assert [d.letter.reason for d in await store.dead_letters(device="gate-1", limit=1)] == [
        "missing serialNo"
    ]


async def test_component_sql_commits_with_the_batch_and_reads_back(store: Store) -> None:
    def create(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE t_comp (k TEXT PRIMARY KEY, v INTEGER)")

    await store._write(create)  # components create theirs with a migration; same effect
    ev = make_event("gate-1:7")
    res = await store.commit(
        WriteBatch(events=[ev], sql=[("INSERT INTO t_comp VALUES (?, ?)", [("a", 1), ("b", 2)])])
    )
    assert res.new_events == (True,)
    rows = await store.read(lambda c: c.execute("SELECT k, v FROM t_comp ORDER BY k").fetchall())
    assert rows == [("a", 1), ("b", 2)]

    # a failing statement fails its own batch, whole: the event is not stored either
    bad = WriteBatch(
        events=[make_event("gate-1:8")], sql=[("INSERT INTO t_comp VALUES (?, ?)", [("a", 3)])]
    )
    with pytest.raises(StoreError, match="UNIQUE"):
        await store.commit(bad)
    assert [s.event.id for s in await store.events()] == ["gate-1:7"]
    with pytest.raises(sqlite3.OperationalError):  # readers are read-only
        await store.read(lambda c: c.execute("DELETE FROM t_comp"))


async def test_concurrent_commits_coalesce_and_one_bad_batch_fails_alone(tmp_path: Path) -> None:
    metrics = Metrics()
    config = storage_config(tmp_path, batch_linger_ms=50)
    async with open_store(config, ManualClock(), metrics) as store:
        good = [
            WriteBatch(
                readings=make_readings("m", f"x{i}", T0, [float(i)]), events=[make_event(f"e{i}")]
            )
            for i in range(20)
        ]
        bad = WriteBatch(
            events=[make_event("bad")], sql=[("INSERT INTO no_such_table VALUES (?)", [(1,)])]
        )
        results = await asyncio.gather(
            *(store.commit(b) for b in good[:10]),
            store.commit(bad),
            *(store.commit(b) for b in good[10:]),
            return_exceptions=True,
        )
        assert [type(r).__name__ for r in results].count("StoreError") == 1
        assert isinstance(results[10], StoreError)
        assert "no such table" in str(results[10])
        assert len(await store.events()) == 20
        assert metrics.total("store_commit_failures_total") >= 1
        # 21 commits, lingering together: the first transaction failed and was split up
        assert metrics.total("store_transactions_total") == 20


async def test_full_disk_fails_the_commit_clearly_and_the_store_keeps_working(
    store: Store, store_metrics: Metrics
) -> None:
    await store.commit(WriteBatch(events=[make_event("before")]))

    def limit(conn: sqlite3.Connection) -> int:
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        conn.execute(f"PRAGMA max_page_count={pages + 2}")
        return pages

    await store._write(limit)
    huge = WriteBatch(
        events=[make_event(f"big-{i}", blob="x" * 2000) for i in range(200)],
        readings=make_readings("m", "t", T0, [1.0] * 5000),
    )
    with pytest.raises(StoreFullError, match="full"):
        await store.commit(huge)
    assert store_metrics.value("store_commit_failures_total", reason="full") == 1
    assert [s.event.id for s in await store.events()] == ["before"]
    assert await store.series("m", "t", T0, T0 + DAY_MS) == []

    await store._write(lambda c: c.execute("PRAGMA max_page_count=4294967294").fetchone())
    res = await store.commit(huge)
    assert res.new_events == (True,) * 200
    assert len(await store.series("m", "t", T0, T0 + DAY_MS)) == 5000
    ok = await store.read(lambda c: c.execute("PRAGMA integrity_check").fetchone()[0])
    assert ok == "ok"


async def test_data_survives_reopen_and_migrations_apply_once_in_order(tmp_path: Path) -> None:
    async with open_store(tmp_path) as store:
        await store.commit(
            WriteBatch(events=[make_event("e1")], readings=make_readings("m", "t", T0, [1.0]))
        )
        first = await store.read(
            lambda c: c.execute(
                "SELECT version, applied_ms FROM schema_migrations ORDER BY rowid"
            ).fetchall()
        )
    versions = [v for v, _ in first]
    assert versions == sorted(versions)
    assert versions[:3] == [1, 2, 3]
    async with open_store(tmp_path) as store:
        again = await store.read(
            lambda c: c.execute(
                "SELECT version, applied_ms FROM schema_migrations ORDER BY rowid"
            ).fetchall()
        )
        assert again == first  # nothing re-applied
        assert [s.event.id for s in await store.events()] == ["e1"]
        assert len(await store.series("m", "t", T0, T0 + 1000)) == 1
        # a series created before reopening keeps its id: new readings land on it
        await store.commit(WriteBatch(readings=make_readings("m", "t", T0 + 1000, [2.0])))
        assert len(await store.series("m", "t", T0, T0 + 2000)) == 2
        mode = await store.read(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
        assert mode == "wal"
    # minutes left in the log at close are packed once they are over
    clock = ManualClock(T0 + HOUR_MS)
    async with open_store(tmp_path, clock) as store:
        assert await store.pack_closed_minutes() == 1
        (pt,) = await store.series("m", "t", T0, T0 + 2000, bucket="1m")
        assert (pt.count, pt.mean) == (2, 1.5)


async def test_commit_after_close_is_refused(tmp_path: Path) -> None:
    async with open_store(tmp_path) as store:
        pending = asyncio.ensure_future(store.commit(WriteBatch(events=[make_event("last")])))
        await asyncio.sleep(0)
    assert (await pending).new_events == (True,)  # close() committed what was queued
    with pytest.raises(StoreClosedError):
        await store.commit(WriteBatch(events=[make_event("late")]))


async def test_retention_on_the_injected_clock(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    metrics = Metrics()
    retention = Retention(
        raw_readings_days=2,
        rollup_1m_days=4,
        rollup_1h_days=6,
        events_days=3,
        alerts_days=3,
        audit_days=5,
    )
    async with open_store(storage_config(tmp_path, retention=retention), clock, metrics) as store:
        day0 = T0
        await store.commit(
            WriteBatch(
                readings=make_readings("m", "t", day0, [1.0, 2.0])
                + make_readings("m", "t", day0 + 5 * DAY_MS, [3.0]),
                events=[make_event("old", ts_ms=day0), make_event("new", ts_ms=day0 + 5 * DAY_MS)],
                statuses=[
                    DeviceStatus("gate-1", day0, True),
                    DeviceStatus("gate-1", day0 + 5 * DAY_MS, False),
                ],
                dead_letters=[DeadLetter(day0, "mqtt", "gate-1", "t", b"x", "bad")],
                audit=[AuditRecord(day0, "admin", "login", "u")],
                alerts=[
                    make_alert("resolved-old", state=AlertState.RESOLVED, opened_ms=day0),
                    make_alert("open-old", opened_ms=day0),
                    make_alert("ack-old", state=AlertState.ACKNOWLEDGED, opened_ms=day0),
                ],
                transitions=[
                    make_transition(make_alert("resolved-old"), "open", day0),
                    make_transition(make_alert("open-old"), "open", day0),
                ],
            )
        )
        clock.set_ms(day0 + 2 * DAY_MS)  # nothing is older than 2 days yet
        assert sum((await store.run_retention()).values()) == 0

        clock.set_ms(day0 + 3 * DAY_MS + 1)
        deleted = await store.run_retention()
        assert deleted["raw_readings"] == 2
        assert deleted["events"] == 1
        assert deleted["statuses"] == 1
        assert deleted["dead_letters"] == 1
        assert deleted["alerts"] == 1
        assert deleted["transitions"] == 1
        assert deleted["rollup_1m"] == deleted["rollup_1h"] == deleted["audit"] == 0
        # the chart of day 0 still comes from the rollups
        (minute,) = await store.series("m", "t", day0, day0 + DAY_MS, bucket="1m")
        assert (minute.count, minute.mean) == (2, 1.5)
        assert await store.series("m", "t", day0, day0 + DAY_MS) == []
        chunks = await store.read(
            lambda c: c.execute("SELECT count(*) FROM reading_chunks").fetchone()[0]
        )
        assert chunks == 0  # the old minute's packed readings are gone
        assert len(await store.series("m", "t", day0, day0 + 6 * DAY_MS)) == 1  # not yet due
        assert [s.event.id for s in await store.events()] == ["new"]
        assert {a.id for a in await store.alerts()} == {"open-old", "ack-old"}  # never unresolved
        assert len(await store.transitions("open-old")) == 1
        assert (await store.latest_statuses())["gate-1"].online is False

        clock.set_ms(day0 + 7 * DAY_MS)
        deleted = await store.run_retention()
        assert (deleted["rollup_1m"], deleted["rollup_1h"], deleted["audit"]) == (1, 1, 1)
        assert await store.series("m", "t", day0, day0 + DAY_MS, bucket="1h") == []
        assert len(await store.series("m", "t", day0, day0 + 6 * DAY_MS, bucket="1h")) == 1
        assert metrics.total("store_retention_deleted_total") == 7 + 3


async def test_retention_loop_runs_on_the_clock_and_component_rules(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    config = storage_config(tmp_path, retention_interval_s=3600, retention=Retention(events_days=1))
    async with open_store(config, clock, Metrics(), retention_loop=True) as store:
        await store._write(lambda c: c.execute("CREATE TABLE snaps (ts_ms INTEGER)"))
        store.add_retention("snapshots", 1, "DELETE FROM snaps WHERE ts_ms < ?")
        await store.commit(
            WriteBatch(
                events=[make_event("old", ts_ms=T0)],
                sql=[("INSERT INTO snaps VALUES (?)", [(T0,)])],
            )
        )
        clock.advance(2 * 86_400)  # past the interval: the loop wakes up and deletes

        async def gone() -> bool:
            n = await store.read(lambda c: c.execute("SELECT count(*) FROM snaps").fetchone()[0])
            return n == 0 and await store.events() == []

        await await_until(gone, what="retention loop")


async def test_outbox_in_the_same_transaction_with_ack_and_bound(tmp_path: Path) -> None:
    metrics = Metrics()
    config = storage_config(tmp_path, outbox=True, outbox_max_rows=1000)
    async with open_store(config, ManualClock(), metrics) as store:
        ev = make_event("gate-1:1")
        await store.commit(
            WriteBatch(readings=make_readings("m", "t", T0, [1.0, 2.0]), events=[ev])
        )
        await store.commit(WriteBatch(events=[ev]))  # duplicate: not forwarded twice
        entries = await store.outbox_read()
        # a transaction's events, then its readings
        assert [(e.reading is not None, e.event is not None) for e in entries] == [
            (False, True),
            (True, False),
            (True, False),
        ]
        assert entries[0].event is not None
        assert entries[0].event.event == ev
        assert entries[1].reading == Reading("m", "t", T0, 1.0)
        assert [e.seq for e in await store.outbox_read(after=entries[0].seq, limit=1)] == [
            entries[1].seq
        ]
        assert await store.outbox_ack(entries[1].seq) == 2
        status = await store.outbox_backlog()
        assert (status.backlog, status.high_water, status.oldest_seq) == (1, 3, entries[2].seq)

        # past the bound the oldest readings leave the outbox; events never do
        ev2 = make_event("gate-1:2")
        await store.commit(
            WriteBatch(readings=make_readings("m", "u", T0, [0.0] * 1500), events=[ev2])
        )
        status = await store.outbox_backlog()
        assert status.backlog == 1000
        assert status.shed == 502
        assert metrics.total("store_outbox_shed_total") == 502
        left = await store.outbox_read(limit=2000)
        assert left[0].event is not None
        assert left[0].event.event == ev2
        assert len(left) == 1000
        assert len(await store.series("m", "u", T0, T0 + DAY_MS)) == 1500  # still stored

    async with open_store(config) as store:  # the backlog survives a restart
        assert (await store.outbox_backlog()).backlog == 1000


async def test_outbox_off_costs_nothing(store: Store) -> None:
    await store.commit(
        WriteBatch(readings=make_readings("m", "t", T0, [1.0]), events=[make_event("e")])
    )
    assert await store.outbox_read() == []
    assert await store.read(lambda c: c.execute("SELECT count(*) FROM outbox").fetchone()[0]) == 0
    assert not (await store.outbox_backlog()).enabled


async def test_readers_are_not_blocked_by_the_writer(store: Store) -> None:
    await store.commit(WriteBatch(events=[make_event("e0")]))
    gate = asyncio.Event()
    loop = asyncio.get_running_loop()

    def hold(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO audit (ts_ms, actor, action, target) VALUES (1, 'a', 'b', 'c')")
        asyncio.run_coroutine_threadsafe(_wait(gate), loop).result(timeout=10)

    async def _wait(ev: asyncio.Event) -> None:
        await ev.wait()

    writing = asyncio.ensure_future(store._write(hold))
    await asyncio.sleep(0.05)  # the writer holds an open write transaction now
    assert not writing.done()
    assert [s.event.id for s in await asyncio.wait_for(store.events(), 5)] == ["e0"]
    assert await asyncio.wait_for(store.audit_log(), 5) == []  # uncommitted: not visible
    gate.set()
    await writing
    assert len(await store.audit_log()) == 1


async def test_metrics(store: Store, store_metrics: Metrics) -> None:
    await store.commit(WriteBatch(readings=make_readings("m", "t", T0, [1.0, 2.0])))
    await store.commit(WriteBatch(events=[make_event("e")], audit=[AuditRecord(T0, "a", "b", "c")]))
    m = store_metrics
    assert m.value("store_rows_written_total", **{"class": "readings"}) == 2
    assert m.value("store_rows_written_total", **{"class": "events"}) == 1
    assert m.value("store_rows_written_total", **{"class": "audit"}) == 1
    assert m.value("store_transactions_total", sync="normal") == 1
    assert m.value("store_transactions_total", sync="full") == 1
    assert m.total("store_commit_seconds_total") > 0
    assert "campus_edge_store_queue_rows 0" in m.render()
