"""Rule engine throughput with the full catalogue on a 600-room building (30 floors × 20).

Prints one JSON object: items/s through the pure engine (feed + a tick per simulated second)
by wall clock and per CPU second of this process (the machine is shared: the CPU figure is the
one-core rate), µs per item, µs per timer tick, and memory (tracemalloc peak and RSS).
Run: .venv/bin/python bench/rules.py [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is bench/rules.py: keep its directory from shadowing the `rules` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from typing import Any  # noqa: E402

from gateway.bus import Bus, Stream  # noqa: E402
from gateway.clock import ManualClock  # noqa: E402
from gateway.config.rules import RulesConfig  # noqa: E402
from gateway.model import DeviceStatus, Event, Reading  # noqa: E402
from rules.engine import Engine  # noqa: E402
from rules.residents import Roster  # noqa: E402
from simulators.scenarios.building import LANES, TIMEZONE, standard_catalog  # noqa: E402

FLOORS, ROOMS = 30, 20
START = 1_795_700_000_000


def workload(n: int, seed: int = 7) -> list[Any]:
    """A mix like a live building: meter readings (power, pf), safety I/O, gate events,
    statuses, camera events; one item per simulated ms."""
    rng = random.Random(seed)
    rooms = [f"{f}{r:02d}" for f in range(1, FLOORS + 1) for r in range(1, ROOMS + 1)]
    items: list[Any] = []
    for i in range(n):
        ts = START + i
        x = rng.random()
        if x < 0.55:
            room = rng.choice(rooms)
            items.append(Reading(f"meter-{room}", "power", ts, rng.uniform(20, 400)))
        elif x < 0.75:
            room = rng.choice(rooms)
            items.append(Reading(f"meter-{room}", "power_factor", ts, rng.uniform(0.5, 0.99)))
        elif x < 0.85:
            f = rng.randint(1, FLOORS)
            metric = rng.choice(("smoke", "fire_door", "water_leak", "temperature", "humidity"))
            value = rng.uniform(20, 30) if metric in ("temperature", "humidity") else 0.0
            items.append(Reading(f"safety-{f}", metric, ts, value))
        elif x < 0.95:
            g = rng.randint(1, 4)
            kind = "gate.pass" if rng.random() < 0.9 else "gate.denied_unknown_card"
            data = {"direction": "in" if g <= 2 else "out", "card": f"p:{rng.randint(1, 2400)}"}
            items.append(Event(f"gate-{g}:{i}", f"gate-{g}", kind, ts, ts, data))
        elif x < 0.98:
            cam = rng.randint(1, 2)
            data2 = {"line": "lane", "direction": "in", "count": 1}
            items.append(Event(f"c{i}", f"cam-{cam}", "camera.line_crossing", ts, ts, data2))
        else:
            items.append(DeviceStatus(f"gate-{rng.randint(1, 4)}", ts, True, "normal"))
    return items


def make_engine(clock: ManualClock) -> Engine:
    roster = Roster(rooms={f"p:{i}": f"{1 + i % FLOORS}{1 + i % ROOMS:02d}" for i in range(2400)})
    return Engine(
        RulesConfig(lanes=list(LANES)),
        catalog=standard_catalog(FLOORS, ROOMS),
        timezone=TIMEZONE,
        clock=clock,
        roster=roster,
    )


def run_once(items: list[Any]) -> dict[str, float]:
    clock = ManualClock(START)
    engine = make_engine(clock)
    engine.start(now_ms=START)
    next_tick = START + 1000
    changes = 0
    c0 = time.process_time()
    t0 = time.perf_counter()
    for item in items:
        ts = item.ts_ms
        if ts >= next_tick:
            clock.set_ms(ts)
            changes += len(engine.tick(ts))
            next_tick = ts + 1000
        changes += len(engine.feed(item, ts))
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    # ticks alone over the same simulated span, for the share of timers
    clock2 = ManualClock(START)
    e2 = make_engine(clock2)
    e2.start(now_ms=START)
    span_s = (items[-1].ts_ms - START) // 1000
    t1 = time.perf_counter()
    for s in range(1, span_s + 1):
        e2.tick(START + s * 1000)
    tick_only = time.perf_counter() - t1
    return {
        "elapsed_s": elapsed,
        "items_per_s": len(items) / elapsed,
        "items_per_cpu_s": len(items) / cpu,
        "us_per_item": elapsed / len(items) * 1e6,
        "us_per_tick": tick_only / max(span_s, 1) * 1e6,
        "alert_changes": changes,
    }


async def ingest_cost(items: list[Any]) -> float:
    """CPU µs per item the rule engine adds to the ingest path: the bus delivering each item to
    its subscriber and the engine consuming it (as `RulesComponent` does), minus the same
    publishing with no rules subscriber."""
    readings = [i for i in items if isinstance(i, Reading)]
    batches = [readings[i : i + 500] for i in range(0, len(readings), 500)]

    async def publish(with_rules: bool) -> float:
        bus = Bus()
        clock = ManualClock(START)
        engine = make_engine(clock)
        engine.start(now_ms=START)
        sub = bus.subscribe(Stream.READINGS, "rules", maxsize=1_000_000) if with_rules else None
        c0 = time.process_time()
        for batch in batches:
            await bus.publish_many(Stream.READINGS, batch)
            if sub is not None:
                for item in sub.get_nowait_many(1000):
                    engine.feed(item, item.ts_ms)
        return time.process_time() - c0

    base = statistics.median([await publish(False) for _ in range(3)])
    with_rules = statistics.median([await publish(True) for _ in range(3)])
    return (with_rules - base) / len(readings) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 50_000 if args.quick else 300_000
    repeats = 3 if args.quick else 5
    items = workload(n)
    runs = [run_once(items) for _ in range(repeats)]
    ingest_us = statistics.median(asyncio.run(ingest_cost(items)) for _ in range(repeats))
    tracemalloc.start()
    clock = ManualClock(START)
    engine = make_engine(clock)
    engine.start(now_ms=START)
    for item in items:
        engine.feed(item, item.ts_ms)
    engine.tick(items[-1].ts_ms)
    snap_bytes = len(json.dumps(engine.snapshot(only_dirty=False)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out = {
        "bench": "rules",
        "building": {"rooms": FLOORS * ROOMS, "devices": len(engine.ctx.catalog)},
        "rules": len(engine.rules),
        "items": n,
        "repeats": repeats,
        "items_per_s_median": round(statistics.median(r["items_per_s"] for r in runs)),
        "items_per_cpu_s_median": round(statistics.median(r["items_per_cpu_s"] for r in runs)),
        "us_per_item_median": round(statistics.median(r["us_per_item"] for r in runs), 2),
        "us_per_tick_median": round(statistics.median(r["us_per_tick"] for r in runs), 1),
        "ingest_added_cpu_us_per_item": round(ingest_us, 2),
        "alert_changes": runs[0]["alert_changes"],
        "engine_peak_mib": round(peak / 2**20, 1),
        "snapshot_bytes": snap_bytes,
        "rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "target_items_per_s": 100_000,
        "target_ingest_us": 10,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
