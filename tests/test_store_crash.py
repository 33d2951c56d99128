"""kill -9 at random instants, 20 times on the same database: it stays intact and every write
whose commit() returned is there.

Run as a script, this file is the writer: concurrent tasks commit batches (events with
readings, or readings alone) and print "task n time" after each commit returned. Its clock
runs 600 times as fast as the wall clock, so a minute is over every tenth of a second: the
kills also land while minutes are being packed, and readings arrive for packed minutes.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from gateway.clock import SystemClock
from gateway.config.storage import StorageConfig
from gateway.metrics import Metrics
from gateway.model import Event, Reading
from gateway.storage.batch import WriteBatch
from gateway.storage.store import Store

RUNS = 20
TASKS = 4
READINGS_PER_BATCH = 50
SPEED = 600
T0 = 1_780_000_020_000


class _FastClock(SystemClock):
    def __init__(self, origin_s: float) -> None:
        self.origin_s = origin_s

    def now_ms(self) -> int:
        return T0 + int((time.time() - self.origin_s) * 1000 * SPEED)


def _batch_ids(run: int, task: int, n: int, base: int) -> tuple[str, str, list[int]]:
    """(event id, series metric, reading timestamps) of one batch."""
    return f"{run}:{task}:{n}", f"r{run}-{task}", list(range(base, base + READINGS_PER_BATCH))


async def _writer(db: Path, run: int, origin_s: float) -> None:
    clock = _FastClock(origin_s)
    config = StorageConfig(path=db, batch_linger_ms=2, outbox=True, late_readings_s=0)
    store = await Store.open(config, clock, Metrics())
    print("ready", flush=True)

    async def task(t: int) -> None:
        n = 0
        while True:
            base = clock.now_ms()
            event_id, metric, stamps = _batch_ids(run, t, n, base)
            readings = [Reading("crash", metric, ts, float(ts)) for ts in stamps]
            events = [Event(event_id, "crash", "test.crash", n, n)] if n % 2 == 0 else []
            await store.commit(WriteBatch(readings=readings, events=events))
            sys.stdout.write(f"{t} {n} {base}\n")
            sys.stdout.flush()
            n += 1

    await asyncio.gather(*(task(t) for t in range(TASKS)))


def _acked(output: str) -> list[tuple[int, int, int]]:
    lines = output.split("\n")[:-1]  # a line cut by the kill has no newline: not acknowledged
    return [(int(a), int(b), int(c)) for a, b, c in (ln.split() for ln in lines if ln != "ready")]


async def _stored(db: Path, run: int) -> dict[str, tuple[set[int], int]]:
    """Per metric of the run: the raw readings' times, and the count their 1-minute buckets
    add up to (from rollups where minutes are packed, from the log where not)."""
    store = await Store.open(
        StorageConfig(path=db), SystemClock(), Metrics(), retention_loop=False, pack_loop=False
    )
    try:
        metrics = await store.read(
            lambda c: [
                r[0]
                for r in c.execute(
                    "SELECT metric FROM series WHERE device = 'crash' AND metric LIKE ?",
                    (f"r{run}-%",),
                )
            ]
        )
        out = {}
        for metric in metrics:
            raw = await store.series("crash", metric, 0, 2**62)
            minutes = await store.series("crash", metric, 0, 2**62, bucket="1m")
            out[metric] = ({p.ts_ms for p in raw}, sum(p.count for p in minutes))
        return out
    finally:
        await store.close()


def _check(db: Path, run: int, acked: list[tuple[int, int, int]]) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        events = {
            r[0] for r in conn.execute("SELECT id FROM events WHERE id LIKE ?", (f"{run}:%",))
        }
    finally:
        conn.close()
    stored = asyncio.run(_stored(db, run))
    for t, n, base in acked:
        event_id, metric, want = _batch_ids(run, t, n, base)
        if n % 2 == 0:
            assert event_id in events, f"acknowledged event {event_id} lost"
        missing = set(want) - stored.get(metric, (set(), 0))[0]
        assert not missing, f"acknowledged readings of {metric} batch {n} lost"
    # rollups were committed with their readings: counts match the raw readings
    for metric, (have, n_rollup) in stored.items():
        assert n_rollup == len(have), f"rollup of {metric} disagrees with its readings"


def test_kill_9_twenty_times_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "crash.sqlite"
    rng = random.Random(20261126)
    root = Path(__file__).absolute().parent.parent
    origin = str(time.time())
    total_acked = 0
    for run in range(RUNS):
        proc = subprocess.Popen(
            [sys.executable, __file__, str(db), str(run), origin],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        if rng.random() < 0.15:
            time.sleep(rng.uniform(0.0, 0.5))  # possibly while opening / migrating
        else:
            first = proc.stdout.readline()
            assert first == "ready\n", proc.stderr.read() if proc.stderr else ""
            time.sleep(rng.uniform(0.02, 0.4))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err
        acked = _acked(out)
        total_acked += len(acked)
        _check(db, run, acked)
    assert total_acked > 100, "the writer hardly wrote anything before being killed"
    conn = sqlite3.connect(db)
    try:
        (packed,) = conn.execute("SELECT count(*) FROM reading_chunks").fetchone()
    finally:
        conn.close()
    assert packed > RUNS, "minutes were hardly packed between the kills"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(_writer(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
