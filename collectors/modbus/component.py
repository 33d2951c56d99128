"""Builds the Modbus collector from the `modbus:` section."""

from __future__ import annotations

from collectors.modbus.collector import ModbusCollector
from gateway.runtime import Component, HealthState, Runtime, Stage


class ModbusComponent:
    name = "modbus"
    stage = Stage.INGEST

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self.collector = ModbusCollector(
            runtime.config.modbus,
            clock=runtime.clock,
            metrics=runtime.metrics,
            commit=runtime.store.commit,
            bus=runtime.bus,
            on_availability=self._availability,
        )

    def _availability(self, offline: int, total: int) -> None:
        if offline:
            detail = f"{offline} of {total} Modbus devices offline"
            self._runtime.health.set(self.name, HealthState.DEGRADED, detail)
        else:
            self._runtime.health.set(self.name, HealthState.RUNNING)

    async def run(self) -> None:
        self._runtime.health.set(self.name, HealthState.RUNNING)
        await self.collector.run()


def build_components(runtime: Runtime) -> list[Component]:
    if not runtime.config.modbus.enabled:
        return []
    return [ModbusComponent(runtime)]
