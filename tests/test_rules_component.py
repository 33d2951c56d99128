"""The rule engine as a gateway component: bus and store in, alerts on the bus and through the
alert service out; its state is flushed when it is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from gateway.app import build_runtime
from gateway.bus import Stream
from gateway.clock import ManualClock
from gateway.config.root import GatewayConfig
from gateway.model import AlertState, DeviceStatus, Event, Reading
from gateway.runtime import ConfigurationError
from gateway.storage.batch import WriteBatch
from rules import persist
from rules.alerts import Change
from rules.component import RulesComponent, build_components
from tests.fixtures.net import await_until


def _config(tmp_path: Path, **rules: object) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "building": {"id": "b07", "timezone": "Asia/Shanghai"},
            "privacy": {"card_key": "k" * 32},
            "storage": {"path": str(tmp_path / "gw.sqlite"), "batch_linger_ms": 0},
            "rules": {"overrides": {"device.offline": {"enabled": False}}, **rules},
        }
    )


async def test_component_raises_from_bus_and_store_and_serves_operators(tmp_path: Path) -> None:
    clock = ManualClock()
    runtime = await build_runtime(_config(tmp_path), None, clock)
    try:
        components = build_components(runtime)
        rules = next(c for c in components if isinstance(c, RulesComponent))
        assert runtime.alert_service is not None
        alerts = runtime.bus.subscribe(Stream.ALERTS, "test")
        task = asyncio.create_task(rules.run())
        now = clock.now_ms()
        event = Event("gate-9:1", "gate-9", "gate.forced", now, now, {"direction": "in"})
        await runtime.store.commit(WriteBatch(events=[event]))
        await runtime.bus.publish(Stream.EVENTS, event)
        change: Change = await asyncio.wait_for(alerts.get(), 5)
        assert change.alert.rule == "gate.forced"

        door = Reading("safety-2", "fire_door", now, 1.0)
        await runtime.bus.publish(Stream.READINGS, door)
        await runtime.bus.publish(Stream.STATUS, DeviceStatus("gate-9", now, True, "normal"))

        async def fed() -> bool:
            return rules.runner.engine.items >= 3

        await await_until(fed, 5, "reading and status fed")

        async def door_alert() -> bool:
            clock.advance(1)
            await asyncio.sleep(0.002)
            return not alerts.queue.empty()

        await await_until(door_alert, 10, "door alert")
        held: Change = alerts.queue.get_nowait()
        assert held.alert.rule == "door.held_open"
        assert held.alert.opened_ms == now + 60_000

        acked = await runtime.alert_service.acknowledge(change.alert.id, "desk-wang")
        assert acked.state is AlertState.ACKNOWLEDGED

        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

        async def flushed() -> bool:
            saved = await runtime.store.read(persist.load_saved)
            return "door.held_open" in saved.state

        await await_until(flushed, 5, "rule state flushed at shutdown")
    finally:
        await runtime.store.close()


async def test_bad_rule_configuration_parks_the_component(tmp_path: Path) -> None:
    clock = ManualClock()
    cfg = _config(tmp_path, custom=[{"id": "x.y", "kind": "threshold", "params": {}}])
    runtime = await build_runtime(cfg, None, clock)
    try:
        [component] = build_components(runtime)
        with pytest.raises(ConfigurationError, match=r"x\.y"):
            await component.run()
    finally:
        await runtime.store.close()
