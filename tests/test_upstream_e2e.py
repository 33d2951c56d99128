"""The whole gateway as a process: simulated meters → Modbus collector → store + outbox →
upstream sink → a real VictoriaMetrics that is stopped for a while and restarted.

Afterwards VictoriaMetrics holds every reading the gateway stored and acknowledged, once, with
its value: the gateway's own store is the reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from gateway.clock import SystemClock
from gateway.config.storage import StorageConfig
from gateway.metrics import Metrics
from gateway.storage.store import Store
from simulators.modbus.building import BuildingSim
from tests.fixtures.gateway_proc import GatewayFactory, GatewayProcess
from tests.fixtures.net import await_until
from tests.fixtures.victoria import VictoriaMetrics

OUTAGE_S = float(os.environ.get("UPSTREAM_E2E_OUTAGE_S", "5"))
FAST: dict[str, Any] = {"timeout_s": 0.5, "retries": 0, "backoff_min_s": 0.05, "backoff_max_s": 0.2}


@contextlib.asynccontextmanager
async def stepping(sim: BuildingSim, step_ms: int = 1000) -> AsyncIterator[None]:
    """Move the simulated building forward while the gateway polls it (values change)."""

    async def run() -> None:
        while True:
            sim.step_to(sim.now_ms + step_ms)
            await asyncio.sleep(0.05)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def warned(gw: GatewayProcess, text: str) -> bool:
    return any(text in str(r.get("msg", "")) for r in gw.records())


async def stored_readings(path: Path) -> dict[tuple[str, str, int], float]:
    config = StorageConfig(path=path, outbox=True)
    store = await Store.open(config, SystemClock(), Metrics(), retention_loop=False)
    try:
        unsent = {
            (e.reading.device, e.reading.metric, e.reading.ts_ms)
            for e in await store.outbox_read(0, 10_000_000)
            if e.reading is not None
        }
        names = await store.read(
            lambda c: c.execute("SELECT device, metric FROM series").fetchall()
        )
        rows = [
            (d, m, p.ts_ms, p.last) for d, m in names for p in await store.series(d, m, 0, 2**62)
        ]
    finally:
        await store.close()
    return {(d, m, ts): v for d, m, ts, v in rows if (d, m, ts) not in unsent}


async def test_gateway_forwards_a_simulated_building_through_an_outage(
    modbus_building: BuildingSim,
    gateway_proc: GatewayFactory,
    victoria: VictoriaMetrics,
) -> None:
    sim = modbus_building
    modbus = sim.modbus_section(**FAST)
    every_poll = {"mode": "every_poll"}  # ~500 readings/s from 8 meters and 2 safety modules
    meter_metrics = ("voltage", "current", "power", "power_factor", "frequency", "energy")
    modbus["groups"] = {
        "meters": {
            "interval_s": 0.1,
            "jitter_s": 0.02,
            "report": dict.fromkeys(meter_metrics, every_poll),
        },
        "safety": {
            "interval_s": 0.1,
            "jitter_s": 0.02,
            "report": dict.fromkeys(("temperature", "humidity"), every_poll),
        },
    }
    overrides = {
        "modbus": modbus,
        "storage": {"outbox": True},
        "upstream": {
            "enabled": True,
            "url": victoria.url,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.5,
            "idle_poll_s": 0.1,
            "backlog_check_s": 0.5,
        },
    }
    async with stepping(sim):
        gw = await asyncio.to_thread(gateway_proc, overrides)

        async def some_upstream() -> bool:
            return bool(await asyncio.to_thread(victoria.export, "reading_value"))

        await await_until(some_upstream, timeout=30, what="readings in VictoriaMetrics")
        await asyncio.to_thread(victoria.stop)

        async def failing() -> bool:
            return warned(gw, "write failed, keeping the batch")

        await await_until(failing, timeout=30, what="the sink noticing the outage")
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(victoria.start)

        async def recovered() -> bool:
            return warned(gw, "server reachable again")

        await await_until(recovered, timeout=30, what="the sink delivering again")
        await asyncio.sleep(1)
        assert await asyncio.to_thread(gw.stop) == 0

    stored = await stored_readings(gw.workdir / "store" / "gateway.sqlite")
    found: dict[tuple[str, str, int], list[float]] = {}
    for series in await asyncio.to_thread(victoria.export, "reading_value"):
        labels = series["metric"]
        for ts, value in zip(series["timestamps"], series["values"], strict=True):
            found.setdefault((labels["device"], labels["metric"], ts), []).append(value)
    assert len(stored) > 2000, f"only {len(stored)} readings: too few to show anything"
    assert set(found) == set(stored)
    assert all(len(v) == 1 for v in found.values())
    wrong = {k for k, v in found.items() if abs(v[0] - stored[k]) > 1e-6 * max(1, abs(stored[k]))}
    assert not wrong, sorted(wrong)[:5]
