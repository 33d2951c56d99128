"""kill -9 at random instants, 20 times on the same database: it stays intact and every write
whose commit() returned is there.

Run as a script, this file is the writer: concurrent tasks commit batches (events with
readings, or readings alone) and print "task n" after each commit returned.
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


def _batch_ids(run: int, task: int, n: int) -> tuple[str, str, list[int]]:
    """(event id, series metric, reading timestamps) of one batch."""
    base = n * READINGS_PER_BATCH
    return f"{run}:{task}:{n}", f"r{run}-{task}", list(range(base, base + READINGS_PER_BATCH))


async def _writer(db: Path, run: int) -> None:

    store = await Store.open(
        StorageConfig(path=db, batch_linger_ms=2, outbox=True), SystemClock(), Metrics()
    )
    print("ready", flush=True)

    async def task(t: int) -> None:
        n = 0
        while True:
            event_id, metric, stamps = _batch_ids(run, t, n)
            readings = [Reading("crash", metric, ts, float(ts)) for ts in stamps]
            events = [Event(event_id, "crash", "test.crash", n, n)] if n % 2 == 0 else []
            await store.commit(WriteBatch(readings=readings, events=events))
            sys.stdout.write(f"{t} {n}\n")
            sys.stdout.flush()
            n += 1

    await asyncio.gather(*(task(t) for t in range(TASKS)))


def _acked(output: str) -> list[tuple[int, int]]:
    lines = output.split("\n")[:-1]  # a line cut by the kill has no newline: not acknowledged
    return [(int(a), int(b)) for a, b in (ln.split() for ln in lines if ln != "ready")]


def _check(db: Path, run: int, acked: list[tuple[int, int]]) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        events = {
            r[0] for r in conn.execute("SELECT id FROM events WHERE id LIKE ?", (f"{run}:%",))
        }
        stamps: dict[str, set[int]] = {}
        for metric, ts in conn.execute(
            "SELECT s.metric, r.ts_ms FROM readings r JOIN series s ON s.id = r.series_id"
            " WHERE s.device = 'crash' AND s.metric LIKE ?",
            (f"r{run}-%",),
        ):
            stamps.setdefault(metric, set()).add(ts)
        for t, n in acked:
            event_id, metric, want = _batch_ids(run, t, n)
            if n % 2 == 0:
                assert event_id in events, f"acknowledged event {event_id} lost"
            missing = set(want) - stamps.get(metric, set())
            assert not missing, f"acknowledged readings of {metric} batch {n} lost"
        # rollups were committed with their readings: counts match the raw rows
        for metric, have in stamps.items():
            (n_rollup,) = conn.execute(
                "SELECT coalesce(sum(n), 0) FROM rollup_1m r JOIN series s ON s.id = r.series_id"
                " WHERE s.device = 'crash' AND s.metric = ?",
                (metric,),
            ).fetchone()
            assert n_rollup == len(have), f"rollup of {metric} disagrees with its readings"
    finally:
        conn.close()


def test_kill_9_twenty_times_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "crash.sqlite"
    rng = random.Random(20261126)
    root = Path(__file__).absolute().parent.parent
    total_acked = 0
    for run in range(RUNS):
        proc = subprocess.Popen(
            [sys.executable, __file__, str(db), str(run)],
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


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(_writer(Path(sys.argv[1]), int(sys.argv[2])))
