"""The engine on top of the store: restores state at start, catches up on missed events, and
commits every alert change together with the rule state that produced it and its
notification outbox rows, then publishes the changes on the bus (`Stream.ALERTS`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

from gateway.bus import Bus, Stream
from gateway.clock import Clock
from gateway.config.rules import NotifyConfig, RulesConfig
from gateway.model import (
    Alert,
    AlertState,
    AlertTransition,
    DeviceKind,
    DeviceStatus,
    Event,
    Reading,
)
from gateway.sinks.notify import outbox_rows, outbox_statement
from gateway.storage.batch import SqlParams, WriteBatch
from gateway.storage.store import Store
from rules import persist
from rules.alerts import AlertNotFound, Change, InvalidTransition
from rules.engine import Engine
from rules.inputs import Item

log = logging.getLogger(__name__)

_PAGE = 1000
_MAX_CATCHUP_TICKS = 20_000
_FRESH_MS = 300_000
_READINGS_REPLAY_MS = 60_000
"""Readings replayed after the checkpoint: state is committed at least every `snapshot_s`
while running, so only the last seconds before a crash can be missing from it."""


class RuleRunner:
    def __init__(
        self,
        engine: Engine,
        *,
        store: Store,
        bus: Bus | None,
        clock: Clock,
        config: RulesConfig,
        building: str,
        notify: NotifyConfig | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.bus = bus
        self.clock = clock
        self.config = config
        self.building = building
        self.notify = notify or config.notify
        self.lock = asyncio.Lock()
        self.event_rowid = 0
        self.last_tick_ms = 0
        self.roster_version = 0
        self.last_snapshot_ms = 0
        self.replayed = 0
        self.on_commit: list[asyncio.Event] = []

    # -- start ---------------------------------------------------------------------------
    async def start(self) -> list[Change]:
        """Restore state, adopt unresolved alerts, catch up on what was missed (the number of
        inputs replayed is in `replayed`); return the alert changes this made."""
        async with self.lock:
            saved = await self.store.read(persist.load_saved)
            roster = await self.store.read(persist.load_roster)
            self.roster_version = roster.version
            self.engine.set_roster(roster)
            open_alerts = await self._open_alerts()
            now = self.clock.now_ms()
            self.event_rowid = saved.checkpoint.get(persist.EVENT_ROWID, 0)
            self.last_tick_ms = saved.checkpoint.get(persist.TICK_MS, 0)
            restored = bool(saved.state) or bool(saved.checkpoint)
            self.engine.start(saved.state or None, open_alerts, now)
            changes: list[Change] = []
            if restored:
                self.replayed = await self._catch_up(now, changes)
            else:
                self.replayed = await self._fresh_start(now, changes)
            changes += self.engine.tick(now)
            self.last_tick_ms = now
            await self._commit(changes, full=True)
            return changes

    async def _open_alerts(self) -> list[Alert]:
        out: list[Alert] = []
        for state in (AlertState.OPEN, AlertState.ACKNOWLEDGED):
            out += await self.store.alerts(states=(state,), limit=1_000_000)
        return out

    async def _last_rowid(self) -> int:
        last = 0
        while True:
            page = await self.store.events(after_rowid=last, limit=_PAGE * 10)
            if not page:
                return last
            last = page[-1].rowid

    async def _fresh_start(self, now: int, changes: list[Change]) -> int:
        """First start on this store: older history is not replayed (it would raise stale
        alerts), only events of the last `_FRESH_MS`, so none is lost to start-up races."""
        last = await self._last_rowid()
        fed = 0
        after = 0
        while after < last:
            page = await self.store.events(since_ms=now - _FRESH_MS, after_rowid=after, limit=_PAGE)
            page = [p for p in page if p.rowid <= last]
            if not page:
                break
            for stored in page:
                changes += self.engine.feed(stored.event, now_ms=now)
                fed += 1
            after = page[-1].rowid
        self.event_rowid = last
        return fed

    async def _catch_up(self, now: int, changes: list[Change]) -> int:
        """Replay events, gate/terminal statuses and readings committed since the checkpoint,
        ticking the clock through the gap so timers fire at the times they were due. (Readings
        fed before the crash may come again: the measured rule kinds take a repeat as is.)"""
        since = self.last_tick_ms
        items: list[tuple[int, int, Item]] = []
        after = self.event_rowid
        while True:
            page = await self.store.events(after_rowid=after, limit=_PAGE)
            if not page:
                break
            for stored in page:
                items.append((stored.event.ts_ms, 1, stored.event))
            after = page[-1].rowid
        self.event_rowid = after
        if since:
            kinds = (DeviceKind.GATE, DeviceKind.TERMINAL)
            for info in self.engine.ctx.catalog.devices.values():
                if info.kind in kinds:
                    for st in await self.store.status_history(info.id, since_ms=since + 1):
                        items.append((st.ts_ms, 0, st))
            items += await self._readings_after(since, min(now, since + _READINGS_REPLAY_MS))
        items.sort(key=lambda x: (x[0], x[1]))
        start = since or (items[0][0] if items else now)
        step = max(1000, (now - start) // _MAX_CATCHUP_TICKS)
        t = start
        for ts, _, item in items:
            while t + step <= min(ts, now):
                t += step
                changes += self.engine.tick(t)
            changes += self.engine.feed(item, now_ms=max(min(ts, now), t))
        while t + step <= now:
            t += step
            changes += self.engine.tick(t)
        if items:
            log.info("rules caught up on %d inputs missed while stopped", len(items))
        return len(items)

    async def _readings_after(self, since: int, until: int) -> list[tuple[int, int, Item]]:
        """The catalogue's devices' readings stored in [since, until], as replay items (those
        of the checkpoint's own millisecond may have come after its tick)."""
        known = self.engine.ctx.catalog.devices
        keys = [k for k in await self.store.series_keys() if k[0] in known]
        found = await self.store.series_many(keys, since, until + 1)
        return [
            (p.ts_ms, 0, Reading(device, metric, p.ts_ms, p.last))
            for (device, metric), points in zip(keys, found, strict=True)
            for p in points
        ]

    # -- inputs --------------------------------------------------------------------------
    async def feed(self, items: Iterable[Reading | DeviceStatus]) -> list[Change]:
        """Readings and statuses straight from the bus (events come from the store)."""
        async with self.lock:
            changes: list[Change] = []
            for item in items:
                changes += self.engine.feed(item)
            await self._commit(changes)
            return changes

    async def pull_events(self) -> list[Change]:
        """Feed the events committed since the last one fed, in commit order."""
        async with self.lock:
            changes: list[Change] = []
            while True:
                page = await self.store.events(after_rowid=self.event_rowid, limit=_PAGE)
                if not page:
                    break
                for stored in page:
                    changes += self.engine.feed(stored.event)
                self.event_rowid = page[-1].rowid
            await self._commit(changes)
            return changes

    async def tick(self) -> list[Change]:
        async with self.lock:
            now = self.clock.now_ms()
            changes = self.engine.tick(now)
            self.last_tick_ms = now
            due = now - self.last_snapshot_ms >= self.config.snapshot_s * 1000
            await self._commit(changes, full=False, force=due)
            return changes

    async def reload_roster(self) -> bool:
        version = await self.store.read(persist.roster_version)
        if version == self.roster_version:
            return False
        roster = await self.store.read(persist.load_roster)
        async with self.lock:
            self.engine.set_roster(roster)
            self.roster_version = roster.version
        return True

    # -- operators -----------------------------------------------------------------------
    async def act(
        self, alert_id: str, action: str, actor: str, note: str = "", assignee: str | None = None
    ) -> Alert:
        async with self.lock:
            try:
                change = self.engine.act(alert_id, action, actor, note=note, assignee=assignee)
            except AlertNotFound:
                stored = await self.store.alert(alert_id)
                if stored is None:
                    raise
                if action != "comment":
                    raise InvalidTransition(
                        f"alert {alert_id} is {stored.state}; it can only be commented"
                    ) from None
                change = _comment_on_closed(stored, actor, note, self.clock.now_ms())
            await self._commit([change])
            return change.alert

    # -- persistence ---------------------------------------------------------------------
    async def _commit(
        self,
        changes: Sequence[Change],
        *,
        full: bool = False,
        force: bool = False,
    ) -> None:
        """Commit alert changes with their outbox rows, the changed rule state and the input
        checkpoint, all in one transaction. The checkpoint is only ever written with the state
        it belongs to: after a crash, events after it are replayed onto that state."""
        if not (changes or full or force):
            return
        now = self.clock.now_ms()
        batch = WriteBatch()
        latest: dict[str, Alert] = {}
        outbox: list[SqlParams] = []
        for c in changes:
            latest[c.alert.id] = c.alert
            batch.transitions.append(c.transition)
            outbox += outbox_rows(self.notify, self.building, c.alert, c.transition, now)
        batch.alerts = list(latest.values())
        snap = self.engine.snapshot(only_dirty=not full)
        if snap:
            batch.sql.append((persist.UPSERT_STATE, persist.state_rows(snap, now)))
        self.last_snapshot_ms = now
        batch.sql.append(
            (
                persist.UPSERT_CHECKPOINT,
                [(persist.EVENT_ROWID, self.event_rowid), (persist.TICK_MS, self.last_tick_ms)],
            )
        )
        if outbox:
            batch.sql.append(outbox_statement(outbox))
        await self.store.commit(batch)
        if changes:
            if self.bus is not None:
                await self.bus.publish_many(Stream.ALERTS, list(changes))
            for ev in self.on_commit:
                ev.set()

    async def flush(self) -> None:
        """Persist all rule state now (shutdown)."""
        async with self.lock:
            await self._commit([], full=True)


def _comment_on_closed(alert: Alert, actor: str, note: str, now: int) -> Change:
    if not note.strip():
        raise InvalidTransition("a comment needs text")
    transition = AlertTransition(alert.id, now, "comment", actor, alert.state, alert.severity, note)
    return Change(alert, transition)


def classify(items: Iterable[object]) -> tuple[list[Reading | DeviceStatus], bool]:
    """Split bus items: readings/statuses to feed, and whether any event arrived."""
    direct: list[Reading | DeviceStatus] = []
    events = False
    for item in items:
        if isinstance(item, Reading | DeviceStatus):
            direct.append(item)
        elif isinstance(item, Event):
            events = True
    return direct, events
