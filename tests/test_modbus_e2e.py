"""The whole collector (polling loops, report strategies, store, bus) against a simulated
building, with the real store."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from collectors.modbus.collector import ModbusCollector
from collectors.modbus.component import ModbusComponent, build_components
from gateway.app import build_runtime
from gateway.bus import Bus, Stream
from gateway.clock import SystemClock
from gateway.config.modbus import ModbusConfig
from gateway.config.root import GatewayConfig
from gateway.metrics import Metrics
from gateway.model import DeviceStatus, Reading
from gateway.runtime import HealthState
from simulators.modbus.building import BuildingSim
from simulators.modbus.server import Fault
from tests.fixtures.net import await_until
from tests.fixtures.store import open_store

FAST = {"timeout_s": 0.5, "retries": 0, "backoff_min_s": 0.05, "backoff_max_s": 0.2}


async def test_collector_stores_and_publishes_and_reports_offline_once(
    modbus_building: BuildingSim, tmp_path: Path
) -> None:
    sim = modbus_building
    section = sim.modbus_section(**FAST)
    section["groups"] = {
        "meters": {
            "interval_s": 0.1,
            "jitter_s": 0.02,
            "offline_after": 3,
            "offline_poll_every": 2,
        },
        "safety": {"interval_s": 0.1, "jitter_s": 0.02},
    }
    config = ModbusConfig.model_validate(section)
    metrics, bus = Metrics(), Bus()
    availability: list[tuple[int, int]] = []
    readings_sub = bus.subscribe(Stream.READINGS, "test")
    status_sub = bus.subscribe(Stream.STATUS, "test")
    async with open_store(tmp_path) as store:
        collector = ModbusCollector(
            config,
            clock=SystemClock(),
            metrics=metrics,
            commit=store.commit,
            bus=bus,
            rng=random.Random(3),
            on_availability=lambda off, total: availability.append((off, total)),
        )
        task = asyncio.create_task(collector.run())
        try:

            async def all_online() -> bool:
                return len(await store.latest_statuses()) == 10

            await await_until(all_online, what="10 devices online")
            latest = await store.latest_statuses()
            assert all(s.online for s in latest.values())

            sim.servers["conv-2"].set_fault(1, Fault("silent"))

            async def m201_offline() -> bool:
                return not (await store.latest_statuses())["m-2-01"].online

            await await_until(m201_offline, what="m-2-01 offline")
            polls_before = metrics.value("modbus_errors_total", device="m-2-01", kind="timeout")
            await await_until(
                lambda: _gt(metrics, polls_before + 3), what="more failed polls of m-2-01"
            )
            sim.servers["conv-2"].set_fault(1, None)

            async def m201_online() -> bool:
                return (await store.latest_statuses())["m-2-01"].online

            await await_until(m201_online, what="m-2-01 back online")
            history = await store.status_history("m-2-01")
            assert [s.online for s in history] == [True, False, True]
            ts = sim.now_ms
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        start = 0
        volts = await store.series("m-1-01", "voltage", start, 2**62)
        assert volts
        assert volts[-1].last == sim.meter("101").voltage
        # the simulator is frozen: unchanged values are stored once, not every 0.1 s
        assert len(volts) == 1
        assert ts == sim.now_ms
    published: list[Reading] = readings_sub.get_nowait_many(10_000)
    assert {r.device for r in published} >= {"m-1-01", "safety-2"}
    assert (1, 10) in availability
    assert availability[-1] == (0, 10)
    statuses: list[DeviceStatus] = status_sub.get_nowait_many(10_000)
    assert [s.online for s in statuses if s.device == "m-2-01"] == [True, False, True]


async def _gt(metrics: Metrics, value: float) -> bool:
    return metrics.value("modbus_errors_total", device="m-2-01", kind="timeout") > value


async def test_the_gateway_builds_the_component_and_catalog(
    modbus_building: BuildingSim, tmp_path: Path
) -> None:
    sim = modbus_building
    config = GatewayConfig.model_validate(
        {
            "building": {"id": "b07", "floors": 2},
            "privacy": {"card_key": "0123456789abcdef0123"},
            "storage": {"path": str(tmp_path / "gw.sqlite")},
            "modbus": sim.modbus_section(**FAST),
        }
    )
    runtime = await build_runtime(config, None, SystemClock())
    try:
        assert runtime.catalog.get("m-1-02") is not None
        assert runtime.catalog.get("safety-2") is not None
        (component,) = build_components(runtime)
        assert isinstance(component, ModbusComponent)
        task = asyncio.create_task(component.run())

        async def all_online() -> bool:
            return len(await runtime.store.latest_statuses()) == 10

        await await_until(all_online, what="10 devices online")
        assert runtime.health.components["modbus"].state is HealthState.RUNNING
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        disabled = config.model_copy(
            update={"modbus": config.modbus.model_copy(update={"enabled": False})}
        )
        runtime.config = disabled
        assert build_components(runtime) == []
    finally:
        await runtime.store.close()
