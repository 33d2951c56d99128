"""The upstream backlog's high-water mark: a gauge, degraded health and a self-resolving alert.

Above `high_water` entries the alarm raises one `upstream.backlog` alert (warning, subject
`upstream`, receivers `ops`); it resolves it once the backlog is back below `low_water`. The
alert and its transitions are committed to the store, where the cockpit's alert lists find it.
It is not published on the bus: `Stream.ALERTS` carries the rule engine's `Change`s, and the
rule engine does not own this alert (operators can comment on it; it resolves itself).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Protocol

from gateway.clock import Clock
from gateway.metrics import Metrics
from gateway.model import Alert, AlertState, AlertTransition, Severity
from gateway.storage.batch import CommitResult, WriteBatch

log = logging.getLogger(__name__)

RULE = "upstream.backlog"
SUBJECT = "upstream"
ACK_DEADLINE_MS = 10 * 60_000
RESOLVE_DEADLINE_MS = 24 * 3600_000


class AlertStore(Protocol):
    async def commit(self, batch: WriteBatch) -> CommitResult: ...

    async def alerts(
        self, *, states: tuple[AlertState, ...] = (), rule: str | None = None, limit: int = 500
    ) -> list[Alert]: ...


class BacklogAlarm:
    def __init__(
        self,
        *,
        high_water: int,
        low_water: int,
        store: AlertStore | None,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self.high_water = high_water
        self.low_water = low_water
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._alert: Alert | None = None
        self._loaded = False
        self.above = False
        self.problem: str | None = None
        """What to report as the sink's health while above the high-water mark."""

    async def observe(self, backlog: int) -> None:
        if not self._loaded:
            self._loaded = True
            if self._store is not None:
                open_ = await self._store.alerts(
                    states=(AlertState.OPEN, AlertState.ACKNOWLEDGED), rule=RULE, limit=1
                )
                self._alert = open_[0] if open_ else None
                self.above = self._alert is not None
                self.problem = self._alert.message if self._alert is not None else None
        self._metrics.set("upstream_high_water", self.high_water, "Backlog alert threshold")
        if not self.above and backlog > self.high_water:
            self.above = True
            message = (
                f"upstream backlog {backlog:,} entries above the high-water mark "
                f"{self.high_water:,}: the campus server is unreachable or too slow"
            )
            log.warning("upstream: %s", message)
            self.problem = message
            await self._raise(message)
        elif self.above and backlog < self.low_water:
            self.above = False
            note = f"backlog {backlog:,} back below {self.low_water:,}"
            log.info("upstream: %s", note)
            self.problem = None
            await self._resolve(note)
        self._metrics.set(
            "upstream_backlog_alarm", 1.0 if self.above else 0.0, "Backlog above high water"
        )

    async def _raise(self, message: str) -> None:
        if self._store is None or self._alert is not None:
            return
        now = self._clock.now_ms()
        alert = Alert(
            id=f"{RULE}:{now}",
            rule=RULE,
            subject=SUBJECT,
            severity=Severity.WARNING,
            state=AlertState.OPEN,
            opened_ms=now,
            updated_ms=now,
            message=message,
            receivers=("ops",),
            ack_deadline_ms=now + ACK_DEADLINE_MS,
            resolve_deadline_ms=now + RESOLVE_DEADLINE_MS,
        )
        transition = AlertTransition(
            alert.id, now, "open", "system", AlertState.OPEN, Severity.WARNING, message
        )
        await self._publish(alert, transition)
        self._alert = alert

    async def _resolve(self, note: str) -> None:
        if self._store is None or self._alert is None:
            return
        now = self._clock.now_ms()
        alert = dataclasses.replace(self._alert, state=AlertState.RESOLVED, updated_ms=now)
        transition = AlertTransition(
            alert.id, now, "resolve", "system", AlertState.RESOLVED, alert.severity, note
        )
        await self._publish(alert, transition)
        self._alert = None

    async def _publish(self, alert: Alert, transition: AlertTransition) -> None:
        assert self._store is not None
        await self._store.commit(WriteBatch(alerts=[alert], transitions=[transition]))
