"""The coordinator of one polled device: read its blocks, decode, filter, track availability.

A device is online while its polls succeed. After `offline_after` failed polls in a row it is
reported offline once (one log line, one `DeviceStatus`), and online once when a poll succeeds
again. Every failed request is counted per device and kind; nothing a device sends can stop
the poller or put a value under another device's id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from collectors.modbus.decode import DecodeError
from collectors.modbus.plan import Block, Point, decode_block
from collectors.modbus.report import ReportFilter
from collectors.modbus.transport import ErrorKind, ModbusError, ModbusLink
from gateway.clock import Clock
from gateway.metrics import Metrics
from gateway.model import DeviceStatus, Reading

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PollOutcome:
    readings: list[Reading] = field(default_factory=list)
    status: DeviceStatus | None = None
    ok: bool = True


class DevicePoller:
    def __init__(
        self,
        device: str,
        unit: int,
        link: ModbusLink,
        blocks: tuple[Block, ...],
        *,
        offline_after: int,
        offline_poll_every: int = 1,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self.device = device
        self.unit = unit
        self.link = link
        self.blocks = blocks
        self.offline_after = offline_after
        self.offline_poll_every = offline_poll_every
        self._rounds_skipped = 0
        self._clock = clock
        self._metrics = metrics
        self._filter = ReportFilter()
        self._reports = {p.metric: p.report for b in blocks for p in b.points}
        self.polls = 0
        self.online: bool | None = None
        """None until the first poll decided it."""
        self.failures_in_row = 0
        self.last_error: ModbusError | None = None
        self.last_values: dict[str, float] = {}
        """Every decoded value of the last poll, stored or not."""

    @property
    def points(self) -> tuple[Point, ...]:
        return tuple(p for b in self.blocks for p in b.points)

    def due(self) -> bool:
        """Whether to poll in this round: always, except while offline (every n-th round)."""
        if self.online is not False:
            return True
        self._rounds_skipped += 1
        if self._rounds_skipped < self.offline_poll_every:
            return False
        self._rounds_skipped = 0
        return True

    def _count_error(self, err: ModbusError) -> None:
        self._metrics.inc(
            "modbus_errors_total",
            device=self.device,
            kind=str(err.kind),
            help_="Failed Modbus requests per device and kind of failure",
        )

    async def poll(self) -> PollOutcome:
        ts_ms = self._clock.now_ms()
        out = PollOutcome()
        error: ModbusError | None = None
        values: dict[str, float] = {}
        for block in self.blocks:
            if self.polls % block.poll_every and self.online:
                continue
            try:
                raw = await self.link.read(self.unit, block.table, block.start, block.count)
                good, bad = decode_block(block, raw)
            except ModbusError as exc:
                error = exc
                self._count_error(exc)
                if exc.kind is not ErrorKind.EXCEPTION:
                    break  # the unit or the link is in trouble: do not wait on every block
                continue
            except DecodeError as exc:
                error = ModbusError(ErrorKind.SHORT, str(exc))
                self._count_error(error)
                continue
            for metric, reason in bad:
                error = ModbusError(ErrorKind.GARBLED, f"{metric}: {reason}")
                self._count_error(error)
            values.update(good)
        self.polls += 1
        self._metrics.inc(
            "modbus_polls_total", help_="Device polls", result="error" if error else "ok"
        )
        self.last_values.update(values)
        for metric, value in values.items():
            if self._filter.offer(self._reports[metric], metric, value, ts_ms):
                out.readings.append(Reading(self.device, metric, ts_ms, value))
        if error is None:
            self.failures_in_row = 0
            self.last_error = None
            if self.online is not True:
                if self.online is False:
                    log.info("modbus device %s is back online", self.device)
                self.online = True
                out.status = DeviceStatus(self.device, ts_ms, True)
            return out
        out.ok = False
        self.failures_in_row += 1
        self.last_error = error
        if self.online is not False and self.failures_in_row >= self.offline_after:
            log.warning(
                "modbus device %s (unit %d on %s:%d) is offline after %d failed polls: %s",
                self.device,
                self.unit,
                self.link.host,
                self.link.port,
                self.failures_in_row,
                error,
            )
            self.online = False
            self._filter.reset()
            out.status = DeviceStatus(
                self.device,
                ts_ms,
                False,
                detail={"error": str(error.kind), "detail": error.detail},
            )
        return out
