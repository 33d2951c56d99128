"""Store benchmark: sustained readings/s through the single writer, and chart query times.

Throughput: producers commit realistic batches (500 readings: 50 meters x 10 metrics, one
sample each, all meters reporting every second) through `Store.commit()`; the writer coalesces
them into transactions of up to `batch_max` rows. The store's clock follows the readings'
time, so minutes close as they would live and the writer packs each one (per series, with
its 1-minute and 1-hour rollups) while the producers go on; the clock is moved past the end
and the last minutes packed before the time is taken. Every run uses a fresh database;
figures are medians of the runs, and the outbox-on ratio is measured in the same runs.

`readings_per_cpu_s` divides by the process's CPU time instead of wall time: on a shared
machine it shows what the code costs apart from waiting for a core.

Query: a 1 Hz series over 24 hours (86,400 raw points) written through commit() and packed,
then the 24-hour chart with 1-minute buckets (1,440 points, from the rollups) and, for
comparison, the same 24 hours raw.

    .venv/bin/python bench/store.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).absolute().parent.parent))

from gateway.clock import ManualClock
from gateway.config.storage import StorageConfig
from gateway.metrics import Metrics
from gateway.model import Reading
from gateway.storage.batch import WriteBatch
from gateway.storage.store import Store

T0 = 1_780_000_020_000
DEVICES = 100
METRICS_PER_DEVICE = 10
DEVICES_PER_BATCH = 50
PRODUCERS = 8
MANY_PRODUCERS = 20  # enough to fill batch_max (10,000 rows) per transaction


def _batches(total: int) -> list[WriteBatch]:
    """Rounds of 1 s: every device reports all its metrics; 50 devices per batch."""
    out: list[WriteBatch] = []
    names = [f"m{k}" for k in range(METRICS_PER_DEVICE)]
    n = 0
    second = 0
    while n < total:
        ts = T0 + second * 1000
        for first in range(0, DEVICES, DEVICES_PER_BATCH):
            readings = [
                Reading(f"meter-{d:03d}", name, ts, float((d * 7 + k + second) % 101))
                for d in range(first, first + DEVICES_PER_BATCH)
                for k, name in enumerate(names)
            ]
            out.append(WriteBatch(readings=readings))
            n += len(readings)
        second += 1
    return out


async def _throughput(
    directory: Path, batches: list[WriteBatch], outbox: bool, producers: int = PRODUCERS
) -> dict[str, Any]:
    config = StorageConfig(path=directory / "bench.sqlite", outbox=outbox)
    metrics = Metrics()
    clock = ManualClock(T0)
    store = await Store.open(config, clock, metrics, retention_loop=False)
    queue = list(reversed(batches))
    end = max(r.ts_ms for r in batches[-1].readings)

    async def producer() -> None:
        while queue:
            batch = queue.pop()
            clock.set_ms(max(clock.now_ms(), batch.readings[0].ts_ms))
            await store.commit(batch)

    started = time.perf_counter()
    cpu = time.process_time()
    await asyncio.gather(*(producer() for _ in range(producers)))
    clock.set_ms(end + 60_000 + config.late_readings_s * 1000)
    await store.pack_closed_minutes()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    await store.close()
    rows = sum(len(b) for b in batches)
    assert metrics.total("store_readings_packed_total") == rows, "every reading packed"
    txns = metrics.total("store_transactions_total")
    return {
        "readings_per_s": rows / elapsed,
        "readings_per_cpu_s": rows / cpu,
        "rows_per_txn": rows / txns,
        "writer_busy": metrics.total("store_commit_seconds_total") / elapsed,
        "packing_share": metrics.total("store_pack_seconds_total") / elapsed,
    }


def _sqlite_baselines(directory: Path, batches: list[WriteBatch]) -> dict[str, float]:
    """Plain SQLite, same rows as tuples, 10,000 per transaction: append-only, and keyed by
    (series, time) (the usual time-series layout): the reference for the store's figure."""
    ids: dict[tuple[str, str], int] = {}
    tuples = []
    for b in batches:
        for r in b.readings:
            sid = ids.setdefault((r.device, r.metric), len(ids) + 1)
            tuples.append((sid, r.ts_ms, r.value, int(r.quality)))
    out = {}
    for name, ddl in (
        ("append_only", "CREATE TABLE t (s INTEGER, ts INTEGER, v REAL, q INTEGER)"),
        (
            "keyed_series_ts",
            "CREATE TABLE t (s INTEGER, ts INTEGER, v REAL, q INTEGER, PRIMARY KEY (s, ts))"
            " WITHOUT ROWID",
        ),
    ):
        conn = sqlite3.connect(directory / f"{name}.sqlite", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-32768")  # as the store's writer
        conn.execute(ddl)
        started = time.perf_counter()
        for i in range(0, len(tuples), 10_000):
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", tuples[i : i + 10_000])
            conn.execute("COMMIT")
        out[name] = len(tuples) / (time.perf_counter() - started)
        conn.close()
    return out


async def _query(directory: Path, runs: int) -> dict[str, float]:
    config = StorageConfig(path=directory / "query.sqlite")
    clock = ManualClock(T0)
    store = await Store.open(config, clock, Metrics(), retention_loop=False)
    day = 86_400
    for start in range(0, day, 3600):
        await store.commit(
            WriteBatch(
                readings=[
                    Reading("meter-001", "power_w", T0 + s * 1000, float(s % 997))
                    for s in range(start, start + 3600)
                ]
            )
        )
    until = T0 + day * 1000
    clock.set_ms(until + 60_000 + config.late_readings_s * 1000)
    await store.pack_closed_minutes()
    assert len(await store.series("meter-001", "power_w", T0, until)) == day
    times: dict[str, list[float]] = {"1m": [], "raw": [], "1h": []}
    expect = {"1m": 1440, "raw": day, "1h": 25}
    for i in range(runs):
        for bucket, samples in times.items():
            if bucket == "raw" and i >= 3:
                continue  # the raw day is for comparison only: a few runs do
            t = time.perf_counter()
            points = await store.series("meter-001", "power_w", T0, until, bucket=bucket)  # type: ignore[arg-type]
            samples.append(time.perf_counter() - t)
            assert len(points) == expect[bucket], (bucket, len(points))
    await store.close()
    return {f"query_24h_{b}_ms": round(statistics.median(v) * 1000, 2) for b, v in times.items()}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller, faster run")
    args = parser.parse_args()
    total = 100_000 if args.quick else 250_000
    runs = 3
    batches = _batches(total)
    plain: list[dict[str, Any]] = []
    with_outbox: list[dict[str, Any]] = []
    full_txns: list[dict[str, Any]] = []
    baselines: list[dict[str, float]] = []
    for _ in range(runs):
        for outbox, results in ((False, plain), (True, with_outbox)):
            with tempfile.TemporaryDirectory(prefix="store-bench-") as d:
                results.append(await _throughput(Path(d), batches, outbox))
        with tempfile.TemporaryDirectory(prefix="store-bench-") as d:
            full_txns.append(await _throughput(Path(d), batches, False, MANY_PRODUCERS))
        with tempfile.TemporaryDirectory(prefix="store-bench-") as d:
            baselines.append(_sqlite_baselines(Path(d), batches))
    with tempfile.TemporaryDirectory(prefix="store-bench-") as d:
        query = await _query(Path(d), 7 if args.quick else 15)
    rate = statistics.median(r["readings_per_s"] for r in plain)
    rate_outbox = statistics.median(r["readings_per_s"] for r in with_outbox)
    append = statistics.median(b["append_only"] for b in baselines)
    keyed = statistics.median(b["keyed_series_ts"] for b in baselines)
    result = {
        "bench": "store",
        "quick": args.quick,
        "readings_per_run": sum(len(b) for b in batches),
        "runs": runs,
        "series": DEVICES * METRICS_PER_DEVICE,
        "readings_per_commit": DEVICES_PER_BATCH * METRICS_PER_DEVICE,
        "producers": PRODUCERS,
        "readings_per_s": round(rate),
        "readings_per_s_runs": [round(r["readings_per_s"]) for r in plain],
        "readings_per_cpu_s": round(statistics.median(r["readings_per_cpu_s"] for r in plain)),
        "writer_busy_share": round(statistics.median(r["writer_busy"] for r in plain), 2),
        "packing_share": round(statistics.median(r["packing_share"] for r in plain), 2),
        "rows_per_txn": round(statistics.median(r["rows_per_txn"] for r in plain)),
        "readings_per_s_with_outbox": round(rate_outbox),
        "readings_per_s_20_producers": round(
            statistics.median(r["readings_per_s"] for r in full_txns)
        ),
        "rows_per_txn_20_producers": round(statistics.median(r["rows_per_txn"] for r in full_txns)),
        "sqlite_append_only_rows_per_s": round(append),
        "sqlite_keyed_series_ts_rows_per_s": round(keyed),
        "ratio_to_sqlite_keyed": round(rate / keyed, 3),
        "ratio_to_sqlite_append_only": round(rate / append, 3),
        "outbox_cost_ratio": round(rate_outbox / rate, 3),
        **query,
        "targets": {"readings_per_s": 200_000, "query_24h_1m_ms": 50},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
