"""The Modbus collector: one link per converter, one polling loop per device."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from collectors.modbus.plan import compile_points, plan_blocks
from collectors.modbus.poller import DevicePoller, PollOutcome
from collectors.modbus.transport import ModbusLink
from gateway.bus import Bus, Stream
from gateway.clock import Clock
from gateway.config.modbus import GroupSpec, ModbusConfig
from gateway.metrics import Metrics
from gateway.storage.batch import WriteBatch

log = logging.getLogger(__name__)

Commit = Callable[[WriteBatch], Awaitable[object]]


def build_pollers(
    config: ModbusConfig, clock: Clock, metrics: Metrics, rng: random.Random
) -> tuple[dict[str, ModbusLink], list[tuple[DevicePoller, GroupSpec]]]:
    profiles = config.all_profiles()
    convs = {c.id: c for c in config.converters}
    links = {
        c.id: ModbusLink(
            c.host,
            c.port,
            timeout_s=c.timeout_s,
            retries=c.retries,
            backoff_min_s=c.backoff_min_s,
            backoff_max_s=c.backoff_max_s,
            rng=random.Random(rng.random()),
            clock=clock,
        )
        for c in config.converters
    }
    pollers: list[tuple[DevicePoller, GroupSpec]] = []
    for d in config.all_devices():
        group = config.groups[d.group]
        conv = convs[d.converter]
        points = compile_points(profiles[d.profile], group.report)
        blocks = plan_blocks(points, conv.max_gap, conv.max_registers)
        poller = DevicePoller(
            d.id,
            d.unit,
            links[d.converter],
            blocks,
            offline_after=group.offline_after,
            clock=clock,
            metrics=metrics,
        )
        pollers.append((poller, group))
    return links, pollers


class ModbusCollector:
    name = "modbus"

    def __init__(
        self,
        config: ModbusConfig,
        *,
        clock: Clock,
        metrics: Metrics,
        commit: Commit,
        bus: Bus,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._commit = commit
        self._bus = bus
        self._rng = rng or random.Random()
        self.links, self.pollers = build_pollers(config, clock, metrics, self._rng)
        metrics.gauge_callback(
            "modbus_devices_online", self._online_gauge, "Modbus devices answering their polls"
        )

    def _online_gauge(self) -> dict[tuple[tuple[str, str], ...], float]:
        online = sum(1 for p, _ in self.pollers if p.online)
        return {(): float(online)}

    async def deliver(self, outcome: PollOutcome) -> None:
        """Commit what a poll produced, then publish it."""
        if not outcome.readings and outcome.status is None:
            return
        statuses = [outcome.status] if outcome.status is not None else []
        await self._commit(WriteBatch(readings=outcome.readings, statuses=statuses))
        if outcome.readings:
            await self._bus.publish_many(Stream.READINGS, outcome.readings)
        if statuses:
            await self._bus.publish_many(Stream.STATUS, statuses)

    async def _loop(self, poller: DevicePoller, group: GroupSpec) -> None:
        # Spread the devices of a group over its interval, then keep each on its own beat.
        await self._clock.sleep(self._rng.uniform(0, group.interval_s))
        next_at = self._clock.monotonic()
        while True:
            outcome = await poller.poll()
            await self.deliver(outcome)
            next_at += group.interval_s
            delay = next_at - self._clock.monotonic()
            if delay < -group.interval_s:  # fell behind (slow link): do not burst to catch up
                next_at = self._clock.monotonic()
                delay = 0.0
            await self._clock.sleep(max(0.0, delay + self._rng.uniform(0, group.jitter_s)))

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                for poller, group in self.pollers:
                    tg.create_task(self._loop(poller, group), name=f"modbus:{poller.device}")
        finally:
            for link in self.links.values():
                await link.close()
