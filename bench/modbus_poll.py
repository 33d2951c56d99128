"""Modbus polling: what the collector sustains against the simulated building, next to mbpoll
(libmodbus, C) in the same run as the ceiling, and the CPU a 120-room building costs.

Prints one JSON object. The simulator runs in its own process (its CPU is not counted); the
collector's figures are this process's CPU time (all threads, the store's writer included in
the building phase). Medians of `--reps` alternating runs.

    .venv/bin/python bench/modbus_poll.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from collectors.modbus.collector import ModbusCollector, build_pollers
from collectors.modbus.poller import DevicePoller
from gateway.bus import Bus, Stream
from gateway.clock import SystemClock
from gateway.config.modbus import ModbusConfig
from gateway.config.storage import StorageConfig
from gateway.metrics import Metrics
from gateway.storage.batch import WriteBatch
from gateway.storage.store import Store

FLOORS, ROOMS = 6, 20


def free_base_port(n: int) -> int:
    for _ in range(200):
        base = random.randint(20_000, 60_000)
        ok = True
        for p in range(base, base + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


def start_sim(tmp: Path, speed: float) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    base = free_base_port(FLOORS + 1)
    out = tmp / "modbus.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.modbus", "--floors", str(FLOORS), "--rooms",
         str(ROOMS), "--base-port", str(base), "--speed", str(speed), "--config-out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not out.exists() or not out.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("the simulator did not start")
        time.sleep(0.05)
    section: dict[str, Any] = yaml.safe_load(out.read_text())["modbus"]
    return proc, section


async def _noop(batch: WriteBatch) -> None:
    return None


async def collector_throughput(section: dict[str, Any], seconds: float) -> dict[str, float]:
    """Every device polled back to back, one loop per converter (requests are serial per
    connection anyway): the most the collector gets out of the converters."""
    config = ModbusConfig.model_validate(section)
    links, pairs = build_pollers(config, SystemClock(), Metrics(), random.Random(1))
    by_link: dict[int, list[DevicePoller]] = {}
    for p, _ in pairs:
        by_link.setdefault(id(p.link), []).append(p)
    polls = 0
    stop = time.monotonic() + seconds

    async def loop(pollers: list[DevicePoller]) -> None:
        nonlocal polls
        while time.monotonic() < stop:
            for p in pollers:
                out = await p.poll()
                if not out.ok:
                    raise RuntimeError(f"{p.device}: {p.last_error}")
                polls += 1

    for ps in by_link.values():  # connect first
        await ps[0].poll()
    req0 = sum(link.requests for link in links.values())
    regs0 = sum(link.values for link in links.values())
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.gather(*(loop(ps) for ps in by_link.values()))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    requests = sum(link.requests for link in links.values()) - req0
    registers = sum(link.values for link in links.values()) - regs0
    for link in links.values():
        await link.close()
    return {
        "polls_per_s": polls / wall,
        "requests_per_s": requests / wall,
        "registers_per_s": registers / wall,
        "cpu_us_per_poll": cpu / polls * 1e6,
        "cpu_us_per_request": cpu / requests * 1e6,
    }


def mbpoll_throughput(
    section: dict[str, Any], seconds: float, per_converter: int
) -> dict[str, float]:
    """mbpoll processes (`per_converter` per converter, each on its own connection) reading the
    32-register block of every meter (the 2 climate registers of the safety modules) in a
    loop; mbpoll pauses 11 ms after each round of units, hence several processes."""
    procs: list[tuple[subprocess.Popen[bytes], int]] = []
    for conv in section["converters"]:
        safety = conv["id"] == "safety"
        units, count = (f"1:{FLOORS}", 2) if safety else (f"1:{ROOMS}", 32)
        cmd = ["mbpoll", "-m", "tcp", "-p", str(conv["port"]), "-a", units, "-t", "3", "-0",
               "-r", "0", "-c", str(count), "-l", "11", "-o", "2", "127.0.0.1"]  # fmt: skip
        for _ in range(per_converter):
            out = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            procs.append((out, count))
    time.sleep(seconds)
    requests = registers = 0
    for proc, count in procs:
        proc.terminate()
        out, _ = proc.communicate()
        n = len(re.findall(rb"\n\[0\]:", out))  # one per successful read
        requests += n
        registers += n * count
    return {"requests_per_s": requests / seconds, "registers_per_s": registers / seconds}


async def building_cpu(section: dict[str, Any], seconds: float, tmp: Path) -> dict[str, float]:
    """The real collector (meters every 2 s, safety modules every 1 s) with the real store."""
    config = ModbusConfig.model_validate({**section, "groups": {
        "meters": {"interval_s": 2.0, "jitter_s": 0.2},
        "safety": {"interval_s": 1.0, "jitter_s": 0.1},
    }})  # fmt: skip
    metrics, bus = Metrics(), Bus()
    sub = bus.subscribe(Stream.READINGS, "bench", maxsize=1_000_000)
    store = await Store.open(
        StorageConfig(path=tmp / "store.sqlite"), SystemClock(), metrics, retention_loop=False
    )
    collector = ModbusCollector(
        config, clock=SystemClock(), metrics=metrics, commit=store.commit, bus=bus
    )
    task = asyncio.create_task(collector.run())
    await asyncio.sleep(2.5)  # every device polled once, connections up
    polls0 = metrics.total("modbus_polls_total")
    req0 = sum(link.requests for link in collector.links.values())
    stored0 = sub.queue.qsize()
    os0, t0 = os.times(), time.monotonic()
    await asyncio.sleep(seconds)
    os1, wall = os.times(), time.monotonic() - t0
    user, system = os1.user - os0.user, os1.system - os0.system
    cpu = user + system
    polls = metrics.total("modbus_polls_total") - polls0
    requests = sum(link.requests for link in collector.links.values()) - req0
    stored = sub.queue.qsize() - stored0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await store.close()
    return {
        "devices": float(len(collector.pollers)),
        "polls_per_s": polls / wall,
        "requests_per_s": requests / wall,
        "cpu_share_of_one_core": cpu / wall,
        "user_share": user / wall,
        "system_share": system / wall,
        "cpu_us_per_poll": cpu / polls * 1e6 if polls else 0.0,
        "readings_stored_per_s": stored / wall,
        "errors": metrics.total("modbus_errors_total"),
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="shorter runs, one repetition")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument(
        "--mbpolls", type=int, default=4, help="mbpoll processes per converter, saturating run"
    )
    args = ap.parse_args()
    reps = 1 if args.quick else args.reps
    burst_s = 2.0 if args.quick else 5.0
    building_s = 8.0 if args.quick else 30.0
    have_mbpoll = shutil.which("mbpoll") is not None
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proc, section = start_sim(tmp, speed=1.0)
        try:
            for conv in section["converters"]:
                conv["timeout_s"] = 2.0
            ours: list[dict[str, float]] = []
            theirs: list[dict[str, float]] = []
            saturated: list[dict[str, float]] = []
            for _ in range(reps):
                ours.append(await collector_throughput(section, burst_s))
                if have_mbpoll:
                    theirs.append(await asyncio.to_thread(mbpoll_throughput, section, burst_s, 1))
                    saturated.append(
                        await asyncio.to_thread(mbpoll_throughput, section, burst_s, args.mbpolls)
                    )
            building = await building_cpu(section, building_s, tmp)
        finally:
            proc.terminate()
            proc.wait(10)

    def med(rows: list[dict[str, float]]) -> dict[str, float]:
        return {k: round(statistics.median(r[k] for r in rows), 1) for k in rows[0]} if rows else {}

    c, m = med(ours), med(theirs)
    result: dict[str, Any] = {
        "bench": "modbus_poll",
        "building": {"floors": FLOORS, "rooms": FLOORS * ROOMS, "safety_modules": FLOORS},
        "simulator": "pymodbus 3.16 server in its own process, 7 converters (ports)",
        "reps": reps,
        "collector_max": c,
        "mbpoll_same_connections": m,
        f"mbpoll_{args.mbpolls}_connections_per_converter": med(saturated),
        "collector_vs_mbpoll_requests": round(c["requests_per_s"] / m["requests_per_s"], 2)
        if m
        else None,
        "note": "one connection per converter, requests serial on each (as on an RS-485 bus): "
        "both clients are bound by round trips to the simulator, not by CPU",
        "building_120_rooms_every_2s": {k: round(v, 4) for k, v in building.items()},
        "target_cpu_share": 0.05,
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "meets_target": building["cpu_share_of_one_core"] < 0.05,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
