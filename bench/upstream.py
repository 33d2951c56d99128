"""Upstream drain rate to a real VictoriaMetrics, and the time to drain a 1-hour backlog.

The 1-hour backlog of a 600-room building, from a realistic report strategy: 600 room meters
reporting 4 metrics (power, current, voltage, energy) on change, at most every 10 s, is
600 x 4 x 360 = 864,000 readings; 6 safety modules x 6 inputs every 10 s add 12,960; ~1,000
gate passages an hour at peak add 1,000 events: 877,960 entries. The full run drains all of it
from the real store's outbox (written the way the collectors write: readings and their outbox
entries in one transaction); `--quick` drains a tenth and scales the time. Also measured in the same
run: the line-protocol formatting rate alone, for the ratio.

    .venv/bin/python bench/upstream.py [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.clock import SystemClock
from gateway.config.upstream import UpstreamConfig
from gateway.metrics import Metrics
from gateway.model import Event, Reading
from gateway.runtime import HealthRegistry
from gateway.sinks.influx import InfluxWriter, UpstreamSink
from gateway.sinks.line_protocol import LineFormatter
from gateway.storage.batch import WriteBatch
from gateway.storage.store import Store
from tests.fixtures.store import open_store, storage_config
from tests.fixtures.victoria import VictoriaMetrics

T0 = 1_780_000_000_000
METER_METRICS = ("power_w", "current_a", "voltage_v", "energy_kwh")


def hour_backlog(fraction: float, seed: int = 1) -> list[object]:
    rng = random.Random(seed)
    items: list[object] = []
    steps = max(1, round(360 * fraction))
    for k in range(steps):
        ts = T0 + k * 10_000
        for room in range(600):
            for metric in METER_METRICS:
                items.append(
                    Reading(f"meter-{room:03d}", metric, ts + room, round(rng.random() * 2000, 3))
                )
        for floor in range(6):
            for metric in ("smoke", "door", "leak", "tamper", "temp_c", "rh"):
                items.append(Reading(f"safety-{floor + 1}", metric, ts, float(rng.randint(0, 1))))
        for g in range(3):  # ~1,000 passages an hour
            items.append(
                Event(
                    f"gate-{g}:{k}", f"gate-{g % 4}", "gate.pass", ts + g, ts + g, {"serialNo": k}
                )
            )
    return items


def format_rate(items: list[object]) -> float:
    fmt = LineFormatter("b07")
    started = time.perf_counter()
    for item in items:
        fmt.format(item)
    return len(items) / (time.perf_counter() - started)


async def drain(vm: VictoriaMetrics, outbox: Store, batch: int, expected: int) -> float:
    metrics = Metrics()
    config = UpstreamConfig(enabled=True, url=vm.url, batch_points=batch, idle_poll_s=0.05)
    sink = UpstreamSink(
        config,
        outbox=outbox,
        formatter=LineFormatter("b07"),
        writer=InfluxWriter(config),
        clock=SystemClock(),
        metrics=metrics,
        health=HealthRegistry(SystemClock()),
    )
    started = time.perf_counter()
    task = asyncio.create_task(sink.run())
    while metrics.total("upstream_points_total") < expected:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    seconds = time.perf_counter() - started
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return seconds


@dataclass
class Run:
    drain_s: float = 0.0
    outbox_read_per_s: float = 0.0
    server_write_per_s: float = 0.0


async def stage_rates(vm: VictoriaMetrics, store: Store, batch: int, run: Run) -> None:
    """The drain's two stages alone, on up to 100,000 entries: reading the store's outbox, and
    the server taking pre-formatted gzipped batches (written under another building id)."""
    started, after, n = time.perf_counter(), 0, 0
    while n < 100_000 and (entries := await store.outbox_read(after, batch)):
        after, n = entries[-1].seq, n + len(entries)
    run.outbox_read_per_s = n / (time.perf_counter() - started)
    fmt = LineFormatter("bench-stage")
    items = hour_backlog(0.1, seed=9)[:100_000]
    bodies = [
        "\n".join(fmt.format(i) for i in items[k : k + batch]).encode()
        for k in range(0, len(items), batch)
    ]
    writer = InfluxWriter(UpstreamConfig(enabled=True, url=vm.url))
    started = time.perf_counter()
    for body in bodies:
        await asyncio.to_thread(writer.write, body)
    run.server_write_per_s = len(items) / (time.perf_counter() - started)
    writer.close()


async def one_run(vm: VictoriaMetrics, directory: Path, items: list[object], batch: int) -> Run:
    config = storage_config(directory, outbox=True, outbox_max_rows=10_000_000)
    run = Run()
    async with open_store(config, SystemClock()) as store:
        readings = [i for i in items if isinstance(i, Reading)]
        events = [i for i in items if isinstance(i, Event)]
        for i in range(0, len(readings), 10_000):
            await store.commit(WriteBatch(readings=readings[i : i + 10_000]))
        await store.commit(WriteBatch(events=events))
        assert (await store.outbox_backlog()).backlog == len(items)
        await stage_rates(vm, store, batch, run)
        run.drain_s = await drain(vm, store, batch, len(items))
        assert (await store.outbox_backlog()).backlog == 0
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the backlog")
    parser.add_argument("--repeat", type=int, help="runs, median reported (default: 1; quick: 3)")
    parser.add_argument("--batch", type=int, default=5000, help="entries per write request")
    args = parser.parse_args()
    fraction = 0.1 if args.quick else 1.0
    repeat = args.repeat or (3 if args.quick else 1)
    items = hour_backlog(fraction)
    full_hour = len(hour_backlog(1.0 / 360)) * 360
    fmt_rates = [format_rate(items[:200_000]) for _ in range(3)]
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(repeat):
            vm = VictoriaMetrics(Path(tmp) / f"vm-{k}")
            vm.start()
            try:
                runs.append(asyncio.run(one_run(vm, Path(tmp) / f"store-{k}", items, args.batch)))
                match = '{__name__=~"reading_value|event_count",building="b07"}'
                n = sum(len(s["values"]) for s in vm.export(match))
                assert n == len(items), f"VictoriaMetrics holds {n} of {len(items)} points"
            finally:
                vm.stop()
    rates = [len(items) / r.drain_s for r in runs]
    rate = statistics.median(rates)
    print(
        json.dumps(
            {
                "bench": "upstream",
                "mode": "quick" if args.quick else "full",
                "points_drained": len(items),
                "batch_points": args.batch,
                "gzip": True,
                "drain_points_per_s": round(rate),
                "drain_points_per_s_runs": [round(r) for r in rates],
                "stage_outbox_read_per_s": round(
                    statistics.median(r.outbox_read_per_s for r in runs)
                ),
                "stage_server_write_per_s": round(
                    statistics.median(r.server_write_per_s for r in runs)
                ),
                "format_only_points_per_s": round(statistics.median(fmt_rates)),
                "drain_vs_format_ratio": round(rate / statistics.median(fmt_rates), 3),
                "hour_backlog_600_rooms_points": full_hour,
                "hour_backlog_drain_s": round(full_hour / rate, 1),
                "hour_backlog_drain_measured": not args.quick,
                "catch_up_factor": round(3600 / (full_hour / rate)),
            }
        )
    )


if __name__ == "__main__":
    main()
