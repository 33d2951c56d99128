"""The cockpit's figures, computed from the store, the catalog and the residents directory."""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

from dashboard_api.residents import ResidentDirectory
from dashboard_api.schemas import DayCharts, KindCount, Kpis
from gateway.model import Alert, AlertState, DeviceKind
from gateway.runtime import Runtime
from gateway.storage.store import StoredEvent

HOUR_MS = 3_600_000
OPEN_STATES = (AlertState.OPEN, AlertState.ACKNOWLEDGED)
MANY = 1_000_000
TRANSITION_SAMPLE = 200  # today's handled alerts whose history is read, newest first
RECENT_MS = 15 * 60_000  # a meter's last reading older than this counts as no data
TERMINAL_BAD_STATES = frozenset({"fault"})


def day_start_ms(now_ms: int, tz: ZoneInfo) -> int:
    local = datetime.fromtimestamp(now_ms / 1000, tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp() * 1000)


class KpiService:
    def __init__(self, runtime: Runtime, residents: ResidentDirectory) -> None:
        self._rt = runtime
        self._residents = residents
        self._tz = ZoneInfo(runtime.config.building.timezone)
        self._power_metric = runtime.config.api.power_metric
        self._lock = asyncio.Lock()
        self._cached: tuple[float, Kpis] | None = None
        self._charts: tuple[float, DayCharts] | None = None

    async def current(self, max_age_s: float = 2.0) -> Kpis:
        async with self._lock:
            mono = self._rt.clock.monotonic()
            if self._cached is not None and mono - self._cached[0] < max_age_s:
                return self._cached[1]
            k = await self.compute()
            self._cached = (mono, k)
            return k

    async def day_charts(self, max_age_s: float = 30.0) -> DayCharts:
        mono = self._rt.clock.monotonic()
        if self._charts is not None and mono - self._charts[0] < max_age_s:
            return self._charts[1]
        c = await self.compute_charts()
        self._charts = (mono, c)
        return c

    async def _events(self, kind_prefix: str, since_ms: int, until_ms: int) -> list[StoredEvent]:
        out: list[StoredEvent] = []
        after: int | None = None
        while True:
            page = await self._rt.store.events(
                kind_prefix=kind_prefix,
                since_ms=since_ms,
                until_ms=until_ms,
                after_rowid=after,
                limit=10_000,
            )
            out.extend(page)
            if len(page) < 10_000:
                return out
            after = page[-1].rowid

    def _meters(self) -> list[str]:
        return [
            d.id
            for d in self._rt.catalog.of_kind(DeviceKind.METER)
            if any(m.name == self._power_metric for m in d.metrics)
        ]

    async def compute(self) -> Kpis:
        rt = self._rt
        store = rt.store
        now = rt.clock.now_ms()
        day0 = day_start_ms(now, self._tz)
        pending: list[str] = []

        today, open_alerts, overdue, statuses = await asyncio.gather(
            store.alerts(since_ms=day0, until_ms=now + 1, limit=MANY),
            store.alerts(states=OPEN_STATES, limit=MANY),
            store.alerts(states=OPEN_STATES, overdue_at_ms=now, limit=MANY),
            store.latest_statuses(),
        )
        by_rule = Counter(a.rule for a in today)
        median_ack, resolved_share = await self._handling(today)

        online: dict[str, KindCount] = {}
        for kind in DeviceKind:
            devices = list(rt.catalog.of_kind(kind))
            if devices:
                up = sum(1 for d in devices if (s := statuses.get(d.id)) is not None and s.online)
                online[str(kind)] = KindCount(online=up, total=len(devices))
        terminals = list(rt.catalog.of_kind(DeviceKind.TERMINAL))
        available = 0
        for t in terminals:
            s = statuses.get(t.id)
            if s is not None and s.online and (s.mode or "ok") not in TERMINAL_BAD_STATES:
                available += 1
        txns = await self._events("terminal.txn", day0, now + 1)
        failed = sum(1 for e in txns if e.event.data.get("result") == "failed")

        power_now, energy = await self._power(day0, now)
        if power_now is None:
            pending.append(f"power: no meter in the catalog reports {self._power_metric!r}")

        presence = await self._residents.presence(day0, now)
        if presence is None:
            pending.append("residents: the rule engine's roster and presence are not available")
        share = (
            presence.residents_in / presence.residents_total
            if presence is not None and presence.residents_total
            else None
        )
        building = rt.config.building
        return Kpis(
            building=building.id,
            building_name=building.name,
            timezone=building.timezone,
            now_ms=now,
            day_start_ms=day0,
            residents_in=None if presence is None else presence.residents_in,
            residents_total=None if presence is None else presence.residents_total,
            residents_in_share=share,
            return_rate=None if presence is None else presence.return_rate,
            late_returns_today=None if presence is None else presence.late_returns_today,
            alerts_today_by_rule=dict(sorted(by_rule.items())),
            open_alerts=len(open_alerts),
            overdue_alerts=len(overdue),
            median_ack_s=median_ack,
            resolved_within_deadline_share=resolved_share,
            devices_online=online,
            terminals_available=available,
            terminals_total=len(terminals),
            terminal_txns_today=len(txns),
            terminal_txns_failed_today=failed,
            power_now_w=power_now,
            energy_today_kwh=energy,
            pending=pending,
        )

    async def _handling(self, today: list[Alert]) -> tuple[float | None, float | None]:
        """Median time to acknowledge and share resolved in time, over today's alerts."""
        handled = [a for a in today if a.state is not AlertState.OPEN][:TRANSITION_SAMPLE]
        histories = await asyncio.gather(*(self._rt.store.transitions(a.id) for a in handled))
        ack_s: list[float] = []
        in_time = resolved = 0
        for a, history in zip(handled, histories, strict=True):
            acks = [t.ts_ms for t in history if t.action == "acknowledge"]
            if acks:
                ack_s.append((min(acks) - a.opened_ms) / 1000)
            if a.state is AlertState.RESOLVED:
                done = [t.ts_ms for t in history if t.action == "resolve"]
                at = min(done) if done else a.updated_ms
                resolved += 1
                if a.resolve_deadline_ms is None or at <= a.resolve_deadline_ms:
                    in_time += 1
        return (
            statistics.median(ack_s) if ack_s else None,
            in_time / resolved if resolved else None,
        )

    async def _power(self, day0: int, now: int) -> tuple[float | None, float | None]:
        meters = self._meters()
        if not meters:
            return None, None
        store = self._rt.store
        metric = self._power_metric
        keys = [(m, metric) for m in meters]
        lasts, hours = await asyncio.gather(
            store.series_many(keys, now - 300_000, now + 1, "1m"),
            store.series_many(keys, day0, now + 1, "1h"),
        )
        power = sum(points[-1].last for points in lasts if points)
        kwh = 0.0
        for points in hours:
            for p in points:
                span_h = (min(p.ts_ms + HOUR_MS, now) - max(p.ts_ms, day0)) / HOUR_MS
                kwh += p.mean * max(span_h, 0.0) / 1000
        return power, kwh

    async def compute_charts(self) -> DayCharts:
        rt = self._rt
        now = rt.clock.now_ms()
        start = (now // HOUR_MS - 23) * HOUR_MS
        hours = [start + i * HOUR_MS for i in range(24)]
        passes, alerts = await asyncio.gather(
            self._events("gate.pass", start, now + 1),
            rt.store.alerts(since_ms=start, until_ms=now + 1, limit=MANY),
        )
        passages = [0] * 24
        for e in passes:
            i = (e.event.ts_ms - start) // HOUR_MS
            if 0 <= i < 24:
                passages[i] += 1
        per_hour = [0] * 24
        for a in alerts:
            i = (a.opened_ms - start) // HOUR_MS
            if 0 <= i < 24:
                per_hour[i] += 1
        power: list[float | None] = [None] * 24
        meters = self._meters()
        if meters:
            keys = [(m, self._power_metric) for m in meters]
            series = await rt.store.series_many(keys, start, now + 1, "1h")
            for points in series:
                for p in points:
                    i = (p.ts_ms - start) // HOUR_MS
                    if 0 <= i < 24:
                        power[i] = (power[i] or 0.0) + p.mean
        return DayCharts(hours_ms=hours, passages=passages, power_w=power, alerts=per_hour)
