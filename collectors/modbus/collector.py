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
            offline_poll_every=group.offline_poll_every,
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
        on_availability: Callable[[int, int], None] | None = None,
    ) -> None:
        """`on_availability(offline, total)` is called whenever a device goes off- or online."""
        self._clock = clock
        self._metrics = metrics
        self._commit = commit
        self._bus = bus
        self._rng = rng or random.Random()
        self._on_availability = on_availability
        self.links, self.pollers = build_pollers(config, clock, metrics, self._rng)
        metrics.gauge_callback(
            "modbus_devices_online", self._online_gauge, "Modbus devices answering their polls"
        )

    def _online_gauge(self) -> dict[tuple[tuple[str, str], ...], float]:
        online = sum(1 for p, _ in self.pollers if p.online)
        return {(): float(online)}

    async def deliver(self, outcomes: list[PollOutcome]) -> None:
        """Commit what a round of polls produced in one batch, then publish it."""
        readings = [r for o in outcomes for r in o.readings]
        statuses = [o.status for o in outcomes if o.status is not None]
        if not readings and not statuses:
            return
        await self._commit(WriteBatch(readings=readings, statuses=statuses))
        if readings:
            await self._bus.publish_many(Stream.READINGS, readings)
        if statuses:
            await self._bus.publish_many(Stream.STATUS, statuses)
            if self._on_availability is not None:
                offline = sum(1 for p, _ in self.pollers if p.online is False)
                self._on_availability(offline, len(self.pollers))

    async def _round(self, pollers: list[DevicePoller]) -> None:
        await self.deliver([await p.poll() for p in pollers if p.due()])

    async def _group_loop(self, group: GroupSpec, rounds: list[list[DevicePoller]]) -> None:
        """The coordinator of one polling group. On each beat (interval plus jitter) it starts
        a round on every converter: the devices behind one converter share its serial bus, so a
        round polls them back to back, while the converters are polled side by side (which
        also lets one wake-up of the loop serve several answers). A converter still busy with
        its previous round (e.g. waiting on silent units) skips the beat, counted."""
        await self._clock.sleep(self._rng.uniform(0, group.interval_s))
        busy: dict[int, asyncio.Task[None]] = {}
        next_at = self._clock.monotonic()
        async with asyncio.TaskGroup() as tg:
            while True:
                for i, pollers in enumerate(rounds):
                    task = busy.get(i)
                    if task is not None and not task.done():
                        self._metrics.inc(
                            "modbus_rounds_skipped_total",
                            help_="Polling rounds skipped because the converter was still busy",
                            converter=f"{pollers[0].link.host}:{pollers[0].link.port}",
                        )
                        continue
                    busy[i] = tg.create_task(self._round(pollers))
                next_at += group.interval_s
                delay = next_at - self._clock.monotonic()
                if delay < -group.interval_s:  # the loop itself fell behind: no catch-up burst
                    next_at = self._clock.monotonic()
                    delay = 0.0
                await self._clock.sleep(max(0.0, delay + self._rng.uniform(0, group.jitter_s)))

    async def run(self) -> None:
        groups: dict[int, tuple[GroupSpec, dict[int, list[DevicePoller]]]] = {}
        for poller, group in self.pollers:
            by_link = groups.setdefault(id(group), (group, {}))[1]
            by_link.setdefault(id(poller.link), []).append(poller)
        try:
            async with asyncio.TaskGroup() as tg:
                for group, by_link in groups.values():
                    tg.create_task(self._group_loop(group, list(by_link.values())))
        finally:
            for link in self.links.values():
                await link.close()
